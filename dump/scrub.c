/* Scrubbing the environment out of a stream: see dump/scrub.h.
 *
 * Every run of 8 bytes is one uint64_t, so the matcher is a hash set of the
 * environment's 8-byte windows: a byte of the stream is zeroed when some
 * window of the stream that covers it is in the set. A run shorter than 8
 * bytes cannot be told apart from ordinary data, except a whole short entry
 * (`TZ=UTC`), looked for by its '='. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* memmem */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dump/scrub.h"

#define HOLD (DP_SCRUB_MIN - 1)     /* the bytes a later window may still cover */
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
    uint64_t *wins;                 /* bit set: the windows, before the table */
    unsigned gram_bits;             /* both bit sets' size, log2 */
    short_entry *shorts;            /* whole entries of 4..7 bytes */
    size_t nshorts;
    unsigned char *buf;             /* CAP bytes: the stream */
    uint64_t *mark;                 /* CAP bits: which of its bytes to zero */
    size_t n;                       /* bytes in buf */
    size_t mark_lo, mark_hi;        /* marks lie in [mark_lo, mark_hi) */
    dp_sink *next;
    unsigned long long zeroed;
};

static size_t slot_of(const keyset *k, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 32) & k->mask;
}

static int keyset_init(keyset *k, size_t most)
{
    size_t cap = 16;
    while (cap < most * 2)
        cap *= 2;
    k->slot = calloc(cap, sizeof(*k->slot));
    k->mask = cap - 1;
    k->n = 0;
    return k->slot ? 0 : -1;
}

static int keyset_has(const keyset *k, uint64_t key)
{
    size_t i = slot_of(k, key);
    while (k->slot[i]) {
        if (k->slot[i] == key)
            return 1;
        i = (i + 1) & k->mask;
    }
    return 0;
}

static void keyset_add(keyset *k, uint64_t key)
{
    size_t i = slot_of(k, key);
    while (k->slot[i]) {
        if (k->slot[i] == key)
            return;
        i = (i + 1) & k->mask;
    }
    k->slot[i] = key;
    k->n++;
}

static uint64_t window(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    return w;
}

static size_t gram_of(const dp_scrub *s, const unsigned char *p)
{
    uint32_t g;
    memcpy(&g, p, sizeof(g));
    return (size_t)((g * 0x9E3779B1u) >> (32 - s->gram_bits));
}

static int gram_in(const dp_scrub *s, const unsigned char *p)
{
    size_t h = gram_of(s, p);
    return (int)(s->grams[h / 64] >> (h % 64) & 1);
}

static size_t win_of(const dp_scrub *s, uint64_t w)
{
    return (size_t)((w * 0xC2B2AE3D27D4EB4FULL) >> (64 - s->gram_bits));
}

/* The bit set answers most misses (memory made of one repeated piece of
 * the environment would otherwise cost a table probe per byte). */
static int window_in(const dp_scrub *s, uint64_t w)
{
    size_t h = win_of(s, w);
    return (s->wins[h / 64] >> (h % 64) & 1) && keyset_has(&s->full, w);
}

/* The length of the NUL-free string at p, which ends at a NUL or at end. */
static size_t string_len(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *z = memchr(p, 0, (size_t)(end - p));
    return (size_t)((z ? z : end) - p);
}

static int is_public(const char *const *public, size_t npublic, const unsigned char *e, size_t len)
{
    size_t k;
    for (k = 0; k < npublic; k++)
        if (memmem(public[k], strlen(public[k]), e, len))
            return 1;
    return 0;
}

static void add_short(dp_scrub *s, const unsigned char *e, size_t len)
{
    short_entry *se = &s->shorts[s->nshorts++];
    const unsigned char *eq = memchr(e, '=', len);
    memcpy(se->bytes, e, len);
    se->len = (unsigned)len;
    se->anchor = eq ? (unsigned)(eq - e) : 0;
}

