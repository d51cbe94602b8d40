/* The helper daemon's loop and its per-request children. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <apr_pools.h>

#include "helper/daemon.h"
#include "helper/policy.h"
#include "helper/ring.h"
#include "helper/proto.h"
#include "proc/procfs.h"
#include "proc/protect.h"
#include "helper/kill.h"
#include "proc/elfinfo.h"
#include "worker/format.h"
#include "dump/core.h"
#include "dump/bundle.h"
#include "dump/snapshot.h"
#include "helper/stacks.h"

/* ------------------------------------------------------------ privileges */

/* CAP_CHECKPOINT_RESTORE: opening /proc/PID/map_files/, the only way to a
 * mapped library that was deleted (replaced by a package upgrade). */
static const int kept_caps[] = { CAP_SYS_PTRACE, CAP_KILL, CAP_DAC_READ_SEARCH,
                                 CAP_CHECKPOINT_RESTORE };
#define NKEPT (int)(sizeof(kept_caps) / sizeof(kept_caps[0]))

/* Root-started: become the workers' user, keeping only the
 * capabilities the requests need; then no way back up (no_new_privs) and
 * nobody may ptrace or core-dump the helper itself. */
static int drop_privileges(const dp_helper_policy *pol)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    int cap, i;

    if (pol->drop_to_peer && geteuid() == 0) {
        for (cap = 0; cap <= 63; cap++) {
            int keep = 0;
            for (i = 0; i < NKEPT; i++)
                keep |= cap == kept_caps[i];
            if (!keep && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
                return -1;
        }
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0
            || setgid(pol->peer_gid) != 0 || setuid(pol->peer_uid) != 0)
            return -1;
        memset(data, 0, sizeof(data));
        for (i = 0; i < NKEPT; i++) {
            data[kept_caps[i] / 32].effective |= 1u << (kept_caps[i] % 32);
            data[kept_caps[i] / 32].permitted |= 1u << (kept_caps[i] % 32);
        }
        if (syscall(SYS_capset, &hdr, data) != 0)
            return -1;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return 0;
}

/* ---------------------------------------------------------------- policy */

int dp_policy_allows_uid(const dp_helper_policy *pol, long uid)
{
    int i;
    for (i = 0; i < pol->nuids; i++)
        if ((long)pol->uids[i] == uid)
            return 1;
    return pol->all_users && uid != 0;
}

static pid_t daemon_pid;        /* the helper daemon itself */

/* The target may be acted on at all: what dp_policy_check_target checks,
 * and it is not protected. */
static int check_target(const dp_helper_policy *pol, const dp_request *rq, int acting,
                        dp_stat *st, dp_error *err)
{
    pid_t pid = rq->pid;

    /* protected targets first, so that the refusal names what the target is;
       checked in a request's child, whose parent is the daemon */
    if (acting && (dp_read_stat(pid, 0, st, err) != 0
                   || dp_check_protected(pid, st, pol->httpd_pid, daemon_pid, err) != 0))
        return -1;
    if (acting && pid == getpid())
        return dp_fail(err, 403, "Process %d is the diagproc helper; it is protected.",
                       (int)pid);
    return dp_policy_check_target(pol, rq, st, err);
}

/* ---------------------------------------------------------------- answers */

static void send_error(int fd, const dp_error *err)
{
    uint32_t status = (uint32_t)(err->status ? err->status : 500);
    dp_frame_write(fd, DP_FR_ERROR, &status, sizeof(status), err->msg, strlen(err->msg));
}

static int send_ok(int fd, uint64_t size, const char *name)
{
    return dp_frame_write(fd, DP_FR_OK, &size, sizeof(size), name, strlen(name));
}

