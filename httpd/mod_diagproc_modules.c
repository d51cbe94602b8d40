/* GET P/{id}/modules and P/{id}/modules/{base_address}: the mapped ELF
 * objects of a process, from the collector the bundle uses too. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_modules.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_html.h"
#include "httpd/mod_diagproc_scoreboard.h"
#include "proc/procfs.h"
#include "proc/modules.h"
#include "common/format.h"
#include "proc/elfinfo.h"
#include "worker/jsonw.h"

APLOG_USE_MODULE(diagproc);

/* ---------------------------------------------------------------- modules */

/* A module of the API: a mapped ELF object, from the one collector that the
 * bundle uses too (proc/modules.c). */
typedef dp_module module_info;

static int open_module(request_rec *r, pid_t pid, const module_info *m)
{
    const char *source, *why;
    (void)r;
    return dp_open_module(pid, m, 0, &source, &why);
}

/* The build id of what is mapped when the worker cannot open it (another
 * user's map_files, a deleted or replaced file): the helper reads it as the
 * bundle does, so that both name the same file's id. NULL when unknown. */
static const char *mapped_build_id(request_rec *r, pid_t pid, const module_info *m)
{
    dp_error err = { 0 };
    apr_array_header_t *pairs;
    apr_size_t len = 0;
    char *buf, range[64];
    int i;

    snprintf(range, sizeof(range), "%llx-%llx", m->map_start, m->map_end);
    if (!m->deleted && access(m->path, R_OK) == 0)
        return NULL;    /* the file itself was readable: it has no build id */
    if (dp_helper_proc_read(r, pid, DP_READ_BUILD_IDS, &buf, &len, &err) != 0)
        return NULL;
    pairs = dp_split_nul(buf, len, r->pool);
    for (i = 0; i + 1 < pairs->nelts; i += 2)
        if (!strcmp(APR_ARRAY_IDX(pairs, i, const char *), range))
            return APR_ARRAY_IDX(pairs, i + 1, const char *);
    return NULL;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Kudu's order: by file name, then (the same name twice) by address. */
static int by_file_name(const void *a, const void *b)
{
    const module_info *x = a, *y = b;
    int c = strcasecmp(base_name(x->path), base_name(y->path));
    if (c)
        return c;
    c = strcmp(base_name(x->path), base_name(y->path));
    return c ? c : x->start < y->start ? -1 : x->start > y->start;
}

/* Each mapped ELF object once, at the lowest address it is mapped at. */
apr_array_header_t *dp_api_modules(request_rec *r, pid_t pid)
{
    apr_array_header_t *mods = apr_array_make(r->pool, 32, sizeof(module_info)), *files;
    char *buf;
    size_t len;
    int i;

    /* non-dumpable processes (other workers, setuid programs, the helper)
       keep their maps from the worker: the helper reads them */
    if (dp_read_private(r, pid, DP_READ_MAPS, "maps", &buf, &len) != 0)
        return NULL;
    files = dp_collect_modules(dp_parse_maps(buf, len, r->pool), r->pool);
    for (i = 0; i < files->nelts; i++) {
        const module_info *m = &APR_ARRAY_IDX(files, i, module_info);
        int fd, elf;

        if (m->first_offset != 0)
            continue;       /* an object's first mapping is its ELF header */
        /* unreadable (deleted, another user's root): trust an executable mapping */
        fd = open_module(r, pid, m);
        elf = fd >= 0 ? dp_is_elf_fd(fd) : m->end > m->map_end;
        if (fd >= 0)
            close(fd);
        if (elf)
            *(module_info *)apr_array_push(mods) = *m;
    }
    qsort(mods->elts, (size_t)mods->nelts, sizeof(module_info), by_file_name);
    return mods;
}

static json_t *module_summary(request_rec *r, pid_t pid, const module_info *m)
{
    json_t *o = json_object();
    const char *base = apr_psprintf(r->pool, "%" APR_UINT64_T_HEX_FMT, (apr_uint64_t)m->start);

    json_object_set_new(o, "base_address", json_string(base));
    json_object_set_new(o, "file_name", dp_json_cstr(r->pool, base_name(m->path)));
    json_object_set_new(o, "href", json_string(apr_psprintf(r->pool, "%s/modules/%s",
                                                            dp_proc_href(r, pid), base)));
    json_object_set_new(o, "file_version", dp_json_cstr(r->pool, dp_soname_version(m->path)));
    return o;
}

json_t *dp_modules_json(request_rec *r, pid_t pid, apr_array_header_t *mods)
{
    json_t *arr = json_array();
    int i;
    for (i = 0; mods && i < mods->nelts; i++)
        json_array_append_new(arr, module_summary(r, pid, &APR_ARRAY_IDX(mods, i, module_info)));
    return arr;
}

int dp_route_modules(request_rec *r, const char **seg)
{
    apr_array_header_t *mods;
    dp_error err = { 0 };
    pid_t pid;
    dp_stat st;
    int rv;

    if ((rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK)
        return rv;
    mods = dp_api_modules(r, pid);
    if (dp_helper_unavailable(r, &err))
        return dp_send_dp_error(r, &err);
    return dp_send_json(r, HTTP_OK, dp_modules_json(r, pid, mods));
}

int dp_route_module(request_rec *r, const char **seg)
{
    apr_array_header_t *mods;
    dp_error err = { 0 };
    unsigned long long base;
    char *end;
    pid_t pid;
    dp_stat st;
    int rv, i;

    if ((rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK)
        return rv;
    errno = 0;
    base = strtoull(seg[2], &end, 16);
    if (!*seg[2] || *end || errno || strlen(seg[2]) > 16 || !apr_isxdigit(seg[2][0]))
        return dp_send_error(r, HTTP_BAD_REQUEST, "'%s' is not a module base address: use "
                             "the hex base_address from the modules list (no 0x).", seg[2]);
    mods = dp_api_modules(r, pid);
    if (dp_helper_unavailable(r, &err))
        return dp_send_dp_error(r, &err);
    for (i = 0; mods && i < mods->nelts; i++) {
        const module_info *m = &APR_ARRAY_IDX(mods, i, module_info);
        unsigned char id[64];
        int fd, n;
        json_t *o;

        if (m->start != base)
            continue;
        o = module_summary(r, pid, m);
        json_object_set_new(o, "file_path", dp_json_cstr(r->pool, m->path));
        json_object_set_new(o, "module_memory_size", json_integer((json_int_t)(m->end - m->start)));
        fd = open_module(r, pid, m);
        n = fd >= 0 ? dp_elf_build_id(fd, id, sizeof(id)) : -1;
        if (fd >= 0)
            close(fd);
        json_object_set_new(o, "build_id", n > 0 ? json_string(dp_hex(id, (size_t)n, r->pool))
                                                 : dp_json_cstr(r->pool, mapped_build_id(r, pid, m)));
        json_object_set_new(o, "deleted", json_boolean(m->deleted));
        if (dp_helper_unavailable(r, &err)) {      /* the build id was the helper's to read */
            json_decref(o);
            return dp_send_dp_error(r, &err);
        }
        return dp_send_json(r, HTTP_OK, o);
    }
    return dp_send_error(r, HTTP_NOT_FOUND, "No module is mapped at base address %s in "
                         "process %d.", seg[2], (int)pid);
}
