/* The layout entries as the build lists them (helper/lang_layouts.c, the
 * registry made from helper/layouts/gen/) and the gdb commands' copy of them
 * (helper/lang_gdb.c): lookups, the root symbol's size checked against what
 * the walk reads (a later patch release that appends members is accepted, a
 * symbol too small for the walk refused with the numbers), and every entry
 * in the bundle's script as a Python dict with the C entry's values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "helper/lang.h"
#include "helper/stacks.h"

static apr_pool_t *pool;

static void test_registry(void **state)
{
    size_t i;

    (void)state;
    assert_true(dp_py_nlayouts >= 1);
    assert_true(dp_php_nlayouts >= 1);
    assert_null(dp_py_layouts[dp_py_nlayouts]);
    assert_null(dp_php_layouts[dp_php_nlayouts]);
    for (i = 0; i < dp_py_nlayouts; i++) {
        assert_ptr_equal(dp_py_layout_find(dp_py_layouts[i]->version), dp_py_layouts[i]);
        assert_non_null(strstr(dp_py_layouts_known(pool), dp_py_layouts[i]->version));
    }
    for (i = 0; i < dp_php_nlayouts; i++) {
        assert_ptr_equal(dp_php_layout_find(dp_php_layouts[i]->api), dp_php_layouts[i]);
        assert_non_null(strstr(dp_php_layouts_known(pool), dp_php_layouts[i]->api));
    }
    assert_null(dp_py_layout_find("2.7"));
    assert_null(dp_py_layout_find(NULL));
    /* every entry: what the walk reads of executor_globals lies inside the
     * headers' size where one is known; the APIs of the minors from 7.4 */
    for (i = 0; i < dp_php_nlayouts; i++)
        assert_true(!dp_php_layouts[i]->eg_size
                    || dp_php_layouts[i]->eg_current_execute_data + 8 <= dp_php_layouts[i]->eg_size);
    assert_string_equal(dp_php_layout_find("API20190902,NTS")->version, "7.4");
    assert_string_equal(dp_php_layout_find("API20200930,NTS")->version, "8.0");
    assert_string_equal(dp_php_layout_find("API20210902,NTS")->version, "8.1");
    assert_string_equal(dp_php_layout_find("API20230831,NTS")->version, "8.3");
    assert_string_equal(dp_php_layout_find("API20240924,NTS")->version, "8.4");
    assert_null(dp_php_layout_find("API20240924,TS"));
    assert_null(dp_php_layout_find("API20990101,NTS"));
    assert_null(dp_php_layout_find(NULL));
}

/* Debian 12's interpreters, whose entries are checked in */
static void test_debian12_entries(void **state)
{
    const dp_py_layout *py = dp_py_layout_find("3.11");
    const dp_php_layout *php = dp_php_layout_find("API20220829,NTS");

    (void)state;
    assert_non_null(py);
    assert_non_null(php);
    assert_string_equal(php->version, "8.2");
    assert_null(dp_py_runtime_refused(py, py->runtime_size, "python3.11", pool));
    /* 8.2.32 (Debian 12's main suite) has 1776 bytes, 8.2.36 1800: both walk alike */
    assert_null(dp_php_globals_refused(php, 1776, "php8.2", pool));
    assert_null(dp_php_globals_refused(php, 1800, "php8.2", pool));
}

static void test_python_sizes(void **state)
{
    dp_py_layout l;
    const char *why;

    (void)state;
    memset(&l, 0, sizeof(l));
    l.version = "3.11";
    l.rt_interp_head = 40;
    l.runtime_size = 166688;
    assert_null(dp_py_runtime_refused(&l, 48, "libpython3.11.so.1.0", pool));
    assert_null(dp_py_runtime_refused(&l, 166688, "libpython3.11.so.1.0", pool));
    assert_null(dp_py_runtime_refused(&l, 200000, "libpython3.11.so.1.0", pool));
    why = dp_py_runtime_refused(&l, 47, "libpython3.11.so.1.0", pool);
    assert_string_equal(why, "_PyRuntime in libpython3.11.so.1.0 has 47 bytes, fewer than the "
                        "48 that the walk reads with CPython 3.11's layout (166688 in the "
                        "headers it was made from)");
    why = dp_py_runtime_refused(&l, 0, "python3.11", pool);
    assert_non_null(strstr(why, " has 0 bytes, fewer than the 48 "));
    /* 64-bit numbers come out whole */
    l.rt_interp_head = 0xffffffffu;
    why = dp_py_runtime_refused(&l, 4294967296ULL, "python3.11", pool);
    assert_non_null(strstr(why, " has 4294967296 bytes, fewer than the 4294967303 "));
}

static void test_php_sizes(void **state)
{
    dp_php_layout l;
    const char *why;

    (void)state;
    memset(&l, 0, sizeof(l));
    l.version = "8.2";
    l.api = "API20220829,NTS";
    l.eg_current_execute_data = 488;
    l.eg_size = 1800;
    assert_null(dp_php_globals_refused(&l, 496, "libphp8.2.so", pool));
    assert_null(dp_php_globals_refused(&l, 1776, "libphp8.2.so", pool));
    assert_null(dp_php_globals_refused(&l, 1824, "libphp8.2.so", pool));
    why = dp_php_globals_refused(&l, 495, "libphp8.2.so", pool);
    assert_string_equal(why, "executor_globals in libphp8.2.so has 495 bytes, fewer than the "
                        "496 that the walk reads with PHP 8.2's layout (1800 in the headers "
                        "it was made from)");
    /* an entry made by hand knows no size of its own */
    l.eg_size = 0;
    l.version = "8.3";
    why = dp_php_globals_refused(&l, 480, "php8.3", pool);
    assert_string_equal(why, "executor_globals in php8.3 has 480 bytes, fewer than the 496 that "
                        "the walk reads with PHP 8.3's layout");
    l.eg_size = 1800;
    l.version = "8.2";
    l.eg_current_execute_data = 0xfffffff8u;
    why = dp_php_globals_refused(&l, 4294967295ULL, "php8.2", pool);
    assert_non_null(strstr(why, " has 4294967295 bytes, fewer than the 4294967296 "));
}

