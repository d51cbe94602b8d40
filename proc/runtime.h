/* Which language runtime a process runs, from the objects it maps: the one
 * answer the bundle's manifest, the stacks walker and the core writer's
 * memory choice share. */
#ifndef DP_RUNTIME_H
#define DP_RUNTIME_H

#include <apr_pools.h>

typedef enum dp_runtime_kind {
    DP_RUNTIME_NONE = 0,
    DP_RUNTIME_CPYTHON,
    DP_RUNTIME_PHP,
    DP_RUNTIME_JVM,
    DP_RUNTIME_NODE
} dp_runtime_kind;

/* The runtime a mapped object is the core of. By its path first: CPython
 * (a `python3.X` executable, `libpython3.X.so…`), PHP (`php8.2` and
 * `php-fpm8.2` executables, `libphp8.2.so`), a HotSpot JVM
 * (`…/lib/server/libjvm.so`), Node.js (a `node` or `nodejs` executable,
 * `libnode.so…`). An executable of another name (an interpreter linked into
 * a program) by the root symbol its .dynsym exports (`_PyRuntime`,
 * `executor_globals` or `zend_execute_ex`, `gHotSpotVMStructs`,
 * `node_module_register`), read from fd (-1: not checked).
 * *version (may be NULL) is the version the name carries ("3.11", "8.2"),
 * NULL when it carries none. */
dp_runtime_kind dp_runtime_of_object(const char *path, int is_exe, int fd, const char **version,
                                     apr_pool_t *p);

/* The runtime's name as the manifest and the stacks route give it. */
const char *dp_runtime_name(dp_runtime_kind kind);

#endif
