/* GET P/{id}/dump: the helper writes the core (or the bundle) into a shared
 * ring; this relays it down httpd's output filters as it comes. */

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "util_filter.h"
#include "apr_lib.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_dump.h"
#include "common/actions.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_zip.h"
#include "common/proto.h"
#include "proc/procfs.h"
#include "common/dumptype.h"
#include "worker/route.h"

APLOG_USE_MODULE(diagproc);

/* A name safe inside a quoted Content-Disposition filename. */
static const char *safe_name(apr_pool_t *p, const char *name)
{
    char *s = apr_pstrdup(p, *name ? name : "process"), *c;
    for (c = s; *c; c++)
        if (!apr_isalnum(*c) && *c != '.' && *c != '_' && *c != '-')
            *c = '_';
    return s;
}

/* After the first byte the status is sent: a failure must show as a
 * truncated body (no last chunk / short Content-Length), never as success. */
static int abort_stream(request_rec *r, apr_bucket_brigade *bb)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_brigade_cleanup(bb);
    APR_BRIGADE_INSERT_TAIL(bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, bb);
    return DONE;
}

/* The helper's shared ring (DP_FR_RING), mapped read-only for this request. */
typedef struct ring_map {
    const char *base;
    size_t size;
    uint32_t slots, slot_size;
} ring_map;

static apr_status_t unmap_ring(void *data)
{
    ring_map *m = data;
    munmap((void *)m->base, m->size);
    return APR_SUCCESS;
}

static int map_ring(request_rec *r, ring_map *m, const char *payload, uint32_t len, int fd)
{
    struct stat sb;
    void *base;

    if (fd < 0 || m->base || dp_frame_get_ring(payload, len, &m->slots, &m->slot_size) != 0)
        return -1;
    m->size = (size_t)m->slots * m->slot_size;
    if (m->slots < 1 || m->slots > 64 || m->slot_size < 4096 || m->slot_size > (4u << 20)
        || fstat(fd, &sb) != 0 || (size_t)sb.st_size < m->size
        || (base = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
        return -1;
    m->base = base;
    apr_pool_cleanup_register(r->pool, m, unmap_ring, apr_pool_cleanup_null);
    return 0;
}

/* The helper's request for this dump, with the server's limits. */
static void fill_dump_request(request_rec *r, pid_t pid, unsigned long dump_type, int what,
                              dp_request *rq)
{
    dp_server_conf *sc = dp_server_config(r->server);
    const char *instance = sc->instance_name ? sc->instance_name : "";

    memset(rq, 0, sizeof(*rq));
    rq->op = DP_OP_DUMP;
    rq->what = (uint32_t)what;
    rq->pid = pid;
    rq->dump_type = dump_type;
    rq->max_bytes = sc->max_dump_bytes > 0 ? (uint64_t)sc->max_dump_bytes : 0;
    rq->timeout_s = sc->dump_timeout > 0 ? (uint32_t)sc->dump_timeout : 0;
    /* this thread carries the stream: it must never be left stopped */
    rq->keep_running_tid = pid == getpid() ? (int32_t)syscall(SYS_gettid) : 0;
    apr_cpystrn(rq->instance, instance, sizeof(rq->instance));
}

static const char *const coding_names[] = { NULL, "gzip", "zstd" };

/* A raw dump's content coding (worker/route.h) as the helper's request
 * names it. */
static int dump_what(int zip, int coding)
{
    return zip ? DP_DUMP_ZIP : coding == DP_CODING_ZSTD ? DP_DUMP_RAW_ZSTD
           : coding == DP_CODING_GZIP ? DP_DUMP_RAW_GZIP : DP_DUMP_RAW;
}

/* A raw core varies with Accept-Encoding; encoded, it is chunked, and the
 * core's own size is in a header of its own. The Content-Encoding is ours:
 * mod_deflate (here, or on a front proxy) sees it and leaves the body be. */
static void set_coding_headers(request_rec *r, int coding, uint64_t size, int known)
{
    apr_table_mergen(r->headers_out, "Vary", "Accept-Encoding");
    if (known)
        apr_table_setn(r->headers_out, "X-Diagproc-Core-Size",
                       apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, (apr_uint64_t)size));
    if (coding == DP_CODING_IDENTITY) {
        if (known)
            ap_set_content_length(r, (apr_off_t)size);
        return;
    }
    r->content_encoding = coding_names[coding];
    apr_table_setn(r->headers_out, "Content-Encoding", coding_names[coding]);
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    if (known)
        apr_table_setn(r->headers_out, "X-Uncompressed-Length",
                       apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, (apr_uint64_t)size));
}

static void set_dump_headers(request_rec *r, pid_t pid, const char *name, uint64_t size,
                             int zip, int coding)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_psprintf(r->pool, "attachment; filename=\"%s-%d-%s.%s\"",
                                safe_name(r->pool, name), (int)pid, stamp, zip ? "zip" : "core"));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    if (zip) {
        ap_set_content_type(r, "application/zip");
        ap_add_output_filter(DP_ZIP_FILTER, NULL, r, r->connection);
    }
    else {
        ap_set_content_type(r, "application/octet-stream");
        set_coding_headers(r, coding, size, 1);
    }
}

/* The helper's frames down the output filters: DATA (or a ring SLOT) as
 * body bytes, ENTRY as a zip entry bucket, until END. */
