/* libFuzzer harness: CPython's line-number table decoders (helper/pylines.c)
 * and the _Py_DebugOffsets parser (helper/pydebug.c) on any bytes, as a
 * target's memory may hold them. Input: format (1 byte), first line (4),
 * byte offset (8), then the table; the same bytes, padded, as a debug
 * offsets block of the version in the first 4 bytes of the table. */
#include <stdint.h>
#include <string.h>
#include <apr_general.h>
#include "helper/pylines.h"
#include "helper/pydebug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    static unsigned char block[1024];
    apr_pool_t *p;
    dp_py_layout l;
    int32_t first;
    uint64_t offset;
    uint32_t version;
    size_t n;

    if (size < 13)
        return 0;
    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    memcpy(&first, data + 1, 4);
    memcpy(&offset, data + 5, 8);
    dp_pylines_line((dp_pylines_format)(data[0] % 3), data + 13, size - 13, first, offset);
    dp_pylines_line((dp_pylines_format)(data[0] % 3), data + 13, size - 13, first, offset & 0xffff);
    if (size < 17)
        return 0;
    memcpy(&version, data + 13, 4);
    version = 0x030d0000u | (version & 0x0300ffffu);    /* mostly 3.13 to 3.16 */
    n = size - 13 < sizeof(block) ? size - 13 : sizeof(block);
    memset(block, 0, sizeof(block));
    memcpy(block, "xdebugpy", 8);
    memcpy(block + 8, &version, 4);
    memcpy(block + 16, data + 13, n > 16 ? n - 16 : 0);
    apr_pool_create(&p, root);
    dp_py_debug_layout(block, dp_py_debug_bytes(version), version, (uint64_t)offset, &l, p);
    apr_pool_destroy(p);
    return 0;
}