dp_scrub *dp_scrub_new(const char *env, size_t env_len, const char *const *public,
                       size_t npublic)
{
    dp_scrub *s;
    keyset pub = { 0 };
    const unsigned char *e, *eend = (const unsigned char *)env + env_len;
    size_t i, k, len, public_len = 0;

    if (env_len > DP_SCRUB_ENV_MAX || !(s = calloc(1, sizeof(*s))))
        return NULL;
    for (k = 0; k < npublic; k++)
        public_len += strlen(public[k]);
    /* about 64 filter bits per window: few false hits */
    for (s->gram_bits = 16; s->gram_bits < 30 && (1ULL << s->gram_bits) < env_len * 64;)
        s->gram_bits++;
    s->buf = malloc(CAP);
    s->mark = calloc(CAP / 64, sizeof(uint64_t));
    s->grams = calloc((1ULL << s->gram_bits) / 64, sizeof(uint64_t));
    s->wins = calloc((1ULL << s->gram_bits) / 64, sizeof(uint64_t));
    s->shorts = malloc((env_len / (DP_SCRUB_SHORT_MIN + 1) + 1) * sizeof(short_entry));
    if (!s->buf || !s->mark || !s->grams || !s->wins || !s->shorts || keyset_init(&pub, public_len) != 0
        || keyset_init(&s->full, env_len) != 0)
        goto fail;
    for (k = 0; k < npublic; k++)
        for (len = strlen(public[k]), i = 0; i + DP_SCRUB_MIN <= len; i++)
            keyset_add(&pub, window((const unsigned char *)public[k] + i));
    for (e = (const unsigned char *)env; e < eend; e += len + 1) {
        len = string_len(e, eend);
        if (len >= DP_SCRUB_MIN) {
            for (i = 0; i + DP_SCRUB_MIN <= len; i++) {
                if (keyset_has(&pub, window(e + i)))
                    continue;
                keyset_add(&s->full, window(e + i));
                k = win_of(s, window(e + i));
                s->wins[k / 64] |= 1ULL << (k % 64);
                for (k = 0; k + GRAM <= DP_SCRUB_MIN; k++) {
                    size_t h = gram_of(s, e + i + k);
                    s->grams[h / 64] |= 1ULL << (h % 64);
                }
            }
        }
        else if (len >= DP_SCRUB_SHORT_MIN && !is_public(public, npublic, e, len))
            add_short(s, e, len);
    }
    free(pub.slot);
    s->mark_lo = CAP;
    return s;
fail:
    free(pub.slot);
    dp_scrub_free(s);
    return NULL;
}

void dp_scrub_free(dp_scrub *s)
{
    if (!s)
        return;
    free(s->full.slot);
    free(s->grams);
    free(s->wins);
    free(s->shorts);
    free(s->buf);
    free(s->mark);
    free(s);
}

static void mark(dp_scrub *s, size_t from, size_t len)
{
    size_t k;
    for (k = from; k < from + len; k++)
        s->mark[k / 64] |= 1ULL << (k % 64);
    if (from < s->mark_lo)
        s->mark_lo = from;
    if (from + len > s->mark_hi)
        s->mark_hi = from + len;
}

/* Every window that starts in buf at or before last. A window holds five
 * 4-byte pieces; when the one at its end is no piece of the environment,
 * neither this window nor the next four can match (Wu-Manber's skip): most
 * of a core is passed over five bytes at a time. */
static void scan_windows(dp_scrub *s, size_t last)
{
    const unsigned char *b = s->buf;
    uint64_t w, prev = 0;           /* 0: no window (they hold no NUL) */
    int prev_in = 0;
    size_t i = 0;

    while (i <= last) {
        if (!gram_in(s, b + i + DP_SCRUB_MIN - GRAM)) {
            i += DP_SCRUB_MIN - GRAM + 1;
            continue;
        }
        /* a run of one repeated byte asks the same question at every step */
        w = window(b + i);
        if (w != prev) {
            prev = w;
            prev_in = window_in(s, w);
        }
        if (prev_in)
            mark(s, i, DP_SCRUB_MIN);
        i++;
    }
}

/* Whole short entries that start in buf at or before last, found by their
 * '=' (memchr is fast, and '=' is rare in memory). */
