/* Capture rules (DiagProcCapture) and the spool (DiagProcSpool): the rule
 * parser, the limits of a rule (a count per window, a cool-down) and the
 * per-second status counters the workers share with the watcher. Both sides
 * use it: httpd/ parses and counts, helper/ watches and captures. No httpd. */
#ifndef DP_CAPTURE_H
#define DP_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DP_CAP_MAX_RULES 32
#define DP_CAP_NAME_MAX 32          /* a rule's name: [A-Za-z0-9_-] */
#define DP_CAP_LIMIT_MAX 100        /* limit=COUNT/…: COUNT at most this */
#define DP_CAP_GLOB_MAX 256
#define DP_CAP_USERS_MAX 16
#define DP_CAP_WINDOW_MAX 3600      /* status windows and FOR durations, seconds */
#define DP_CAP_ID_MAX 96            /* a capture's id, and an artifact's name */

enum dp_cap_trigger { DP_CAP_AGE = 1, DP_CAP_STATUS, DP_CAP_RSS, DP_CAP_CPU };
enum dp_cap_action { DP_CAP_DO_STACKS = 1, DP_CAP_DO_DUMP, DP_CAP_DO_PROFILE };

typedef struct dp_capture_rule {
    char name[DP_CAP_NAME_MAX + 1];
    char when[128];                 /* the trigger as written (the metadata's "trigger") */
    int trigger;                    /* dp_cap_trigger */
    long long age_ms;               /* request-age>N */
    int status_lo, status_hi;       /* status:LO-HI>=M/WINDOW */
    long long count;                /* M */
    long long window_s;             /* WINDOW of status, FOR of rss and cpu */
    unsigned long long rss_bytes;   /* rss>SIZE */
    int cpu_percent;                /* cpu>P% */
    char path[DP_CAP_GLOB_MAX];     /* "" = any */
    char vhost[DP_CAP_GLOB_MAX];
    char users[DP_CAP_USERS_MAX][33];   /* users= as written ("*" = every user); */
    int nusers;                     /* 0 = httpd's workers */
    int all_users;
    uid_t uids[DP_CAP_USERS_MAX];   /* resolved by the caller (httpd) */
    int action;                     /* dp_cap_action */
    unsigned long dump_type;
    int zip;
    int profile_s;
    int limit_count;                /* default 5 */
    long long limit_window_s;       /* default 3600 */
    long long cooldown_s;           /* default 0 */
} dp_capture_rule;

/* "5s", "500ms", "10m", "1h", "2d" (a bare number is seconds) in ms: 0, or -1. */
int dp_cap_parse_duration_ms(const char *s, size_t len, long long *ms);
/* "512M", "2G", "64K", "1000" (bytes): 0, or -1. */
int dp_cap_parse_size(const char *s, size_t len, unsigned long long *bytes);
/* A glob fnmatch(3) takes, checked: non-empty, brackets closed, no trailing
 * backslash; a path glob starts with '/' or '*'. NULL, or why not. */
const char *dp_cap_glob_error(const char *glob, int is_path);

/* Parses the arguments of one DiagProcCapture line ("NAME key=value …").
 * 0, or -1 with a message naming the argument in err. */
int dp_capture_parse(const char *args, dp_capture_rule *r, char *err, size_t errlen);
/* DiagProcSpool's BYTES and FILES: 0, or -1 with err. */
int dp_spool_parse_quota(const char *bytes, const char *files, unsigned long long *qbytes,
                         long *qfiles, char *err, size_t errlen);

/* A rule's limits: the times (seconds) of its captures in the last window
 * and of the last one. */
typedef struct dp_cap_window {
    long long fires[DP_CAP_LIMIT_MAX];
    int n;
    long long last;                 /* 0 = never */
} dp_cap_window;

/* The cool-down a rule keeps between two captures: its cooldown=, and for a
 * status rule at least its window (a burst fires once per window). */
long long dp_cap_cooldown_s(const dp_capture_rule *r);
/* May the rule capture at now (seconds)? 1 or 0. */
int dp_cap_may_fire(const dp_capture_rule *r, const dp_cap_window *w, long long now);
/* It captured at now. */
void dp_cap_fired(const dp_capture_rule *r, dp_cap_window *w, long long now);

/* Status counters: per rule a ring of per-second buckets, one 64-bit word
 * each (the second in the high half, the count in the low), shared by every
 * worker (shared memory the parent maps before it forks). */
#define DP_CAP_BUCKETS DP_CAP_WINDOW_MAX
typedef struct dp_cap_counts {
    /* DiagProcMaxDumps is shared: the dumps the helper and the watcher are
     * writing now, each kept by its owner and read by the other */
    int32_t dumps_helper, dumps_watcher;
    char names[DP_CAP_MAX_RULES][DP_CAP_NAME_MAX + 1];  /* whose row it is */
    int32_t last_pid[DP_CAP_MAX_RULES];     /* the process of the last counted response */
    uint64_t b[DP_CAP_MAX_RULES][DP_CAP_BUCKETS];
} dp_cap_counts;
void dp_cap_count(uint64_t *row, uint32_t now_s);
/* Responses counted in the seconds now - window … now (the current second
 * and the whole window before it), only those after `after` (seconds). */
uint64_t dp_cap_sum(const uint64_t *row, uint32_t now_s, uint32_t window_s, uint32_t after);

/* A capture id or artifact name as the API takes it: [A-Za-z0-9._-], not
 * starting with '.', at most DP_CAP_ID_MAX bytes. 1 when valid. */
int dp_cap_name_ok(const char *s);

/* What the watcher is told of an in-flight request (from httpd's scoreboard
 * and the module's shared page). */
typedef struct dp_inflight {
    pid_t pid, tid;
    long long start_us;             /* 0 = unknown */
    char request[64];               /* the scoreboard's request line */
    char uri[256], vhost[64], unique_id[32], traceparent[64];
} dp_inflight;

#endif
