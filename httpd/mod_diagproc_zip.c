/* The DIAGPROC_ZIP output filter (see mod_diagproc_zip.h), shaped like
 * mod_deflate's: one bucket at a time, a bounded buffer (the zip writer's),
 * FLUSH passed on after a sync flush, EOS finishing the archive. */
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_log.h"
#include "httpd/mod_diagproc_zip.h"
#include "worker/zip.h"

APLOG_USE_MODULE(diagproc);

/* ------------------------------------------------------ the entry bucket */

typedef struct dp_zip_entry {
    apr_bucket_refcount refcount;
    apr_int64_t mtime;
    unsigned mode;
    char name[1];                   /* allocated to length */
} dp_zip_entry;

static apr_status_t entry_read(apr_bucket *b, const char **str, apr_size_t *len,
                               apr_read_type_e block)
{
    (void)b;
    (void)block;
    *str = NULL;
    *len = 0;
    return APR_SUCCESS;
}

static void entry_destroy(void *data)
{
    if (apr_bucket_shared_destroy(data))
        apr_bucket_free(data);
}

const apr_bucket_type_t dp_bucket_type_zip_entry = {
    "DIAGPROC_ZIP_ENTRY", 5, APR_BUCKET_METADATA,
    entry_destroy,
    entry_read,
    apr_bucket_setaside_noop,
    apr_bucket_split_notimpl,
    apr_bucket_shared_copy
};

apr_bucket *dp_zip_entry_bucket_create(const char *name, apr_int64_t mtime, unsigned mode,
                                       apr_bucket_alloc_t *list)
{
    apr_bucket *b = apr_bucket_alloc(sizeof(*b), list);
    size_t n = strlen(name);
    dp_zip_entry *h = apr_bucket_alloc(sizeof(*h) + n, list);

    memcpy(h->name, name, n + 1);
    h->mtime = mtime;
    h->mode = mode;
    APR_BUCKET_INIT(b);
    b->free = apr_bucket_free;
    b->list = list;
    b = apr_bucket_shared_make(b, h, 0, 0);
    b->type = &dp_bucket_type_zip_entry;
    return b;
}

/* ------------------------------------------------------------ the filter */

typedef struct zip_ctx {
    dp_zip *zip;
    dp_sink sink;
    ap_filter_t *f;
    apr_bucket_brigade *out;        /* reused for every pass */
    apr_status_t rv;                /* first failure passing down */
    int failed;                     /* no central directory: error seen or writer failed */
    int error_seen;                 /* the handler's error bucket went down */
    int done;                       /* EOS passed, or the client is gone: drop the rest */
} zip_ctx;

/* The writer's sink: each full buffer (64 KiB) goes down the chain at
 * once, so the filter never holds more than that. */
static int pass_down(dp_sink *s, const void *buf, size_t len)
{
    zip_ctx *ctx = s->ctx;
    ap_filter_t *f = ctx->f;
    apr_bucket *b = apr_bucket_heap_create(buf, len, NULL, f->c->bucket_alloc);

    APR_BRIGADE_INSERT_TAIL(ctx->out, b);
    ctx->rv = ap_pass_brigade(f->next, ctx->out);
    apr_brigade_cleanup(ctx->out);
    if (ctx->rv == APR_SUCCESS && f->c->aborted)
        ctx->rv = APR_ECONNABORTED;
    return ctx->rv == APR_SUCCESS ? 0 : -1;
}

static int zip_level(request_rec *r)
{
    const char *s = r ? apr_table_get(r->notes, "diagproc-zip-level") : NULL;
    return s && s[0] >= '0' && s[0] <= '9' && !s[1] ? s[0] - '0' : -1;
}

static zip_ctx *zip_start(ap_filter_t *f)
{
    request_rec *r = f->r;
    apr_pool_t *p = r ? r->pool : f->c->pool;
    zip_ctx *ctx = apr_pcalloc(p, sizeof(*ctx));
    dp_zip_opts o = { .level = zip_level(r) };
    dp_error err = { 0 };

    ctx->f = f;
    ctx->out = apr_brigade_create(p, f->c->bucket_alloc);
    ctx->sink.write = pass_down;
    ctx->sink.ctx = ctx;
    if (r) {
        /* the length changes, and deflating a zip again only costs time */
        apr_table_unset(r->headers_out, "Content-Length");
        apr_table_unset(r->headers_out, "Content-MD5");
        apr_table_setn(r->subprocess_env, "no-gzip", "1");
    }
    if (dp_zip_open(&ctx->zip, &ctx->sink, &o, p, &err) != 0) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, f->c, DPLOGNO(00020) "zip: %s", err.msg);
        ctx->failed = 1;
    }
    return ctx;
}

/* Ends the response as incomplete: an error bucket (chunking then omits the
 * last chunk) and EOS, with no central directory. */
