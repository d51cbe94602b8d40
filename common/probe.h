/* Whether a stretch of bytes is worth compressing: a few of its pages
 * through zstd's level 1, which takes microseconds. Memory that does not
 * shrink (random, encrypted, already compressed) is then passed through
 * (stored) instead of costing a compressor's full effort for nothing: the
 * raw core's Content-Encoding in the helper (dump/encode.c) and the zip
 * bundle's deflate in the worker (worker/zip.c) both ask. */
#ifndef DP_PROBE_H
#define DP_PROBE_H

#include <stddef.h>

#define DP_PROBE_PAGE 4096      /* a probe: one page... */
#define DP_PROBE_PAGES 4        /* ...at each quarter of the stretch */

typedef struct dp_probe dp_probe;

/* NULL when out of memory. */
dp_probe *dp_probe_new(void);
void dp_probe_free(dp_probe *pr);
/* 1 when the stretch would shrink by more than 1/16 (or is too short to
 * judge, or the probe fails), 0 when it is better passed through. */
int dp_probe_compresses(dp_probe *pr, const void *p, size_t len);

#endif
