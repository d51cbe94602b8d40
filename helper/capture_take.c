/* One capture, in a child of the watcher at low priority: the artifacts
 * (stacks.json and requests.json, or core) and meta.json into its folder. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_hash.h>

#include "helper/watch.h"
#include "helper/stacks.h"
#include "helper/where.h"
#include "helper/phpreq.h"
#include "dump/core.h"
#include "dump/bundle.h"
#include "helper/capture_zip.h"
#include "helper/profile.h"
#include "proc/procfs.h"
#include "common/format.h"
#include "common/proto.h"
#include "common/clock.h"

static void jstr(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void jkey(FILE *f, const char *k, int first)
{
    if (!first)
        fputc(',', f);
    jstr(f, k);
    fputc(':', f);
}

/* The where line of a thread that waits on a local process: its pid and
 * the line's transport, peer and the process's name. */
typedef struct backend {
    pid_t pid;
    char transport[16], peer[256], comm[64];
} backend;

static int find_backend(const char *where, pid_t tid, backend *b)
{
    const char *line = where;

    memset(b, 0, sizeof(*b));
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        char buf[1024], *f[8], *cur = buf;
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        int k = 0;
        if (n < sizeof(buf)) {
            memcpy(buf, line, n);
            buf[n] = '\0';
            while (cur && k < 7)        /* fields may be empty (a unix socket's local name) */
                f[k++] = strsep(&cur, "\t");
            if (k >= 5 && atoi(f[0]) == tid && atoi(f[4]) > 0) {
                b->pid = atoi(f[4]);
                apr_cpystrn(b->transport, f[1], sizeof(b->transport));
                apr_cpystrn(b->peer, f[3], sizeof(b->peer));
                if (k >= 7)
                    apr_cpystrn(b->comm, f[6], sizeof(b->comm));
                return 1;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static const char *where_of(pid_t pid, apr_pool_t *p)
{
    dp_error err = { 0 };
    char *out = NULL;
    size_t len = 0;

    if (pid <= 0 || dp_where_collect(pid, NULL, 0, &out, &len, p, &err) != 0)
        return "";
    return out;
}

static void write_request(FILE *f, const dp_inflight *q, long long now_us, const backend *b)
{
    fputc('{', f);
    jkey(f, "pid", 1);
    fprintf(f, "%d", (int)q->pid);
    jkey(f, "tid", 0);
    fprintf(f, "%d", (int)q->tid);
    jkey(f, "seconds", 0);
    if (q->start_us > 0)
        fprintf(f, "%.3f", (double)(now_us - q->start_us) / 1e6);
    else
        fputs("null", f);
    jkey(f, "request", 0);
    jstr(f, q->request);
    jkey(f, "uri", 0);
    jstr(f, q->uri[0] ? q->uri : NULL);
    jkey(f, "vhost", 0);
    jstr(f, q->vhost[0] ? q->vhost : NULL);
    jkey(f, "unique_id", 0);
    jstr(f, q->unique_id[0] ? q->unique_id : NULL);
    jkey(f, "traceparent", 0);
    jstr(f, q->traceparent[0] ? q->traceparent : NULL);
    jkey(f, "backend", 0);
    if (b && b->pid > 0) {
        fputc('{', f);
        jkey(f, "pid", 1);
        fprintf(f, "%d", (int)b->pid);
        jkey(f, "name", 0);
        jstr(f, b->comm);
        jkey(f, "transport", 0);
        jstr(f, b->transport);
        jkey(f, "peer", 0);
        jstr(f, b->peer);
        fputc('}', f);
    } else
        fputs("null", f);
    fputc('}', f);
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* requests.json: every in-flight request, each with the local process its
 * thread waits on (the request attribution). */
static int write_requests(const dp_capture_job *job, const char *dir, apr_pool_t *p)
{
    FILE *f = fopen(apr_pstrcat(p, dir, "/requests.json", NULL), "w");
    apr_hash_t *wheres = apr_hash_make(p);
    long long t = now_us();
    int i;

    if (!f)
        return -1;
    fputc('[', f);
    for (i = 0; i < job->ninflight; i++) {
        const dp_inflight *q = &job->inflight[i];
        const char *w = apr_hash_get(wheres, &q->pid, sizeof(pid_t));
        backend b;
        if (!w) {
            w = where_of(q->pid, p);
            apr_hash_set(wheres, apr_pmemdup(p, &q->pid, sizeof(pid_t)), sizeof(pid_t), w);
        }
        find_backend(w, q->tid, &b);
        if (i)
            fputc(',', f);
        write_request(f, q, t, &b);
    }
    fputs("]\n", f);
    return fclose(f);
}

static void write_frames(FILE *f, const dp_stack_thread *th)
{
    int j;

    jkey(f, "native", 0);
    fputc('[', f);
    for (j = 0; j < th->native->nelts; j++) {
        const dp_native_frame *n = &APR_ARRAY_IDX(th->native, j, dp_native_frame);
        fprintf(f, "%s{\"pc\":\"0x%llx\"", j ? "," : "", (unsigned long long)n->pc);
        jkey(f, "function", 0);
        jstr(f, n->function);
        jkey(f, "module", 0);
        jstr(f, n->module);
        jkey(f, "file", 0);
        jstr(f, n->file);
        fprintf(f, ",\"line\":%d}", n->line);
    }
    fputc(']', f);
    jkey(f, "lang", 0);
    fputc('[', f);
    for (j = 0; j < th->lang->nelts; j++) {
        const dp_lang_frame *l = &APR_ARRAY_IDX(th->lang, j, dp_lang_frame);
        fputs(j ? ",{" : "{", f);
        jkey(f, "function", 1);
        jstr(f, l->function);
        jkey(f, "class", 0);
        jstr(f, l->class_name);
        jkey(f, "file", 0);
        jstr(f, l->file);
        fprintf(f, ",\"line\":%d}", l->line);
    }
    fputc(']', f);
}

/* stacks.json: the target's threads with their native and language frames,
 * and the request its PHP runtime serves, when it runs PHP. */
static int write_stacks(pid_t pid, const char *dir, apr_pool_t *p)
{
    dp_error err = { 0 };
    dp_stacks *s = NULL;
    dp_phpreq pr;
    FILE *f;
    int i, rc = dp_stacks_collect(pid, 0, &s, p, &err);

    f = fopen(apr_pstrcat(p, dir, "/stacks.json", NULL), "w");
    if (!f)
        return -1;
    fprintf(f, "{\"pid\":%d", (int)pid);
    if (rc != 0) {
        jkey(f, "error", 0);
        jstr(f, err.msg);
        fputs("}\n", f);
        return fclose(f);
    }
    jkey(f, "runtime", 0);
    jstr(f, s->runtime);
    jkey(f, "version", 0);
    jstr(f, s->version);
    fprintf(f, ",\"paused_us\":%llu", (unsigned long long)s->paused_us);
    jkey(f, "php_request", 0);
    if (dp_phpreq_read(pid, &pr, p, &err) == 0 && (pr.uri[0] || pr.script[0])) {
        fputs("{\"method\":", f);
        jstr(f, pr.method);
        jkey(f, "uri", 0);
        jstr(f, pr.uri);
        jkey(f, "query", 0);
        jstr(f, pr.query);
        jkey(f, "script", 0);
        jstr(f, pr.script);
        fputc('}', f);
    } else
        fputs("null", f);
    jkey(f, "threads", 0);
    fputc('[', f);
    for (i = 0; i < s->threads->nelts; i++) {
        const dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        fprintf(f, "%s{\"tid\":%d", i ? "," : "", (int)th->tid);
        write_frames(f, th);
        fputc('}', f);
    }
    fputs("]}\n", f);
    return fclose(f);
}

static int file_write(dp_sink *s, const void *buf, size_t len)
{
    return dp_write_full(*(int *)s->ctx, buf, len);
}

static int core_entry(void *arg, dp_sink *data, dp_error *err)
{
    return dp_core_write((dp_core *)arg, data, err);
}

/* bundle.zip: the bundle GET P/{id}/dump?format=zip gives, stored. */
static int write_bundle(const dp_capture_job *job, dp_core *core, const char *dir,
                        apr_pool_t *p)
{
    FILE *f = fopen(apr_pstrcat(p, dir, "/bundle.zip", NULL), "wx");
    dp_entry_sink entries;
    dp_capture_zip *z;
    dp_error err = { 0 };
    dp_bundle_opts bo;
    int rc;

    if (!f)
        return -1;
    if ((z = dp_capture_zip_open(f, &entries)) == NULL) {
        fclose(f);
        return -1;
    }
    memset(&bo, 0, sizeof(bo));
    bo.pid = job->pid;
    bo.dump_type = job->rule->dump_type;
    bo.instance_name = job->instance;
    bo.time = job->time_s;
    bo.gdb_commands = dp_lang_gdb_script(p);
    rc = dp_bundle_write(&bo, &entries, core_entry, core, p, &err);
    if (dp_capture_zip_finish(z) != 0)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* core: the target's core, as GET P/{id}/dump writes it (or its bundle). */
static int write_core(const dp_capture_job *job, const char *dir, apr_pool_t *p)
{
    dp_error err = { 0 };
    dp_core_opts o;
    dp_core *core;
    int fd, rc;
    dp_sink out = { file_write, &fd, NULL, NULL };

    memset(&o, 0, sizeof(o));
    o.pid = job->pid;
    o.dump_type = job->rule->dump_type;
    o.snapshot = job->snapshot;
    o.add_memory = dp_stacks_add_lang_pages;
    o.add_memory_arg = &o.pid;
    o.hide_environment = 1;
    if (dp_core_open(&core, &o, p, &err) != 0)
        return -1;
    if (job->rule->zip) {
        rc = write_bundle(job, core, dir, p);
        dp_core_close(core);
        return rc;
    }
    fd = open(apr_pstrcat(p, dir, "/core", NULL), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        dp_core_close(core);
        return -1;
    }
    rc = dp_core_write(core, &out, &err);
    dp_core_close(core);
    close(fd);
    return rc;
}

/* The profiler answers on a socket (its frames go with sendmsg): a pair,
 * whose other end a child copies into the file. */
static int send_to_file(dp_prof_store *store, int fd, const char *name)
{
    int sv[2], status = 1, rc;
    pid_t copier;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    copier = fork();
    if (copier == 0) {
        char buf[65536];
        ssize_t n;
        close(sv[0]);
        while ((n = read(sv[1], buf, sizeof(buf))) > 0)
            if (dp_write_full(fd, buf, (size_t)n) != 0)
                _exit(1);
        _exit(n == 0 ? 0 : 1);
    }
    close(sv[1]);
    rc = copier > 0 ? dp_prof_send(store, sv[0], name, 0) : -1;
    close(sv[0]);
    if (copier > 0 && (waitpid(copier, &status, 0) != copier || status != 0))
        rc = -1;
    return rc;
}

/* profile.dpprof: a profile of SECONDS at the default rate, as the helper's
 * DP_OP_PROFILE answers it (frames); the download turns it into folded
 * stacks, speedscope or pprof. */
static int write_profile(const dp_capture_job *job, const char *dir, apr_pool_t *p)
{
    dp_error err = { 0 };
    dp_prof_store *store = dp_prof_store_make(DP_PROF_HZ_DEFAULT, DP_PROF_DEF_BYTES, NULL, 0, p);
    dp_profiler *pr;
    dp_stat st;
    uint64_t end;
    int fd, rc;

    if (dp_read_stat(job->pid, 0, &st, &err) != 0
        || dp_profiler_open(&pr, store, job->pid, 0, p, &err) != 0)
        return -1;
    dp_prof_began(store);
    end = dp_mono_us() + (uint64_t)job->rule->profile_s * 1000000u;
    for (;;) {
        if (dp_profiler_tick(pr) != 0)
            break;
        if (dp_mono_us() >= end)
            break;
        usleep((useconds_t)dp_prof_delay_us(store));
    }
    dp_prof_ended(store);
    fd = open(apr_pstrcat(p, dir, "/profile.dpprof", NULL),
              O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    rc = fd >= 0 ? send_to_file(store, fd, st.comm) : -1;
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    dp_profiler_close(pr);
    return rc;
}

static void write_meta(const dp_capture_job *job, const backend *b, const char *dir,
                       apr_pool_t *p)
{
    FILE *f = fopen(apr_pstrcat(p, dir, "/meta.json", NULL), "w");
    char when[40];

    if (!f)
        return;
    dp_iso_time_buf(when, sizeof(when), job->time_s, 0);
    fputc('{', f);
    jkey(f, "id", 1);
    jstr(f, job->id);
    jkey(f, "time", 0);
    jstr(f, when);
    jkey(f, "rule", 0);
    jstr(f, job->rule->name);
    jkey(f, "trigger", 0);
    jstr(f, job->rule->when);
    jkey(f, "detail", 0);
    jstr(f, job->detail);
    jkey(f, "action", 0);
    jstr(f, job->rule->action == DP_CAP_DO_DUMP ? "dump"
            : job->rule->action == DP_CAP_DO_PROFILE ? "profile" : "stacks");
    jkey(f, "pid", 0);
    if (job->pid > 0)
        fprintf(f, "%d", (int)job->pid);
    else
        fputs("null", f);
    jkey(f, "request", 0);
    if (job->request)
        write_request(f, job->request, job->time_s * 1000000, b);
    else
        fputs("null", f);
    fputs("}\n", f);
    fclose(f);
}

static int uid_in_ceiling(const dp_watch_config *cfg, long uid)
{
    int i;
    for (i = 0; i < cfg->nuids; i++)
        if ((long)cfg->uids[i] == uid)
            return 1;
    return cfg->all_users && uid != 0;
}

const char *dp_capture_target_refused(const dp_watch_config *cfg, const dp_capture_rule *rule,
                                      pid_t pid, int must_be_worker)
{
    dp_stat st;
    dp_error err;
    char nnp[16];
    long uid;
    int i;

    if (pid <= 1 || pid == cfg->httpd_pid || pid == getpid() || pid == getppid())
        return "a protected process";
    if (dp_read_stat(pid, 0, &st, &err) != 0 || st.state == 'Z')
        return "not running";
    if ((st.flags & DP_PF_KTHREAD) || (uid = dp_proc_owner(pid)) < 0)
        return "a kernel thread";
    /* the helper and its children, the watcher: no_new_privs, which no worker sets */
    if (st.ppid == cfg->httpd_pid && dp_read_status_field(pid, 0, "NoNewPrivs", nnp, sizeof(nnp)) == 0
        && atoi(nnp) == 1)
        return "the diagproc helper";
    if (must_be_worker)
        return st.ppid == cfg->httpd_pid && (long)uid == (long)cfg->workers_uid ? NULL
               : "not one of httpd's workers";
    if (rule->nusers) {
        for (i = 0; i < rule->nusers; i++)
            if ((!strcmp(rule->users[i], "*") && uid != 0) || (long)rule->uids[i] == uid)
                return NULL;
        return "outside the rule's users=";
    }
    return uid_in_ceiling(cfg, uid) ? NULL : "outside the helper's ceiling (DiagProcHelperUsers)";
}

int dp_capture_take(const dp_capture_job *job, const char *dir)
{
    apr_pool_t *p;
    dp_capture_job j = *job;
    backend b;
    int rc = 0;

    apr_pool_create(&p, NULL);
    /* a request proxied to a local process (php-fpm, a backend): that one */
    memset(&b, 0, sizeof(b));
    if (j.request && j.pid == j.request->pid
        && find_backend(where_of(j.request->pid, p), j.request->tid, &b)) {
        /* the backend is captured only within the helper's ceiling */
        if (dp_capture_target_refused(j.cfg, j.rule, b.pid, 0) == NULL)
            j.pid = b.pid;
    }
    if (j.rule->action == DP_CAP_DO_DUMP && j.pid > 0)
        rc = write_core(&j, dir, p);
    else if (j.rule->action == DP_CAP_DO_PROFILE && j.pid > 0) {
        rc = write_profile(&j, dir, p);
        if (write_requests(&j, dir, p) != 0)
            rc = -1;
    }
    else {
        if (j.pid > 0)
            rc = write_stacks(j.pid, dir, p);
        if (write_requests(&j, dir, p) != 0)
            rc = -1;
    }
    write_meta(&j, &b, dir, p);
    apr_pool_destroy(p);
    return rc;
}
