#include <stdio.h>
#include <string.h>
#include "common/format.h"
#include "worker/jsonw.h"

void dp_jw_init(dp_jsonw *w, int (*flush)(void *, const char *, size_t), void *ctx)
{
    w->flush = flush;
    w->ctx = ctx;
    w->failed = 0;
    w->len = 0;
}

static void jw_flush(dp_jsonw *w)
{
    if (w->len && !w->failed && w->flush(w->ctx, w->buf, w->len) != 0)
        w->failed = 1;
    w->len = 0;
}

void dp_jw_raw(dp_jsonw *w, const char *s, size_t n)
{
    while (n) {
        size_t room = sizeof(w->buf) - w->len, k = n < room ? n : room;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
        if (w->len == sizeof(w->buf))
            jw_flush(w);
    }
}

void dp_jw_str_body(dp_jsonw *w, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        char esc[8];
        /* plain printable ASCII is copied in runs */
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        dp_jw_raw(w, (const char *)s + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            dp_jw_raw(w, esc, 2);
            i++;
        }
        else if (c < 0x20 && c != 0) {
            if (c == '\n')
                dp_jw_raw(w, "\\n", 2);
            else if (c == '\t')
                dp_jw_raw(w, "\\t", 2);
            else if (c == '\r')
                dp_jw_raw(w, "\\r", 2);
            else {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                dp_jw_raw(w, esc, 6);
            }
            i++;
        }
        else if ((k = dp_utf8_seq(s + i, n - i)) != 0) {
            dp_jw_raw(w, (const char *)s + i, k);
            i += k;
        }
        else {
            dp_jw_raw(w, "\xEF\xBF\xBD", 3);       /* U+FFFD for an invalid byte or NUL */
            i++;
        }
    }
    dp_jw_raw(w, (const char *)s + i - run, run);
}

void dp_jw_str(dp_jsonw *w, const char *s, size_t n)
{
    dp_jw_raw(w, "\"", 1);
    dp_jw_str_body(w, s, n);
    dp_jw_raw(w, "\"", 1);
}

void dp_jw_cstr(dp_jsonw *w, const char *s)
{
    if (s)
        dp_jw_str(w, s, strlen(s));
    else
        dp_jw_raw(w, "null", 4);
}

void dp_jw_int(dp_jsonw *w, long long v)
{
    char num[24];
    dp_jw_raw(w, num, dp_format_int(num, v));
}

void dp_jw_key(dp_jsonw *w, const char *key)
{
    dp_jw_raw(w, "\"", 1);
    dp_jw_raw(w, key, strlen(key));
    dp_jw_raw(w, "\":", 2);
}

int dp_jw_finish(dp_jsonw *w)
{
    jw_flush(w);
    return w->failed ? -1 : 0;
}