/* SG(request_info) in every PHP entry (DP_READ_PHP_REQUEST): its members
 * where sapi_request_info has them, right after server_context (a pointer),
 * pointer-aligned and in the headers' order; sapi_started after them and
 * inside the struct where its size is known; Debian 12's numbers exact. */
static void test_php_request_fields(void **state)
{
    const dp_php_layout *php = dp_php_layout_find("API20220829,NTS");
    size_t i;

    (void)state;
    for (i = 0; i < dp_php_nlayouts; i++) {
        const dp_php_layout *l = dp_php_layouts[i];
        const char *d = apr_psprintf(pool, "PHP %s", l->version);
        uint32_t off[4] = { l->sg_request_method, l->sg_query_string, l->sg_path_translated,
                            l->sg_request_uri };
        int k;

        /* request_method, query_string, cookie_data, content_length,
           path_translated, request_uri: six 8-byte members from offset 8 */
        if (l->sg_request_method != 8)
            fail_msg("%s: request_method at %u", d, l->sg_request_method);
        for (k = 0; k < 4; k++) {
            if (off[k] % 8 || off[k] < 8 || off[k] + 8 > 8 + 6 * 8)
                fail_msg("%s: member %d at %u", d, k, off[k]);
            if (k && off[k] <= off[k - 1])
                fail_msg("%s: member %d at %u, not after %u", d, k, off[k], off[k - 1]);
        }
        assert_int_equal(l->sg_query_string, l->sg_request_method + 8);
        assert_int_equal(l->sg_request_uri, l->sg_path_translated + 8);
        assert_true(l->sg_sapi_started > l->sg_request_uri + 8);
        assert_true(l->sg_sapi_started < 4096);
        if (l->sg_size)
            assert_true(l->sg_sapi_started < l->sg_size);
    }
    assert_non_null(php);
    assert_int_equal(php->sg_size, 552);
    assert_int_equal(php->sg_request_method, 8);
    assert_int_equal(php->sg_query_string, 16);
    assert_int_equal(php->sg_path_translated, 40);
    assert_int_equal(php->sg_request_uri, 48);
    assert_int_equal(php->sg_sapi_started, 436);
}

/* PY_LAYOUTS["3.11"] = dict( ... rt_interp_head=40, ... ) */
static void expect_field(const char *script, const char *dict, const char *name, uint32_t v)
{
    const char *at = strstr(script, dict), *end;
    char *line = apr_psprintf(pool, "\n    %s=%u,\n", name, v);

    if (!at)
        fail_msg("no %s in the script", dict);
    end = strstr(at, "\n)\n");
    at = strstr(at, line);
    if (!at || !end || at > end)
        fail_msg("%s: no%s in its dict", dict, line);
}

static void test_gdb_script(void **state)
{
    const char *script = dp_lang_gdb_script(pool);
    char path[] = "/tmp/dp-lang-gdb-XXXXXX";
    size_t i;
    FILE *f;
    int fd;

    (void)state;
    assert_null(strstr(script, "# @LAYOUTS@"));
    assert_non_null(strstr(script, "def php_threads():"));
    assert_true(strlen(script) > dp_lang_gdb_py_len);
    assert_int_equal(strlen(dp_lang_gdb_py), dp_lang_gdb_py_len);
    for (i = 0; i < dp_py_nlayouts; i++) {
        const dp_py_layout *l = dp_py_layouts[i];
        const char *d = apr_psprintf(pool, "PY_LAYOUTS[\"%s\"] = dict(\n", l->version);
        expect_field(script, d, "rt_interp_head", l->rt_interp_head);
        expect_field(script, d, "co_code_adaptive", l->co_code_adaptive);
        expect_field(script, d, "state_ascii_bit", l->state_ascii_bit);
    }
    for (i = 0; i < dp_php_nlayouts; i++) {
        const dp_php_layout *l = dp_php_layouts[i];
        const char *d = apr_psprintf(pool, "PHP_LAYOUTS[\"%s\"] = dict(\n    version=\"%s\",",
                                     l->api, l->version);
        expect_field(script, d, "eg_current_execute_data", l->eg_current_execute_data);
        expect_field(script, d, "is_string", l->is_string);
        expect_field(script, d, "sg_request_uri", l->sg_request_uri);
        expect_field(script, d, "sg_sapi_started", l->sg_sapi_started);
    }
    /* and the whole is Python */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(script, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(system(apr_psprintf(pool, "/usr/bin/python3 -c 'import ast, sys; "
                                         "ast.parse(open(sys.argv[1]).read())' %s", path)), 0);
    unlink(path);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_debian12_entries),
        cmocka_unit_test(test_python_sizes),
        cmocka_unit_test(test_php_sizes),
        cmocka_unit_test(test_php_request_fields),
        cmocka_unit_test(test_gdb_script),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests_name("lang_layouts", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc ? 1 : 0;
}
