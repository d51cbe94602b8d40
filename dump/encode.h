/* A raw core's Content-Encoding, done in the helper's dumping process: the
 * bytes of the core go in (a dp_sink), zstd or gzip comes out into the next
 * sink (the ring), in one zstd frame (with its content checksum) or one
 * gzip member, so that a stream cut anywhere fails `zstd -t` / `gzip -t`.
 *
 * Memory that does not compress (random, encrypted, already compressed)
 * must not slow the transfer down: each chunk of DP_ENCODE_CHUNK bytes is
 * judged by compressing a few pages of it (common/probe.h) and, when they
 * do not shrink, passed through: gzip at level 0 (stored
 * deflate blocks) for that stretch, zstd at a negative level whose blocks
 * come out raw. The level changes inside the one stream.
 *
 * Level and threads (measured on the 2-core development machine: README,
 * "Dumps", and bench/dump_bench.py): zstd on DP_ENCODE_ZSTD_THREADS threads
 * of its own beside the reading thread, gzip on one (zlib has no other).
 * Both start at their _LEVEL and then follow who sets the pace, a chunk at
 * a time: when writing on (the ring, the worker, the link) waits, the level
 * goes up, up to _MAX; when it never waits, the compressor is what limits,
 * and the level goes down, to _MIN. zstd's negative levels trade a little
 * ratio for speed, step by step; gzip's floor is 1, since its 0 (stored
 * blocks) is a cliff, five times the bytes, which the socket buffers' lag
 * made the level fall over on a slow link (README, "Dumps"). */
#ifndef DP_ENCODE_H
#define DP_ENCODE_H

#include <stddef.h>
#include "common/dp_error.h"
#include "common/sink.h"

enum dp_encoding { DP_ENC_IDENTITY = 0, DP_ENC_GZIP = 1, DP_ENC_ZSTD = 2 };

#define DP_ENCODE_ZSTD_LEVEL 1
#define DP_ENCODE_ZSTD_MIN (-4)
#define DP_ENCODE_ZSTD_MAX 6
#define DP_ENCODE_ZSTD_THREADS 2
#define DP_ENCODE_GZIP_LEVEL 1
#define DP_ENCODE_GZIP_MIN 1
#define DP_ENCODE_GZIP_MAX 6
#define DP_ENCODE_CHUNK (1u << 20)

typedef struct dp_encoder dp_encoder;

typedef struct dp_encode_opts {
    int encoding;                   /* DP_ENC_GZIP or DP_ENC_ZSTD */
    int level;                      /* 0: the default for the encoding, adapting; else fixed */
    int threads;                    /* zstd: -1 the default, 0 none (one thread) */
    /* Called when encoded bytes have waited in next for a while (the ring
     * holds a slot until it is full): pass them on now, so that a client
     * behind a proxy with a read timeout sees bytes while long stretches of
     * zeros compress to almost nothing. NULL: never. */
    int (*flush)(void *arg);
    void *flush_arg;
    /* The time next has spent blocked so far, in ns (the ring: waiting for
     * the worker to pass slots on); the level adapts to it. NULL: the level
     * stays at the default. */
    long long (*blocked_ns)(void *arg);
    void *blocked_arg;
} dp_encode_opts;

typedef struct dp_encode_stats {
    unsigned long long in, out;     /* bytes taken, bytes handed to next */
    unsigned long long stored;      /* bytes taken that were passed through */
    int level_lo, level_hi;         /* the levels the compressible chunks had */
} dp_encode_stats;

/* An encoder writing to next; *in is where the uncompressed bytes go (it
 * lends rooms: a reader fills its buffer in place). 0, or -1 with err. */
int dp_encoder_open(dp_encoder **e, const dp_encode_opts *o, dp_sink *next, dp_sink *in,
                    dp_error *err);
/* Ends the stream (the frame's end and checksum, gzip's trailer). 0, or -1
 * when next failed or the compressor did. */
int dp_encoder_finish(dp_encoder *e);
void dp_encoder_stats(const dp_encoder *e, dp_encode_stats *st);
void dp_encoder_free(dp_encoder *e);

#endif
