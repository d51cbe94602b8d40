/* A raw core's Content-Encoding: see dump/encode.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>
#include "common/probe.h"
#include "dump/encode.h"
#include "common/clock.h"

#define OUT_SIZE (256u * 1024)
#define FLUSH_NS 200000000LL        /* encoded bytes wait at most this in the ring */
/* The level follows who sets the pace: when the next sink has been
 * blocked (waiting for the link) more than a quarter of the time, the next
 * chunk goes up one level; less than a thirty-second, down one (the
 * compressor is slower than the link). The share is averaged over the last
 * few chunks: output comes out in bursts (zlib's buffer, zstd's jobs). */
#define WAIT_UP 4
#define WAIT_DOWN 32
#define SHARE_ONE 1024              /* the averaged share's fixed point */

struct dp_encoder {
    dp_encode_opts o;
    dp_sink *next;
    unsigned char *in;              /* DP_ENCODE_CHUNK bytes: the chunk being filled */
    size_t n;                       /* bytes in it */
    unsigned char *out;             /* OUT_SIZE bytes of encoded output */
    dp_probe *probe;
    ZSTD_CCtx *zc;
    z_stream z;
    int zlib_ready;
    int stored;                     /* the stretch being encoded is passed through */
    int lvl;                        /* the level of a stretch that compresses */
    long long blocked, mark;        /* next's blocked ns, and the time, at the last chunk */
    long long share;                /* blocked share of the time, averaged (SHARE_ONE = all) */
    int failed;
    long long since;                /* CLOCK_MONOTONIC ns: next holds bytes since then */
    int pending;                    /* next holds bytes it was not told to flush */
    dp_encode_stats st;
};

static int emit(dp_encoder *e, size_t len)
{
    if (!len)
        return 0;
    e->st.out += len;
    if (!e->pending) {
        e->pending = 1;
        e->since = dp_mono_ns();
    }
    if (dp_sink_write(e->next, e->out, len) != 0)
        return e->failed = -1;
    return 0;
}

static int zlib_level(dp_encoder *e, int lvl);

static int level(const dp_encoder *e, int stored)
{
    if (e->o.encoding == DP_ENC_GZIP)
        return stored ? 0 : e->lvl;
    /* the lowest level does no matching: its blocks come out raw */
    return stored ? ZSTD_minCLevel() : e->lvl;
}

/* The next chunk's level, from how long next was blocked since the last
 * (a fixed level, o.level, or a next that does not tell, stays). */
static void adapt(dp_encoder *e)
{
    int lo = e->o.encoding == DP_ENC_GZIP ? DP_ENCODE_GZIP_MIN : DP_ENCODE_ZSTD_MIN;
    int hi = e->o.encoding == DP_ENC_GZIP ? DP_ENCODE_GZIP_MAX : DP_ENCODE_ZSTD_MAX;
    long long now = dp_mono_ns(), span = now - e->mark, blocked;

    if (e->o.level || !e->o.blocked_ns || span <= 0)
        return;
    blocked = e->o.blocked_ns(e->o.blocked_arg);
    e->share = (3 * e->share + (blocked - e->blocked) * SHARE_ONE / span) / 4;
    if (e->share * WAIT_UP > SHARE_ONE && e->lvl < hi)
        e->lvl++;
    else if (e->share * WAIT_DOWN < SHARE_ONE && e->lvl > lo)
        e->lvl--;
    e->blocked = blocked;
    e->mark = now;
}

static int set_level(dp_encoder *e, int lvl)
{
    return e->o.encoding == DP_ENC_ZSTD
           ? (ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_compressionLevel, lvl))
              ? (e->failed = -1) : 0)
           : zlib_level(e, lvl);
}

static int zstd_feed(dp_encoder *e, const void *p, size_t len, ZSTD_EndDirective how)
{
    ZSTD_inBuffer in = { p, len, 0 };
    size_t left;

    do {
        ZSTD_outBuffer out = { e->out, OUT_SIZE, 0 };
        left = ZSTD_compressStream2(e->zc, &out, &in, how);
        if (ZSTD_isError(left) || emit(e, out.pos) != 0)
            return e->failed = -1;
    } while (in.pos < in.size || (how != ZSTD_e_continue && left));
    return 0;
}