static apr_status_t zip_fail(zip_ctx *ctx, const char *why)
{
    ap_filter_t *f = ctx->f;

    ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, f->c, DPLOGNO(00021)
                  "zip stream abandoned, the client gets a truncated response: %s", why);
    if (ctx->zip)
        dp_zip_abort(ctx->zip);
    ctx->failed = ctx->done = 1;
    APR_BRIGADE_INSERT_TAIL(ctx->out, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL,
                                                             f->r ? f->r->pool : f->c->pool,
                                                             f->c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(ctx->out, apr_bucket_eos_create(f->c->bucket_alloc));
    ctx->rv = ap_pass_brigade(f->next, ctx->out);
    apr_brigade_cleanup(ctx->out);
    return ctx->rv;
}

/* Moves a metadata bucket (FLUSH, EOS, error, others) down the chain. */
static apr_status_t pass_bucket(zip_ctx *ctx, apr_bucket *e)
{
    APR_BUCKET_REMOVE(e);
    APR_BRIGADE_INSERT_TAIL(ctx->out, e);
    ctx->rv = ap_pass_brigade(ctx->f->next, ctx->out);
    apr_brigade_cleanup(ctx->out);
    return ctx->rv;
}

static const char *zip_why(zip_ctx *ctx)
{
    const dp_error *e = dp_zip_error(ctx->zip);
    return e->msg[0] ? e->msg : "the zip writer failed";
}

static apr_status_t on_entry(zip_ctx *ctx, apr_bucket *e)
{
    const dp_zip_entry *h = e->data;

    if (ctx->failed || dp_zip_begin(ctx->zip, h->name, h->mtime, h->mode) == 0) {
        apr_bucket_delete(e);
        return APR_SUCCESS;
    }
    apr_bucket_delete(e);
    return ctx->rv != APR_SUCCESS ? ctx->rv : zip_fail(ctx, zip_why(ctx));
}

static apr_status_t on_data(zip_ctx *ctx, apr_bucket *e)
{
    const char *data;
    apr_size_t len;
    apr_status_t rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);

    if (rv != APR_SUCCESS) {
        apr_bucket_delete(e);
        return zip_fail(ctx, "a data bucket could not be read");
    }
    if (!ctx->failed && len && dp_zip_write(ctx->zip, data, len) != 0) {
        apr_bucket_delete(e);
        return ctx->rv != APR_SUCCESS ? ctx->rv : zip_fail(ctx, zip_why(ctx));
    }
    apr_bucket_delete(e);
    return APR_SUCCESS;
}

static apr_status_t on_eos(zip_ctx *ctx, apr_bucket *e)
{
    if (ctx->failed && !ctx->error_seen) {
        apr_bucket_delete(e);
        return zip_fail(ctx, "the zip writer could not start");
    }
    if (!ctx->failed && dp_zip_finish(ctx->zip) != 0) {
        apr_bucket_delete(e);
        return ctx->rv != APR_SUCCESS ? ctx->rv : zip_fail(ctx, zip_why(ctx));
    }
    ctx->done = 1;
    return pass_bucket(ctx, e);
}

static apr_status_t on_flush(zip_ctx *ctx, apr_bucket *e)
{
    if (!ctx->failed && dp_zip_flush(ctx->zip) != 0) {
        /* zlib itself failing is no reason to go on as if flushed */
        apr_bucket_delete(e);
        return ctx->rv != APR_SUCCESS ? ctx->rv : zip_fail(ctx, zip_why(ctx));
    }
    return pass_bucket(ctx, e);
}

/* The handler's error bucket: the archive stays without a directory. */
static apr_status_t on_error(zip_ctx *ctx, apr_bucket *e)
{
    if (ctx->zip)
        dp_zip_abort(ctx->zip);
    ctx->failed = ctx->error_seen = 1;
    return pass_bucket(ctx, e);
}

static apr_status_t zip_out_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    zip_ctx *ctx = f->ctx;
    apr_status_t rv = APR_SUCCESS;

    if (APR_BRIGADE_EMPTY(bb))
        return APR_SUCCESS;
    if (!ctx)
        ctx = f->ctx = zip_start(f);
    while (!APR_BRIGADE_EMPTY(bb) && rv == APR_SUCCESS) {
        apr_bucket *e = APR_BRIGADE_FIRST(bb);

        if (ctx->done)
            apr_bucket_delete(e);
        else if (DP_BUCKET_IS_ZIP_ENTRY(e))
            rv = on_entry(ctx, e);
        else if (APR_BUCKET_IS_EOS(e))
            rv = on_eos(ctx, e);
        else if (APR_BUCKET_IS_FLUSH(e))
            rv = on_flush(ctx, e);
        else if (AP_BUCKET_IS_ERROR(e))
            rv = on_error(ctx, e);
        else if (APR_BUCKET_IS_METADATA(e))
            rv = pass_bucket(ctx, e);
        else
            rv = on_data(ctx, e);
    }
    if (rv != APR_SUCCESS) {
        /* the client is gone (or the chain below failed): drop the rest */
        ctx->done = ctx->failed = 1;
        if (ctx->zip)
            dp_zip_abort(ctx->zip);
        apr_brigade_cleanup(bb);
    }
    return rv;
}

void dp_zip_filter_register(apr_pool_t *p)
{
    (void)p;
    ap_register_output_filter(DP_ZIP_FILTER, zip_out_filter, NULL, AP_FTYPE_RESOURCE);
}