static int send_end(int fd)
{
    return dp_frame_write(fd, DP_FR_END, NULL, 0, NULL, 0);
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

static int entries_begin(dp_entry_sink *s, const char *name, long long mtime, unsigned mode)
{
    int fd = *(int *)s->ctx;
    unsigned char meta[12];
    uint32_t m = mode;
    memcpy(meta, &mtime, 8);
    memcpy(meta + 8, &m, 4);
    return dp_frame_write(fd, DP_FR_ENTRY, meta, sizeof(meta), name, strlen(name));
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
    dp_sink out = { frames_write, &fd };
    dp_error err = { 0 };
    apr_array_header_t *maps;
    char *buf;
    size_t len;
    int i;

    if (dp_read_file(maps_path, &buf, &len, p) != 0) {
        dp_fail(&err, errno == ENOENT || errno == ESRCH ? 404 : 403, "Cannot read the memory "
                "map of process %d: %s.", (int)pid, strerror(errno));
        return send_error(fd, &err);
    }
    maps = dp_parse_maps(buf, len, p);
    send_ok(fd, UINT64_MAX, "");
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
    send_end(fd);
}

static void do_proc_read(int fd, const dp_helper_policy *pol, const dp_request *rq,
                         apr_pool_t *p)
{
    static const char *files[] = { NULL, "fd", "exe", "environ", "cwd", "maps", "maps" };
    static const char *what[] = { NULL, "the open files", "the executable", "the environment",
                                  "the working directory", "the memory map",
                                  "the memory map" };
    dp_error err = { 0 };
    dp_stat st;
    char path[64];
    dp_sink out = { frames_write, &fd };

    if (check_target(pol, rq, 0, &st, &err) != 0)
        return send_error(fd, &err);
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)rq->pid, files[rq->what]);
    if (rq->what == DP_READ_FDS) {
        DIR *d = opendir(path);
        struct dirent *de;
        char link[320], target[4096];

        if (!d) {
            dp_fail(&err, errno == ENOENT ? 404 : 403, "Cannot read the open files of "
                    "process %d: %s.", (int)rq->pid, strerror(errno));
            return send_error(fd, &err);
        }
        send_ok(fd, UINT64_MAX, "");
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
        send_end(fd);
        return;
    }
    if (rq->what == DP_READ_EXE || rq->what == DP_READ_CWD) {
        char target[4096];
        ssize_t n = readlink(path, target, sizeof(target));
        if (n < 0) {
            dp_fail(&err, 403, "Cannot read %s of process %d: %s.", what[rq->what],
                    (int)rq->pid, strerror(errno));
            return send_error(fd, &err);
        }
        send_ok(fd, (uint64_t)n, "");
        dp_sink_write(&out, target, (size_t)n);
        send_end(fd);
        return;
    }
    if (rq->what == DP_READ_BUILD_IDS)
        return send_build_ids(fd, rq->pid, path, p);
    {
        char *buf;
        size_t len;
        if (dp_read_file(path, &buf, &len, p) != 0) {
            dp_fail(&err, errno == ENOENT || errno == ESRCH ? 404 : 403, "Cannot read %s "
                    "of process %d: %s.", what[rq->what], (int)rq->pid, strerror(errno));
            return send_error(fd, &err);
        }
        send_ok(fd, len, "");
        dp_sink_write(&out, buf, len);
        send_end(fd);
    }
}

static void do_kill(int fd, const dp_helper_policy *pol, const dp_request *rq)
{
    dp_error err = { 0 };
    dp_stat st;

    if (check_target(pol, rq, 1, &st, &err) != 0)
        return send_error(fd, &err);
    if (rq->delay_ms) {
        /* the requester is the target: it answers its client, then we kill */
        send_ok(fd, 0, "");
        send_end(fd);
        usleep(rq->delay_ms * 1000);
        dp_kill_tree(rq->pid, rq->start_time, &err);
        return;
    }
    if (dp_kill_tree(rq->pid, rq->start_time, &err) != 0)
        return send_error(fd, &err);
    send_ok(fd, 0, "");
    send_end(fd);
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

static void do_dump(int fd, const dp_helper_policy *pol, const dp_request *rq,
                    pid_t peer_pid, apr_pool_t *p)
{
    dp_error err = { 0 };
    dp_stat st;
    dp_core_opts o;
    dp_core *core;
    dp_ring rg;
    dp_sink out = { dp_ring_write, &rg };

    if (check_target(pol, rq, 1, &st, &err) != 0)
        return send_error(fd, &err);
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
    if (dp_core_open(&core, &o, p, &err) != 0)
        return send_error(fd, &err);
    if (send_ok(fd, rq->what ? UINT64_MAX : dp_core_size(core), st.comm) != 0) {
        dp_core_close(core);
        return;
    }
    if (dp_ring_open(&rg, fd) != 0) {
        out.write = frames_write;           /* no shared memory: through the socket */
        out.ctx = &fd;
    }
    if (rq->what == 0) {
        if (dp_core_write(core, &out, &err) != 0) {
            dp_core_close(core);
            return;                 /* no END: the worker makes the truncation visible */
        }
    }
    else {
        dp_entry_sink entries = { entries_begin, out, entries_end, &fd };
        dp_bundle_opts bo = { rq->pid, (unsigned long)rq->dump_type, rq->instance, 0,
                              dp_lang_gdb_script(p) };
        core_arg ca = { core };
        if (dp_bundle_write(&bo, &entries, write_core_entry, &ca, p, &err) != 0) {
            dp_core_close(core);
            return;
        }
    }
    dp_core_close(core);
    send_end(fd);
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
        return send_error(fd, &err);
    if (send_ok(fd, UINT64_MAX, st.comm) != 0)
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
        send_end(fd);
}

/* A dump reads a whole process's memory and compresses it: it yields the
 * CPU and the disks to the site it is taken from. Lowering one's own
 * priority needs no privilege. */
static void lower_priority(const dp_helper_policy *pol)
{
    if (pol->dump_nice > 0)
        setpriority(PRIO_PROCESS, 0, pol->dump_nice);
    if (pol->dump_ioprio)
        syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, pol->dump_ioprio);
}

