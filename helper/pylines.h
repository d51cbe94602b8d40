/* CPython's line-number tables, one decoder per format: the line of the
 * instruction at a byte offset of a code object's bytecode, as the
 * interpreter's own PyCode_Addr2Line answers it. Pure functions of the
 * table's bytes (no target, no APR): the stacks walk (helper/pystack.c) and
 * t/unit/test_pylines.c call the same code. Each returns the line, -1 where
 * the table says the instruction has none, 0 when the offset lies past the
 * table or the table is torn. */
#ifndef DP_PYLINES_H
#define DP_PYLINES_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DP_PYLINES_LNOTAB,      /* 3.9 and before: co_lnotab */
    DP_PYLINES_310,         /* 3.10: co_linetable, PEP 626 */
    DP_PYLINES_LOCATIONS    /* 3.11 and later: the location table */
} dp_pylines_format;

int dp_pylines_line(dp_pylines_format format, const unsigned char *table, size_t n,
                    int first_line, uint64_t byte_offset);

#endif
