/* A profile's samples: each tick reads the running threads' language frames
 * from the target's memory while it runs (process_vm_readv, as py-spy and
 * phpspy do), stops a running thread that has none alone for its native
 * stack, and counts each distinct stack in a bounded store. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <elfutils/libdwfl.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "helper/profile.h"
#include "helper/stacks.h"
#include "helper/lang_target.h"
#include "helper/phpreq.h"
#include "common/clock.h"

/* A walk read while the target changed a frame is read again at once, up
 * to this many times in all, before the sample counts as lost: a call-heavy
 * loop pushes and pops frames all the time. */
#define WALK_TRIES 3

#define KEY_MAX (64 + 2 * (2 + DP_SLOT_URI) + DP_PROF_MAX_FRAMES * 2 * (2 + DP_PROF_NAME_MAX))

/* The samples of one profile, of one process or of several. */
struct dp_prof_store {
    unsigned hz;
    apr_pool_t *pool;
    apr_hash_t *stacks;         /* key bytes -> uint32_t count */
    uint64_t samples, lost, bytes, start_us, start_mono, end_mono;
    size_t max_bytes;
    unsigned flags;             /* DP_PS_FULL */
    uint64_t rng;
    const dp_slot *slots;       /* httpd's requests, for the labels */
    size_t nslots;
    unsigned char key[KEY_MAX];
};

struct dp_profiler {
    pid_t pid;
    dp_prof_store *st;
    int httpd;                  /* one of httpd's processes: requests from the slots */
    int php;                    /* else its PHP's request (req_at) labels its samples */
    dp_phpreq_at req_at;
    dp_prof_label_fn *label;    /* and then this, when set */
    void *label_arg;
    apr_pool_t *pool, *tick;
    apr_hash_t *slot_hints;     /* tid -> the slot it was found in last */
    apr_hash_t *cpu_seen;       /* tid -> its run and wait times when last seen in state R */
    Dwfl *dwfl;
    dp_lang_target lt;
    dp_native_sampler *ns;
    /* the stack being built: frames innermost first, reversed into the key */
    int nframes;
    const char *names[DP_PROF_MAX_FRAMES], *files[DP_PROF_MAX_FRAMES];
};

dp_prof_store *dp_prof_store_make(unsigned hz, size_t max_bytes, const dp_slot *slots,
                                  size_t nslots, apr_pool_t *p)
{
    dp_prof_store *st = apr_pcalloc(p, sizeof(*st));

    st->max_bytes = max_bytes;
    st->hz = hz;
    st->pool = p;
    st->stacks = apr_hash_make(p);
    st->slots = slots;
    st->nslots = nslots;
    if (getrandom(&st->rng, sizeof(st->rng), 0) != sizeof(st->rng) || !st->rng)
        st->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    dp_prof_began(st);
    return st;
}

void dp_prof_began(dp_prof_store *st)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    st->start_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    st->start_mono = dp_mono_us();
}

int dp_profiler_open(dp_profiler **out, dp_prof_store *st, pid_t pid, int httpd, apr_pool_t *p,
                     dp_error *err)
{
    dp_profiler *pr = apr_pcalloc(p, sizeof(*pr));
    apr_hash_t *kinds;
    dp_stacks *s = apr_pcalloc(p, sizeof(*s));

    pr->pid = pid;
    pr->st = st;
    pr->httpd = httpd && st->slots;
    pr->pool = p;
    pr->slot_hints = apr_hash_make(p);
    pr->cpu_seen = apr_hash_make(p);
    apr_pool_create(&pr->tick, p);
    if (!(pr->dwfl = dp_stacks_open_modules(pid, &kinds, p, err)))
        return -1;
    s->threads = apr_array_make(p, 1, sizeof(dp_stack_thread));
    dp_lang_target_init(&pr->lt, pr->dwfl, kinds, pid, s, p);
    pr->lt.no_lines = 1;        /* a profile counts functions, not lines */
    pr->ns = dp_native_sampler_open(pr->dwfl, pid, p);
    if (!pr->httpd) {
        dp_error ignored = { 0 };
        pr->php = dp_phpreq_locate(&pr->lt, &pr->req_at, &ignored) == 0;
    }
    *out = pr;
    return 0;
}

void dp_profiler_set_label(dp_profiler *pr, dp_prof_label_fn *fn, void *arg)
{
    pr->label = fn;
    pr->label_arg = arg;
}

void dp_profiler_close(dp_profiler *pr)
{
    if (pr && pr->dwfl) {
        dwfl_end(pr->dwfl);
        pr->dwfl = NULL;
    }
}

