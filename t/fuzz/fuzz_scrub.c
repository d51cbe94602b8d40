/* libFuzzer harness: the environment scrubber on any environment, public
 * strings (NUL-separated) and stream. The first two bytes say how the input
 * splits into the three; the third sets the sizes of the writes. Checks: the stream keeps
 * its length, a stream cut into writes gives the bytes one buffer gives, and
 * no 8-byte run of an entry (outside the public strings) is left. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dump/scrub.h"

typedef struct out {
    unsigned char *p;
    size_t len, cap;
} out;

static int out_write(dp_sink *o, const void *d, size_t n)
{
    out *b = o->ctx;
    if (b->len + n > b->cap)
        abort();
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

static int in_strings(const unsigned char *block, size_t blen, const unsigned char *w)
{
    const unsigned char *p = block, *end = block + blen;
    while (p < end) {
        const unsigned char *z = memchr(p, 0, (size_t)(end - p));
        size_t len = (size_t)((z ? z : end) - p);
        if (len >= DP_SCRUB_MIN && memmem(p, len, w, DP_SCRUB_MIN))
            return 1;
        p += len + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t env_len, pub_len, n, i, off, np = 0;
    const unsigned char *env, *in;
    unsigned char *a, *b;
    char *pub;
    const char *strs[64];
    dp_scrub *s;
    out o;
    dp_sink next = { out_write, &o, NULL, NULL }, sink;

    if (size < 3)
        return 0;
    env_len = (size_t)data[0] * (size - 3) / 255;
    pub_len = (size_t)data[1] * (size - 3 - env_len) / 255;
    env = data + 3;
    in = env + env_len + pub_len;
    n = size - 3 - env_len - pub_len;
    pub = malloc(pub_len + 1);
    memcpy(pub, env + env_len, pub_len);
    pub[pub_len] = '\0';
    for (off = 0; off < pub_len && np < 64; off += strlen(pub + off) + 1)
        strs[np++] = pub + off;
    pub_len = off < pub_len ? off : pub_len;      /* what the scrubber was given */
    if (!(s = dp_scrub_new((const char *)env, env_len, strs, np)))
        abort();
    a = malloc(n + 1);
    b = malloc(n + 1);
    memcpy(a, in, n);
    dp_scrub_buffer(s, a, n);
    o = (out){ b, 0, n };
    dp_scrub_sink(s, &next, &sink);
    for (off = 0, i = 0; off < n; i++) {
        size_t k = (size_t)(data[2] ^ (i * 37)) % 64 + 1;
        if (k > n - off)
            k = n - off;
        dp_sink_write(&sink, in + off, k);
        off += k;
    }
    dp_scrub_flush(s);
    if (o.len != n || (n && memcmp(a, b, n) != 0))
        abort();
    /* the scalar search finds the same bytes as the vectorized one */
    dp_scrub_use_simd(s, 0);
    memcpy(b, in, n);
    dp_scrub_buffer(s, b, n);
    if (n && memcmp(a, b, n) != 0)
        abort();
    for (i = 0; i + DP_SCRUB_MIN <= n; i++)
        if (!memchr(a + i, 0, DP_SCRUB_MIN) && in_strings(env, env_len, a + i)
            && !in_strings((const unsigned char *)pub, pub_len, a + i))
            abort();
    free(a);
    free(b);
    free(pub);
    dp_scrub_free(s);
    return 0;
}
