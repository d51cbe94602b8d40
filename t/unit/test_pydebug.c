/* CPython 3.13+'s own layout (helper/pydebug.c): a _Py_DebugOffsets as the
 * interpreter publishes it gives the walk's entry; a broken cookie, another
 * version, a free-threaded build, a section whose size does not cover what
 * is read from it, a symbol too small: each refused with its reason, never
 * an entry. The slots are those of 3.13.5 and 3.14.8 (offsetof / 8,
 * measured against python3.13-dev and python3.14-dev). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>
#include "helper/pydebug.h"
#include "helper/pylines.h"

static apr_pool_t *pool;
static uint64_t buf[128];

#define V313 0x030d05f0u
#define V314 0x030e08f0u

/* a 3.13 (or, with shift 1, 3.14) _Py_DebugOffsets: every section 4096
 * bytes, the members at made-up offsets the test then finds in the entry */
static void publish(uint32_t version, int v314)
{
    memset(buf, 0, sizeof(buf));
    memcpy(buf, "xdebugpy", 8);
    buf[1] = version;
    buf[3] = 4096;      /* runtime_state.size */
    buf[5] = 40;        /* interpreters_head */
    buf[6] = 4096;      /* interpreter_state.size */
    buf[8] = 0;         /* next */
    buf[9] = 16;        /* threads_head */
    if (!v314) {
        buf[19] = 4096; buf[21] = 8; buf[22] = 16; buf[23] = 72; buf[24] = 152; buf[25] = 160;
        buf[28] = 80; buf[29] = 8; buf[30] = 0; buf[31] = 56; buf[33] = 70;
        buf[34] = 200; buf[35] = 112; buf[37] = 128; buf[38] = 136; buf[39] = 68; buf[43] = 200;
        buf[44] = 16; buf[45] = 8;
        buf[64] = 33; buf[65] = 16; buf[66] = 32;
        buf[67] = 64; buf[68] = 32; buf[69] = 16; buf[70] = 40;
    }
    else {
        buf[22] = 4096; buf[24] = 8; buf[25] = 16; buf[26] = 72; buf[27] = 152; buf[28] = 160;
        buf[31] = 80; buf[32] = 8; buf[33] = 0; buf[34] = 56; buf[36] = 70;
        buf[39] = 208; buf[40] = 112; buf[42] = 128; buf[43] = 136; buf[44] = 68; buf[48] = 208;
        buf[50] = 16; buf[51] = 8;
        buf[74] = 33; buf[75] = 16; buf[76] = 32;
        buf[77] = 64; buf[78] = 32; buf[79] = 16; buf[80] = 40;
    }
}

static const char *parse(uint32_t version, uint64_t symbol_size, dp_py_layout *l)
{
    return dp_py_debug_layout((const unsigned char *)buf, dp_py_debug_bytes(version), version,
                              symbol_size, l, pool);
}

static void test_which_versions(void **state)
{
    (void)state;
    assert_false(dp_py_debug_published(0x030c07f0));
    assert_false(dp_py_debug_published(0x030b02f0));
    assert_false(dp_py_debug_published(0));
    assert_true(dp_py_debug_published(V313));
    assert_true(dp_py_debug_published(V314));
    assert_true(dp_py_debug_published(0x030f00a1));    /* read as 3.14's, validated */
    assert_int_equal(dp_py_debug_bytes(V313), 73 * 8);
    assert_int_equal(dp_py_debug_bytes(V314), 95 * 8);
    assert_int_equal(dp_py_debug_bytes(0x030c07f0), 0);
}