/* xorshift64*: 53 random bits */
static uint64_t next_random(dp_prof_store *st)
{
    st->rng ^= st->rng >> 12;
    st->rng ^= st->rng << 25;
    st->rng ^= st->rng >> 27;
    return (st->rng * 0x2545f4914f6cdd1dULL) >> 11;
}

uint64_t dp_prof_delay_us(dp_prof_store *st)
{
    uint64_t period = 1000000u / st->hz;

    /* uniform in [period/2, 3*period/2): the mean is the period */
    return period / 2 + next_random(st) % (period ? period : 1);
}

/* ------------------------------------------------------------ the store */

static unsigned char *put_u32(unsigned char *o, uint32_t v)
{
    o[0] = (unsigned char)v;
    o[1] = (unsigned char)(v >> 8);
    o[2] = (unsigned char)(v >> 16);
    o[3] = (unsigned char)(v >> 24);
    return o + 4;
}

static unsigned char *put_str(unsigned char *o, const char *s)
{
    size_t n;

    if (!s) {
        o[0] = o[1] = 0xff;
        return o + 2;
    }
    n = strlen(s);
    if (n > DP_PROF_NAME_MAX)
        n = DP_PROF_NAME_MAX;
    o[0] = (unsigned char)n;
    o[1] = (unsigned char)(n >> 8);
    memcpy(o + 2, s, n);
    return o + 2 + n;
}

static void push_frame(void *arg, const char *name, const char *file)
{
    dp_profiler *pr = arg;
    if (pr->nframes < DP_PROF_MAX_FRAMES) {
        pr->names[pr->nframes] = name;
        pr->files[pr->nframes++] = file;
    }
}

/* The request thread tid serves: from httpd's slots (URI and vhost), from
 * its PHP's SG(request_info) (URI and query), then as the label function
 * says; empty strings when not known. */
static void request_of(dp_profiler *pr, pid_t tid, char uri[DP_SLOT_URI], char vhost[64])
{
    int *hint = apr_hash_get(pr->slot_hints, &tid, sizeof(tid));

    uri[0] = vhost[0] = '\0';
    if (pr->httpd) {
        if (!hint) {
            pid_t *key = apr_pmemdup(pr->pool, &tid, sizeof(tid));
            hint = apr_palloc(pr->pool, sizeof(*hint));
            *hint = -1;
            apr_hash_set(pr->slot_hints, key, sizeof(*key), hint);
        }
        if (dp_slot_request_of(pr->st->slots, pr->st->nslots, pr->pid, tid, hint, uri,
                               vhost) != 0)
            uri[0] = vhost[0] = '\0';
    }
    else if (pr->php) {
        dp_phpreq r;
        dp_phpreq_read_at(&pr->lt, &pr->req_at, &r);
        if (*r.uri)
            snprintf(uri, DP_SLOT_URI, "%s%s%s", r.uri, *r.query ? "?" : "", r.query);
    }
    if (pr->label)
        pr->label(pr->label_arg, pr->pid, tid, uri, vhost);
}

/* A thread's request as read before its stack was: a sample is labelled
 * only with a request that was the same before and after (one that ended
 * meanwhile, and the next one's, would label a stack that is not theirs). */
typedef struct label {
    char uri[DP_SLOT_URI], vhost[64];
} label;

/* The stack built (innermost first) counted once under its process, thread,
 * runtime and request. */
static void count_stack(dp_profiler *pr, pid_t tid, const char *runtime, const label *before)
{
    dp_prof_store *st = pr->st;
    char uri[DP_SLOT_URI], vhost[64];
    unsigned char *o = put_u32(st->key, (uint32_t)tid);
    uint32_t *count;
    size_t len;
    int i;

    request_of(pr, tid, uri, vhost);
    if (strcmp(uri, before->uri) || strcmp(vhost, before->vhost))
        uri[0] = vhost[0] = '\0';
    o = put_str(o, runtime);
    o = put_u32(o, (uint32_t)pr->pid);
    o = put_str(o, uri[0] ? uri : NULL);
    o = put_str(o, vhost[0] ? vhost : NULL);
    o = put_u32(o, (uint32_t)pr->nframes);
    for (i = pr->nframes - 1; i >= 0; i--) {
        o = put_str(o, pr->names[i]);
        o = put_str(o, pr->files[i]);
    }
    len = (size_t)(o - st->key);
    st->samples++;
    if ((count = apr_hash_get(st->stacks, st->key, (apr_ssize_t)len))) {
        (*count)++;
        return;
    }
    if (apr_hash_count(st->stacks) >= DP_PROF_MAX_STACKS || st->bytes + len > st->max_bytes) {
        st->flags |= DP_PS_FULL;
        st->samples--;
        st->lost++;
        return;
    }
    count = apr_palloc(st->pool, sizeof(*count));
    *count = 1;
    st->bytes += len;
    apr_hash_set(st->stacks, apr_pmemdup(st->pool, st->key, len), (apr_ssize_t)len, count);
}

