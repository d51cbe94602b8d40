/* A streaming JSON writer for large answers (the process list): values go
 * straight into a fixed buffer that is flushed to a callback, instead of a
 * tree of allocated nodes that is serialized afterwards. Strings are made
 * valid UTF-8 (invalid bytes become U+FFFD) while they are escaped. */
#ifndef DP_JSONW_H
#define DP_JSONW_H

#include <stddef.h>

#define DP_JSONW_BUF 65536

typedef struct dp_jsonw {
    int (*flush)(void *ctx, const char *buf, size_t len);   /* 0 ok, -1 failed */
    void *ctx;
    int failed;
    size_t len;
    char buf[DP_JSONW_BUF];
} dp_jsonw;

void dp_jw_init(dp_jsonw *w, int (*flush)(void *, const char *, size_t), void *ctx);
void dp_jw_raw(dp_jsonw *w, const char *s, size_t n);
/* "s" quoted and escaped */
void dp_jw_str(dp_jsonw *w, const char *s, size_t n);
/* s escaped, without the quotes: a string made of several pieces */
void dp_jw_str_body(dp_jsonw *w, const char *s, size_t n);
void dp_jw_cstr(dp_jsonw *w, const char *s);
void dp_jw_int(dp_jsonw *w, long long v);
/* "key": (a key we write ourselves: plain ASCII, no escaping needed) */
void dp_jw_key(dp_jsonw *w, const char *key);
/* Flushes what is buffered; returns -1 when any flush failed. */
int dp_jw_finish(dp_jsonw *w);

#endif
