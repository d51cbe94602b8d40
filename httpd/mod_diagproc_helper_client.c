/* The worker's client of the privileged helper: one connection per
 * request, a fixed-size request, and the answer's frames. */

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "unixd.h"
#include "ap_mpm.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "common/proto.h"
#include "proc/procfs.h"
#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_shared.h"
#include "httpd/mod_diagproc_helper_client.h"

APLOG_USE_MODULE(diagproc);

apr_status_t dp_helper_close(void *data)
{
    dp_helper_conn *hc = data;
    if (hc->fd >= 0)
        close(hc->fd);
    hc->fd = -1;
    return APR_SUCCESS;
}

/* How long a worker waits on the helper: to connect (a restarting helper
 * has no socket for a moment: the parent notices its death at once and a new
 * helper listens within milliseconds; the rest is margin for a loaded
 * machine, where 2.5 s was once not enough), and for each read of its
 * answer. */
#define HELPER_CONNECT_WAIT_MS 5000
#define HELPER_READ_TIMEOUT_S 30

/* Set on a request once the helper could not be reached: its other reads
 * do not wait again, and its route answers 503 instead of leaving out what
 * only the helper can read. */
#define HELPER_DOWN_NOTE "diagproc-helper-unavailable"

static int helper_down(request_rec *r, dp_error *err)
{
    apr_table_setn(r->notes, HELPER_DOWN_NOTE, apr_pstrdup(r->pool, err->msg));
    return -1;
}

int dp_helper_unavailable(request_rec *r, dp_error *err)
{
    const char *down = apr_table_get(r->notes, HELPER_DOWN_NOTE);

    if (!down)
        return 0;
    dp_fail(err, 503, "%s", down);
    return 1;
}

/* Sends the request; on success hc->fd is open (closed with r->pool). The
 * request names this Location's sections and carries the generation's
 * secret: the helper checks it against the configuration it holds. */
/* The helper could not start and the parent waits before it tries again:
 * no use waiting for it. */
static int could_not_start(request_rec *r, dp_error *err)
{
    int in = dp_shared_helper_retry_in();

    if (in <= 0)
        return 0;
    dp_fail(err, 503, "The diagproc helper could not start (the error log says why); "
            "httpd tries again in %d s.", in);
    apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, in));
    helper_down(r, err);
    return 1;
}

/* wait: a helper being restarted is waited for, and its absence marks the
 * request (HELPER_DOWN_NOTE); without, one try, and its answer's reads time
 * out after QUICK_READ_TIMEOUT_S. */
#define QUICK_READ_TIMEOUT_S 5

static int call(request_rec *r, dp_request *rq, dp_helper_conn **out, dp_error *err, int wait)
{
    dp_helper_conn *hc = apr_pcalloc(r->pool, sizeof(*hc));
    const char *sockpath = dp_shared_socket_path();
    dp_dir_conf *dc = dp_dir_config(r);
    struct sockaddr_un sa;
    struct timeval rtv = { wait ? HELPER_READ_TIMEOUT_S : QUICK_READ_TIMEOUT_S, 0 };
    struct timeval stv = { 5, 0 };
    int waited = 0, rc;

    if (dp_helper_unavailable(r, err))
        return -1;
    if (could_not_start(r, err))
        return -1;
    rq->magic = DP_PROTO_MAGIC;
    rq->version = DP_PROTO_VERSION;
    rq->allow_section = dc->allow_section;
    rq->scope_section = dc->scope_section;
    memcpy(rq->secret, dp_shared_secret(), sizeof(rq->secret));
    hc->fd = -1;
    apr_pool_cleanup_register(r->pool, hc, dp_helper_close, apr_pool_cleanup_null);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (!sockpath || strlen(sockpath) >= sizeof(sa.sun_path)) {
        dp_fail(err, 503, "The diagproc helper is not available.");
        return helper_down(r, err);
    }
    strcpy(sa.sun_path, sockpath);
    for (;;) {
        hc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (hc->fd < 0) {
            dp_fail(err, 503, "The diagproc helper is not available (%s).", strerror(errno));
            return wait ? helper_down(r, err) : -1;
        }
        setsockopt(hc->fd, SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof(rtv));
        setsockopt(hc->fd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof(stv));
        rc = connect(hc->fd, (struct sockaddr *)&sa, sizeof(sa));
        if (rc == 0 || (errno != ENOENT && errno != ECONNREFUSED)
            || !wait || waited >= HELPER_CONNECT_WAIT_MS)
            break;
        close(hc->fd);          /* being restarted by the parent: wait a little */
        hc->fd = -1;
        if (could_not_start(r, err))
            return -1;          /* the parent's new try failed meanwhile */
        usleep(50 * 1000);
        waited += 50;
    }
    if (rc != 0 || dp_write_full(hc->fd, rq, sizeof(*rq)) != 0) {
        dp_fail(err, 503, "The diagproc helper is not available (%s); httpd restarts it, try "
                "again shortly.", strerror(errno));
        return wait ? helper_down(r, err) : -1;
    }
    *out = hc;
    return 0;
}

