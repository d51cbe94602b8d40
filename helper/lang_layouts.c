/* The layout entries the build found (helper/layouts/gen/, listed in
 * build/gen/layout_registry.c): finding the one of a running interpreter,
 * naming the known ones, and checking the root symbol against what the walk
 * reads from it. */
#include <string.h>
#include <apr_strings.h>
#include "helper/lang.h"

/* The bytes of _PyRuntime the walk reads: interpreters.head, a pointer
 * (helper/pystack.c and helper/gdb/diagproc-lang.py read nothing else of
 * it). Raise this with any new field the walks read there. */
static uint64_t py_runtime_reads(const dp_py_layout *l)
{
    return (uint64_t)l->rt_interp_head + 8;
}

/* The bytes of executor_globals the walk reads: current_execute_data, a
 * pointer (helper/phpstack.c and the gdb commands read nothing else). */
static uint64_t php_globals_reads(const dp_php_layout *l)
{
    return (uint64_t)l->eg_current_execute_data + 8;
}

const dp_py_layout *dp_py_layout_find(const char *minor)
{
    size_t i;

    for (i = 0; minor && i < dp_py_nlayouts; i++)
        if (!strcmp(dp_py_layouts[i]->version, minor))
            return dp_py_layouts[i];
    return NULL;
}

const dp_php_layout *dp_php_layout_find(const char *api)
{
    size_t i;

    for (i = 0; api && i < dp_php_nlayouts; i++)
        if (!strcmp(dp_php_layouts[i]->api, api))
            return dp_php_layouts[i];
    return NULL;
}

const char *dp_py_layouts_known(apr_pool_t *p)
{
    const char *out = NULL;
    size_t i;

    for (i = 0; i < dp_py_nlayouts; i++)
        out = out ? apr_pstrcat(p, out, ", ", dp_py_layouts[i]->version, NULL)
                  : dp_py_layouts[i]->version;
    return out ? out : "none";
}

const char *dp_php_layouts_known(apr_pool_t *p)
{
    const char *out = NULL;
    size_t i;

    for (i = 0; i < dp_php_nlayouts; i++) {
        const char *one = apr_psprintf(p, "%s (PHP %s)", dp_php_layouts[i]->api,
                                       dp_php_layouts[i]->version);
        out = out ? apr_pstrcat(p, out, ", ", one, NULL) : one;
    }
    return out ? out : "none";
}

const char *dp_py_runtime_refused(const dp_py_layout *l, uint64_t size, const char *module,
                                  apr_pool_t *p)
{
    uint64_t need = py_runtime_reads(l);

    if (size >= need)
        return NULL;
    return apr_psprintf(p, "_PyRuntime in %s has %" APR_UINT64_T_FMT " bytes, fewer than the %"
                        APR_UINT64_T_FMT " that the walk reads with CPython %s's layout (%u "
                        "in the headers it was made from)", module, size, need, l->version,
                        l->runtime_size);
}

const char *dp_php_globals_refused(const dp_php_layout *l, uint64_t size, const char *module,
                                   apr_pool_t *p)
{
    uint64_t need = php_globals_reads(l);

    if (size >= need)
        return NULL;
    if (!l->eg_size)    /* an entry made by hand, not from headers: no size known */
        return apr_psprintf(p, "executor_globals in %s has %" APR_UINT64_T_FMT " bytes, fewer "
                            "than the %" APR_UINT64_T_FMT " that the walk reads with PHP %s's "
                            "layout", module, size, need, l->version);
    return apr_psprintf(p, "executor_globals in %s has %" APR_UINT64_T_FMT " bytes, fewer than "
                        "the %" APR_UINT64_T_FMT " that the walk reads with PHP %s's layout (%u "
                        "in the headers it was made from)", module, size, need, l->version,
                        l->eg_size);
}