static void scan_shorts(dp_scrub *s, size_t last)
{
    size_t k;

    for (k = 0; k < s->nshorts; k++) {
        const short_entry *se = &s->shorts[k];
        const unsigned char *b = s->buf, *p = b + se->anchor;
        size_t start, most = last + se->len > s->n ? s->n - se->len : last;
        if (se->len > s->n)
            continue;
        while (p < b + s->n && (p = memchr(p, se->bytes[se->anchor], (size_t)(b + s->n - p)))) {
            start = (size_t)(p - b) - se->anchor;
            if (start > most)
                break;
            if (memcmp(b + start, se->bytes, se->len) == 0)
                mark(s, start, se->len);
            p++;
        }
    }
}

/* Scan what is buffered, pass on all but what a later window may still
 * cover (all of it when final), keep that back with its marks. Windows are
 * looked at by where they start: in a full buffer up to n-8, so that the
 * bytes held back start the next round's windows. */
static int pass(dp_scrub *s, int final)
{
    size_t emit, k, hi;
    uint64_t held;
    int rc;

    if (s->n >= DP_SCRUB_MIN)
        scan_windows(s, s->n - DP_SCRUB_MIN);
    if (s->nshorts && s->n >= DP_SCRUB_SHORT_MIN)
        scan_shorts(s, final ? s->n - DP_SCRUB_SHORT_MIN
                             : s->n >= DP_SCRUB_MIN ? s->n - DP_SCRUB_MIN : 0);
    emit = final ? s->n : s->n > HOLD ? s->n - HOLD : 0;
    hi = s->mark_hi < emit ? s->mark_hi : emit;
    for (k = s->mark_lo; k < hi; k++) {
        if (s->mark[k / 64] >> (k % 64) & 1) {
            s->buf[k] = 0;
            s->zeroed++;
        }
    }
    /* the marks of the bytes held back move to the front, all others go */
    for (k = emit, held = 0; k < s->n; k++)
        held |= (uint64_t)(s->mark[k / 64] >> (k % 64) & 1) << (k - emit);
    if (s->mark_lo < s->mark_hi)
        memset(s->mark + s->mark_lo / 64, 0, (s->mark_hi - 1) / 64 * 8 - s->mark_lo / 64 * 8 + 8);
    s->mark[0] |= held;
    rc = dp_sink_write(s->next, s->buf, emit);
    memmove(s->buf, s->buf + emit, s->n - emit);
    s->n -= emit;
    if (s->mark_hi > emit) {
        s->mark_lo = s->mark_lo > emit ? s->mark_lo - emit : 0;
        s->mark_hi -= emit;
    }
    else {
        s->mark_lo = CAP;
        s->mark_hi = 0;
    }
    return rc;
}

static int scrub_write(dp_sink *o, const void *data, size_t len)
{
    dp_scrub *s = o->ctx;
    const unsigned char *p = data;

    while (len) {
        size_t k = CAP - s->n < len ? CAP - s->n : len;
        memcpy(s->buf + s->n, p, k);
        s->n += k;
        p += k;
        len -= k;
        if (s->n == CAP && pass(s, 0) != 0)
            return -1;
    }
    return 0;
}

void dp_scrub_sink(dp_scrub *s, dp_sink *next, dp_sink *out)
{
    s->next = next;
    out->write = scrub_write;
    out->ctx = s;
}

int dp_scrub_flush(dp_scrub *s)
{
    return pass(s, 1);
}

typedef struct in_place {
    unsigned char *p;
    size_t off;
} in_place;

static int write_back(dp_sink *o, const void *data, size_t len)
{
    in_place *ip = o->ctx;
    memcpy(ip->p + ip->off, data, len);     /* never ahead of what was read */
    ip->off += len;
    return 0;
}

size_t dp_scrub_buffer(dp_scrub *s, void *buf, size_t len)
{
    in_place ip = { buf, 0 };
    dp_sink back = { write_back, &ip }, in;
    dp_sink *saved = s->next;
    unsigned long long before = s->zeroed;

    dp_scrub_sink(s, &back, &in);
    scrub_write(&in, buf, len);
    pass(s, 1);
    s->next = saved;
    return (size_t)(s->zeroed - before);
}

unsigned long long dp_scrub_zeroed(const dp_scrub *s)
{
    return s->zeroed;
}
