/* The zip bundle's entries: see dump/bundle.h. The target and the order of
 * the entries here; the pieces in bundle_files.c, bundle_manifest.c and
 * bundle_scripts.c, which share the small helpers of bundle_entry.c. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <apr_strings.h>

#include "proc/procfs.h"
#include "dump/bundle_internal.h"

static const char *strip_deleted(const char *path, int *deleted, apr_pool_t *p)
{
    *deleted = dp_ends_with(path, DELETED_SUFFIX);
    return *deleted ? apr_pstrndup(p, path, strlen(path) - strlen(DELETED_SUFFIX)) : path;
}

/* ------------------------------------------------------------ the target */

static int read_target(bundle *b)
{
    char link[PATH_MAX + 16], path[96];
    ssize_t n;

    snprintf(path, sizeof(path), "%s/maps", b->proc);
    if (dp_read_file(path, &b->maps_buf, &b->maps_len, b->p) != 0) {
        if (errno == ENOENT || errno == ESRCH)
            return dp_fail_not_running(b->err, (long)b->o->pid);
        return dp_fail(b->err, errno == EACCES || errno == EPERM ? 403 : 500,
                       "Cannot read the memory map of process %d: %s.",
                       (int)b->o->pid, strerror(errno));
    }
    b->maps = dp_parse_maps(b->maps_buf, b->maps_len, b->p);
    snprintf(path, sizeof(path), "%s/exe", b->proc);
    n = readlink(path, link, sizeof(link) - 1);
    if (n > 0) {
        link[n] = '\0';
        b->exe = strip_deleted(apr_pstrdup(b->p, link), &b->exe_deleted, b->p);
    }
    return 0;
}

/* ------------------------------------------------------------------ api */

static int write_core_entry(bundle *b, dp_bundle_core_fn write_core, void *arg)
{
    if (b->out->begin(b->out, "core", b->now, 0644) != 0)
        return dp_bundle_sink_failed(b, "the core");
    if (write_core(arg, &b->out->data, b->err) != 0)
        return b->err->status ? -1 : dp_bundle_sink_failed(b, "the core");
    return b->out->end(b->out) == 0 ? 0 : dp_bundle_sink_failed(b, "the core");
}

int dp_bundle_write(const dp_bundle_opts *o, dp_entry_sink *out,
                    dp_bundle_core_fn write_core, void *core_arg,
                    apr_pool_t *p, dp_error *err)
{
    bundle b;

    memset(&b, 0, sizeof(b));
    b.o = o;
    b.out = out;
    b.p = p;
    b.err = err;
    b.now = o->time ? o->time : (long long)time(NULL);
    b.buf = apr_palloc(p, COPY_BUF);
    snprintf(b.proc, sizeof(b.proc), "/proc/%d", (int)o->pid);
    err->status = 0;
    if (read_target(&b) != 0)
        return -1;
    dp_bundle_collect_modules(&b);
    dp_bundle_read_root_links(&b);
    if (write_core && write_core_entry(&b, write_core, core_arg) != 0)
        return -1;
    if (dp_bundle_write_modules(&b) != 0)
        return -1;
    dp_bundle_find_aliases(&b);
    if (dp_bundle_write_links(&b) != 0)
        return -1;
    if (dp_bundle_write_manifest(&b) != 0
        || dp_bundle_write_gdb_script(&b) != 0 || dp_bundle_write_lldb_script(&b) != 0
        || dp_bundle_write_jhsdb_script(&b) != 0)
        return -1;
    return 0;
}
