/* The helper's answer to one request, in the child forked for it: the
 * target check, then reading /proc, kill, dump or stacks, as frames on the
 * worker's socket. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <apr_pools.h>

#include "dump/bundle.h"
#include "dump/core.h"
#include "dump/encode.h"
#include "helper/daemon.h"
#include "helper/kill.h"
#include "helper/policy.h"
#include "common/proto.h"
#include "helper/log.h"
#include "helper/ring.h"
#include "helper/stacks.h"
#include "helper/phpreq.h"
#include "helper/where.h"
#include "helper/profile.h"
#include "proc/elfinfo.h"
#include "proc/procfs.h"
#include "proc/protect.h"
#include "common/format.h"
#include "helper/requests.h"
#include "helper/spool.h"
#include "common/actions.h"

pid_t dp_daemon_pid;     /* the helper daemon itself */

/* This child serves one request: who sent it, for the refusal log line. */
static const struct ucred *serving_peer;

/* The target may be acted on at all: what dp_policy_check_target checks,
 * and it is not protected. A refusal by the configuration is logged. */
static int check_target(const dp_helper_policy *pol, const dp_request *rq, int acting,
                        dp_stat *st, dp_error *err)
{
    pid_t pid = rq->pid;

    /* protected targets first, so that the refusal names what the target is;
       checked in a request's child, whose parent is the daemon */
    if (acting && (dp_read_stat(pid, 0, st, err) != 0
                   || dp_check_protected(pid, st, pol->httpd_pid, dp_daemon_pid, err) != 0))
        return -1;
    if (acting && pid == getpid())
        return dp_fail(err, 403, "Process %d is the diagproc helper; it is protected.",
                       (int)pid);
    if (dp_policy_check_target(pol, rq, st, err) != 0)
        return dp_refuse_request(serving_peer, rq, err);
    return 0;
}

/* ---------------------------------------------------------------- answers */

void dp_daemon_send_error(int fd, const dp_error *err)
{
    dp_frame_send_error(fd, (uint32_t)(err->status ? err->status : 500), err->msg);
}

/* Bytes as DATA frames on the socket. */
static int frames_write(dp_sink *s, const void *buf, size_t len)
{
    int fd = *(int *)s->ctx;
    const char *p = buf;
    while (len) {
        size_t k = len < DP_FRAME_MAX ? len : DP_FRAME_MAX;
        if (dp_frame_write(fd, DP_FR_DATA, p, k, NULL, 0) != 0)
            return -1;
        p += k;
        len -= k;
    }
    return 0;
}

/* A dump's way to the worker: the socket, and the ring when there is one. */
typedef struct dump_out {
    int fd;
    dp_ring *ring;
} dump_out;

static int entries_begin(dp_entry_sink *s, const char *name, long long mtime, unsigned mode)
{
    dump_out *o = s->ctx;
    /* the bytes of the entry before must reach the worker before this frame */
    if (o->ring && dp_ring_flush(o->ring) != 0)
        return -1;
    return dp_frame_send_entry(o->fd, mtime, mode, name);
}

static int entries_end(dp_entry_sink *s)
{
    (void)s;    /* the next ENTRY or END closes an entry */
    return 0;
}

/* ---------------------------------------------------------------- requests */

/* Build ids of what is mapped: each file's offset-0 mapping opened through
 * map_files (the one way to a deleted or replaced file). */
