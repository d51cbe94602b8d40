/* The line-number decoders (helper/pylines.c) against each interpreter's
 * own answer: t/fixtures/pylines/cpython-3.X.txt hold every code object of a
 * standard-library module, its table and the line the interpreter gives each
 * byte range (see the fixtures' README); every instruction of every code
 * object must decode to that line. Plus hand-made tables for the edges:
 * a 3.10 range without a line, torn location tables, offsets past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <cmocka.h>
#include "helper/pylines.h"

#define MAX_TABLE 65536

static char fixture_dir[PATH_MAX + 64];

/* t/fixtures/pylines from the current directory, or from an ancestor of the
 * test binary (make runs it from the tree's root) */
static void find_fixture_dir(void)
{
    char exe[PATH_MAX - 64], *slash;
    ssize_t n;

    if (getenv("DP_FIXTURES") && *getenv("DP_FIXTURES")) {
        snprintf(fixture_dir, sizeof(fixture_dir), "%s/../pylines", getenv("DP_FIXTURES"));
        if (access(fixture_dir, R_OK) == 0)
            return;
    }
    snprintf(fixture_dir, sizeof(fixture_dir), "t/fixtures/pylines");
    if (access(fixture_dir, R_OK) == 0)
        return;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    while ((slash = strrchr(exe, '/')) != NULL) {
        *slash = '\0';
        snprintf(fixture_dir, sizeof(fixture_dir), "%s/t/fixtures/pylines", exe);
        if (access(fixture_dir, R_OK) == 0)
            return;
    }
}

static size_t unhex(const char *s, unsigned char *out, size_t max)
{
    size_t n = 0;
    unsigned b;

    if (!strcmp(s, "-"))
        return 0;
    while (n < max && sscanf(s + 2 * n, "%2x", &b) == 1)
        out[n++] = (unsigned char)b;
    return n;
}

/* Decodes every instruction of every code object of one fixture; returns
 * the number of instructions checked. */
static long check_fixture(const char *name, const char *want_format)
{
    char path[PATH_MAX + 128], version[32], format[16], module[64];
    static char line[4 * MAX_TABLE];
    static unsigned char table[MAX_TABLE];
    dp_pylines_format fmt;
    size_t n = 0;
    int first = 0, codes = 0;
    long checked = 0, mismatches = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_non_null(fgets(line, sizeof(line), f));
    assert_int_equal(sscanf(line, "python %31s %15s %63s", version, format, module), 3);
    assert_string_equal(format, want_format);
    fmt = !strcmp(format, "lnotab") ? DP_PYLINES_LNOTAB : !strcmp(format, "310") ? DP_PYLINES_310
        : DP_PYLINES_LOCATIONS;
    while (fgets(line, sizeof(line), f)) {
        static char hex[2 * MAX_TABLE + 2];
        unsigned long start, end, off;
        int want, code_bytes;
        if (sscanf(line, "code %d %d %131073s", &first, &code_bytes, hex) == 3) {
            n = unhex(hex, table, sizeof(table));
            codes++;
            continue;
        }
        assert_int_equal(sscanf(line, "range %lu %lu %d", &start, &end, &want), 3);
        for (off = start; off < end; off += 2) {
            int got = dp_pylines_line(fmt, table, n, first, off);
            checked++;
            if (got != want && mismatches++ < 5)
                print_error("%s: offset %lu of code at line %d: %d, the interpreter says %d\n",
                            name, off, first, got, want);
        }
    }
    fclose(f);
    print_message("%s: Python %s, %s, %d code objects, %ld instructions\n", name, version,
                  module, codes, checked);
    assert_int_equal(mismatches, 0);
    assert_true(codes > 10);
    return checked;
}

static void test_fixture_39(void **state)
{
    (void)state;
    check_fixture("cpython-3.9.txt", "lnotab");
}

static void test_fixture_310(void **state)
{
    (void)state;
    check_fixture("cpython-3.10.txt", "310");
}

static void test_fixture_312(void **state)
{
    (void)state;
    check_fixture("cpython-3.12.txt", "locations");
}

static void test_fixture_311(void **state)
{
    (void)state;
    check_fixture("cpython-3.11.txt", "locations");
}

static void test_fixture_313(void **state)
{
    (void)state;
    check_fixture("cpython-3.13.txt", "locations");
}

static void test_fixture_314(void **state)
{
    (void)state;
    check_fixture("cpython-3.14.txt", "locations");
}

/* 3.10's edges, tables made by hand from the format of
 * Objects/lnotab_notes.txt at v3.10.0 */
static void test_310_by_hand(void **state)
{
    /* 6 bytes on line first+1, 4 bytes without a line, an empty range that
     * moves the line by 2, 2 bytes on line first+3 */
    static const unsigned char t[] = { 6, 1, 4, 0x80, 0, 2, 2, 0 };
    (void)state;
    assert_int_equal(dp_pylines_line(DP_PYLINES_310, t, sizeof(t), 10, 0), 11);
    assert_int_equal(dp_pylines_line(DP_PYLINES_310, t, sizeof(t), 10, 4), 11);
    assert_int_equal(dp_pylines_line(DP_PYLINES_310, t, sizeof(t), 10, 6), -1);
    assert_int_equal(dp_pylines_line(DP_PYLINES_310, t, sizeof(t), 10, 8), -1);
    assert_int_equal(dp_pylines_line(DP_PYLINES_310, t, sizeof(t), 10, 10), 13);
    assert_int_equal(dp_pylines_line(DP_PYLINES_310, t, sizeof(t), 10, 12), 0);
    assert_int_equal(dp_pylines_line(DP_PYLINES_310, t, 1, 10, 0), 0);
}

static void test_torn_tables(void **state)
{
    /* a location table that starts inside an entry (bit 7 clear) */
    static const unsigned char torn[] = { 0x05, 0x80 };
    /* one entry, 2 code units, one line down (code 11) */
    static const unsigned char one[] = { 0xd9 };
    (void)state;
    assert_int_equal(dp_pylines_line(DP_PYLINES_LOCATIONS, torn, sizeof(torn), 1, 0), 0);
    assert_int_equal(dp_pylines_line(DP_PYLINES_LOCATIONS, one, sizeof(one), 7, 2), 8);
    assert_int_equal(dp_pylines_line(DP_PYLINES_LOCATIONS, one, sizeof(one), 7, 4), 0);
    assert_int_equal(dp_pylines_line(DP_PYLINES_LOCATIONS, NULL, 0, 7, 0), 0);
    assert_int_equal(dp_pylines_line(DP_PYLINES_LNOTAB, NULL, 0, 7, 100), 7);
    assert_int_equal(dp_pylines_line((dp_pylines_format)99, one, sizeof(one), 7, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_39),
        cmocka_unit_test(test_fixture_310),
        cmocka_unit_test(test_fixture_311),
        cmocka_unit_test(test_fixture_312),
        cmocka_unit_test(test_fixture_313),
        cmocka_unit_test(test_fixture_314),
        cmocka_unit_test(test_310_by_hand),
        cmocka_unit_test(test_torn_tables),
    };
    find_fixture_dir();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
