/* What the helper daemon's loop (helper/daemon.c) and the answer to one
 * request (helper/requests.c) share. Internal to helper/. */
#ifndef DP_REQUESTS_H
#define DP_REQUESTS_H

#include <sys/socket.h>
#include "helper/daemon.h"
#include "common/proto.h"
#include "common/dp_error.h"

/* the helper daemon itself (protected), set once it runs */
extern pid_t dp_daemon_pid;

/* An ERROR frame with err's status (500 when none) and message. */
void dp_daemon_send_error(int fd, const dp_error *err);

/* Serves rq in the child forked for it, on fd; peer is the worker. */
void dp_daemon_serve_one(int fd, const dp_helper_policy *pol, const struct ucred *peer,
                         const dp_request *rq);

#endif
