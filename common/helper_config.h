/* The configuration the helper obeys, as the httpd parent hands it over when
 * it forks the helper: sections by number, the ceiling, the dump limits. The
 * parent fills it (httpd/), the helper enforces it (helper/). */
#ifndef DP_HELPER_CONFIG_H
#define DP_HELPER_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

struct dp_cap_counts;

/* One configuration section that uses DiagProcAllow or DiagProcUsers. */
typedef struct dp_helper_section {
    unsigned allow;             /* DP_ACT_* */
    int has_users;              /* DiagProcUsers given in this section */
    int all_users;              /* DiagProcUsers * */
    const uid_t *uids;
    int nuids;
    /* the groups its users hold (primary and supplementary; with *, every
     * group some user holds): a target with any other group is refused */
    const gid_t *gids;
    int ngids;
} dp_helper_section;

typedef struct dp_helper_policy {
    uid_t peer_uid;             /* who may connect: the workers' user (root always may) */
    int drop_to_peer;           /* started as root: become peer_uid, keep only the caps we need */
    gid_t peer_gid;
    const gid_t *peer_gids;     /* the groups of the default scope (the workers' user) */
    int npeer_gids;
    pid_t httpd_pid;            /* the httpd parent: protected */
    int all_users;              /* ceiling: every user but root... */
    const uid_t *uids;          /* ...or only these (root only if listed) */
    int nuids;
    int max_dumps;              /* concurrent dumps server-wide */
    int snapshot;               /* DiagProcDumpSnapshot: large dumps read a copy-on-write fork */
    int dump_nice;              /* DiagProcDumpNice: CPU priority of a dumping child (0-19) */
    int dump_ioprio;            /* DiagProcDumpIOPriority: ioprio_set value, 0 = unchanged */
    /* Who may connect: a child of httpd_pid running this executable... */
    dev_t exe_dev;
    ino_t exe_ino;
    /* ...that knows this generation's secret (inherited in memory). */
    unsigned char secret[32];
    /* The configuration: sections[i] as numbered in requests; pairs[a * n + s]
     * is 1 when section a's DiagProcAllow and section s's DiagProcUsers can
     * both apply to one URL (nested <Location>s). */
    const dp_helper_section *sections;
    int nsections;
    const unsigned char *pairs;
    int log_level;              /* httpd's LogLevel for the module (APLOG_*): the helper's lines */
    /* DiagProcProfileLimits: profiles at once, a session's longest run, the
     * highest rate, a profile's store of stacks (bytes) */
    int prof_sessions, prof_seconds, prof_hz;
    size_t prof_bytes;
    const char *spool;          /* DiagProcSpool's directory (DP_OP_CAPTURES reads it) */
    struct dp_cap_counts *counts;   /* with capture rules: the dumps the watcher writes count
                                       against max_dumps too (NULL = none) */
    int capture_fd;             /* a datagram socket to the watcher (removals), -1 = none */
    /* httpd's request slots (the page the parent shares with its children,
     * inherited): what a profile's samples of a worker thread are labelled
     * with; written by the workers, so labels only. NULL when there is none. */
    const struct dp_slot *slots;
    size_t nslots;
} dp_helper_policy;

struct dp_capture_rule;
struct dp_inflight;

/* The capture watcher's configuration (helper/watch.h), as the parent hands
 * it over when it forks the watcher (root, outside the workers). */
typedef struct dp_watch_config {
    const char *spool;
    unsigned long long quota_bytes;
    long quota_files;           /* captures kept at most */
    const struct dp_capture_rule *rules;
    int nrules;
    struct dp_cap_counts *counts;   /* the workers' status counters (shared memory) */
    /* What httpd's scoreboard and the module's shared page say now, read in
     * the watcher (a copy of the parent's code and mappings): the requests
     * being served, and the workers' pids. Each returns how many it wrote. */
    int (*inflight)(struct dp_inflight *out, int max);
    int (*workers)(pid_t *out, int max);
    pid_t httpd_pid;
    uid_t workers_uid;
    /* the helper's ceiling (dp_helper_policy's all_users, uids): a backend a
     * request waits on is captured only within it */
    int all_users;
    const uid_t *uids;
    int nuids;
    int max_dumps;              /* DiagProcMaxDumps: dump captures at one time */
    int snapshot;
    const char *instance;
    int capture_fd;             /* the other end of dp_helper_policy.capture_fd */
    int log_level;
} dp_watch_config;

/* ioprio_set(2) values for dump_ioprio */
#define DP_IOPRIO_VALUE(cls, level) (((cls) << 13) | (level))
#define DP_IOPRIO_CLASS_BE   2
#define DP_IOPRIO_CLASS_IDLE 3

#endif
