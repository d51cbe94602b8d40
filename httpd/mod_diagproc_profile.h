/* Sampled profiles of one process: Kudu's POST P/{id}/profile/start and
 * GET P/{id}/profile/stop, and GET P/{id}/profile?seconds=N in one call; of
 * the whole site: GET P/profile?seconds=N. */
#ifndef MOD_DIAGPROC_PROFILE_H
#define MOD_DIAGPROC_PROFILE_H

#include "httpd.h"

int dp_route_profile_start(request_rec *r, const char **seg);
int dp_route_profile_stop(request_rec *r, const char **seg);
int dp_route_profile(request_rec *r, const char **seg);
int dp_route_profile_site(request_rec *r, const char **seg);
/* 1 while a session samples pid (the process detail's is_profile_running). */
int dp_profile_running(request_rec *r, pid_t pid);

#endif
