/* httpd glue for the privileged helper: the parent forks it (in the manner of
 * mod_cgid's daemon) and restarts it; workers talk to it over a unix socket
 * and relay what it streams down the output filter chain. */

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "unixd.h"
#include "ap_mpm.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "mod_diagproc.h"
#include "mod_diagproc_helper.h"
#include "mod_diagproc_zip.h"
#include "mod_diagproc_scoreboard.h"
#include "helper/proto.h"
#include "helper/daemon.h"
#include "proc/procfs.h"
#include "proc/format.h"
#include "worker/stacks.h"

APLOG_USE_MODULE(diagproc);

/* Set in the parent before the workers are forked; they inherit it. */
static const char *sockpath;
static pid_t helper_pid;
static apr_proc_t helper_proc;
static dp_helper_policy policy;
static server_rec *main_server;
static apr_pool_t *helper_pool;

/* ------------------------------------------------------------ the parent */

static void close_inherited_fds(int keep)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int dfd = d ? dirfd(d) : -1;

    while (d && (de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name);
        if (fd > 2 && fd != keep && fd != dfd)
            close(fd);
    }
    if (d)
        closedir(d);
}

static int listen_socket(apr_pool_t *p, server_rec *s)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (fd < 0 || strlen(sockpath) >= sizeof(sa.sun_path)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, APLOGNO(10810)
                     "diagproc: cannot create the helper socket %s", sockpath);
        return -1;
    }
    strcpy(sa.sun_path, sockpath);
    unlink(sockpath);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(sockpath, 0600) != 0
        || (geteuid() == 0 && chown(sockpath, ap_unixd_config.user_id,
                                    ap_unixd_config.group_id) != 0)
        || listen(fd, 64) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, APLOGNO(10811)
                     "diagproc: cannot listen on the helper socket %s", sockpath);
        close(fd);
        return -1;
    }
    (void)p;
    return fd;
}

static void helper_maintenance(int reason, void *data, apr_wait_t status);

static int start_helper(apr_pool_t *p, server_rec *s)
{
    int fd = listen_socket(p, s);
    pid_t pid;

    if (fd < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        close_inherited_fds(fd);
        dp_helper_main(fd, &policy);
        _exit(0);
    }
    close(fd);
    helper_pid = pid;
    helper_proc.pid = pid;
    dp_shared_set_helper(pid);
    apr_proc_other_child_register(&helper_proc, helper_maintenance, &helper_proc, NULL, p);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, APLOGNO(10812)
                 "diagproc: helper %d serving %s", (int)pid, sockpath);
    return 0;
}

static void stop_helper(void)
{
    int i;

    if (helper_pid <= 0)
        return;
    kill(helper_pid, SIGTERM);
    /* never hang the parent: SIGKILL after two seconds */
    for (i = 0; i < 200 && waitpid(helper_pid, NULL, WNOHANG) == 0; i++)
        usleep(10000);
    if (i == 200) {
        kill(helper_pid, SIGKILL);
        waitpid(helper_pid, NULL, 0);
    }
    helper_pid = 0;
}

/* APR calls this when the helper dies, and with UNREGISTER whenever its
 * record goes (our unregister below, or pconf's cleanup at restart/stop). */
static void helper_maintenance(int reason, void *data, apr_wait_t status)
{
    (void)status;
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        helper_pid = 0;                 /* so the UNREGISTER below stops nothing */
        apr_proc_other_child_unregister(data);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server, APLOGNO(10813)
                     "diagproc: helper died; starting a new one");
        start_helper(helper_pool, main_server);
        break;
    case APR_OC_REASON_RESTART:
    case APR_OC_REASON_UNREGISTER:
        stop_helper();
        break;
    }
}

static apr_status_t helper_cleanup(void *data)
{
    (void)data;
    /* the helper itself is stopped by APR's other-child cleanup (UNREGISTER) */
    stop_helper();
    if (sockpath)
        unlink(sockpath);
    return APR_SUCCESS;
}