static int relay_dump(request_rec *r, pid_t pid, dp_helper_conn *hc)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb;
    char *buf;
    ring_map *ring = apr_pcalloc(r->pool, sizeof(*ring));   /* unmapped with the pool */

    bb = apr_brigade_create(r->pool, ba);
    buf = apr_palloc(r->pool, DP_FRAME_MAX);       /* the worker's one buffer */
    for (;;) {
        int type, passed, bad;
        uint32_t len, slot, n;
        const char *data = buf;
        if (dp_frame_read_header_fd(hc->fd, &type, &len, &passed) != 0
            || dp_read_full(hc->fd, buf, len) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, DPLOGNO(00001)
                          "diagproc: the dump of %d ended early", (int)pid);
            return abort_stream(r, bb);
        }
        if (type == DP_FR_RING) {
            bad = map_ring(r, ring, buf, len, passed);
            if (passed >= 0)
                close(passed);
            if (bad)
                return abort_stream(r, bb);
            continue;
        }
        if (passed >= 0)
            close(passed);
        if (type == DP_FR_END)
            break;
        if (type == DP_FR_SLOT) {
            if (!ring->base || dp_frame_get_slot(buf, len, &slot, &n) != 0
                || slot >= ring->slots || n > ring->slot_size)
                return abort_stream(r, bb);
            data = ring->base + (size_t)slot * ring->slot_size;
            len = n;
            type = DP_FR_DATA;
        }
        if (type == DP_FR_ENTRY) {
            int64_t mtime;
            uint32_t mode;
            const char *name;
            size_t namelen;
            if (dp_frame_get_entry(buf, len, &mtime, &mode, &name, &namelen) != 0)
                return abort_stream(r, bb);
            APR_BRIGADE_INSERT_TAIL(bb, dp_zip_entry_bucket_create(
                apr_pstrmemdup(r->pool, name, namelen), mtime, mode, ba));
            continue;
        }
        if (type != DP_FR_DATA)
            return abort_stream(r, bb);
        /* transient + FLUSH: written (or copied) before the buffer or slot is reused */
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(data, len, ba));
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
        if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS || r->connection->aborted) {
            dp_helper_close(hc);     /* the helper stops at once and resumes the target */
            apr_brigade_cleanup(bb);
            return DONE;
        }
        apr_brigade_cleanup(bb);
        if (data != buf)
            send(hc->fd, "k", 1, MSG_NOSIGNAL);     /* the slot is free again */
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, bb);
    return DONE;
}

static int handle_dump(request_rec *r, pid_t pid, unsigned long dump_type, int zip, int coding)
{
    dp_request rq;
    dp_error err = { 0 };
    dp_helper_conn *hc;
    uint64_t size;
    char *name;

    fill_dump_request(r, pid, dump_type, dump_what(zip, coding), &rq);
    if (dp_helper_call(r, &rq, &hc, &err) != 0
        || dp_helper_read_answer(r, hc, &size, &name, &err) != 0) {
        if (err.status == 503)
            apr_table_setn(r->headers_out, "Retry-After", "5");
        return dp_send_dp_error(r, &err);
    }
    set_dump_headers(r, pid, name, size, zip, coding);
    return relay_dump(r, pid, hc);
}

int dp_route_dump(request_rec *r, const char **seg)
{
    apr_table_t *q = dp_query(r);
    const char *ts = apr_table_get(q, "dumpType");
    const char *fmt = apr_table_get(q, "format");
    unsigned long type = 0;
    pid_t pid;
    dp_stat st;
    int rv, zip = 0, coding;

    if (ts && dp_parse_dump_type(ts, &type) != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "dumpType '%s' is not a number: give the "
                             "MINIDUMP_TYPE bits in decimal or 0x-hex (0 = minimal).", ts);
    if (type & ~DP_DUMP_SUPPORTED)
        return dp_send_error(r, HTTP_BAD_REQUEST, "dumpType 0x%lx has bits that Windows "
                             "does not define (0x%lx): MINIDUMP_TYPE's valid bits are "
                             "0x%lx (MiniDumpValidTypeFlags).", type,
                             type & ~DP_DUMP_SUPPORTED, DP_DUMP_VALID);
    if (dp_parse_dump_format(fmt, &zip) != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "format '%s' is unknown: use raw (an ELF "
                             "core) or zip (the core with its binaries and scripts).", fmt);
    if ((rv = dp_require_allowed(r, DP_ACT_DUMP)) != OK)
        return rv;
    if ((type & DP_DUMP_NEEDS_FULLDUMP)
        && (rv = dp_require_allowed(r, DP_ACT_FULLDUMP)) != OK)
        return rv;
    if ((rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK
        || (rv = dp_refuse_protected(r, pid, &st)) != OK)
        return rv;
    if (st.state == 'Z' || st.state == 'X')
        return dp_send_error(r, HTTP_CONFLICT, "Process %d is a zombie: it has exited and "
                             "has no memory left to dump.", (int)pid);
    coding = zip ? DP_CODING_IDENTITY
             : dp_pick_coding(apr_table_get(r->headers_in, "Accept-Encoding"));
    if (r->header_only) {
        /* HEAD answers from the checks alone: it never stops or lays out the target */
        ap_set_content_type(r, zip ? "application/zip" : "application/octet-stream");
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        if (!zip)
            set_coding_headers(r, coding, 0, 0);
        return DONE;
    }
    return handle_dump(r, pid, type, zip, coding);
}
