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
#include "dump/scrub_internal.h"

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
    /* page-aligned: reads into it land on cache lines (see HOLD) */
    if (posix_memalign((void **)&s->buf, 4096, CAP) != 0)
        s->buf = NULL;
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
                for (k = 0; k < DP_SCRUB_MIN; k++)
                    s->cls[e[i + k] >> 7][e[i + k] & 15] |= (unsigned char)(1u << (e[i + k] >> 4 & 7));
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
    dp_scrub_use_simd(s, 1);
    return s;
fail:
    free(pub.slot);
    dp_scrub_free(s);
    return NULL;
}

void dp_scrub_use_simd(dp_scrub *s, int on)
{
    s->simd = on && dp_scrub_cpu_avx2();
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

/* Whole short entries that start in buf at or before last, found by their
 * '=' (memchr is fast, and '=' is rare in memory): one pass over the buffer
 * for each distinct anchor byte, however many entries share it. */
static void scan_short(dp_scrub *s, const short_entry *se, size_t at, size_t last)
{
    size_t start = at - se->anchor, most = last + se->len > s->n ? s->n - se->len : last;

    if (at >= se->anchor && se->len <= s->n && start <= most
        && memcmp(s->buf + start, se->bytes, se->len) == 0)
        dp_scrub_mark(s, start, se->len);
}

static void scan_shorts(dp_scrub *s, size_t last)
{
    unsigned char seen[256] = { 0 };
    size_t k, j;

    for (k = 0; k < s->nshorts; k++) {
        unsigned char c = s->shorts[k].bytes[s->shorts[k].anchor];
        const unsigned char *b = s->buf, *p = b;
        if (seen[c]++)
            continue;
        while (p < b + s->n && (p = memchr(p, c, (size_t)(b + s->n - p)))
               && (size_t)(p - b) <= last + DP_SCRUB_MIN) {
            for (j = k; j < s->nshorts; j++)
                if (s->shorts[j].bytes[s->shorts[j].anchor] == c)
                    scan_short(s, &s->shorts[j], (size_t)(p - b), last);
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
        dp_scrub_scan_windows(s, s->n - DP_SCRUB_MIN);
    if (s->nshorts && s->n >= DP_SCRUB_SHORT_MIN)
        scan_shorts(s, final ? s->n - DP_SCRUB_SHORT_MIN
                             : s->n >= DP_SCRUB_MIN ? s->n - DP_SCRUB_MIN : 0);
    emit = final ? s->n : s->n > HOLD ? s->n - HOLD : 0;
    hi = s->mark_hi < emit ? s->mark_hi : emit;
    for (k = s->mark_lo; k < hi;) {
        uint64_t m = s->mark[k / 64] >> (k % 64);
        if (!m) {                       /* nothing more in this word */
            k = (k / 64 + 1) * 64;
            continue;
        }
        if (m == ~0ULL && k % 64 == 0 && k + 64 <= hi) {
            memset(s->buf + k, 0, 64);  /* a run of environment: a word at a time */
            s->zeroed += 64;
            k += 64;
            continue;
        }
        if (m & 1) {
            s->buf[k] = 0;
            s->zeroed++;
        }
        k++;
    }
    /* the marks of the bytes held back move to the front, all others go */
    for (k = emit, held = 0; k < s->n; k++)
        held |= (uint64_t)(s->mark[k / 64] >> (k % 64) & 1) << (k - emit);
    if (s->mark_lo < s->mark_hi)
        memset(s->mark + s->mark_lo / 64, 0, (s->mark_hi - 1) / 64 * 8 - s->mark_lo / 64 * 8 + 8);
    s->mark[0] |= held;
    rc = emit ? dp_sink_write(s->next, s->buf, emit) : 0;
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

/* Room for want more bytes in the buffer, passing on what it holds when
 * it has less. The stream is scrubbed in our own buffer and only then
 * written on: a sink that lends its room (the ring's slot) lends memory the
 * worker maps, where the environment would lie unscrubbed for a moment. */
static int take_room(dp_scrub *s, size_t want)
{
    return CAP - s->n >= want ? 0 : pass(s, 0);
}

static int scrub_write(dp_sink *o, const void *data, size_t len)
{
    dp_scrub *s = o->ctx;
    const unsigned char *p = data;

    while (len) {
        size_t k;
        if (take_room(s, 1) != 0)
            return -1;
        k = CAP - s->n < len ? CAP - s->n : len;
        memcpy(s->buf + s->n, p, k);
        s->n += k;
        p += k;
        len -= k;
        if (s->n == CAP && pass(s, 0) != 0)
            return -1;
    }
    return 0;
}

static void *scrub_reserve(dp_sink *o, size_t want, size_t *room)
{
    dp_scrub *s = o->ctx;

    if (take_room(s, want) != 0)
        return NULL;
    *room = CAP - s->n;
    return s->buf + s->n;
}

static int scrub_commit(dp_sink *o, size_t n)
{
    dp_scrub *s = o->ctx;

    s->n += n;
    return s->n == CAP ? pass(s, 0) : 0;
}

void dp_scrub_sink(dp_scrub *s, dp_sink *next, dp_sink *out)
{
    s->next = next;
    memset(out, 0, sizeof(*out));
    out->write = scrub_write;
    out->ctx = s;
    out->reserve = scrub_reserve;
    out->commit = scrub_commit;
}

int dp_scrub_flush(dp_scrub *s)
{
    if (!s->n)
        return 0;
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
    dp_sink back = { write_back, &ip, NULL, NULL }, in;
    dp_sink *saved = s->next;
    unsigned long long before = s->zeroed;

    dp_scrub_sink(s, &back, &in);
    scrub_write(&in, buf, len);
    dp_scrub_flush(s);
    s->next = saved;
    return (size_t)(s->zeroed - before);
}

unsigned long long dp_scrub_zeroed(const dp_scrub *s)
{
    return s->zeroed;
}
