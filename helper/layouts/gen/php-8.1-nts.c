/* Not generated (no php8.1-dev on any Debian release reachable here): made by
 * hand, not tested here. `make layouts` leaves it alone; replace it with the
 * generated file wherever php8.1-dev headers exist.
 * Provenance: phpspy's x86_64 struct dump for PHP 8.1 (adsr/phpspy,
 * structs/x86_64/php_structs_81.h, made from a build at php-src's release tag)
 * gives executor_globals.current_execute_data 488, zend_execute_data (opline
 * 0, func 24, This 32, prev_execute_data 48), zend_function.common
 * (function_name 8, scope 16), zend_op_array (last_var 60, vars 104,
 * filename 144), zend_class_entry.name 8, zend_string.len 16, val 24,
 * zend_op.lineno 24; each of those equals the entries generated from the
 * 7.4, 8.2 and 8.4 headers where their dumps agree with them.
 * op_array.last and .opcodes: the dump's last_var (60), vars (104) and filename (144) are 8.0's, so
 * is the part between them: last = 68, opcodes = 72 (see php-8.0-nts.c).
 * The constants (ZEND_CALL_TOP,
 * ZEND_USER_FUNCTION, GC_TYPE_MASK, IS_STRING, sizeof(zend_op)) are the
 * same in 7.4, 8.2 and 8.4. The module API is ZEND_MODULE_API_NO of 8.1.
 * eg_size 0: the size of executor_globals is not known (the check reads
 * only the bytes the walk uses).
 * SG(request_info) (sg_*, added by hand to this hand-made entry): phpspy's
 * x86_64 dump for PHP 8.1 (structs/x86_64/php_structs_81.h) puts request_info
 * at 8 in sapi_globals_struct and query_string 8, path_translated 32,
 * request_uri 40 inside it, and 8 bytes (pad0) before query_string: the
 * request_method pointer, first in sapi_request_info in the 7.4, 8.2 and
 * 8.4 headers as in php-src's older main/SAPI.h. The numbers are those of
 * the entries generated from the 7.4, 8.2 and 8.4 headers (request_method
 * 8, query_string 16, request_uri 48, path_translated 40); php-src's tagged
 * main/SAPI.h of this minor was not read here. sapi_started 436: the
 * 7.4, 8.2 and 8.4 headers all give 436, and in 8.2's it is the bool just
 * before global_request_time at 440, which the dump puts at 440 here too.
 * sg_size 0: the size of sapi_globals is not known. */
#include "helper/lang.h"

const dp_php_layout dp_php_layout_8_1_nts = {
    .version = "8.1",
    .api = "API20210902,NTS",
    .source = "PHP 8.1 by hand from phpspy's struct dump (not tested here)",
    .eg_size = 0,
    .eg_current_execute_data = 488,
    .ex_opline = 0,
    .ex_func = 24,
    .ex_this_type_info = 40,
    .ex_prev = 48,
    .call_top = 131072,
    .fn_type = 0,
    .fn_name = 8,
    .fn_scope = 16,
    .user_function = 2,
    .op_filename = 144,
    .op_opcodes = 72,
    .op_last = 68,
    .ce_name = 8,
    .opline_size = 32,
    .opline_lineno = 24,
    .str_type_info = 4,
    .str_len = 16,
    .str_val = 24,
    .gc_type_mask = 15,
    .is_string = 6,
    .sg_size = 0,
    .sg_request_method = 8,
    .sg_query_string = 16,
    .sg_request_uri = 48,
    .sg_path_translated = 40,
    .sg_sapi_started = 436,
};