static void send_build_ids(int fd, pid_t pid, const char *maps_path, apr_pool_t *p)
{
    dp_sink out = { frames_write, &fd, NULL, NULL };
    dp_error err = { 0 };
    apr_array_header_t *maps;
    char *buf;
    size_t len;
    int i;

    if (dp_read_file(maps_path, &buf, &len, p) != 0) {
        dp_fail(&err, errno == ENOENT || errno == ESRCH ? 404 : 403, "Cannot read the memory "
                "map of process %d: %s.", (int)pid, strerror(errno));
        return dp_daemon_send_error(fd, &err);
    }
    maps = dp_parse_maps(buf, len, p);
    dp_frame_send_ok(fd, UINT64_MAX, "");
    for (i = 0; i < maps->nelts; i++) {
        const dp_map *m = &APR_ARRAY_IDX(maps, i, dp_map);
        unsigned char id[64];
        char range[64], mf[128];
        int mfd, n;

        if (m->path[0] != '/' || m->inode == 0 || m->offset != 0)
            continue;
        snprintf(range, sizeof(range), "%llx-%llx", m->start, m->end);
        snprintf(mf, sizeof(mf), "/proc/%d/map_files/%s", (int)pid, range);
        if ((mfd = open(mf, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        n = dp_elf_build_id(mfd, id, sizeof(id));
        close(mfd);
        if (n <= 0)
            continue;
        {
            const char *hex = dp_hex(id, (size_t)n, p);
            if (dp_sink_write(&out, range, strlen(range) + 1) != 0
                || dp_sink_write(&out, hex, strlen(hex) + 1) != 0)
                break;
        }
    }
    dp_frame_send_end(fd);
}

/* SG(request_info) of a PHP process, read while it runs (helper/phpreq.c):
 * "method\0uri\0query\0script\0". */
static void send_php_request(int fd, pid_t pid, apr_pool_t *p)
{
    dp_sink out = { frames_write, &fd, NULL, NULL };
    dp_error err = { 0 };
    dp_phpreq rq;
    const char *f[4];
    size_t size = 0;
    int i;

    if (dp_phpreq_read(pid, &rq, p, &err) != 0)
        return dp_daemon_send_error(fd, &err);
    f[0] = rq.method, f[1] = rq.uri, f[2] = rq.query, f[3] = rq.script;
    for (i = 0; i < 4; i++)
        size += strlen(f[i]) + 1;
    dp_frame_send_ok(fd, size, "");
    for (i = 0; i < 4; i++)
        if (dp_sink_write(&out, f[i], strlen(f[i]) + 1) != 0)
            return;
    dp_frame_send_end(fd);
}

static void do_proc_read(int fd, const dp_helper_policy *pol, const dp_request *rq,
                         apr_pool_t *p)
{
    static const char *files[] = { NULL, "fd", "exe", "environ", "cwd", "maps", "maps",
                                   "task", "maps" };
    static const char *what[] = { NULL, "the open files", "the executable", "the environment",
                                  "the working directory", "the memory map",
                                  "the memory map", "the connections its threads wait on",
                                  "the request its PHP runtime serves" };
    dp_error err = { 0 };
    dp_stat st;
    char path[64];
    dp_sink out = { frames_write, &fd, NULL, NULL };

    if (check_target(pol, rq, 0, &st, &err) != 0)
        return dp_daemon_send_error(fd, &err);
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)rq->pid, files[rq->what]);
    if (rq->what == DP_READ_FDS) {
        DIR *d = opendir(path);
        struct dirent *de;
        char link[320], target[4096];

        if (!d) {
            dp_fail(&err, errno == ENOENT ? 404 : 403, "Cannot read the open files of "
                    "process %d: %s.", (int)rq->pid, strerror(errno));
            return dp_daemon_send_error(fd, &err);
        }
        dp_frame_send_ok(fd, UINT64_MAX, "");
        while ((de = readdir(d)) != NULL) {
            ssize_t n;
            if (de->d_name[0] == '.')
                continue;
            snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
            n = readlink(link, target, sizeof(target));
            if (n < 0)
                continue;
            if (dp_sink_write(&out, de->d_name, strlen(de->d_name) + 1) != 0
                || dp_sink_write(&out, target, (size_t)n) != 0
                || dp_sink_write(&out, "", 1) != 0)
                break;
        }
        closedir(d);
        dp_frame_send_end(fd);
        return;
    }
    if (rq->what == DP_READ_EXE || rq->what == DP_READ_CWD) {
        char target[4096];
        ssize_t n = readlink(path, target, sizeof(target));
        if (n < 0) {
            dp_fail(&err, 403, "Cannot read %s of process %d: %s.", what[rq->what],
                    (int)rq->pid, strerror(errno));
            return dp_daemon_send_error(fd, &err);
        }
        dp_frame_send_ok(fd, (uint64_t)n, "");
        dp_sink_write(&out, target, (size_t)n);
        dp_frame_send_end(fd);
        return;
    }
    if (rq->what == DP_READ_BUILD_IDS)
        return send_build_ids(fd, rq->pid, path, p);
    if (rq->what == DP_READ_PHP_REQUEST)
        return send_php_request(fd, rq->pid, p);
    if (rq->what == DP_READ_WHERE) {
        /* the asking worker's own wait on this helper is no backend */
        pid_t skip[2] = { getpid(), dp_daemon_pid };
        char *buf;
        size_t len;
        if (dp_where_collect(rq->pid, skip, 2, &buf, &len, p, &err) != 0)
            return dp_daemon_send_error(fd, &err);
        dp_frame_send_ok(fd, len, "");
        dp_sink_write(&out, buf, len);
        dp_frame_send_end(fd);
        return;
    }
    {
        char *buf;
        size_t len;
        if (dp_read_file(path, &buf, &len, p) != 0) {
            dp_fail(&err, errno == ENOENT || errno == ESRCH ? 404 : 403, "Cannot read %s "
                    "of process %d: %s.", what[rq->what], (int)rq->pid, strerror(errno));
            return dp_daemon_send_error(fd, &err);
        }
        dp_frame_send_ok(fd, len, "");
        dp_sink_write(&out, buf, len);
        dp_frame_send_end(fd);
    }
}

static void do_kill(int fd, const dp_helper_policy *pol, const dp_request *rq)
{
    dp_error err = { 0 };
    dp_stat st;

    if (check_target(pol, rq, 1, &st, &err) != 0)
        return dp_daemon_send_error(fd, &err);
    if (rq->delay_ms) {
        /* the requester is the target: it answers its client, then we kill */
        dp_frame_send_ok(fd, 0, "");
        dp_frame_send_end(fd);
        usleep(rq->delay_ms * 1000);
        dp_kill_tree(rq->pid, rq->start_time, &err);
        return;
    }
    if (dp_kill_tree(rq->pid, rq->start_time, &err) != 0)
        return dp_daemon_send_error(fd, &err);
    dp_frame_send_ok(fd, 0, "");
    dp_frame_send_end(fd);
}

/* Only the requesting worker's own thread (the one carrying the stream) may
 * be kept running; any other tid the request names is ignored. */
static pid_t kept_thread(const dp_request *rq, pid_t peer_pid)
{
    char path[64];

    if (!rq->keep_running_tid || rq->pid != peer_pid)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)peer_pid, (int)rq->keep_running_tid);
    return access(path, F_OK) == 0 ? rq->keep_running_tid : 0;
}

