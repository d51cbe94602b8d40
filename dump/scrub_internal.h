/* The scrubber's tables and stream state, shared by scrub.c (building the
 * tables, the stream, short entries) and scrub_scan.c (the search for the
 * environment's windows). Nothing outside dump/scrub*.c includes it. */
#ifndef DP_SCRUB_INTERNAL_H
#define DP_SCRUB_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "dump/scrub.h"

/* The bytes held back between two passes: a later window may still cover
 * the last DP_SCRUB_MIN-1 of them. 64, not 7, so that the bytes after them
 * start on a cache line: a reader writing there (the core writer reading
 * the target's memory into it) copies at full speed, where an odd address
 * made the kernel's copy to user space 2.5 times slower. Their marks fit
 * one uint64_t. */
#define HOLD 64
#define CAP DP_SCRUB_BUF            /* the buffer the stream goes through */
#define GRAM 4                      /* the skip filter's unit */

typedef struct keyset {
    uint64_t *slot;                 /* 0 = empty; no key is 0 */
    size_t mask, n;
} keyset;

typedef struct short_entry {
    unsigned char bytes[DP_SCRUB_MIN];
    unsigned len, anchor;           /* anchor: offset of its first '=' (else 0) */
} short_entry;

struct dp_scrub {
    keyset full;                    /* 8-byte windows of the entries */
    uint64_t *grams;                /* bit set: 4-byte pieces of those windows */
    unsigned char cls[2][16];       /* the bytes those windows hold, as pshufb tables:
                                       bit h&7 of cls[h>>3][lo] for the byte h<<4|lo */
    int simd;                       /* scan with AVX2 */
    uint64_t *wins;                 /* bit set: the windows, before the table */
    unsigned gram_bits;             /* both bit sets' size, log2 */
    short_entry *shorts;            /* whole entries of 4..7 bytes */
    size_t nshorts;
    unsigned char *buf;             /* CAP bytes: the stream, scrubbed here before it goes on */
    uint64_t *mark;                 /* CAP bits: which of its bytes to zero */
    size_t n;                       /* bytes in buf */
    size_t mark_lo, mark_hi;        /* marks lie in [mark_lo, mark_hi) */
    dp_sink *next;
    unsigned long long zeroed;
};

static inline size_t slot_of(const keyset *k, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 32) & k->mask;
}

static inline int keyset_has(const keyset *k, uint64_t key)
{
    size_t i = slot_of(k, key);
    while (k->slot[i]) {
        if (k->slot[i] == key)
            return 1;
        i = (i + 1) & k->mask;
    }
    return 0;
}

static inline uint64_t window(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    return w;
}

static inline size_t gram_of(const dp_scrub *s, const unsigned char *p)
{
    uint32_t g;
    memcpy(&g, p, sizeof(g));
    return (size_t)((g * 0x9E3779B1u) >> (32 - s->gram_bits));
}

static inline int gram_in(const dp_scrub *s, const unsigned char *p)
{
    size_t h = gram_of(s, p);
    return (int)(s->grams[h / 64] >> (h % 64) & 1);
}

static inline size_t win_of(const dp_scrub *s, uint64_t w)
{
    return (size_t)((w * 0xC2B2AE3D27D4EB4FULL) >> (64 - s->gram_bits));
}

/* The bit set answers most misses (memory made of one repeated piece of
 * the environment would otherwise cost a table probe per byte). */
static inline int window_in(const dp_scrub *s, uint64_t w)
{
    size_t h = win_of(s, w);
    return (s->wins[h / 64] >> (h % 64) & 1) && keyset_has(&s->full, w);
}

static inline void dp_scrub_mark(dp_scrub *s, size_t from, size_t len)
{
    size_t k = from, end = from + len;

    while (k < end) {                   /* a word's worth of bits at a time */
        size_t n = 64 - k % 64 < end - k ? 64 - k % 64 : end - k;
        s->mark[k / 64] |= (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << (k % 64);
        k += n;
    }
    if (from < s->mark_lo)
        s->mark_lo = from;
    if (from + len > s->mark_hi)
        s->mark_hi = from + len;
}

/* Marks every window that starts in buf at or before last and is in the
 * set (scrub_scan.c). */
void dp_scrub_scan_windows(dp_scrub *s, size_t last);
/* Whether this CPU runs the AVX2 scan. */
int dp_scrub_cpu_avx2(void);

#endif
