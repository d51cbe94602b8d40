/* Unit tests for the dump parameters as Kudu passes them (worker/route.c):
 * dumpType in decimal or 0x-hex, every MiniDumpValidTypeFlags bit valid and
 * nothing above it; format in any case, empty = raw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "worker/route.h"
#include "dump/core.h"

static void test_dump_type_numbers(void **state)
{
    static const char *bad[] = { "", "x", "0x", "0xg", "-1", "+1", " 1", "1 ", "1.0", "0b1",
                                 "99999999999999999999999", "0x1ffffffffffffffff" };
    unsigned long t;
    size_t i;
    (void)state;

    assert_int_equal(dp_parse_dump_type("0", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(dp_parse_dump_type("64", &t), 0);
    assert_int_equal(t, 0x40);
    assert_int_equal(dp_parse_dump_type("0x40", &t), 0);
    assert_int_equal(t, 0x40);
    assert_int_equal(dp_parse_dump_type("0X1FFFFFF", &t), 0);
    assert_int_equal(t, DP_DUMP_VALID);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dp_parse_dump_type(bad[i], &t) != -1)
            fail_msg("dumpType \"%s\" was taken as a number", bad[i]);
}

static void test_every_windows_bit_is_valid(void **state)
{
    unsigned long bit;
    (void)state;

    for (bit = 1; bit <= 0x1000000UL; bit <<= 1)
        assert_int_equal(bit & ~DP_DUMP_SUPPORTED, 0);
    assert_int_equal(DP_DUMP_SUPPORTED, 0x01ffffffUL);
    assert_int_not_equal(0x2000000UL & ~DP_DUMP_SUPPORTED, 0);
    /* what adds memory needs fulldump; the documented no-ops do not */
    assert_int_equal(DP_DUMP_NEEDS_FULLDUMP & (0x8UL | 0x10UL | 0x20000UL), 0);
    assert_int_equal(DP_DUMP_NEEDS_FULLDUMP & 0x40UL, 0x40UL);
}

static void test_dump_format(void **state)
{
    static const char *raw[] = { "raw", "RAW", "Raw", "" };
    static const char *zip[] = { "zip", "Zip", "ZIP" };
    static const char *bad[] = { "tar", "zip ", " raw", "rawzip", "gz" };
    int z;
    size_t i;
    (void)state;

    assert_int_equal(dp_parse_dump_format(NULL, &z), 0);
    assert_int_equal(z, 0);
    for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        assert_int_equal(dp_parse_dump_format(raw[i], &z), 0);
        assert_int_equal(z, 0);
    }
    for (i = 0; i < sizeof(zip) / sizeof(zip[0]); i++) {
        assert_int_equal(dp_parse_dump_format(zip[i], &z), 0);
        assert_int_equal(z, 1);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dp_parse_dump_format(bad[i], &z) != -1)
            fail_msg("format \"%s\" was accepted", bad[i]);
}

static void test_pick_coding(void **state)
{
    static const struct { const char *field; int want; } cases[] = {
        { NULL, DP_CODING_IDENTITY },
        { "", DP_CODING_IDENTITY },                    /* wants no coding */
        { "gzip", DP_CODING_GZIP },
        { "x-gzip", DP_CODING_GZIP },
        { "zstd", DP_CODING_ZSTD },
        { "gzip, deflate, br, zstd", DP_CODING_ZSTD }, /* a browser's */
        { "deflate, gzip;q=1.0, *;q=0.5", DP_CODING_GZIP }, /* curl --compressed's kind */
        { "ZSTD;Q=0.9 , GZip", DP_CODING_GZIP },       /* higher q wins, any case */
        { "gzip;q=0.5, zstd;q=0.5", DP_CODING_ZSTD },  /* a tie: zstd */
        { "gzip;q=0, zstd;q=0", DP_CODING_IDENTITY },
        { "identity", DP_CODING_IDENTITY },
        { "identity;q=0.5, gzip;q=0.4", DP_CODING_IDENTITY },
        { "identity;q=0.5, gzip;q=0.5", DP_CODING_GZIP },
        { "*", DP_CODING_ZSTD },
        { "*;q=0.2, gzip;q=0.3", DP_CODING_GZIP },
        { "*;q=0.3, gzip;q=0.2", DP_CODING_ZSTD },
        { "*;q=0", DP_CODING_IDENTITY },               /* nothing acceptable: ignored */
        { "br", DP_CODING_IDENTITY },
        { "gzip;q=2", DP_CODING_IDENTITY },            /* malformed: that element is ignored */
        { "gzip;q=0.0001", DP_CODING_IDENTITY },
        { "gzip;q=abc, zstd", DP_CODING_ZSTD },
        { "gzip;level=9;q=0.8", DP_CODING_GZIP },
        { "gzipx, zstdy", DP_CODING_IDENTITY },
        { " \tzstd\t;\tq=1 ", DP_CODING_ZSTD },
        { ",,,", DP_CODING_IDENTITY },
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (dp_pick_coding(cases[i].field) != cases[i].want)
            fail_msg("Accept-Encoding \"%s\": %d, not %d", cases[i].field ? cases[i].field : "(none)",
                     dp_pick_coding(cases[i].field), cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_type_numbers),
        cmocka_unit_test(test_every_windows_bit_is_valid),
        cmocka_unit_test(test_dump_format),
        cmocka_unit_test(test_pick_coding),
    };
    return cmocka_run_group_tests_name("route", tests, NULL, NULL) ? 1 : 0;
}