/* ------------------------------------------------------------- the loop */

typedef struct dump_child {
    pid_t pid;                  /* 0 = free slot */
    pid_t target;
    unsigned long long since;   /* clock ticks since boot, when it started */
} dump_child;

static volatile sig_atomic_t dumps_running;
static dump_child *dump_children;
static int max_children;

static unsigned long long ticks_since_boot(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (unsigned long long)ts.tv_sec * (unsigned long long)dp_clock_ticks()
           + (unsigned long long)ts.tv_nsec / (1000000000ULL / (unsigned long long)dp_clock_ticks());
}

/* A dumping child that was killed left its snapshot's copy a zombie in the
 * target: a short-lived process reaps it there. */
static void after_dump(const dump_child *d, int status)
{
    if (WIFSIGNALED(status) && fork() == 0) {
        dp_snapshot_reap_orphans(d->target, d->since);
        _exit(0);
    }
}

static void reap(void)
{
    int status, i;
    pid_t c;
    while ((c = waitpid(-1, &status, WNOHANG)) > 0)
        for (i = 0; i < max_children; i++)
            if (dump_children[i].pid == c) {
                after_dump(&dump_children[i], status);
                dump_children[i].pid = 0;
                dumps_running--;
            }
}

/* A client that asks again right after its last byte must not get a 503:
 * a full table (or a dump of the same target) waits briefly for a child to
 * end. -1: the table is full, -2: that target is being dumped. */
static int free_dump_slot(pid_t target)
{
    int i, tries, busy = 0;
    for (tries = 0; tries < 20; tries++) {
        reap();
        busy = 0;
        for (i = 0; i < max_children; i++)
            busy |= dump_children[i].pid && dump_children[i].target == target;
        if (!busy && dumps_running < max_children)
            for (i = 0; i < max_children; i++)
                if (!dump_children[i].pid)
                    return i;
        usleep(10 * 1000);
    }
    return busy ? -2 : -1;
}

static void on_child(int sig) { (void)sig; }

static void serve_one(int fd, const dp_helper_policy *pol, const struct ucred *peer,
                      const dp_request *rq)
{
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
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
    }
    apr_pool_destroy(p);
}

/* A connection whose request is still arriving. */
typedef struct pending {
    int fd, pidfd;
    struct ucred peer;
    size_t got;
    dp_request rq;
    long long deadline_ms;
} pending;

#define PENDING_MAX 32
#define REQUEST_WAIT_MS 2000    /* a worker sends its request at once */

static pending waiting[PENDING_MAX];
static int nwaiting;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drop_pending(int i)
{
    close(waiting[i].fd);
    if (waiting[i].pidfd >= 0)
        close(waiting[i].pidfd);
    waiting[i] = waiting[--nwaiting];
}

/* The request is complete (or broken): answer it in a child. */
static void dispatch(const dp_helper_policy *pol, pending *w, int complete)
{
    dp_error err = { 0 };
    pid_t child;
    int slot = -1, fd = w->fd;
    unsigned long long since;
    const char *bad = NULL;

    if (complete && !dp_secret_matches(pol, &w->rq)) {
        dp_refuse_peer(&w->peer, "the request lacks this httpd generation's secret");
        return;
    }
    if (!dp_pidfd_alive(w->pidfd)) {
        dp_refuse_peer(&w->peer, "exited before its request was served");
        return;
    }
    if (!complete)
        bad = "The request to the helper is malformed (short or oversized).";
    else {
        char extra;
        if (recv(fd, &extra, 1, MSG_DONTWAIT | MSG_PEEK) > 0)
            bad = "The request to the helper is oversized.";
        else if (dp_request_check(&w->rq, err.msg, sizeof(err.msg)) != 0)
            bad = err.msg;
    }
    if (!bad && w->rq.op == DP_OP_DUMP) {
        slot = free_dump_slot(w->rq.pid);
        if (slot == -2) {
            /* two dumps of one target would fight over ptrace: the second waits */
            dp_fail(&err, 503, "Process %d is already being dumped; try again when that "
                    "dump has finished.", (int)w->rq.pid);
            send_error(fd, &err);
            return;
        }
        if (slot < 0) {
            dp_fail(&err, 503, "%d dumps are already running (DiagProcMaxDumps %d); try "
                    "again shortly.", (int)dumps_running, pol->max_dumps);
            send_error(fd, &err);
            return;
        }
    }
    since = ticks_since_boot();
    child = fork();
    if (child == 0) {
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        if (bad) {
            char sink[4096];
            ssize_t n;
            int total = 0;
            struct timeval tv = { 1, 0 };
            dp_fail(&err, 400, "%s", bad);
            send_error(fd, &err);
            /* let the peer read the answer: drain (bounded) instead of a reset */
            shutdown(fd, SHUT_WR);
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            while (total < (1 << 20) && (n = recv(fd, sink, sizeof(sink), 0)) > 0)
                total += (int)n;
            _exit(0);
        }
        if (w->rq.op == DP_OP_DUMP)
            lower_priority(pol);
        serve_one(fd, pol, &w->peer, &w->rq);
        _exit(0);
    }
    if (child > 0 && slot >= 0) {
        dump_children[slot].pid = child;
        dump_children[slot].target = w->rq.pid;
        dump_children[slot].since = since;
        dumps_running++;
    }
    if (child < 0) {
        dp_fail(&err, 503, "The helper cannot fork: %s.", strerror(errno));
        send_error(fd, &err);
    }
}