static int dp_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    const dp_ceiling *c;
    dp_server_conf *sc = dp_server_config(s);

    (void)plog;
    (void)ptemp;
    /* the first pass only checks the configuration */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    main_server = s;
    helper_pool = pconf;
    sockpath = ap_runtime_dir_relative(pconf, apr_psprintf(pconf, "diagproc.%d.sock",
                                                           (int)getpid()));
    c = dp_global_ceiling();
    memset(&policy, 0, sizeof(policy));
    policy.peer_uid = geteuid() == 0 ? ap_unixd_config.user_id : geteuid();
    policy.peer_gid = geteuid() == 0 ? ap_unixd_config.group_id : getegid();
    policy.drop_to_peer = geteuid() == 0;
    policy.httpd_pid = getpid();
    policy.all_users = c->all_users;
    policy.uids = (const uid_t *)c->uids->elts;
    policy.nuids = c->uids->nelts;
    policy.max_dumps = sc->max_dumps > 0 ? sc->max_dumps : 2;
    policy.snapshot = sc->dump_snapshot != 0;
    policy.dump_nice = sc->dump_nice >= 0 ? sc->dump_nice : 10;
    policy.dump_ioprio = sc->dump_ioprio >= 0 ? sc->dump_ioprio
                                              : DP_IOPRIO_VALUE(DP_IOPRIO_CLASS_BE, 7);
    apr_pool_cleanup_register(pconf, NULL, helper_cleanup, apr_pool_cleanup_null);
    if (start_helper(pconf, s) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, APLOGNO(10814)
                     "diagproc: the helper did not start; kill, dump and private reads "
                     "will answer 503");
    return OK;
}

/* ------------------------------------------------------------ the worker */

typedef struct helper_conn {
    int fd;
} helper_conn;

static apr_status_t close_conn(void *data)
{
    helper_conn *hc = data;
    if (hc->fd >= 0)
        close(hc->fd);
    hc->fd = -1;
    return APR_SUCCESS;
}

/* Sends the request; on success hc->fd is open (closed with r->pool). */
static int helper_call(request_rec *r, dp_request *rq, helper_conn **out, dp_error *err)
{
    helper_conn *hc = apr_pcalloc(r->pool, sizeof(*hc));
    struct sockaddr_un sa;

    rq->magic = DP_PROTO_MAGIC;
    rq->version = DP_PROTO_VERSION;
    hc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    apr_pool_cleanup_register(r->pool, hc, close_conn, apr_pool_cleanup_null);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (!sockpath || hc->fd < 0 || strlen(sockpath) >= sizeof(sa.sun_path))
        return dp_fail(err, 503, "The diagproc helper is not available.");
    strcpy(sa.sun_path, sockpath);
    if (connect(hc->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || dp_write_full(hc->fd, rq, sizeof(*rq)) != 0)
        return dp_fail(err, 503, "The diagproc helper is not available (%s); httpd restarts "
                       "it, try again shortly.", strerror(errno));
    *out = hc;
    return 0;
}

/* Reads the answer's first frame: OK (size, name) or ERROR. */
static int read_answer(request_rec *r, helper_conn *hc, uint64_t *size, char **name,
                       dp_error *err)
{
    int type;
    uint32_t len;
    char *buf;

    if (dp_frame_read_header(hc->fd, &type, &len) != 0)
        return dp_fail(err, 500, "The diagproc helper closed the connection without an answer.");
    buf = apr_palloc(r->pool, len + 1);
    if (dp_read_full(hc->fd, buf, len) != 0)
        return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
    buf[len] = '\0';
    if (type == DP_FR_ERROR && len >= 4) {
        uint32_t status;
        memcpy(&status, buf, 4);
        return dp_fail(err, (int)status, "%s", buf + 4);
    }
    if (type != DP_FR_OK || len < 8)
        return dp_fail(err, 500, "The diagproc helper answered out of protocol.");
    memcpy(size, buf, 8);
    if (name)
        *name = buf + 8;
    return 0;
}

/* The DATA frames of an answer up to its END, in one pool buffer (bounded). */
static int read_rest(request_rec *r, helper_conn *hc, char **out, apr_size_t *outlen,
                     dp_error *err)
{
    size_t used = 0, cap = 4096;
    char *buf = apr_palloc(r->pool, cap);

    for (;;) {
        int type;
        uint32_t len;
        if (dp_frame_read_header(hc->fd, &type, &len) != 0)
            return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
        if (type == DP_FR_END)
            break;
        if (type != DP_FR_DATA || used + len > 16 * 1024 * 1024)
            return dp_fail(err, 500, "The diagproc helper answered out of protocol.");
        if (used + len + 1 > cap) {
            char *nb;
            cap = (used + len + 1) * 2;
            nb = apr_palloc(r->pool, cap);
            memcpy(nb, buf, used);
            buf = nb;
        }
        if (dp_read_full(hc->fd, buf + used, len) != 0)
            return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
        used += len;
    }
    buf[used] = '\0';
    *out = buf;
    *outlen = used;
    close_conn(hc);
    return 0;
}

int dp_helper_proc_read(request_rec *r, pid_t pid, int what, char **out, apr_size_t *outlen,
                        dp_error *err)
{
    dp_request rq;
    helper_conn *hc;
    uint64_t size;

    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_PROC_READ;
    rq.what = (uint32_t)what;
    rq.pid = pid;
    if (helper_call(r, &rq, &hc, err) != 0 || read_answer(r, hc, &size, NULL, err) != 0)
        return -1;
    return read_rest(r, hc, out, outlen, err);
}

/* The helper's stacks records into a view (worker/stacks.c). */
static int read_stacks(request_rec *r, helper_conn *hc, dp_stacks_view *v, dp_error *err)
{
    char *buf = apr_palloc(r->pool, DP_FRAME_MAX);

    for (;;) {
        int type;
        uint32_t len;
        if (dp_frame_read_header(hc->fd, &type, &len) != 0 || dp_read_full(hc->fd, buf, len) != 0)
            return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
        if (type == DP_FR_END && dp_stacks_view_complete(v))
            break;
        if (dp_stacks_view_add(v, type, buf, len) != 0)
            return dp_fail(err, 500, "The diagproc helper answered out of protocol.");
    }
    close_conn(hc);
    return 0;
}

int dp_handle_stacks(request_rec *r, pid_t pid, const char *href)
{
    const char *fmt = apr_table_get(dp_query(r), "format");
    dp_request rq;
    dp_error err = { 0 };
    helper_conn *hc;
    dp_stacks_view *v;
    uint64_t size;
    char *name;

    if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "format '%s' is unknown: use json (the "
                             "default) or text (eu-stack's layout).", fmt);
    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_STACKS;
    rq.pid = pid;
    rq.keep_running_tid = pid == getpid() ? (int32_t)syscall(SYS_gettid) : 0;
    v = dp_stacks_view_make(r->pool);
    if (helper_call(r, &rq, &hc, &err) != 0 || read_answer(r, hc, &size, &name, &err) != 0
        || read_stacks(r, hc, v, &err) != 0)
        return dp_send_dp_error(r, &err);
    if (fmt && !strcmp(fmt, "text")) {
        char *text = dp_stacks_view_text(v, pid, name);
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_set_content_length(r, (apr_off_t)strlen(text));
        ap_rputs(text, r);
        return OK;
    }
    return dp_send_json(r, HTTP_OK, dp_stacks_view_json(v, pid, href));
}

