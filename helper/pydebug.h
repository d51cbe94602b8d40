/* CPython 3.13 and later describe their own layout: _PyRuntime starts with
 * _Py_DebugOffsets (a cookie, the version, then one section per structure,
 * each opening with the structure's size). helper/pydebug.c turns those
 * bytes, read from the target, into the walk's layout entry. */
#ifndef DP_PYDEBUG_H
#define DP_PYDEBUG_H

#include <stddef.h>
#include <stdint.h>
#include "helper/lang.h"

/* 1 for a PY_VERSION_HEX that publishes _Py_DebugOffsets (3.13 and later) */
int dp_py_debug_published(uint32_t py_version);
/* How many bytes of _PyRuntime's start the parse reads for that version */
size_t dp_py_debug_bytes(uint32_t py_version);
/* The layout from the first dp_py_debug_bytes() bytes of _PyRuntime (a
 * _PyRuntime symbol of symbol_size bytes); NULL when every number the walk
 * uses validated, else why not (the walk then gives native frames). */
const char *dp_py_debug_layout(const unsigned char *buf, size_t n, uint32_t py_version,
                               uint64_t symbol_size, dp_py_layout *out,
                               struct apr_pool_t *p);

/* The shapes, as Python dicts (PY_DEBUG_SHAPES[minor] = dict(slot names...)),
 * for the bundle's gdb commands (helper/lang_gdb.c) */
const char *dp_py_debug_shapes_py(struct apr_pool_t *p);

#endif