static int zlib_feed(dp_encoder *e, const void *p, size_t len, int how)
{
    int rc;

    e->z.next_in = (Bytef *)(uintptr_t)p;
    e->z.avail_in = (uInt)len;
    do {
        e->z.next_out = e->out;
        e->z.avail_out = OUT_SIZE;
        rc = deflate(&e->z, how);
        if ((rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            || emit(e, OUT_SIZE - e->z.avail_out) != 0)
            return e->failed = -1;
    } while (e->z.avail_in || (how != Z_NO_FLUSH && e->z.avail_out == 0)
             || (how == Z_FINISH && rc != Z_STREAM_END));
    return 0;
}

/* zlib compresses what it holds at the old level before it changes, and
 * needs room for that. */
static int zlib_level(dp_encoder *e, int lvl)
{
    int rc;

    do {
        e->z.next_out = e->out;
        e->z.avail_out = OUT_SIZE;
        rc = deflateParams(&e->z, lvl, Z_DEFAULT_STRATEGY);
        if ((rc != Z_OK && rc != Z_BUF_ERROR) || emit(e, OUT_SIZE - e->z.avail_out) != 0)
            return e->failed = -1;
    } while (rc == Z_BUF_ERROR);
    return 0;
}

/* The chunk in e->in, judged, then encoded at its level. */
static int encode_chunk(dp_encoder *e)
{
    int stored = !dp_probe_compresses(e->probe, e->in, e->n), was = level(e, e->stored), rc;

    adapt(e);
    e->stored = stored;
    /* zstd applies it from its next job on (threads only: on one thread a
     * frame keeps its level, and zstd's own look at each block, which emits
     * raw ones for such data, is what remains); zlib ends the deflate block */
    if (level(e, stored) != was && set_level(e, level(e, stored)) != 0)
        return -1;
    if (!stored) {
        if (!e->st.in || e->lvl < e->st.level_lo)
            e->st.level_lo = e->lvl;
        if (e->lvl > e->st.level_hi)
            e->st.level_hi = e->lvl;
    }
    e->st.in += e->n;
    if (stored)
        e->st.stored += e->n;
    rc = e->o.encoding == DP_ENC_ZSTD ? zstd_feed(e, e->in, e->n, ZSTD_e_continue)
                                      : zlib_feed(e, e->in, e->n, Z_NO_FLUSH);
    e->n = 0;
    if (rc == 0 && e->o.flush && e->pending && dp_mono_ns() - e->since > FLUSH_NS) {
        e->pending = 0;
        rc = e->o.flush(e->o.flush_arg);
    }
    return rc;
}

static void *enc_reserve(dp_sink *s, size_t want, size_t *room)
{
    dp_encoder *e = s->ctx;

    if (e->failed || (DP_ENCODE_CHUNK - e->n < want && encode_chunk(e) != 0))
        return NULL;
    *room = DP_ENCODE_CHUNK - e->n;
    return e->in + e->n;
}

static int enc_commit(dp_sink *s, size_t n)
{
    dp_encoder *e = s->ctx;

    e->n += n;
    return e->n == DP_ENCODE_CHUNK ? encode_chunk(e) : 0;
}

static int enc_write(dp_sink *s, const void *buf, size_t len)
{
    dp_encoder *e = s->ctx;
    const unsigned char *p = buf;

    while (len) {
        size_t k = DP_ENCODE_CHUNK - e->n < len ? DP_ENCODE_CHUNK - e->n : len;
        if (e->failed)
            return -1;
        memcpy(e->in + e->n, p, k);
        p += k;
        len -= k;
        if (enc_commit(s, k) != 0)
            return -1;
    }
    return 0;
}

static int zstd_open(dp_encoder *e)
{
    int threads = e->o.threads < 0 ? DP_ENCODE_ZSTD_THREADS : e->o.threads;

    if (!(e->zc = ZSTD_createCCtx())
        || ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_compressionLevel, level(e, 0)))
        || ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_checksumFlag, 1)))
        return -1;
    /* a libzstd without threads says so here: then it compresses on ours.
     * One job per chunk: a job takes the level in force when it is cut, so
     * a chunk's level applies to exactly that chunk */
    if (threads > 0 && !ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_nbWorkers, threads)))
        ZSTD_CCtx_setParameter(e->zc, ZSTD_c_jobSize, DP_ENCODE_CHUNK);
    return 0;
}

int dp_encoder_open(dp_encoder **out, const dp_encode_opts *o, dp_sink *next, dp_sink *in,
                    dp_error *err)
{
    dp_encoder *e = calloc(1, sizeof(*e));

    *out = e;
    if (!e || (o->encoding != DP_ENC_ZSTD && o->encoding != DP_ENC_GZIP))
        return dp_fail(err, 500, "Unknown content coding %d.", e ? o->encoding : -1);
    e->o = *o;
    e->next = next;
    e->lvl = o->level ? o->level : o->encoding == DP_ENC_GZIP ? DP_ENCODE_GZIP_LEVEL
                                                               : DP_ENCODE_ZSTD_LEVEL;
    e->st.level_lo = e->st.level_hi = e->lvl;
    e->mark = dp_mono_ns();
    e->share = SHARE_ONE / 8;       /* neither way, to begin with */
    e->blocked = o->blocked_ns ? o->blocked_ns(o->blocked_arg) : 0;
    e->in = malloc(DP_ENCODE_CHUNK);
    e->out = malloc(OUT_SIZE);
    e->probe = dp_probe_new();
    if (!e->in || !e->out || !e->probe)
        return dp_fail(err, 500, "Out of memory for the compressor.");
    if (o->encoding == DP_ENC_ZSTD && zstd_open(e) != 0)
        return dp_fail(err, 500, "zstd could not be set up.");
    if (o->encoding == DP_ENC_GZIP) {
        /* windowBits 15 + 16: a gzip member, with its CRC-32 and length */
        if (deflateInit2(&e->z, level(e, 0), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return dp_fail(err, 500, "zlib could not be set up.");
        e->zlib_ready = 1;
    }
    memset(in, 0, sizeof(*in));
    in->write = enc_write;
    in->ctx = e;
    in->reserve = enc_reserve;
    in->commit = enc_commit;
    return 0;
}

int dp_encoder_finish(dp_encoder *e)
{
    if (e->failed || (e->n && encode_chunk(e) != 0))
        return -1;
    return e->o.encoding == DP_ENC_ZSTD ? zstd_feed(e, NULL, 0, ZSTD_e_end)
                                        : zlib_feed(e, NULL, 0, Z_FINISH);
}

void dp_encoder_stats(const dp_encoder *e, dp_encode_stats *st)
{
    *st = e->st;
}

void dp_encoder_free(dp_encoder *e)
{
    if (!e)
        return;
    ZSTD_freeCCtx(e->zc);
    dp_probe_free(e->probe);
    if (e->zlib_ready)
        deflateEnd(&e->z);
    free(e->in);
    free(e->out);
    free(e);
}
