/* Who may ask the helper, and what a request may do to its target. */
#ifndef DP_POLICY_H
#define DP_POLICY_H

#include <sys/socket.h>
#include "helper/daemon.h"
#include "common/proto.h"
#include "proc/procfs.h"

/* Every uid (real, effective, saved, filesystem) of the target within the
 * ceiling and the request's scope; no capability or borrowed group unless
 * root is in scope; the request's section allows its action. */
int dp_policy_check_target(const dp_helper_policy *pol, const dp_request *rq, dp_stat *st,
                           dp_error *err);
/* A group of the target (real, effective, saved, filesystem, or one of the
 * supplementary "Groups:" of its status text) that no user of the scope
 * holds (group 0 always counts); -1 when there is none, -2 when its groups
 * could not all be read. */
long dp_policy_foreign_group(const dp_helper_policy *pol, int scope_section,
                             const dp_status *ss, const char *status);
/* Logs a refused peer (pid, uid, gid, why); it gets no answer. */
void dp_refuse_peer(const struct ucred *peer, const char *why);
/* Logs a request refused by the configuration (403): peer, action, target,
 * sections and the reason; returns -1. */
int dp_refuse_request(const struct ucred *peer, const dp_request *rq, const dp_error *err);
/* Logs a malformed request and makes it the 400 it answers. */
void dp_refuse_malformed(const struct ucred *peer, const char *why, dp_error *err);
/* 1 while the process behind the pidfd runs (its pid is not reused). */
int dp_pidfd_alive(int pidfd);
/* NULL when the peer is one of httpd's workers, else why not. */
const char *dp_peer_not_a_worker(const dp_helper_policy *pol, const struct ucred *peer,
                                 int pidfd);
/* A pidfd of the peer (SO_PEERPIDFD, else pidfd_open). */
int dp_peer_pidfd(int fd, const struct ucred *peer);
/* The request carries this generation's secret (constant time). */
int dp_secret_matches(const dp_helper_policy *pol, const dp_request *rq);

#endif
