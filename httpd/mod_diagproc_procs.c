/* The read-only routes of one process: its detail and its environment.
 * Values come from proc/; this file only chooses what to read and renders
 * Kudu's JSON (and the Linux additions). The list is in list.c. */

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

#include "httpd/mod_diagproc_phpreq.h"
#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_profile.h"
#include "common/actions.h"
#include "httpd/mod_diagproc_modules.h"
#include "httpd/mod_diagproc_threads.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_html.h"
#include "httpd/mod_diagproc_scoreboard.h"
#include "proc/procfs.h"
#include "proc/modules.h"
#include "common/format.h"
#include "proc/elfinfo.h"
#include "worker/jsonw.h"

/* ------------------------------------------------------------ small parts */

static json_t *jstr(apr_pool_t *p, const char *buf, size_t len)
{
    return json_string(dp_utf8(buf, len, p));
}


/* The rule for a value that cannot be read: Kudu's contract fields are .NET
 * value types its clients cannot set to null, so they carry what Kudu sends
 * then, -1; the psutil-named additions carry null. */
static json_t *jint_or_null(long long v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *jkudu_count(long long v)
{
    return json_integer(v < 0 ? -1 : v);
}


static char *proc_path(apr_pool_t *p, pid_t pid, const char *what)
{
    return apr_psprintf(p, "/proc/%d/%s", (int)pid, what);
}

/* Open file handles as "fd\0target\0" pairs. */
static int read_fds(request_rec *r, pid_t pid, char **buf, size_t *len)
{
    DIR *d = opendir(proc_path(r->pool, pid, "fd"));
    struct dirent *e;
    apr_size_t n = 0;
    dp_error err = { 0 };
    char *out = NULL;
    size_t used = 0, cap = 0;

    if (!d) {
        if (errno != EACCES && errno != EPERM)
            return -1;
        if (dp_helper_proc_read(r, pid, DP_READ_FDS, buf, &n, &err) != 0)
            return -1;
        *len = n;
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        char link[320], target[4096];
        ssize_t tn;
        size_t need;
        if (e->d_name[0] == '.')
            continue;
        snprintf(link, sizeof(link), "/proc/%d/fd/%s", (int)pid, e->d_name);
        tn = readlink(link, target, sizeof(target));
        if (tn < 0)
            continue;
        need = strlen(e->d_name) + (size_t)tn + 2;
        if (used + need > cap) {
            char *nb;
            cap = (used + need) * 2 + 256;
            nb = apr_palloc(r->pool, cap);
            if (used)
                memcpy(nb, out, used);
            out = nb;
        }
        memcpy(out + used, e->d_name, strlen(e->d_name) + 1);
        used += strlen(e->d_name) + 1;
        memcpy(out + used, target, (size_t)tn);
        used += (size_t)tn;
        out[used++] = '\0';
    }
    closedir(d);
    *buf = out ? out : "";
    *len = used;
    return 0;
}

/* ------------------------------------------------------------ environment */

static json_t *environment_json(request_rec *r, pid_t pid, const char *filter)
{
    char *buf;
    size_t len;
    apr_array_header_t *vars;
    json_t *o;
    int i;

    if (dp_read_private(r, pid, DP_READ_ENVIRON, "environ", &buf, &len) != 0)
        return json_null();
    vars = dp_split_nul(buf, len, r->pool);
    o = json_object();
    for (i = 0; i < vars->nelts; i++) {
        const char *kv = APR_ARRAY_IDX(vars, i, const char *);
        const char *eq = strchr(kv, '=');
        const char *key = eq ? apr_pstrmemdup(r->pool, kv, (apr_size_t)(eq - kv)) : kv;
        if (filter && strcasecmp(filter, "all") && !ap_strcasestr(key, filter))
            continue;
        json_object_set_new(o, dp_utf8(key, strlen(key), r->pool),
                            dp_json_cstr(r->pool, eq ? eq + 1 : ""));
    }
    return o;
}

int dp_route_environment(request_rec *r, const char **seg)
{
    dp_error err = { 0 };
    pid_t pid;
    dp_stat st;
    json_t *env;
    int rv;

    if ((rv = dp_require_allowed(r, DP_ACT_ENVIRONMENT)) != OK
        || (rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK)
        return rv;
    if (st.state == 'Z' || st.state == 'X')     /* as every other route of a zombie says */
        return dp_send_error(r, HTTP_CONFLICT, "Process %d is a zombie: it has no environment "
                             "left to read.", (int)pid);
    env = environment_json(r, pid, seg[2]);
    if (dp_helper_unavailable(r, &err))
        return dp_send_dp_error(r, &err);
    if (json_is_null(env) && dp_read_stat(pid, 0, &st, NULL) != 0) {
        dp_fail_not_running(&err, pid);     /* it exited meanwhile */
        return dp_send_dp_error(r, &err);
    }
    if (json_is_null(env))
        return dp_send_error(r, HTTP_FORBIDDEN, "The environment of process %d may not be "
                             "read (it is outside the helper's ceiling, or exited).", (int)pid);
    return dp_send_json(r, HTTP_OK, env);
}

/* ----------------------------------------------------------------- detail */

static json_t *children_json(request_rec *r, pid_t pid)
{
    json_t *arr = json_array();
    apr_array_header_t *kids = dp_list_children(pid, r->pool);
    int i;

    for (i = 0; kids && i < kids->nelts; i++)
        json_array_append_new(arr, json_string(dp_proc_href(r, APR_ARRAY_IDX(kids, i, pid_t))));
    return arr;
}

static json_t *cmdline_array(request_rec *r, const apr_array_header_t *argv)
{
    json_t *arr = json_array();
    int i;
    for (i = 0; argv && i < argv->nelts; i++)
        json_array_append_new(arr, dp_json_cstr(r->pool, APR_ARRAY_IDX(argv, i, const char *)));
    return arr;
}

static json_t *id_triplet(const long *v)
{
    if (v[0] < 0)
        return json_null();
    return json_pack("{s:I,s:I,s:I}", "real", (json_int_t)v[0], "effective", (json_int_t)v[1],
                     "saved", (json_int_t)v[2]);
}

/* cpu % over sample_ms: 100 = one core busy */
static int sample_cpu(request_rec *r, pid_t pid, dp_stat *st, double *pct, int *rv)
{
    const char *v = apr_table_get(dp_query(r), "sample_ms");
    char *end;
    long ms;
    dp_stat later;
    apr_time_t t0, t1;

    if (!v)
        return 1;
    ms = strtol(v, &end, 10);
    if (!*v || *end || ms < 1 || ms > 1000) {
        *rv = dp_send_error(r, HTTP_BAD_REQUEST, "sample_ms must be a whole number of "
                            "milliseconds from 1 to 1000, not '%s'.", v);
        return -1;
    }
    t0 = apr_time_now();
    dp_read_stat(pid, 0, st, NULL);
    apr_sleep(apr_time_from_msec(ms));
    t1 = apr_time_now();
    if (dp_read_stat(pid, 0, &later, NULL) != 0) {
        dp_error err;
        dp_fail_not_running(&err, pid);
        *rv = dp_send_dp_error(r, &err);
        return -1;
    }
    *pct = (double)((later.utime + later.stime) - (st->utime + st->stime)) / dp_clock_ticks()
           / ((double)(t1 - t0) / APR_USEC_PER_SEC) * 100.0;
    *st = later;
    return 0;
}

/* What the detail route shows of one process, read before any of it is
 * rendered. A part that cannot be read is marked: have_* 0, fds NULL
 * (num_fds -1), argv NULL, cgroup NULL, every status field -1. */
typedef struct proc_facts {
    pid_t pid;
    dp_stat st;
    dp_status ss;
    dp_statm sm;
    dp_io io;
    int have_statm, have_io;
    apr_array_header_t *argv, *mods;
    apr_array_header_t *fds;        /* "fd", "target" pairs */
    int num_fds;
    const char *exe, *cwd, *name;
    long owner;
    char *cgroup;
    size_t cgroup_len;
} proc_facts;

static void gather_detail(request_rec *r, proc_facts *f)
{
    pid_t pid = f->pid;
    char *buf, smbuf[256];
    size_t len;

    f->owner = dp_proc_owner(pid);
    if (dp_read_file(proc_path(r->pool, pid, "status"), &buf, &len, r->pool) != 0
        || dp_parse_status(buf, len, &f->ss) != 0)
        memset(&f->ss, 0xff, sizeof(f->ss));        /* every field -1: unknown */
    f->have_statm = dp_read_small(proc_path(r->pool, pid, "statm"), smbuf, sizeof(smbuf)) > 0
                    && dp_parse_statm(smbuf, &f->sm) == 0;
    f->have_io = dp_read_file(proc_path(r->pool, pid, "io"), &buf, &len, r->pool) == 0
                 && dp_parse_io(buf, len, &f->io) == 0;
    if (dp_read_file(proc_path(r->pool, pid, "cmdline"), &buf, &len, r->pool) == 0)
        f->argv = dp_split_nul(buf, len, r->pool);
    dp_readlink_private(r, pid, DP_READ_EXE, "exe", &f->exe);
    dp_readlink_private(r, pid, DP_READ_CWD, "cwd", &f->cwd);
    f->name = dp_process_name(f->st.comm, f->argv, r->pool);
    f->mods = dp_api_modules(r, pid);
    f->num_fds = -1;
    if (read_fds(r, pid, &buf, &len) == 0) {
        f->fds = dp_split_nul(buf, len, r->pool);
        f->num_fds = f->fds->nelts / 2;
    }
    if (dp_read_file(proc_path(r->pool, pid, "cgroup"), &f->cgroup, &f->cgroup_len,
                     r->pool) == 0) {
        while (f->cgroup_len && f->cgroup[f->cgroup_len - 1] == '\n')
            f->cgroup_len--;
    }
    else
        f->cgroup = NULL;
}

static json_t *fds_json(request_rec *r, const apr_array_header_t *pairs)
{
    json_t *fds = json_array();
    int i;

    for (i = 1; i < pairs->nelts; i += 2)
        json_array_append_new(fds, dp_json_cstr(r->pool, APR_ARRAY_IDX(pairs, i, const char *)));
    return fds;
}

/* Kudu's ProcessInfo fields, in Kudu's order. */
static void render_kudu_fields(request_rec *r, const proc_facts *f, json_t *o)
{
    const dp_stat *st = &f->st;
    const dp_status *ss = &f->ss;
    long hz = dp_clock_ticks();
    pid_t pid = f->pid;
    long ppid_owner = st->ppid > 0 ? dp_proc_owner(st->ppid) : -1;

    json_object_set_new(o, "id", json_integer(pid));
    json_object_set_new(o, "name", dp_json_cstr(r->pool, f->name));
    json_object_set_new(o, "machineName", dp_json_cstr(r->pool, dp_instance_name(r->server)));
    json_object_set_new(o, "href", json_string(dp_proc_href(r, pid)));
    json_object_set_new(o, "minidump", json_string(apr_pstrcat(r->pool, dp_proc_href(r, pid),
                                                               "/dump", NULL)));
    json_object_set_new(o, "parent", json_string(dp_proc_href(r, ppid_owner >= 0
                                                        && dp_in_scope(r, ppid_owner)
                                                        ? st->ppid : -1)));
    json_object_set_new(o, "children", children_json(r, pid));
    json_object_set_new(o, "threads", dp_threads_json(r, pid));
    json_object_set_new(o, "open_file_handles", f->fds ? fds_json(r, f->fds) : json_null());
    json_object_set_new(o, "modules", dp_modules_json(r, pid, f->mods));
    json_object_set_new(o, "file_name", dp_json_cstr(r->pool, f->exe));
    json_object_set_new(o, "command_line", f->argv
                        ? dp_json_cstr(r->pool, dp_join_cmdline(f->argv, r->pool)) : json_null());
    json_object_set_new(o, "user_name", dp_json_cstr(r->pool, dp_user_name(f->owner, r->pool)));
    json_object_set_new(o, "handle_count", jkudu_count(f->num_fds));
    json_object_set_new(o, "module_count", jkudu_count(f->mods ? f->mods->nelts : -1));
    json_object_set_new(o, "thread_count", json_integer(st->num_threads));
    json_object_set_new(o, "start_time", json_string(dp_start_time_iso(st->starttime, r->pool)));
    json_object_set_new(o, "total_cpu_time",
                        json_string(dp_timespan(st->utime + st->stime, hz, r->pool)));
    json_object_set_new(o, "user_cpu_time", json_string(dp_timespan(st->utime, hz, r->pool)));
    json_object_set_new(o, "privileged_cpu_time",
                        json_string(dp_timespan(st->stime, hz, r->pool)));
    json_object_set_new(o, "working_set", jkudu_count(ss->vm_rss));
    json_object_set_new(o, "peak_working_set", jkudu_count(ss->vm_hwm));
    json_object_set_new(o, "private_memory", jkudu_count(ss->rss_anon < 0 ? -1
                        : ss->rss_anon + (ss->vm_swap > 0 ? ss->vm_swap : 0)));
    json_object_set_new(o, "virtual_memory", jkudu_count(ss->vm_size));
    json_object_set_new(o, "peak_virtual_memory", jkudu_count(ss->vm_peak));
    json_object_set_new(o, "paged_memory", jkudu_count(ss->vm_swap));
    json_object_set_new(o, "paged_system_memory", jkudu_count(ss->vm_swap));
    json_object_set_new(o, "non_paged_system_memory", json_integer(0));
    json_object_set_new(o, "peak_paged_memory", json_integer(0));
    json_object_set_new(o, "time_stamp", json_string(dp_now_iso(r->pool)));
    if (dp_profile_running(r, pid))     /* Kudu omits it when false */
        json_object_set_new(o, "is_profile_running", json_true());
    if (dp_dir_config(r)->allow & DP_ACT_ENVIRONMENT)
        json_object_set_new(o, "environment_variables", environment_json(r, pid, NULL));
}

/* php-fpm's master and the children of its pools (their titles say which
 * pool), null for every other process: a child is a target like a mod_php
 * worker, and the pool is what its operator knows it by. */
static void php_fpm_fields(request_rec *r, const proc_facts *f, json_t *o)
{
    const char *role, *pool;

    dp_php_fpm_title(f->st.comm, f->argv, &role, &pool);
    json_object_set_new(o, "php_fpm_role", role ? json_string(role) : json_null());
    json_object_set_new(o, "php_fpm_pool", pool ? dp_json_cstr(r->pool, pool) : json_null());
}

/* The Linux additions, psutil's names and units. */
static void render_linux_fields(request_rec *r, const proc_facts *f, json_t *o)
{
    const dp_stat *st = &f->st;
    const dp_status *ss = &f->ss;
    long hz = dp_clock_ticks(), page = dp_page_size();
    const dp_statm *sm = &f->sm;
    const dp_io *io = &f->io;

    json_object_set_new(o, "ppid", json_integer(st->ppid));
    json_object_set_new(o, "state", json_string(dp_state_word(st->state)));
    json_object_set_new(o, "uids", id_triplet(ss->uid));
    json_object_set_new(o, "gids", id_triplet(ss->gid));
    json_object_set_new(o, "nice", json_integer(st->nice));
    json_object_set_new(o, "num_fds", jint_or_null(f->num_fds));
    json_object_set_new(o, "cpu_times", json_pack("{s:f,s:f,s:f,s:f}",
                        "user", (double)st->utime / hz, "system", (double)st->stime / hz,
                        "children_user", (double)st->cutime / hz,
                        "children_system", (double)st->cstime / hz));
    json_object_set_new(o, "create_time", json_real((double)dp_boot_time()
                                                    + (double)st->starttime / hz));
    json_object_set_new(o, "memory_info", f->have_statm
                        ? json_pack("{s:I,s:I,s:I,s:I,s:I,s:o}",
                                    "rss", (json_int_t)(sm->resident * page),
                                    "vms", (json_int_t)(sm->size * page),
                                    "shared", (json_int_t)(sm->shared * page),
                                    "text", (json_int_t)(sm->text * page),
                                    "data", (json_int_t)(sm->data * page),
                                    "swap", jint_or_null(ss->vm_swap))
                        : json_null());
    json_object_set_new(o, "io_counters", f->have_io ? json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
                        "read_count", (json_int_t)io->read_count,
                        "write_count", (json_int_t)io->write_count,
                        "read_bytes", (json_int_t)io->read_bytes,
                        "write_bytes", (json_int_t)io->write_bytes,
                        "read_chars", (json_int_t)io->read_chars,
                        "write_chars", (json_int_t)io->write_chars) : json_null());
    json_object_set_new(o, "num_ctx_switches", ss->vol_ctxt < 0 ? json_null()
                        : json_pack("{s:I,s:I}", "voluntary", (json_int_t)ss->vol_ctxt,
                                    "involuntary", (json_int_t)ss->nonvol_ctxt));
    json_object_set_new(o, "cgroup", f->cgroup ? jstr(r->pool, f->cgroup, f->cgroup_len)
                                               : json_null());
    json_object_set_new(o, "cwd", dp_json_cstr(r->pool, f->cwd));
    json_object_set_new(o, "cmdline", f->argv ? cmdline_array(r, f->argv) : json_null());
    php_fpm_fields(r, f, o);
}

int dp_route_detail(request_rec *r, const char **seg)
{
    proc_facts f;
    dp_error err = { 0 };
    double cpu_pct = 0;
    json_t *o;
    int rv, sampled;

    if (dp_wants_html(r))
        return dp_html_page(r);     /* the page fetches this JSON itself */
    memset(&f, 0, sizeof(f));
    if ((rv = dp_resolve_target(r, seg[0], &f.pid, &f.st)) != OK)
        return rv;
    if ((sampled = sample_cpu(r, f.pid, &f.st, &cpu_pct, &rv)) < 0)
        return rv;
    gather_detail(r, &f);
    if (dp_helper_unavailable(r, &err))
        return dp_send_dp_error(r, &err);
    o = json_object();
    render_kudu_fields(r, &f, o);
    render_linux_fields(r, &f, o);
    /* after the check above: this read is optional, its failure leaves null */
    json_object_set_new(o, "php_request", dp_php_request_json(r, f.pid, f.mods));
    dp_json_role(r, o, f.pid);
    if (sampled == 0)
        json_object_set_new(o, "cpu_percent", json_real(cpu_pct));
    return dp_send_json(r, HTTP_OK, o);
}
