/* Prints the layout table entry of the PHP whose headers it is compiled
 * against (see the Makefile's `layouts` target). */
#include <php.h>
#include <zend_globals.h>
#include <stdio.h>
#include <string.h>

/* C (helper/layouts.c) or, with "py", the same entry as a Python dict for
 * the gdb commands the bundle ships */
static int py;
#define F(field, value) printf(py ? "    %s=%lu,\n" : "        .%s = %lu,\n", #field, \
                               (unsigned long)(value))

int main(int argc, char **argv)
{
    py = argc > 1 && !strcmp(argv[1], "py");
    if (py)
        printf("PHP_LAYOUTS[\"%s\"] = dict(\n    version=\"%d.%d\",\n", ZEND_MODULE_BUILD_ID,
               PHP_MAJOR_VERSION, PHP_MINOR_VERSION);
    else
        printf("    {\n        .version = \"%d.%d\",\n        .api = \"%s\",\n",
               PHP_MAJOR_VERSION, PHP_MINOR_VERSION, ZEND_MODULE_BUILD_ID);
    printf(py ? "    source=\"PHP %s headers (php%d.%d-dev)\",\n"
              : "        .source = \"PHP %s headers (php%d.%d-dev)\",\n", PHP_VERSION,
           PHP_MAJOR_VERSION, PHP_MINOR_VERSION);
    F(eg_size, sizeof(zend_executor_globals));
    F(eg_current_execute_data, offsetof(zend_executor_globals, current_execute_data));
    F(ex_opline, offsetof(zend_execute_data, opline));
    F(ex_func, offsetof(zend_execute_data, func));
    F(ex_this_type_info, offsetof(zend_execute_data, This.u1.type_info));
    F(ex_prev, offsetof(zend_execute_data, prev_execute_data));
    F(call_top, ZEND_CALL_TOP);
    F(fn_type, offsetof(zend_function, type));
    F(fn_name, offsetof(zend_function, common.function_name));
    F(fn_scope, offsetof(zend_function, common.scope));
    F(user_function, ZEND_USER_FUNCTION);
    F(op_filename, offsetof(zend_function, op_array.filename));
    F(op_opcodes, offsetof(zend_function, op_array.opcodes));
    F(op_last, offsetof(zend_function, op_array.last));
    F(ce_name, offsetof(zend_class_entry, name));
    F(opline_size, sizeof(zend_op));
    F(opline_lineno, offsetof(zend_op, lineno));
    F(str_type_info, offsetof(zend_string, gc.u.type_info));
    F(str_len, offsetof(zend_string, len));
    F(str_val, offsetof(zend_string, val));
    F(gc_type_mask, GC_TYPE_MASK);
    F(is_string, IS_STRING);
    printf(py ? ")\n" : "    },\n");
    return 0;
}