typedef struct core_arg {
    dp_core *core;
} core_arg;

static int write_core_entry(void *arg, dp_sink *data, dp_error *err)
{
    return dp_core_write(((core_arg *)arg)->core, data, err);
}

static int flush_ring(void *ring)
{
    return dp_ring_flush(ring);
}

static long long ring_blocked(void *ring)
{
    return ((dp_ring *)ring)->blocked_ns;
}

/* A raw core's encoder (DP_DUMP_RAW_GZIP, _ZSTD) into out, made before the
 * answer starts so that its failure is still an error answer. */
static int open_encoder(const dp_request *rq, dp_sink *out, dump_out *way, dp_encoder **enc,
                        dp_sink *in, dp_error *err)
{
    dp_encode_opts eo = { 0 };

    *enc = NULL;
    if (rq->what != DP_DUMP_RAW_GZIP && rq->what != DP_DUMP_RAW_ZSTD)
        return 0;
    eo.encoding = rq->what == DP_DUMP_RAW_ZSTD ? DP_ENC_ZSTD : DP_ENC_GZIP;
    eo.threads = -1;
    eo.flush = flush_ring;
    eo.flush_arg = way->ring;
    eo.blocked_ns = ring_blocked;
    eo.blocked_arg = way->ring;
    return dp_encoder_open(enc, &eo, out, in, err);
}

/* What the compression did, for whoever tunes it: the levels the pace
 * chose, and the share passed through. */
static void log_encoded(const dp_request *rq, const dp_encoder *enc)
{
    dp_encode_stats st;

    dp_encoder_stats(enc, &st);
    dp_log(DP_LOG_INFO, DPLOGNO(10068) "dump of pid %d: %llu bytes as %llu %s bytes, levels "
           "%d to %d, %llu bytes passed through", (int)rq->pid, st.in, st.out,
           rq->what == DP_DUMP_RAW_ZSTD ? "zstd" : "gzip", st.level_lo, st.level_hi, st.stored);
}

static int write_dump(const dp_request *rq, dp_core *core, dp_sink *out, dp_encoder *enc,
                      dp_sink *encoded, dump_out *way, apr_pool_t *p, dp_error *err)
{
    if (rq->what == DP_DUMP_ZIP) {
        dp_entry_sink entries = { entries_begin, *out, entries_end, way };
        dp_bundle_opts bo = { rq->pid, (unsigned long)rq->dump_type, rq->instance, 0,
                              dp_lang_gdb_script(p) };
        core_arg ca = { core };
        return dp_bundle_write(&bo, &entries, write_core_entry, &ca, p, err);
    }
    if (!enc)
        return dp_core_write(core, out, err);
    if (dp_core_write(core, encoded, err) != 0 || dp_encoder_finish(enc) != 0)
        return -1;
    log_encoded(rq, enc);
    return 0;
}