int dp_handle_kill(request_rec *r, pid_t pid)
{
    dp_request rq;
    dp_error err = { 0 };
    helper_conn *hc;
    dp_stat st;
    uint64_t size;

    if (dp_read_stat(pid, 0, &st, &err) != 0)
        return dp_send_dp_error(r, &err);
    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_KILL;
    rq.pid = pid;
    rq.start_time = st.starttime;
    if (pid == getpid()) {
        /* our own process: the helper accepts now and kills once this answer
         * is out; the connection closes with it */
        rq.delay_ms = 500;
        r->connection->keepalive = AP_CONN_CLOSE;
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, APLOGNO(10815)
                      "diagproc: this worker (%d) ends on request", (int)pid);
    }
    if (helper_call(r, &rq, &hc, &err) != 0 || read_answer(r, hc, &size, NULL, &err) != 0)
        return dp_send_dp_error(r, &err);
    r->status = HTTP_NO_CONTENT;
    return DONE;
}

/* A name safe inside a quoted Content-Disposition filename. */
static const char *safe_name(apr_pool_t *p, const char *name)
{
    char *s = apr_pstrdup(p, *name ? name : "process"), *c;
    for (c = s; *c; c++)
        if (!apr_isalnum(*c) && *c != '.' && *c != '_' && *c != '-')
            *c = '_';
    return s;
}

/* After the first byte the status is sent: a failure must show as a
 * truncated body (no last chunk / short Content-Length), never as success. */
static int abort_stream(request_rec *r, apr_bucket_brigade *bb)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_brigade_cleanup(bb);
    APR_BRIGADE_INSERT_TAIL(bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, bb);
    return DONE;
}

/* The helper's shared ring (DP_FR_RING), mapped read-only for this request. */
typedef struct ring_map {
    const char *base;
    size_t size;
    uint32_t slots, slot_size;
} ring_map;

static apr_status_t unmap_ring(void *data)
{
    ring_map *m = data;
    munmap((void *)m->base, m->size);
    return APR_SUCCESS;
}