/* ------------------------------------------------------------ a tick */

/* A thread's time on a CPU and waiting for one, in ns (/proc/.../schedstat:
 * the kernel's run and run-queue times); -1 when the kernel does not say. */
static int sched_times(pid_t pid, pid_t tid, uint64_t t[2])
{
    char path[64], buf[128];
    FILE *f;
    unsigned long long ran, waited;
    int rc = -1;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
    if (!(f = fopen(path, "re")))
        return -1;
    if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%llu %llu", &ran, &waited) == 2) {
        t[0] = ran;
        t[1] = waited;
        rc = 0;
    }
    fclose(f);
    return rc;
}

/* A thread in state R may be running, or waiting for a CPU: on a busy
 * machine a long burst of work waits more often than a short one, so
 * counting every R thread weighs it above its CPU time. A thread seen
 * before is kept with the probability that R meant running since then:
 * its run time over its run and run-queue time (schedstat). Without
 * contention nothing waits and every R thread is kept. */
static int running_not_waiting(dp_profiler *pr, pid_t tid)
{
    uint64_t now[2], *seen = apr_hash_get(pr->cpu_seen, &tid, sizeof(tid)), ran, waited;
    int keep = 1;

    if (sched_times(pr->pid, tid, now) != 0)
        return 1;
    if (!seen) {
        pid_t *key = apr_pmemdup(pr->pool, &tid, sizeof(tid));
        seen = apr_pcalloc(pr->pool, 2 * sizeof(*seen));
        apr_hash_set(pr->cpu_seen, key, sizeof(*key), seen);
    }
    else {
        ran = now[0] > seen[0] ? now[0] - seen[0] : 0;
        waited = now[1] > seen[1] ? now[1] - seen[1] : 0;
        keep = !waited || next_random(pr->st) % (ran + waited) < ran;
    }
    seen[0] = now[0];
    seen[1] = now[1];
    return keep;
}

/* The threads of pid on a CPU now (state R, kept as above); -1 when pid is
 * gone. */
static int running_threads(dp_profiler *pr, dp_stacks *s)
{
    char path[64], buf[512];
    DIR *d;
    struct dirent *de;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pr->pid);
    if (!(d = opendir(path)))
        return -1;
    s->threads = apr_array_make(pr->tick, 4, sizeof(dp_stack_thread));
    while ((de = readdir(d)) != NULL) {
        FILE *f;
        char *rp;
        dp_stack_thread *th;
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(buf, sizeof(buf), "%s/%s/stat", path, de->d_name);
        if (!(f = fopen(buf, "re")))
            continue;
        rp = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
        fclose(f);
        if (!rp || rp[1] != ' ' || rp[2] != 'R')
            continue;
        if (!running_not_waiting(pr, (pid_t)atoi(de->d_name)))
            continue;
        th = apr_array_push(s->threads);
        memset(th, 0, sizeof(*th));
        th->tid = atoi(de->d_name);
        th->native = apr_array_make(pr->tick, 1, sizeof(dp_native_frame));
        th->lang = apr_array_make(pr->tick, 16, sizeof(dp_lang_frame));
    }
    closedir(d);
    return 0;
}

static const char *lang_name(apr_pool_t *p, const dp_lang_frame *f)
{
    if (!f->function)
        return "?";
    return f->class_name ? apr_pstrcat(p, f->class_name, "::", f->function, NULL) : f->function;
}

static int is_php_root(const dp_lang_frame *f)
{
    return f->function && !strcmp(f->function, "{main}") && !f->class_name;
}

static void sample_thread(dp_profiler *pr, dp_stacks *s, dp_stack_thread *th,
                          const label *before)
{
    int j;

    pr->nframes = 0;
    if (th->why) {
        pr->st->lost++; /* a frame changed under the walk: read while it ran */
        return;
    }
    if (th->lang->nelts > 0 && s->runtime && !strcmp(s->runtime, "PHP")
        && !is_php_root(&APR_ARRAY_IDX(th->lang, th->lang->nelts - 1, dp_lang_frame))) {
        /* every PHP chain ends in a script's top-level code: this one was
         * read while a call frame was being pushed or popped */
        pr->st->lost++;
        return;
    }
    if (th->lang->nelts > 0) {
        /* the innermost frames when there are more than the cap */
        for (j = 0; j < th->lang->nelts && j < DP_PROF_MAX_FRAMES; j++) {
            const dp_lang_frame *f = &APR_ARRAY_IDX(th->lang, j, dp_lang_frame);
            push_frame(pr, lang_name(pr->tick, f), f->file);
        }
        count_stack(pr, th->tid, s->runtime, before);
        return;
    }
    if (dp_native_sample(pr->ns, th->tid, push_frame, pr, pr->tick) != 0) {
        pr->st->lost++; /* it could not be stopped or unwound */
        return;
    }
    count_stack(pr, th->tid, "native", before);
}