static void do_dump(int fd, const dp_helper_policy *pol, const dp_request *rq,
                    pid_t peer_pid, apr_pool_t *p)
{
    dp_error err = { 0 };
    dp_stat st;
    dp_core_opts o;
    dp_core *core;
    dp_ring rg = { 0 };         /* the encoder reads its blocked time from the start */
    dp_sink out = { frames_write, &fd, NULL, NULL }, encoded;
    dump_out way = { fd, &rg };
    dp_encoder *enc = NULL;
    int rc;

    if (check_target(pol, rq, 1, &st, &err) != 0)
        return dp_daemon_send_error(fd, &err);
    memset(&o, 0, sizeof(o));
    o.pid = rq->pid;
    o.dump_type = (unsigned long)rq->dump_type;
    o.max_bytes = rq->max_bytes;
    o.keep_running_tid = kept_thread(rq, peer_pid);
    o.snapshot = pol->snapshot;
    /* a PHP or CPython process: the pages the language walk reads, so that
     * the bundle's php-bt / py-bt work on the core as on the live process */
    o.add_memory = dp_stacks_add_lang_pages;
    o.add_memory_arg = &o.pid;
    o.hide_environment = !(dp_policy_actions(pol, rq->allow_section, rq->scope_section)
                           & DP_ACT_ENVIRONMENT);
    if (rq->timeout_s)
        alarm(rq->timeout_s);       /* SIGALRM ends this child; SEIZE resumes the target */
    if (open_encoder(rq, &out, &way, &enc, &encoded, &err) != 0) {
        dp_encoder_free(enc);
        return dp_daemon_send_error(fd, &err);
    }
    if (dp_core_open(&core, &o, p, &err) != 0) {
        dp_encoder_free(enc);
        return dp_daemon_send_error(fd, &err);
    }
    rc = dp_frame_send_ok(fd, rq->what == DP_DUMP_ZIP ? UINT64_MAX : dp_core_size(core),
                          st.comm);
    if (rc == 0 && dp_ring_open(&rg, fd) == 0)
        dp_ring_sink(&rg, &out);
    else
        way.ring = NULL;            /* no shared memory: DATA frames on the socket */
    if (rc == 0)
        rc = write_dump(rq, core, &out, enc, &encoded, &way, p, &err);
    dp_core_close(core);
    dp_encoder_free(enc);
    /* no END after a failure: the worker makes the truncation visible */
    if (rc == 0 && (!way.ring || dp_ring_flush(way.ring) == 0))
        dp_frame_send_end(fd);
}

/* Backtraces: a minimal core into memory, read back by eu-stack (elfutils),
 * whose text goes to the worker as it is. */
static int send_rec(int fd, int type, const dp_rec *r)
{
    return dp_frame_write(fd, type, r->buf, r->len, NULL, 0);
}

/* Collected while the target is stopped, sent once it runs again. */
static void do_stacks(int fd, const dp_helper_policy *pol, const dp_request *rq,
                      pid_t peer_pid, apr_pool_t *p)
{
    dp_error err = { 0 };
    dp_stat st;
    dp_stacks *s;
    dp_rec r;
    int i, j;

    if (check_target(pol, rq, 1, &st, &err) != 0
        || dp_stacks_collect(rq->pid, kept_thread(rq, peer_pid), &s, p, &err) != 0)
        return dp_daemon_send_error(fd, &err);
    if (dp_frame_send_ok(fd, UINT64_MAX, st.comm) != 0)
        return;
    for (i = 0; i < s->threads->nelts; i++) {
        const dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        r.len = 0;
        dp_rec_put_u32(&r, (uint32_t)th->tid);
        dp_rec_put_u32(&r, th->flags);
        dp_rec_put_cstr(&r, th->why);
        if (send_rec(fd, DP_FR_STACK_THREAD, &r) != 0)
            return;
        for (j = 0; j < th->native->nelts; j++) {
            const dp_native_frame *f = &APR_ARRAY_IDX(th->native, j, dp_native_frame);
            r.len = 0;
            dp_rec_put_u64(&r, f->pc);
            dp_rec_put_u64(&r, f->offset);
            dp_rec_put_u32(&r, (uint32_t)f->line);
            dp_rec_put_cstr(&r, f->function);
            dp_rec_put_cstr(&r, f->module);
            dp_rec_put_cstr(&r, f->file);
            if (send_rec(fd, DP_FR_STACK_NATIVE, &r) != 0)
                return;
        }
        for (j = 0; j < th->lang->nelts; j++) {
            const dp_lang_frame *f = &APR_ARRAY_IDX(th->lang, j, dp_lang_frame);
            r.len = 0;
            dp_rec_put_u32(&r, f->native_index);
            dp_rec_put_u32(&r, (uint32_t)f->line);
            dp_rec_put_cstr(&r, f->function);
            dp_rec_put_cstr(&r, f->class_name);
            dp_rec_put_cstr(&r, f->file);
            if (send_rec(fd, DP_FR_STACK_LANG, &r) != 0)
                return;
        }
    }
    r.len = 0;
    dp_rec_put_u64(&r, s->paused_us);
    dp_rec_put_u64(&r, s->elapsed_us);
    dp_rec_put_u32(&r, s->flags);
    dp_rec_put_cstr(&r, s->runtime);
    dp_rec_put_cstr(&r, s->version);
    dp_rec_put_cstr(&r, s->unsupported);
    if (send_rec(fd, DP_FR_STACK_SUMMARY, &r) == 0)
        dp_frame_send_end(fd);
}