int dp_helper_call(request_rec *r, dp_request *rq, dp_helper_conn **out, dp_error *err)
{
    return call(r, rq, out, err, 1);
}

int dp_helper_call_once(request_rec *r, dp_request *rq, dp_helper_conn **out, dp_error *err)
{
    return call(r, rq, out, err, 0);
}

/* Reads the answer's first frame: OK (size, name) or ERROR. */
int dp_helper_read_answer(request_rec *r, dp_helper_conn *hc, uint64_t *size, char **name,
                       dp_error *err)
{
    int type;
    uint32_t len, status;
    uint64_t sz;
    const char *text;
    char *buf;

    errno = 0;
    if (dp_frame_read_header(hc->fd, &type, &len) != 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            dp_fail(err, 503, "The diagproc helper is busy (no answer within %d s); "
                    "try again shortly.", HELPER_READ_TIMEOUT_S);
        else
            dp_fail(err, 503, "The diagproc helper closed the connection without an "
                    "answer; try again shortly.");
        return helper_down(r, err);
    }
    buf = apr_palloc(r->pool, len + 1);
    if (dp_read_full(hc->fd, buf, len) != 0)
        return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
    buf[len] = '\0';       /* ends the trailing text */
    if (type == DP_FR_ERROR && dp_frame_get_error(buf, len, &status, &text, NULL) == 0)
        return dp_fail(err, (int)status, "%s", text);
    if (type != DP_FR_OK || dp_frame_get_ok(buf, len, &sz, &text, NULL) != 0)
        return dp_fail(err, 500, "The diagproc helper answered out of protocol.");
    *size = sz;
    if (name)
        *name = buf + (text - buf);     /* our own buffer, writable */
    return 0;
}

/* The DATA frames of an answer up to its END, in one pool buffer (bounded). */
int dp_helper_read_rest(request_rec *r, dp_helper_conn *hc, char **out, apr_size_t *outlen,
                     dp_error *err)
{
    size_t used = 0, cap = 4096;
    char *buf = apr_palloc(r->pool, cap);

    for (;;) {
        int type;
        uint32_t len;
        if (dp_frame_read_header(hc->fd, &type, &len) != 0)
            return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
        if (type == DP_FR_END)
            break;
        if (type != DP_FR_DATA || used + len > 16 * 1024 * 1024)
            return dp_fail(err, 500, "The diagproc helper answered out of protocol.");
        if (used + len + 1 > cap) {
            char *nb;
            cap = (used + len + 1) * 2;
            nb = apr_palloc(r->pool, cap);
            memcpy(nb, buf, used);
            buf = nb;
        }
        if (dp_read_full(hc->fd, buf + used, len) != 0)
            return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
        used += len;
    }
    buf[used] = '\0';
    *out = buf;
    *outlen = used;
    dp_helper_close(hc);
    return 0;
}

int dp_helper_proc_read(request_rec *r, pid_t pid, int what, char **out, apr_size_t *outlen,
                        dp_error *err)
{
    dp_request rq;
    dp_helper_conn *hc;
    uint64_t size;

    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_PROC_READ;
    rq.what = (uint32_t)what;
    rq.pid = pid;
    if (dp_helper_call(r, &rq, &hc, err) != 0 || dp_helper_read_answer(r, hc, &size, NULL, err) != 0)
        return -1;
    return dp_helper_read_rest(r, hc, out, outlen, err);
}

/* A /proc file the worker may not be allowed to read (another user's
 * process on a root-started httpd): ask the privileged helper instead.
 * Returns 0 with the bytes, or -1 when nobody may read it. */
int dp_read_private(request_rec *r, pid_t pid, int what, const char *file,
                     char **buf, size_t *len)
{
    dp_error err = { 0 };
    apr_size_t n = 0;

    if (dp_read_file(apr_psprintf(r->pool, "/proc/%d/%s", (int)pid, file), buf, len, r->pool) == 0)
        return 0;
    if (errno != EACCES && errno != EPERM)
        return -1;
    if (dp_helper_proc_read(r, pid, what, buf, &n, &err) != 0)
        return -1;
    *len = n;
    return 0;
}

int dp_readlink_private(request_rec *r, pid_t pid, int what, const char *file,
                        const char **out)
{
    char tmp[4096];
    ssize_t n = readlink(apr_psprintf(r->pool, "/proc/%d/%s", (int)pid, file), tmp, sizeof(tmp) - 1);
    char *buf;
    size_t len;
    dp_error err = { 0 };
    apr_size_t alen = 0;

    if (n >= 0) {
        *out = apr_pstrmemdup(r->pool, tmp, (apr_size_t)n);
        return 0;
    }
    if (errno != EACCES && errno != EPERM)
        return -1;
    if (dp_helper_proc_read(r, pid, what, &buf, &alen, &err) != 0)
        return -1;
    len = alen;
    *out = apr_pstrmemdup(r->pool, buf, len);
    return 0;
}
