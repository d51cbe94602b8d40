/* CPython's line-number tables (helper/pylines.h). The formats, as CPython's
 * own notes describe them: Objects/lnotab_notes.txt at v3.9.x and v3.10.x,
 * Objects/locations.md from v3.11.0 (unchanged through v3.14.x); checked
 * against each interpreter's answer for every code object of a module
 * (t/fixtures/pylines/). The tables come from the target's memory: the
 * running line is kept unsigned, so that any bytes wrap instead of
 * overflowing, and no read leaves the n bytes. */
#include "helper/pylines.h"

/* 3.9: (byte increment, signed line increment) pairs; the line of an offset
 * is the sum of the line increments of the pairs whose address lies at or
 * before it */
static int lnotab_line(const unsigned char *p, size_t n, unsigned line, uint64_t offset)
{
    uint64_t addr = 0;
    size_t i;

    for (i = 0; i + 1 < n; i += 2) {
        addr += p[i];
        if (addr > offset)
            break;
        line += (unsigned)(int)(signed char)p[i + 1];
    }
    return (int)line;
}

/* 3.10: (byte length, signed line delta) pairs, each a range of the
 * bytecode; a delta of -128 marks a range without a line and leaves the
 * running line as it is; empty ranges only carry a delta */
static int linetable310_line(const unsigned char *p, size_t n, unsigned line, uint64_t offset)
{
    uint64_t start, end = 0;
    size_t i;

    for (i = 0; i + 1 < n; i += 2) {
        int delta = (signed char)p[i + 1];
        start = end;
        end += p[i];
        if (delta != -128)
            line += (unsigned)delta;
        if (end > start && offset < end)
            return delta == -128 ? -1 : (int)line;
    }
    return 0;
}

static unsigned varint(const unsigned char *p, size_t n, size_t *i)
{
    unsigned v = 0, shift = 0;
    while (*i < n) {
        unsigned b = p[(*i)++];
        v |= (b & 63) << shift;
        shift += 6;
        if (!(b & 64) || shift > 30)
            break;
    }
    return v;
}

/* 3.11 and later: entries start with bit 7 set; code = bits 3-6, length =
 * bits 0-2 + 1 code units (2 bytes); 15 = no line, 14 and 13 = line delta
 * as a signed varint (low bit = sign), 10-12 = delta code-10, 0-9 = same
 * line; the bytes after the first of an entry (columns) have bit 7 clear */
static int locations_line(const unsigned char *p, size_t n, unsigned line, uint64_t offset)
{
    uint64_t unit = offset / 2, at = 0;
    size_t i = 0;

    while (i < n) {
        unsigned b = p[i++], code = b >> 3 & 15, len = (b & 7) + 1;
        unsigned entry_line;
        if (!(b & 0x80))
            return 0;           /* not the start of an entry: a torn table */
        if (code == 15)
            entry_line = (unsigned)-1;
        else {
            if (code == 14 || code == 13) {
                unsigned v = varint(p, n, &i);
                line += (v & 1) ? 0u - (v >> 1) : v >> 1;
            }
            else if (code >= 10)
                line += code - 10;
            entry_line = line;
        }
        if (unit < at + len)
            return (int)entry_line;
        at += len;
        while (i < n && !(p[i] & 0x80))
            i++;
    }
    return 0;
}

int dp_pylines_line(dp_pylines_format format, const unsigned char *table, size_t n,
                    int first_line, uint64_t byte_offset)
{
    switch (format) {
    case DP_PYLINES_LNOTAB:
        return lnotab_line(table, n, (unsigned)first_line, byte_offset);
    case DP_PYLINES_310:
        return linetable310_line(table, n, (unsigned)first_line, byte_offset);
    case DP_PYLINES_LOCATIONS:
        return locations_line(table, n, (unsigned)first_line, byte_offset);
    }
    return 0;
}