static void test_313(void **state)
{
    dp_py_layout l;

    (void)state;
    publish(V313, 0);
    assert_null(parse(V313, 283376, &l));
    assert_string_equal(l.version, "3.13");
    assert_int_equal(l.frame_model, DP_PY_FRAMES_DIRECT);
    assert_int_equal(l.line_format, DP_PYLINES_LOCATIONS);
    assert_int_equal(l.rt_interp_head, 40);
    assert_int_equal(l.is_threads_head, 16);
    assert_int_equal(l.ts_cframe, 72);
    assert_int_equal(l.ts_native_thread_id, 160);
    assert_int_equal(l.fr_prev_instr, 56);
    assert_int_equal(l.fr_owner, 70);
    assert_int_equal(l.co_qualname, 128);
    assert_int_equal(l.co_code_adaptive, 200);
    assert_int_equal(l.ascii_size, 40);
    assert_int_equal(l.compact_size, 56);
    assert_int_equal(l.ref_tag_bits, 0);
    assert_int_equal(l.co_firsttraceable, DP_PY_NONE);
    assert_int_equal(l.fr_is_entry, DP_PY_NONE);
}

static void test_314_and_later(void **state)
{
    dp_py_layout l;

    (void)state;
    publish(V314, 1);
    assert_null(parse(V314, 300000, &l));
    assert_string_equal(l.version, "3.14");
    assert_int_equal(l.ts_cframe, 72);
    assert_int_equal(l.co_code_adaptive, 208);
    assert_int_equal(l.ref_tag_bits, 3);
    /* a later version with the same shape */
    publish(0x030f00a1, 1);
    assert_null(parse(0x030f00a1, 300000, &l));
    assert_string_equal(l.version, "3.15");
    /* a 3.13-shaped block read as 3.14's: the sizes do not cover the fields */
    publish(V314, 0);
    assert_non_null(parse(V314, 300000, &l));
}

static void test_refused(void **state)
{
    dp_py_layout l;
    const char *why;

    (void)state;
    publish(V313, 0);
    ((unsigned char *)buf)[1] ^= 0x20;
    assert_non_null(strstr(parse(V313, 283376, &l), "cookie \"xdebugpy\""));

    publish(V313, 0);
    why = parse(0x030d04f0, 283376, &l);
    assert_string_equal(why, "_Py_DebugOffsets names version 0x030d05f0, Py_Version is 0x030d04f0");

    publish(V313, 0);
    buf[2] = 1;
    assert_non_null(strstr(parse(V313, 283376, &l), "free-threaded"));

    publish(V313, 0);
    buf[19] = 164;      /* thread_state.size: native_thread_id at 160 does not fit */
    assert_string_equal(parse(V313, 283376, &l), "_Py_DebugOffsets puts thread_state."
                        "native_thread_id at 160, past the section's size 164");

    publish(V313, 0);
    buf[28] = 0;        /* interpreter_frame.size */
    assert_string_equal(parse(V313, 283376, &l),
                        "_Py_DebugOffsets gives interpreter_frame a size of 0");

    publish(V313, 0);
    buf[28] = (uint64_t)1 << 40;
    assert_non_null(parse(V313, 283376, &l));

    publish(V313, 0);
    assert_string_equal(parse(V313, 64, &l), "_PyRuntime has 64 bytes, fewer than the 584 of "
                        "CPython 3.13's _Py_DebugOffsets");
    buf[5] = 4000;      /* interpreters_head inside the section, past the symbol */
    assert_non_null(strstr(parse(V313, 1024, &l), "fewer than the 4008 its interpreters_head"));

    publish(V313, 0);
    assert_non_null(dp_py_debug_layout((const unsigned char *)buf, 100, V313, 283376, &l, pool));
    assert_non_null(dp_py_debug_layout((const unsigned char *)buf, 584, 0x030c07f0, 283376, &l,
                                       pool));

    /* sizes that disagree with PyCompactUnicodeObject: ASCII strings only */
    publish(V313, 0);
    buf[67] = 80;
    assert_null(parse(V313, 283376, &l));
    assert_int_equal(l.compact_size, DP_PY_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_versions),
        cmocka_unit_test(test_313),
        cmocka_unit_test(test_314_and_later),
        cmocka_unit_test(test_refused),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
