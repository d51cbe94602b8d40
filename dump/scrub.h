/* Scrubbing a process's environment out of a byte stream (a core written
 * without `DiagProcAllow environment`).
 *
 * The rule: every run of DP_SCRUB_MIN or more bytes that also occurs inside
 * one NAME=VALUE entry of the environment block is overwritten with zeros,
 * wherever it is in the stream (across write boundaries too), and so is every
 * whole entry of 4 to DP_SCRUB_MIN-1 bytes (`strings` shows runs of 4). That
 * covers each entry, each name and value of 8 bytes or more, and each
 * fragment of 8 bytes or more of them: a vector register holding the middle of
 * a value, a value copied to a stack. Bytes that are public anyway are not
 * secrets: a run that occurs in one of the `public` strings given (the paths
 * of the mapped files, as /proc and the link maps name them, which the
 * modules route shows and the debugger needs intact in NT_FILE and the link
 * maps) is left as it is.
 *
 * Streaming: the scrubber holds back 64 bytes (at least DP_SCRUB_MIN-1 are
 * needed) between writes and works through a buffer of DP_SCRUB_BUF bytes (passed on whole, so that a
 * transport's slots stay full), with a bit map of the bytes to zero;
 * its tables take about 40 bytes per byte of environment. */
#ifndef DP_SCRUB_H
#define DP_SCRUB_H

#include <stddef.h>
#include "common/sink.h"

#define DP_SCRUB_MIN 8
#define DP_SCRUB_SHORT_MIN 4
#define DP_SCRUB_ENV_MAX (16u << 20)    /* a larger block is refused (never seen: ARG_MAX) */
#define DP_SCRUB_BUF (1u << 20)

typedef struct dp_scrub dp_scrub;

/* env: the environment block as the kernel keeps it (NUL-separated entries);
 * public: npublic strings whose runs are left alone. NULL when out of memory
 * or env_len > DP_SCRUB_ENV_MAX. */
dp_scrub *dp_scrub_new(const char *env, size_t env_len, const char *const *public,
                       size_t npublic);
void dp_scrub_free(dp_scrub *s);
/* Whether the look-up of the environment's pieces may use the CPU's vector
 * unit (AVX2), when it has one: on by default; tests compare both ways. */
void dp_scrub_use_simd(dp_scrub *s, int on);

/* Scrub one self-contained buffer in place; returns the bytes zeroed. */
size_t dp_scrub_buffer(dp_scrub *s, void *buf, size_t len);

/* A sink that scrubs what it is given in its own buffer and only then
 * writes it on to next (never in a room next lends: that may be memory
 * another process reads); it lends rooms itself. Bytes reach next late (64
 * are held back): dp_scrub_flush ends the stream and passes the rest.
 * Writes and flush return next's answer. */
void dp_scrub_sink(dp_scrub *s, dp_sink *next, dp_sink *out);
int dp_scrub_flush(dp_scrub *s);

/* Bytes zeroed since dp_scrub_new (the audit line's figure). */
unsigned long long dp_scrub_zeroed(const dp_scrub *s);

#endif
