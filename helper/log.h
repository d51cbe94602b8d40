/* The helper's log lines: written to its stderr (httpd's error log, or the
 * terminal of an httpd in the foreground) in httpd's own error-log format,
 * each a whole line in one write(2), at once; the refusal (audit) lines
 * rate-limited per kind and peer uid, with counts of what was left out. */
#ifndef DP_HELPER_LOG_H
#define DP_HELPER_LOG_H

#include <stdint.h>

/* A unique tag per call site, as the module's (httpd/mod_diagproc_log.h):
 * the helper's are DP10001 and up. */
#define DPLOGNO(n) "DP" #n ": "

/* httpd's levels (APLOG_EMERG ... APLOG_DEBUG), same numbers */
#define DP_LOG_EMERG   0
#define DP_LOG_ALERT   1
#define DP_LOG_CRIT    2
#define DP_LOG_ERR     3
#define DP_LOG_WARNING 4
#define DP_LOG_NOTICE  5
#define DP_LOG_INFO    6
#define DP_LOG_DEBUG   7

/* Audit lines: a burst of this many per kind and uid, then one a second. */
#define DP_AUDIT_BURST 20
#define DP_AUDIT_INTERVAL_NS 1000000000ULL

/* The level up to which lines are written (httpd's LogLevel for the
 * module), and the audit counters, shared with every child forked after
 * this call (their refusals count in the same buckets). */
void dp_log_init(int level);

/* One line: "[time] [diagproc:LEVEL] [pid N] " then fmt, which starts with
 * its DPLOGNO tag. Control characters in the text become '?'. */
void dp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An audit line of a kind (the call site, and the reason where there are a
 * few) for a peer uid, rate-limited (DP_AUDIT_BURST, then one per
 * DP_AUDIT_INTERVAL_NS). what names the kind for a summary line ("a
 * connection from uid 33 gid 33: not a child of the httpd parent"). A line
 * written after some were left out says how many, and since when. */
void dp_audit(uint32_t kind, long uid, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* For every kind with lines left out since its last line: a summary line
 * with the count. The daemon calls it every DP_AUDIT_SUMMARY_S seconds
 * while any count is pending, and as it exits. Returns how many kinds had
 * one. */
#define DP_AUDIT_SUMMARY_S 10
int dp_audit_summary(void);
/* 1 when some count is waiting for its line. */
int dp_audit_pending(void);

/* The rate limit alone, for the tests: 1 when a line of (kind, uid) may be
 * written at now_ns; then *left_out is how many were not since the last one
 * (and *since_ns when that was, 0 = never). */
int dp_audit_admit(uint32_t kind, long uid, const char *what, uint64_t now_ns,
                   uint64_t *left_out, uint64_t *since_ns);

/* A short stable number for a reason's text (FNV-1a), for a kind. */
uint32_t dp_audit_kind(uint32_t site, const char *reason);

#endif
