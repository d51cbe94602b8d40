/* The capture watcher: forked by httpd's parent (root, outside the workers,
 * so that a saturated site still triggers it) with a copy of the scoreboard
 * and the module's shared page. Once a second it evaluates the rules of
 * DiagProcCapture and takes captures into the spool (DiagProcSpool), each in
 * a child at low priority; it removes a capture the helper asks it to
 * (DELETE P/captures/{id}) and keeps the spool within its quota. No httpd
 * headers: what it needs of httpd comes as callbacks (dp_watch_config). */
#ifndef DP_WATCH_H
#define DP_WATCH_H

#include <sys/types.h>
#include "common/capture.h"
#include "common/helper_config.h"

/* Makes the spool (root's, mode 0700) if it is missing: 0, or -1 with errno
 * and the step that failed in *why. Also used to check the spool at
 * configtest. */
int dp_watch_prepare_spool(const char *spool, const char **why);

/* The watcher's exit status when it could not start (its line says why):
 * the parent does not start it again before httpd restarts. */
#define DP_WATCH_STARTUP_ERROR 253

/* Runs until SIGTERM (also sent when the parent dies); never returns. */
void dp_watch_main(const dp_watch_config *cfg);

/* One capture, in the child forked for it (helper/capture_take.c): the
 * folder dir (made, empty) receives the artifacts and meta.json. */
typedef struct dp_capture_job {
    const dp_capture_rule *rule;
    const char *id;
    long long time_s;
    pid_t pid;                      /* the target (a worker, a backend, any process); 0 = none */
    const dp_inflight *request;     /* the request that fired it, or NULL */
    const dp_inflight *inflight;    /* every in-flight request at that second */
    int ninflight;
    const char *detail;             /* what the trigger saw ("rss 600 MiB for 30 s"), or NULL */
    int snapshot;
    const char *instance;
    const dp_watch_config *cfg;
} dp_capture_job;
int dp_capture_take(const dp_capture_job *job, const char *dir);

/* May the watcher (root) capture pid for rule? What the scoreboard says is
 * written by the workers, so it is checked against the kernel's view: a
 * worker is a child of the httpd parent; any other process is within the
 * rule's users= or, without it, the helper's ceiling; never pid 1, the
 * parent, the helper side, a kernel thread. NULL, or why not. */
const char *dp_capture_target_refused(const dp_watch_config *cfg, const dp_capture_rule *rule,
                                      pid_t pid, int must_be_worker);

#endif
