/* The worker's client of the privileged helper (helper/proto.h): a
 * connection per request, closed with the request's pool */
#ifndef MOD_DIAGPROC_HELPER_CLIENT_H
#define MOD_DIAGPROC_HELPER_CLIENT_H

#include "httpd.h"
#include "common/dp_error.h"
#include "common/proto.h"

typedef struct dp_helper_conn {
    int fd;
} dp_helper_conn;

/* Sends the request; on success *out is connected. */
int dp_helper_call(request_rec *r, dp_request *rq, dp_helper_conn **out, dp_error *err);
/* The same without waiting for a helper being restarted, and without
 * marking the request when there is none (the helper's absence is an answer:
 * a question only a running helper has anything to say to), with a short
 * timeout for the answer's reads. */
int dp_helper_call_once(request_rec *r, dp_request *rq, dp_helper_conn **out, dp_error *err);
/* The answer's first frame: OK (size, name) or the helper's error. */
int dp_helper_read_answer(request_rec *r, dp_helper_conn *hc, uint64_t *size, char **name,
                          dp_error *err);
/* The DATA frames up to END, in one pool buffer (bounded). */
int dp_helper_read_rest(request_rec *r, dp_helper_conn *hc, char **out, apr_size_t *outlen,
                        dp_error *err);
apr_status_t dp_helper_close(void *hc);
/* 1 (err: the 503) when a helper call of this request found the helper
 * unavailable (restarting, busy): the route answers 503 + Retry-After
 * rather than leave out what only the helper reads. */
int dp_helper_unavailable(request_rec *r, dp_error *err);

/* A private /proc file of pid (DP_READ_*) that the worker may not read itself. */
int dp_helper_proc_read(request_rec *r, pid_t pid, int what, char **buf, apr_size_t *len,
                        dp_error *err);

/* A /proc file of pid, read by the worker itself or, when it may not (another
 * user's process on a root-started httpd), by the helper: 0 with the bytes, or
 * -1 when nobody may read it. what: DP_READ_*; file: its name below /proc/PID. */
int dp_read_private(request_rec *r, pid_t pid, int what, const char *file, char **buf,
                    size_t *len);
/* The same for a link (exe, cwd). */
int dp_readlink_private(request_rec *r, pid_t pid, int what, const char *file,
                        const char **out);

#endif
