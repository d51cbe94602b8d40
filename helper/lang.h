/* Language-level stacks: the interpreter structures a walk follows, one
 * layout table entry per interpreter version (helper/layouts.c, generated
 * from that version's -dev headers by `make layouts`; see helper/layouts/).
 * A version without an entry gets native frames and a reason, never a
 * guessed layout. */
#ifndef DP_LANG_H
#define DP_LANG_H

#include <stdint.h>
#include <stddef.h>

typedef struct dp_py_layout {
    const char *version;            /* "3.11": matched against Py_Version's major.minor */
    const char *source;             /* the headers the numbers came from */
    uint32_t runtime_size;          /* sizeof(_PyRuntimeState) = the symbol's size */
    uint32_t rt_interp_head, rt_gil_tstate;
    uint32_t is_next, is_threads_head;
    uint32_t ts_next, ts_interp, ts_cframe, ts_thread_id, ts_native_thread_id;
    uint32_t cf_current_frame;
    uint32_t fr_code, fr_previous, fr_prev_instr, fr_is_entry, fr_owner, owner_generator;
    uint32_t ob_type;
    uint32_t co_qualname, co_filename, co_firstlineno, co_linetable, co_firsttraceable,
             co_code_adaptive;
    uint32_t var_size;              /* PyVarObject.ob_size */
    uint32_t bytes_sval;
    uint32_t str_length, str_state, ascii_size, compact_size;
    uint32_t state_kind_shift, state_kind_mask, state_compact_bit, state_ascii_bit;
} dp_py_layout;

typedef struct dp_php_layout {
    const char *version;            /* "8.2" */
    const char *api;                /* the build id string in .rodata: "API20220829,NTS" */
    const char *source;
    uint32_t eg_size;               /* sizeof(zend_executor_globals) = the symbol's size */
    uint32_t eg_current_execute_data;
    uint32_t ex_opline, ex_func, ex_this_type_info, ex_prev;
    uint32_t call_top;              /* ZEND_CALL_TOP in This.u1.type_info */
    uint32_t fn_type, fn_name, fn_scope, user_function;
    uint32_t op_filename, op_opcodes, op_last;
    uint32_t ce_name;
    uint32_t opline_size, opline_lineno;
    uint32_t str_type_info, str_len, str_val, gc_type_mask, is_string;
} dp_php_layout;

extern const dp_py_layout dp_py_layouts[];
extern const size_t dp_py_nlayouts;
extern const dp_php_layout dp_php_layouts[];
extern const size_t dp_php_nlayouts;
/* The same table as Python (PY_LAYOUTS / PHP_LAYOUTS dicts), for gdb. */
extern const char dp_lang_layouts_py[];
/* helper/gdb/diagproc-lang.py (its "# @LAYOUTS@" line stands for the table). */
extern const char dp_lang_gdb_py[];

#endif