/* Profiles: the target's checks as for stacks; a stop of a target that has
 * exited since still fetches the samples its session kept. */
static void do_profile(int fd, const dp_helper_policy *pol, const dp_request *rq,
                       apr_pool_t *p)
{
    dp_error err = { 0 };
    dp_stat st;

    memset(&st, 0, sizeof(st));
    if (rq->what != DP_PROF_STOP && rq->what != DP_PROF_RUNNING
        && (rq->dump_type > (uint64_t)pol->prof_hz
            || rq->timeout_s > (unsigned)(rq->what == DP_PROF_START ? pol->prof_seconds
                                          : pol->prof_seconds < DP_PROF_RUN_MAX_SECONDS
                                          ? pol->prof_seconds : DP_PROF_RUN_MAX_SECONDS))) {
        dp_fail(&err, 400, "A profile at %llu Hz for %u s is beyond DiagProcProfileLimits "
                "(hz=%d seconds=%d).", (unsigned long long)rq->dump_type, rq->timeout_s,
                pol->prof_hz, pol->prof_seconds);
        return dp_daemon_send_error(fd, &err);
    }
    if (rq->what == DP_PROF_SITE) {
        /* each process of the site is checked as it is found */
        if (!(dp_policy_actions(pol, rq->allow_section, rq->scope_section) & DP_ACT_PROFILE)) {
            dp_fail(&err, 403, "Profiling is not enabled for this location (DiagProcAllow).");
            dp_refuse_request(serving_peer, rq, &err);
            return dp_daemon_send_error(fd, &err);
        }
        return dp_profile_site(fd, pol, rq, p);
    }
    if (rq->what == DP_PROF_RUNNING)
        /* whether a profile samples pid, and nothing of the process: the
         * detail of any process the worker shows asks it, refusing none */
        return dp_profile_serve(fd, pol, rq, "", p);
    if (check_target(pol, rq, 1, &st, &err) != 0) {
        long owner;
        if (!(rq->what == DP_PROF_STOP && err.status == 404
              && (dp_policy_actions(pol, rq->allow_section, rq->scope_section) & DP_ACT_PROFILE)))
            return dp_daemon_send_error(fd, &err);
        /* exited: its session knows whose it was, and that must be in scope */
        owner = dp_profile_owner(rq->pid);
        if (owner >= 0 && !dp_policy_in_scope(pol, rq->scope_section, owner)) {
            dp_fail(&err, 403, "Process %d (uid %ld) was outside this location's scope "
                    "(DiagProcUsers).", (int)rq->pid, owner);
            dp_refuse_request(serving_peer, rq, &err);
            return dp_daemon_send_error(fd, &err);
        }
    }
    dp_profile_serve(fd, pol, rq, st.comm, p);
}

void dp_daemon_serve_one(int fd, const dp_helper_policy *pol, const struct ucred *peer,
                      const dp_request *rq)
{
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    serving_peer = peer;
    signal(SIGPIPE, SIG_IGN);
    /* the daemon's SIGCHLD handler would cut our waits for traced threads short */
    signal(SIGCHLD, SIG_DFL);
    switch (rq->op) {
    case DP_OP_PROC_READ:
        do_proc_read(fd, pol, rq, p);
        break;
    case DP_OP_KILL:
        do_kill(fd, pol, rq);
        break;
    case DP_OP_DUMP:
        do_dump(fd, pol, rq, peer->pid, p);
        break;
    case DP_OP_STACKS:
        do_stacks(fd, pol, rq, peer->pid, p);
        break;
    case DP_OP_CAPTURES:
        dp_spool_serve(fd, pol, rq, p);
        break;
    case DP_OP_PROFILE:
        do_profile(fd, pol, rq, p);
        break;
    }
    apr_pool_destroy(p);
}
