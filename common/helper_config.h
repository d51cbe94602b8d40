/* The configuration the helper obeys, as the httpd parent hands it over when
 * it forks the helper: sections by number, the ceiling, the dump limits. The
 * parent fills it (httpd/), the helper enforces it (helper/). */
#ifndef DP_HELPER_CONFIG_H
#define DP_HELPER_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

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
    /* httpd's request slots (the page the parent shares with its children,
     * inherited): what a profile's samples of a worker thread are labelled
     * with; written by the workers, so labels only. NULL when there is none. */
    const struct dp_slot *slots;
    size_t nslots;
} dp_helper_policy;

/* ioprio_set(2) values for dump_ioprio */
#define DP_IOPRIO_VALUE(cls, level) (((cls) << 13) | (level))
#define DP_IOPRIO_CLASS_BE   2
#define DP_IOPRIO_CLASS_IDLE 3

#endif
