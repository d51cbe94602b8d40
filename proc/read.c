/* Readers: fill the parsed structures from /proc. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include "common/format.h"
#include "proc/procfs.h"

ssize_t dp_read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n, total = 0;

    if (fd < 0)
        return -1;
    while ((size_t)total < cap - 1) {
        n = read(fd, buf + total, cap - 1 - (size_t)total);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        total += n;
    }
    close(fd);
    buf[total] = '\0';
    return total;
}

int dp_read_file(const char *path, char **buf, size_t *len, apr_pool_t *p)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, used = 0;
    char *b;

    if (fd < 0)
        return -1;
    b = apr_palloc(p, cap);
    for (;;) {
        ssize_t n;
        if (used + 1 >= cap) {
            char *nb = apr_palloc(p, cap * 2);
            memcpy(nb, b, used);
            b = nb;
            cap *= 2;
        }
        n = read(fd, b + used, cap - 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    b[used] = '\0';
    *buf = b;
    if (len)
        *len = used;
    return 0;
}

int dp_read_stat(pid_t pid, pid_t tid, dp_stat *st, dp_error *err)
{
    char path[64], buf[1024];
    ssize_t n;

    if (tid)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    n = dp_read_small(path, buf, sizeof(buf));
    if (n <= 0 || dp_parse_stat(buf, (size_t)n, st) != 0) {
        if (tid)
            return dp_fail(err, 404, "Thread with an Id of %d is not running in process %d.",
                           (int)tid, (int)pid);
        return dp_fail_not_running(err, pid);
    }
    return 0;
}

long dp_proc_owner(pid_t pid)
{
    char path[32];
    struct stat sb;

    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    return stat(path, &sb) == 0 ? (long)sb.st_uid : -1;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static apr_array_header_t *list_numeric(const char *dir, apr_pool_t *p)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    apr_array_header_t *a;

    if (!d)
        return NULL;
    a = apr_array_make(p, 256, sizeof(int));
    while ((e = readdir(d)) != NULL) {
        char *end;
        long v;
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        v = strtol(e->d_name, &end, 10);
        if (*end == '\0')
            *(int *)apr_array_push(a) = (int)v;
    }
    closedir(d);
    qsort(a->elts, (size_t)a->nelts, sizeof(int), cmp_int);
    return a;
}

apr_array_header_t *dp_list_pids(apr_pool_t *p)
{
    apr_array_header_t *a = list_numeric("/proc", p);
    return a ? a : apr_array_make(p, 1, sizeof(int));
}

apr_array_header_t *dp_list_tids(pid_t pid, apr_pool_t *p)
{
    char path[48];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    return list_numeric(path, p);
}

apr_array_header_t *dp_list_children(pid_t pid, apr_pool_t *p)
{
    apr_array_header_t *tids = dp_list_tids(pid, p), *out;
    char path[64], buf[16384];
    int i;

    if (!tids)
        return NULL;
    out = apr_array_make(p, 8, sizeof(pid_t));
    for (i = 0; i < tids->nelts; i++) {
        char *s, *end;
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
                 APR_ARRAY_IDX(tids, i, int));
        if (dp_read_small(path, buf, sizeof(buf)) <= 0)
            continue;
        for (s = buf;; s = end) {
            long c = strtol(s, &end, 10);
            if (end == s)
                break;
            APR_ARRAY_PUSH(out, pid_t) = (pid_t)c;
        }
    }
    return out;
}

int dp_read_status_field(pid_t pid, pid_t tid, const char *key, char *out, size_t cap)
{
    char path[64], buf[4096], *line, *end;
    size_t klen = strlen(key), n;

    if (tid)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (dp_read_small(path, buf, sizeof(buf)) <= 0)
        return -1;
    for (line = buf; line; line = (end = strchr(line, '\n')) ? end + 1 : NULL)
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            line += klen + 1;
            line += strspn(line, " \t");
            n = strcspn(line, "\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, line, n);
            out[n] = '\0';
            return 0;
        }
    return -1;
}

long long dp_boot_time(void)
{
    static long long btime;
    if (!btime) {
        char buf[8192];
        ssize_t n = dp_read_small("/proc/stat", buf, sizeof(buf));
        const char *b = n > 0 ? strstr(buf, "\nbtime ") : NULL;
        if (b)
            btime = strtoll(b + 7, NULL, 10);
    }
    return btime;
}

long dp_clock_ticks(void)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? hz : 100;
}

long dp_page_size(void)
{
    static long ps;
    if (!ps)
        ps = sysconf(_SC_PAGESIZE);
    return ps;
}

/* Per-process cache of uid -> name. Users rarely change; a stale name for a
 * uid that was renamed while httpd runs is an acceptable price for one
 * getpwuid per uid instead of one per process and request. */
static pthread_mutex_t user_cache_lock = PTHREAD_MUTEX_INITIALIZER;

const char *dp_user_name(long uid, apr_pool_t *p)
{
    static apr_pool_t *cache_pool;
    static apr_hash_t *cache;
    const char *name;
    struct passwd pw, *res = NULL;
    char buf[1024];

    (void)p;
    pthread_mutex_lock(&user_cache_lock);    /* threaded MPMs share the cache */
    if (!cache) {
        apr_pool_create_unmanaged_ex(&cache_pool, NULL, NULL);
        cache = apr_hash_make(cache_pool);
    }
    name = apr_hash_get(cache, &uid, sizeof(uid));
    if (name) {
        pthread_mutex_unlock(&user_cache_lock);
        return name;
    }
    if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res)
        name = apr_pstrdup(cache_pool, res->pw_name);
    else
        name = apr_ltoa(cache_pool, uid);
    {
        long *key = apr_palloc(cache_pool, sizeof(*key));
        *key = uid;
        apr_hash_set(cache, key, sizeof(*key), name);
    }
    pthread_mutex_unlock(&user_cache_lock);
    return name;
}

long dp_pid_max(void)
{
    static long cached;     /* a sysctl root may raise: read once per process */
    char buf[32];

    if (!cached)
        cached = dp_read_small("/proc/sys/kernel/pid_max", buf, sizeof(buf)) > 0
                 && atol(buf) > 0 ? atol(buf) : 4194304;
    return cached;
}

int dp_parse_pid(const char *s, pid_t *pid)
{
    long v = 0;
    int negative = s[0] == '-', big = 0;
    const char *c = s + negative;

    if (!*c)
        return -1;
    for (; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        if (v < 100000000)
            v = v * 10 + (*c - '0');
        else
            big = 1;        /* beyond any pid: only its being a number matters */
    }
    if (big || (negative && v) || v >= dp_pid_max())
        return DP_PID_NONE;
    *pid = (pid_t)v;
    return 0;
}

void dp_start_time_buf(char *buf, size_t len, unsigned long long ticks)
{
    unsigned long long hz = (unsigned long long)dp_clock_ticks();
    dp_iso_time_buf(buf, len, dp_boot_time() + (long long)(ticks / hz),
                    (long)((ticks % hz) * (1000000000ULL / hz)));
}

const char *dp_start_time_iso(unsigned long long ticks, apr_pool_t *p)
{
    char buf[48];
    dp_start_time_buf(buf, sizeof(buf), ticks);
    return apr_pstrdup(p, buf);
}
