/* The scrubber's search for the environment's 8-byte windows in a buffer
 * (see dump/scrub.h for the rule, scrub_internal.h for the tables).
 *
 * A core is mostly memory that holds no piece of the environment, so the
 * search is built to pass over that fast, 64 window starts at a time:
 * - a window can only be one of the environment's when its 8 bytes are all
 *   bytes that its windows hold (no NUL, most of the byte values absent):
 *   with AVX2, 32 bytes are classified in a few instructions (two nibble
 *   tables, as in Hyperscan's Teddy) and the starts of runs of 8 such
 *   bytes found with shifts; zero pages, pointers and binary data have none;
 * - a window that is one holds the word (4 bytes) of the buffer's 4-byte
 *   grid that begins in its first four bytes, and that word is a piece of
 *   the environment (a bit set of them, 64 bits per window): looked up for
 *   the 17 words a block's starts can hold, eight at a time with AVX2;
 * - what is left is looked up whole: a bit set of the windows, then their
 *   hash table. */
#include <stdint.h>
#include <string.h>
#include "dump/scrub_internal.h"

/* Where a search is: the last window looked up and its answer (a run of one
 * repeated byte asks the same question at every step), and the end of the
 * bytes marked so far (overlapping windows mark only what is new). */
typedef struct scan_state {
    uint64_t prev;                  /* 0: no window (they hold no NUL) */
    int prev_in;
    size_t marked_end;
} scan_state;

static inline void check_window(dp_scrub *s, size_t o, scan_state *ss)
{
    uint64_t w = window(s->buf + o);

    if (w != ss->prev) {
        ss->prev = w;
        ss->prev_in = window_in(s, w);
    }
    if (ss->prev_in) {
        size_t from = o > ss->marked_end ? o : ss->marked_end;
        if (from < o + DP_SCRUB_MIN)
            dp_scrub_mark(s, from, o + DP_SCRUB_MIN - from);
        ss->marked_end = o + DP_SCRUB_MIN;
    }
}

/* Bit k: the word at p + 4k is a piece of the environment (k < 16). */
static unsigned grams16(const dp_scrub *s, const unsigned char *p)
{
    unsigned hits = 0, k;

    for (k = 0; k < 16; k++)
        hits |= (unsigned)gram_in(s, p + 4 * k) << k;
    return hits;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SCAN_AVX2 1

__attribute__((target("avx2")))
static unsigned grams16_avx2(const dp_scrub *s, const unsigned char *p)
{
    const __m256i mul = _mm256_set1_epi32((int)0x9E3779B1u), one = _mm256_set1_epi32(1);
    const __m256i low5 = _mm256_set1_epi32(31);
    const __m128i shift = _mm_cvtsi32_si128((int)(32 - s->gram_bits));
    unsigned hits = 0, half;

    for (half = 0; half < 2; half++) {
        __m256i g = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * half));
        __m256i h = _mm256_srl_epi32(_mm256_mullo_epi32(g, mul), shift);
        __m256i w = _mm256_i32gather_epi32((const int *)(const void *)s->grams,
                                           _mm256_srli_epi32(h, 5), 4);
        __m256i bit = _mm256_and_si256(_mm256_srlv_epi32(w, _mm256_and_si256(h, low5)), one);
        hits |= (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(
                    _mm256_cmpeq_epi32(bit, one))) << (8 * half);
    }
    return hits;
}

/* Bit i: byte p[i] is one the environment's windows hold (i < 64). */
__attribute__((target("avx2"), always_inline))
static inline uint64_t class64_avx2(const dp_scrub *s, const unsigned char *p)
{
    const __m256i lo_tab = _mm256_broadcastsi128_si256(
                               _mm_loadu_si128((const __m128i *)(const void *)s->cls[0]));
    const __m256i hi_tab = _mm256_broadcastsi128_si256(
                               _mm_loadu_si128((const __m128i *)(const void *)s->cls[1]));
    const __m256i bits = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32,
                                          64, -128, 1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8,
                                          16, 32, 64, -128);
    const __m256i nib = _mm256_set1_epi8(15);
    uint64_t m = 0;
    unsigned half;

    for (half = 0; half < 2; half++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * half));
        __m256i lo = _mm256_and_si256(x, nib);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
        /* the top bit of x picks the table of the high half */
        __m256i row = _mm256_blendv_epi8(_mm256_shuffle_epi8(lo_tab, lo),
                                         _mm256_shuffle_epi8(hi_tab, lo), x);
        __m256i bit = _mm256_shuffle_epi8(bits, hi);
        __m256i in = _mm256_cmpeq_epi8(_mm256_and_si256(row, bit), bit);
        m |= (uint64_t)(uint32_t)_mm256_movemask_epi8(in) << (32 * half);
    }
    return m;
}
#endif

