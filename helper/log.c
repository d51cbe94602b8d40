/* The helper's log lines (see log.h). Its stderr is httpd's error log; a
 * daemonized httpd reopens stdio's stderr on /dev/null before pointing fd 2
 * at the log file, which leaves the stream fully buffered: lines then came
 * in 4 KiB blocks cut mid-line, or never (an exit loses the buffer). So no
 * stdio here: each line is formatted whole and handed to write(2) once. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "helper/log.h"
#include "common/clock.h"

#define LINE_MAX_BYTES 2048     /* one write below PIPE_BUF: a piped log keeps it whole */
#define NBUCKETS 64             /* kinds x uids; one more holds everything beyond */

typedef struct audit_bucket {
    uint64_t key;               /* 0: free */
    uint64_t tat;               /* when the next line would be due at the steady rate (ns) */
    uint64_t left_out;          /* lines not written since the last one */
    uint64_t last_line;         /* when the last line or summary of this kind was (ns) */
    uint32_t ready;             /* what[] is written */
    char what[200];
} audit_bucket;

static int max_level = DP_LOG_WARNING;
/* shared with the request children (MAP_SHARED): their refusals count too */
static audit_bucket *buckets;
static audit_bucket private_buckets[NBUCKETS + 1];

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"
};

void dp_log_init(int level)
{
    void *m;

    max_level = level;
    tzset();                    /* while /etc/localtime is surely readable */
    m = mmap(NULL, sizeof(audit_bucket) * (NBUCKETS + 1), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    buckets = m == MAP_FAILED ? private_buckets : m;
}

/* httpd's default error-log prefix: "[Mon Dec 07 17:00:00.123456 2026]
 * [diagproc:warn] [pid N] " (local time, as httpd writes it). */
static size_t line_head(char *buf, size_t size, int level)
{
    struct timespec ts;
    struct tm tm;
    char day[32], year[8];
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(day, sizeof(day), "%a %b %d %H:%M:%S", &tm);
    strftime(year, sizeof(year), "%Y", &tm);
    n = snprintf(buf, size, "[%s.%06ld %s] [diagproc:%s] [pid %d] ", day, ts.tv_nsec / 1000,
                 year, level_names[level < 0 ? 0 : level > 7 ? 7 : level], (int)getpid());
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* The text after the head made one line, and its newline: one write. */
static void put_line(char *buf, size_t head, size_t len)
{
    size_t i;
    ssize_t w;

    if (len > LINE_MAX_BYTES - 2) {
        len = LINE_MAX_BYTES - 5;
        memcpy(buf + len, "...", 3);
        len += 3;
    }
    for (i = head; i < len; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '?';
    buf[len++] = '\n';
    do                          /* again only when interrupted before writing */
        w = write(STDERR_FILENO, buf, len);
    while (w < 0 && errno == EINTR);
}

static void vlog(int level, const char *suffix, const char *fmt, va_list ap)
{
    char buf[LINE_MAX_BYTES + 8];
    size_t head = line_head(buf, LINE_MAX_BYTES, level), len;
    int n;

    n = vsnprintf(buf + head, LINE_MAX_BYTES - head, fmt, ap);
    len = n < 0 ? head : head + (size_t)n > LINE_MAX_BYTES ? LINE_MAX_BYTES : head + (size_t)n;
    if (suffix && len < LINE_MAX_BYTES) {
        n = snprintf(buf + len, LINE_MAX_BYTES - len, "%s", suffix);
        len = n < 0 ? len : len + (size_t)n > LINE_MAX_BYTES ? LINE_MAX_BYTES : len + (size_t)n;
    }
    put_line(buf, head, len);
}

void dp_log(int level, const char *fmt, ...)
{
    va_list ap;

    if (level > max_level)
        return;
    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ audit lines */

uint32_t dp_audit_kind(uint32_t site, const char *reason)
{
    uint32_t h = 2166136261u ^ site;

    while (reason && *reason)
        h = (h ^ (unsigned char)*reason++) * 16777619u;
    return h;
}

/* The bucket of (kind, uid): found, or claimed; the last one when the
 * table is full, so that nothing a peer does grows it. */
static audit_bucket *bucket(uint32_t kind, long uid, const char *what)
{
    uint64_t key = (1ULL << 63) | ((uint64_t)kind << 31) | ((uint64_t)uid & 0x7fffffffULL);
    unsigned i, start = (unsigned)(key % NBUCKETS);

    if (!buckets)
        buckets = private_buckets;
    for (i = 0; i < NBUCKETS; i++) {
        audit_bucket *b = &buckets[(start + i) % NBUCKETS];
        uint64_t k = __atomic_load_n(&b->key, __ATOMIC_ACQUIRE), zero = 0;
        if (k == key)
            return b;
        if (k == 0 && __atomic_compare_exchange_n(&b->key, &zero, key, 0, __ATOMIC_ACQ_REL,
                                                  __ATOMIC_ACQUIRE)) {
            snprintf(b->what, sizeof(b->what), "%s", what);
            __atomic_store_n(&b->ready, 1, __ATOMIC_RELEASE);
            return b;
        }
        if (zero == key)        /* claimed for this key by another process meanwhile */
            return b;
    }
    if (!__atomic_load_n(&buckets[NBUCKETS].ready, __ATOMIC_ACQUIRE)
        && !__atomic_exchange_n(&buckets[NBUCKETS].key, 1, __ATOMIC_ACQ_REL)) {
        snprintf(buckets[NBUCKETS].what, sizeof(buckets[NBUCKETS].what),
                 "refusals of further kinds or users");
        __atomic_store_n(&buckets[NBUCKETS].ready, 1, __ATOMIC_RELEASE);
    }
    return &buckets[NBUCKETS];
}

/* The generic cell rate algorithm: one number per bucket, changed by one
 * compare-and-swap, so forked children and the daemon share it lock-free. */
static int admit(audit_bucket *b, uint64_t now)
{
    uint64_t tat = __atomic_load_n(&b->tat, __ATOMIC_ACQUIRE), next;

    for (;;) {
        next = (tat > now ? tat : now) + DP_AUDIT_INTERVAL_NS;
        if (next - now > DP_AUDIT_BURST * DP_AUDIT_INTERVAL_NS)
            return 0;
        if (__atomic_compare_exchange_n(&b->tat, &tat, next, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return 1;
    }
}

int dp_audit_admit(uint32_t kind, long uid, const char *what, uint64_t now,
                   uint64_t *left_out, uint64_t *since)
{
    audit_bucket *b = bucket(kind, uid, what);

    if (!admit(b, now)) {
        __atomic_add_fetch(&b->left_out, 1, __ATOMIC_ACQ_REL);
        return 0;
    }
    /* each count is taken by exactly one line: this one or a summary */
    *left_out = __atomic_exchange_n(&b->left_out, 0, __ATOMIC_ACQ_REL);
    *since = __atomic_exchange_n(&b->last_line, now, __ATOMIC_ACQ_REL);
    return 1;
}

static unsigned long long secs_since(uint64_t since, uint64_t now)
{
    return since && now > since ? (now - since + 999999999ULL) / 1000000000ULL : 0;
}

void dp_audit(uint32_t kind, long uid, const char *what, const char *fmt, ...)
{
    uint64_t now = dp_mono_ns(), left_out = 0, since = 0;
    char suffix[128];
    va_list ap;

    /* the cheap part first: a refused flood costs a compare-and-swap */
    if (DP_LOG_WARNING > max_level || !dp_audit_admit(kind, uid, what, now, &left_out, &since))
        return;
    suffix[0] = '\0';
    if (left_out)
        snprintf(suffix, sizeof(suffix), " (and %llu more refusals of this kind suppressed "
                 "in the last %llu s)", (unsigned long long)left_out, secs_since(since, now));
    va_start(ap, fmt);
    vlog(DP_LOG_WARNING, suffix, fmt, ap);
    va_end(ap);
}

int dp_audit_pending(void)
{
    int i;

    for (i = 0; buckets && i <= NBUCKETS; i++)
        if (__atomic_load_n(&buckets[i].left_out, __ATOMIC_ACQUIRE))
            return 1;
    return 0;
}

int dp_audit_summary(void)
{
    uint64_t now = dp_mono_ns();
    int i, lines = 0;

    for (i = 0; buckets && i <= NBUCKETS; i++) {
        audit_bucket *b = &buckets[i];
        uint64_t n, since;
        if (!__atomic_load_n(&b->left_out, __ATOMIC_ACQUIRE)
            || !__atomic_load_n(&b->ready, __ATOMIC_ACQUIRE))
            continue;
        n = __atomic_exchange_n(&b->left_out, 0, __ATOMIC_ACQ_REL);
        since = __atomic_exchange_n(&b->last_line, now, __ATOMIC_ACQ_REL);
        if (!n)
            continue;
        dp_log(DP_LOG_WARNING, DPLOGNO(10002) "helper: %llu more refusals of this kind "
               "suppressed in the last %llu s: %s", (unsigned long long)n,
               secs_since(since, now), b->what);
        lines++;
    }
    return lines;
}
