/* The capture watcher's set-up and the state it keeps in the spool: the
 * rules' windows by rule name (".windows", so that a graceful restart's new
 * watcher goes on counting), captures cut short (".tmp-*"). Internal to the
 * watcher (helper/watch.c). */
#ifndef DP_WATCH_STATE_H
#define DP_WATCH_STATE_H

#include "common/capture.h"
#include "common/helper_config.h"

/* Keeps only the capabilities a capture needs (as root): NULL, or the step
 * that failed (errno set). */
const char *dp_watch_keep_caps(void);
void dp_watch_save_windows(const dp_watch_config *cfg, const dp_cap_window *w);
void dp_watch_load_windows(const dp_watch_config *cfg, dp_cap_window *windows);
void dp_watch_remove_partial(const char *spool);

#endif