static int map_ring(request_rec *r, ring_map *m, const char *payload, uint32_t len, int fd)
{
    struct stat sb;
    void *base;

    if (fd < 0 || len != 8 || m->base)
        return -1;
    memcpy(&m->slots, payload, 4);
    memcpy(&m->slot_size, payload + 4, 4);
    m->size = (size_t)m->slots * m->slot_size;
    if (m->slots < 1 || m->slots > 64 || m->slot_size < 4096 || m->slot_size > (4u << 20)
        || fstat(fd, &sb) != 0 || (size_t)sb.st_size < m->size
        || (base = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
        return -1;
    m->base = base;
    apr_pool_cleanup_register(r->pool, m, unmap_ring, apr_pool_cleanup_null);
    return 0;
}

int dp_handle_dump(request_rec *r, pid_t pid, unsigned long dump_type, int zip)
{
    dp_server_conf *sc = dp_server_config(r->server);
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb;
    dp_request rq;
    dp_error err = { 0 };
    helper_conn *hc;
    uint64_t size;
    char *name, *buf, stamp[32];
    ring_map *ring = apr_pcalloc(r->pool, sizeof(*ring));   /* unmapped with the pool */
    const char *instance = sc->instance_name ? sc->instance_name : "";
    time_t now = time(NULL);
    struct tm tm;

    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_DUMP;
    rq.what = zip ? 1 : 0;
    rq.pid = pid;
    rq.dump_type = dump_type;
    rq.max_bytes = sc->max_dump_bytes > 0 ? (uint64_t)sc->max_dump_bytes : 0;
    rq.timeout_s = sc->dump_timeout > 0 ? (uint32_t)sc->dump_timeout : 0;
    /* this thread carries the stream: it must never be left stopped */
    rq.keep_running_tid = pid == getpid() ? (int32_t)syscall(SYS_gettid) : 0;
    apr_cpystrn(rq.instance, instance, sizeof(rq.instance));
    if (helper_call(r, &rq, &hc, &err) != 0 || read_answer(r, hc, &size, &name, &err) != 0) {
        if (err.status == 503)
            apr_table_setn(r->headers_out, "Retry-After", "5");
        return dp_send_dp_error(r, &err);
    }
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_psprintf(r->pool, "attachment; filename=\"%s-%d-%s.%s\"",
                                safe_name(r->pool, name), (int)pid, stamp, zip ? "zip" : "core"));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    if (zip) {
        ap_set_content_type(r, "application/zip");
        ap_add_output_filter(DP_ZIP_FILTER, NULL, r, r->connection);
    }
    else {
        ap_set_content_type(r, "application/octet-stream");
        ap_set_content_length(r, (apr_off_t)size);
    }
    bb = apr_brigade_create(r->pool, ba);
    buf = apr_palloc(r->pool, DP_FRAME_MAX);       /* the worker's one buffer */
    for (;;) {
        int type, passed, bad;
        uint32_t len, slot[2];
        const char *data = buf;
        if (dp_frame_read_header_fd(hc->fd, &type, &len, &passed) != 0
            || dp_read_full(hc->fd, buf, len) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APLOGNO(10816)
                          "diagproc: the dump of %d ended early", (int)pid);
            return abort_stream(r, bb);
        }
        if (type == DP_FR_RING) {
            bad = map_ring(r, ring, buf, len, passed);
            if (passed >= 0)
                close(passed);
            if (bad)
                return abort_stream(r, bb);
            continue;
        }
        if (passed >= 0)
            close(passed);
        if (type == DP_FR_END)
            break;
        if (type == DP_FR_SLOT) {
            if (len != sizeof(slot) || !ring->base)
                return abort_stream(r, bb);
            memcpy(slot, buf, sizeof(slot));
            if (slot[0] >= ring->slots || slot[1] > ring->slot_size)
                return abort_stream(r, bb);
            data = ring->base + (size_t)slot[0] * ring->slot_size;
            len = slot[1];
            type = DP_FR_DATA;
        }
        if (type == DP_FR_ENTRY && len >= 12) {
            apr_int64_t mtime;
            uint32_t mode;
            memcpy(&mtime, buf, 8);
            memcpy(&mode, buf + 8, 4);
            APR_BRIGADE_INSERT_TAIL(bb, dp_zip_entry_bucket_create(
                apr_pstrmemdup(r->pool, buf + 12, len - 12), mtime, mode, ba));
            continue;
        }
        if (type != DP_FR_DATA)
            return abort_stream(r, bb);
        /* transient + FLUSH: written (or copied) before the buffer or slot is reused */
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(data, len, ba));
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
        if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS || r->connection->aborted) {
            close_conn(hc);     /* the helper stops at once and resumes the target */
            apr_brigade_cleanup(bb);
            return DONE;
        }
        apr_brigade_cleanup(bb);
        if (data != buf)
            send(hc->fd, "k", 1, MSG_NOSIGNAL);     /* the slot is free again */
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, bb);
    return DONE;
}

void dp_helper_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(dp_post_config, NULL, NULL, APR_HOOK_MIDDLE);
}
