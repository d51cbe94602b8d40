/* The reserved process's read-ahead input filter, above mod_ssl on an
 * opaque (TLS, HTTP/2) connection. mod_ssl's speculative read shows only
 * the first record it decrypted, so a request head sent in several records
 * could never be seen whole that way: instead, the serving thread's
 * non-blocking look reads what it can for good (the TLS handshake goes on
 * meanwhile) and keeps it here, and whoever reads the connection next gets
 * it from here first. So a TLS connection takes no thread for its turn
 * until its whole request head has been decrypted. */

#include <string.h>

#include "httpd.h"
#include "http_connection.h"
#include "util_filter.h"
#include "apr_buckets.h"

#include "httpd/mod_diagproc_reserved_ahead.h"

#define AHEAD_FILTER "DIAGPROC_RESERVED_AHEAD"

static ap_filter_rec_t *ahead_handle;

/* Up to readbytes of what is held, copied (SPECULATIVE) or moved. */
static apr_status_t take_held(apr_bucket_brigade *held, apr_bucket_brigade *bb,
                              apr_off_t readbytes, int copy)
{
    apr_bucket *e, *end, *next;
    apr_status_t rv = apr_brigade_partition(held, readbytes, &end);

    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE)
        return rv;
    for (e = APR_BRIGADE_FIRST(held); e != end && e != APR_BRIGADE_SENTINEL(held); e = next) {
        next = APR_BUCKET_NEXT(e);
        if (copy) {
            apr_bucket *dup;
            if ((rv = apr_bucket_copy(e, &dup)) != APR_SUCCESS)
                return rv;
            APR_BRIGADE_INSERT_TAIL(bb, dup);
        }
        else {
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(bb, e);
        }
    }
    return APR_SUCCESS;
}

static apr_status_t ahead_filter(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                 apr_read_type_e block, apr_off_t readbytes)
{
    dp_conn *cn = f->ctx;
    apr_bucket_brigade *held = cn->read_ahead;

    /* a line taken whole leaves an empty bucket behind, which must not
     * count as bytes pending (httpd would take it for a pipelined request) */
    while (held && !APR_BRIGADE_EMPTY(held) && APR_BRIGADE_FIRST(held)->length == 0)
        apr_bucket_delete(APR_BRIGADE_FIRST(held));
    if (!held || APR_BRIGADE_EMPTY(held))
        return ap_get_brigade(f->next, bb, mode, block, readbytes);
    switch (mode) {
    case AP_MODE_GETLINE:
        /* the line, or what is held of it: httpd reads on for the rest */
        return apr_brigade_split_line(bb, held, block, HUGE_STRING_LEN);
    case AP_MODE_READBYTES:
        return take_held(held, bb, readbytes, 0);
    case AP_MODE_SPECULATIVE:
        return take_held(held, bb, readbytes, 1);
    default:
        return ap_get_brigade(f->next, bb, mode, block, readbytes);
    }
}

void dp_ahead_register(void)
{
    /* above mod_ssl (AP_FTYPE_CONNECTION + 5): it holds decrypted bytes */
    ahead_handle = ap_register_input_filter(AHEAD_FILTER, ahead_filter, NULL,
                                            AP_FTYPE_CONNECTION);
}

void dp_ahead_add(dp_conn *cn)
{
    cn->read_ahead = apr_brigade_create(cn->pool, cn->c->bucket_alloc);
    cn->ahead = ap_add_input_filter_handle(ahead_handle, cn, NULL, cn->c);
}

apr_off_t dp_ahead_fill(dp_conn *cn, apr_off_t want)
{
    apr_off_t have = 0;

    if (!cn->ahead)
        return -1;
    apr_brigade_length(cn->read_ahead, 1, &have);
    while (have < want) {
        apr_bucket *e;
        apr_status_t rv;

        apr_brigade_cleanup(cn->bb);
        rv = ap_get_brigade(cn->ahead->next, cn->bb, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                            want - have);
        if (APR_STATUS_IS_EAGAIN(rv) || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(cn->bb)))
            break;
        if (rv != APR_SUCCESS)
            return -1;
        for (e = APR_BRIGADE_FIRST(cn->bb); e != APR_BRIGADE_SENTINEL(cn->bb);
             e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t len;
            if (APR_BUCKET_IS_EOS(e))
                return -1;
            if (apr_bucket_read(e, &data, &len, APR_NONBLOCK_READ) != APR_SUCCESS)
                return -1;
            if (!len)
                continue;
            /* a copy the bucket allocator frees: mod_ssl's buckets point
             * into its own buffer, and the connection's pool would only grow */
            APR_BRIGADE_INSERT_TAIL(cn->read_ahead,
                                    apr_bucket_heap_create(data, len, NULL,
                                                           cn->c->bucket_alloc));
            have += (apr_off_t)len;
        }
    }
    apr_brigade_cleanup(cn->bb);
    return have;
}

void dp_ahead_peek(dp_conn *cn, char *buf, apr_size_t *len)
{
    if (apr_brigade_flatten(cn->read_ahead, buf, len) != APR_SUCCESS)
        *len = 0;
}