/* A walk that read a frame while it changed: some thread's walk failed, or
 * a PHP chain does not end in a script's top-level code (read while a call
 * frame was being pushed or popped). */
static int torn(const dp_stacks *s)
{
    int i;

    for (i = 0; i < s->threads->nelts; i++) {
        const dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        if (th->why || (th->lang->nelts > 0 && s->runtime && !strcmp(s->runtime, "PHP")
                        && !is_php_root(&APR_ARRAY_IDX(th->lang, th->lang->nelts - 1,
                                                       dp_lang_frame))))
            return 1;
    }
    return 0;
}

int dp_profiler_tick(dp_profiler *pr)
{
    dp_stacks *s;
    label *before;
    int i, tries;

    apr_pool_clear(pr->tick);
    s = apr_pcalloc(pr->tick, sizeof(*s));
    if (running_threads(pr, s) != 0)
        return -1;
    if (s->threads->nelts == 0)
        return 0;       /* nobody on a CPU: no sample */
    before = apr_palloc(pr->tick, sizeof(*before) * (size_t)s->threads->nelts);
    dp_lang_target_live(&pr->lt, s, pr->tick);         /* a PHP backend's own request */
    for (i = 0; i < s->threads->nelts; i++)
        request_of(pr, APR_ARRAY_IDX(s->threads, i, dp_stack_thread).tid, before[i].uri,
                   before[i].vhost);
    for (tries = 0; tries < WALK_TRIES; tries++) {
        for (i = 0; i < s->threads->nelts; i++) {
            dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
            apr_array_clear(th->lang);
            th->why = NULL;
            th->flags = 0;
        }
        dp_lang_target_live(&pr->lt, s, pr->tick);     /* nothing cached from a torn walk */
        if (!dp_pystack_walk(&pr->lt))
            dp_phpstack_walk(&pr->lt);
        if (!torn(s))
            break;
    }
    for (i = 0; i < s->threads->nelts; i++)
        sample_thread(pr, s, &APR_ARRAY_IDX(s->threads, i, dp_stack_thread), &before[i]);
    return 0;
}

/* ------------------------------------------------------------ the answer */

int dp_prof_send(dp_prof_store *pr, int fd, const char *name, unsigned flags)
{
    apr_hash_index_t *hi;
    unsigned char sum[48], *o;

    if (!pr->end_mono)
        pr->end_mono = dp_mono_us();
    if (dp_frame_send_ok(fd, UINT64_MAX, name) != 0)
        return -1;
    for (hi = apr_hash_first(pr->pool, pr->stacks); hi; hi = apr_hash_next(hi)) {
        const void *key;
        apr_ssize_t klen;
        void *val;
        unsigned char cnt[4];
        apr_hash_this(hi, &key, &klen, &val);
        put_u32(cnt, *(uint32_t *)val);
        if (dp_frame_write(fd, DP_FR_PROF_STACK, cnt, 4, key, (size_t)klen) != 0)
            return -1;
    }
    o = sum;
    o = put_u32(o, (uint32_t)pr->samples);
    o = put_u32(o, (uint32_t)(pr->samples >> 32));
    o = put_u32(o, (uint32_t)pr->lost);
    o = put_u32(o, (uint32_t)(pr->lost >> 32));
    o = put_u32(o, (uint32_t)(pr->end_mono - pr->start_mono));
    o = put_u32(o, (uint32_t)((pr->end_mono - pr->start_mono) >> 32));
    o = put_u32(o, pr->hz);
    o = put_u32(o, flags | pr->flags);
    o = put_u32(o, (uint32_t)pr->start_us);
    o = put_u32(o, (uint32_t)(pr->start_us >> 32));
    if (dp_frame_write(fd, DP_FR_PROF_SUMMARY, sum, (size_t)(o - sum), NULL, 0) != 0)
        return -1;
    return dp_frame_send_end(fd);
}

void dp_prof_ended(dp_prof_store *pr)
{
    if (!pr->end_mono)
        pr->end_mono = dp_mono_us();
}

pid_t dp_ppid_of(pid_t pid)
{
    char path[64], buf[512], *rp;
    FILE *f;
    int ppid = -1;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "re")))
        return -1;
    if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) && sscanf(rp + 2, "%*c %d", &ppid) != 1)
        ppid = -1;
    fclose(f);
    return (pid_t)ppid;
}