static void accept_one(int listen_fd, const dp_helper_policy *pol)
{
    struct ucred peer;
    socklen_t plen = sizeof(peer);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), pidfd;
    const char *why;

    if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE
            || errno == EAGAIN)
            return;
        _exit(1);
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0) {
        close(fd);
        return;
    }
    pidfd = dp_peer_pidfd(fd, &peer);
    if ((why = dp_peer_not_a_worker(pol, &peer, pidfd)) != NULL) {
        dp_refuse_peer(&peer, why);
        close(fd);
        if (pidfd >= 0)
            close(pidfd);
        return;
    }
    if (nwaiting == PENDING_MAX) {      /* the first is among the oldest */
        dp_refuse_peer(&waiting[0].peer, "too many connections without a request");
        drop_pending(0);
    }
    memset(&waiting[nwaiting], 0, sizeof(waiting[nwaiting]));
    waiting[nwaiting].fd = fd;
    waiting[nwaiting].pidfd = pidfd;
    waiting[nwaiting].peer = peer;
    waiting[nwaiting].deadline_ms = now_ms() + REQUEST_WAIT_MS;
    nwaiting++;
}

/* More of a waiting request; 1 when it is complete or broken (dispatched). */
static int read_pending(const dp_helper_policy *pol, pending *w)
{
    ssize_t n = recv(w->fd, (char *)&w->rq + w->got, sizeof(w->rq) - w->got, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n > 0) {
        w->got += (size_t)n;
        if (w->got < sizeof(w->rq))
            return 0;
        dispatch(pol, w, 1);
        return 1;
    }
    dispatch(pol, w, 0);        /* EOF or error before the whole request */
    return 1;
}

void dp_helper_main(int listen_fd, const dp_helper_policy *pol)
{
    pid_t parent = getppid();
    struct sigaction sa;
    sigset_t none;
    int sig;

    /* forked from httpd's parent at any time: drop its handlers and mask */
    for (sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (drop_privileges(pol) != 0) {
        fprintf(stderr, "mod_diagproc helper: cannot drop privileges: %s\n", strerror(errno));
        _exit(1);
    }
    /* after the credential change, which clears it */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != parent)
        _exit(0);
    apr_initialize();
    daemon_pid = getpid();
    max_children = pol->max_dumps > 0 ? pol->max_dumps : 1;
    dump_children = calloc((size_t)max_children, sizeof(dump_child));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_child;       /* interrupts poll so children are reaped */
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);       /* httpd's graceful signal goes to the process group */
    signal(SIGWINCH, SIG_IGN);
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    /* one loop for all: an idle peer holds up no one, dropped after REQUEST_WAIT_MS */
    for (;;) {
        struct pollfd pf[PENDING_MAX + 1];
        long long now = now_ms(), wait = -1;
        int i, n;

        pf[0].fd = listen_fd;
        pf[0].events = POLLIN;
        for (i = 0; i < nwaiting; i++) {
            pf[i + 1].fd = waiting[i].fd;
            pf[i + 1].events = POLLIN;
            pf[i + 1].revents = 0;
            if (wait < 0 || waiting[i].deadline_ms - now < wait)
                wait = waiting[i].deadline_ms - now > 0 ? waiting[i].deadline_ms - now : 0;
        }
        n = nwaiting;
        if (poll(pf, (nfds_t)n + 1, (int)wait) < 0 && errno != EINTR)
            _exit(1);
        reap();
        now = now_ms();
        /* back to front: drop_pending moves the last entry into the gap */
        for (i = n - 1; i >= 0; i--) {
            if (pf[i + 1].revents && read_pending(pol, &waiting[i])) {
                drop_pending(i);
                continue;
            }
            if (waiting[i].deadline_ms <= now) {
                dp_refuse_peer(&waiting[i].peer, "no request within 2 seconds");
                drop_pending(i);
            }
        }
        if (pf[0].revents & POLLIN)
            accept_one(listen_fd, pol);
    }
}