int dp_scrub_cpu_avx2(void)
{
#ifdef SCAN_AVX2
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* Bit i: the start p + i holds, in its first four bytes, a word of the
 * grid that is a piece of the environment (the words at p .. p + 64). */
static uint64_t gram_starts(const dp_scrub *s, const unsigned char *p)
{
    unsigned words;
    uint64_t starts = 0;

#ifdef SCAN_AVX2
    words = s->simd ? grams16_avx2(s, p) : grams16(s, p);
#else
    words = grams16(s, p);
#endif
    /* the word at p + 4k begins in the starts p + 4k - 3 .. p + 4k */
    for (; words; words &= words - 1) {
        unsigned k = (unsigned)__builtin_ctz(words);
        starts |= (k ? 0xfULL << (4 * k - 3) : 1ULL);
    }
    if (gram_in(s, p + 64))
        starts |= 7ULL << 61;
    return starts;
}

/* Starts whose 8 bytes are all of the environment's bytes: 64 of them at p,
 * from the classes of the bytes at p (cur) and at p + 64 (next). */
static inline uint64_t run_starts(uint64_t cur, uint64_t next)
{
    unsigned __int128 m = (unsigned __int128)next << 64 | cur;

    m &= m >> 1;
    m &= m >> 2;
    m &= m >> 4;
    return (uint64_t)m;
}

/* 72 bytes of one repeated value (memory set with memset: the scrubber's
 * worst case when that byte's run is a piece of the environment). */
static int one_byte(const unsigned char *b)
{
    uint64_t w = window(b), k;

    if (w != (b[0] * 0x0101010101010101ULL))
        return 0;
    for (k = 8; k < 72; k += 8)
        if (window(b + k) != w)
            return 0;
    return 1;
}

static void check_starts(dp_scrub *s, size_t p, uint64_t cand, scan_state *ss)
{
    /* every window of such a block is the one window: one look-up, and the
     * 72 bytes marked at once when it is in the set */
    if (cand == ~0ULL && one_byte(s->buf + p)) {
        check_window(s, p, ss);
        if (ss->prev_in) {
            dp_scrub_mark(s, ss->marked_end, p + 64 + DP_SCRUB_MIN - 1 - ss->marked_end);
            ss->marked_end = p + 64 + DP_SCRUB_MIN - 1;
        }
        return;
    }
    for (cand &= gram_starts(s, s->buf + p); cand; cand &= cand - 1)
        check_window(s, p + (size_t)__builtin_ctzll(cand), ss);
}

#ifdef SCAN_AVX2
/* The blocks of 64 starts that have 64 bytes after them; returns where it
 * stopped. */
__attribute__((target("avx2")))
static size_t scan_avx2(dp_scrub *s, size_t n, scan_state *ss)
{
    const unsigned char *b = s->buf;
    uint64_t cur = class64_avx2(s, b), next, cand;
    size_t p;

    for (p = 0; p + 128 <= n; p += 64, cur = next) {
        next = class64_avx2(s, b + p + 64);
        if ((cand = run_starts(cur, next)) != 0)
            check_starts(s, p, cand, ss);
    }
    return p;
}
#endif

void dp_scrub_scan_windows(dp_scrub *s, size_t last)
{
    size_t n = last + DP_SCRUB_MIN, p = 0;
    scan_state ss = { 0, 0, 0 };

#ifdef SCAN_AVX2
    if (s->simd && n >= 128)
        p = scan_avx2(s, n, &ss);
#endif
    /* a block's starts need 72 bytes: 64 starts, 8 bytes for the last */
    for (; p + 72 <= n; p += 64)
        check_starts(s, p, ~0ULL, &ss);
    for (; p <= last; p++)
        check_window(s, p, &ss);
}
