#include <stdio.h>
#include <string.h>
#include <time.h>
#include <apr_strings.h>
#include "common/format.h"

/* v in decimal, at least width digits (zero-padded); returns the end. The
 * list formats a few numbers for each of hundreds of processes: snprintf's
 * parsing of its format dominated the user-space part of it. */
static char *put_num(char *p, unsigned long long v, int width)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Copies what was formatted in tmp, cut to len as snprintf would. */
static void put_out(char *buf, size_t len, const char *tmp, size_t n)
{
    if (!len)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}

size_t dp_format_int(char *buf, long long v)
{
    char *p = buf;

    if (v < 0) {
        *p++ = '-';
        p = put_num(p, 0ULL - (unsigned long long)v, 1);
    }
    else
        p = put_num(p, (unsigned long long)v, 1);
    *p = '\0';
    return (size_t)(p - buf);
}

void dp_timespan_buf(char *buf, size_t len, unsigned long long ticks, long hz)
{
    /* .NET TimeSpan "c" format: 100 ns units, days only when non-zero */
    unsigned long long units = ticks * (10000000ULL / (unsigned long long)hz);
    unsigned long long secs = units / 10000000ULL, frac = units % 10000000ULL;
    unsigned long long days = secs / 86400;
    char tmp[64], *p = tmp;

    secs %= 86400;
    if (days) {
        p = put_num(p, days, 1);
        *p++ = '.';
    }
    p = put_num(p, secs / 3600, 2);
    *p++ = ':';
    p = put_num(p, (secs / 60) % 60, 2);
    *p++ = ':';
    p = put_num(p, secs % 60, 2);
    *p++ = '.';
    p = put_num(p, frac, 7);
    put_out(buf, len, tmp, (size_t)(p - tmp));
}

const char *dp_timespan(unsigned long long ticks, long hz, apr_pool_t *p)
{
    char buf[64];
    dp_timespan_buf(buf, sizeof(buf), ticks, hz);
    return apr_pstrdup(p, buf);
}

void dp_iso_time_buf(char *buf, size_t len, long long secs, long nsec)
{
    time_t t = (time_t)secs;
    struct tm tm;
    char tmp[64], *p = tmp;

    gmtime_r(&t, &tm);
    if (tm.tm_year + 1900 < 0) {        /* never for a real time: keep snprintf's text */
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%07ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec / 100);
        return;
    }
    p = put_num(p, (unsigned long long)(tm.tm_year + 1900), 4);
    *p++ = '-';
    p = put_num(p, (unsigned long long)(tm.tm_mon + 1), 2);
    *p++ = '-';
    p = put_num(p, (unsigned long long)tm.tm_mday, 2);
    *p++ = 'T';
    p = put_num(p, (unsigned long long)tm.tm_hour, 2);
    *p++ = ':';
    p = put_num(p, (unsigned long long)tm.tm_min, 2);
    *p++ = ':';
    p = put_num(p, (unsigned long long)tm.tm_sec, 2);
    *p++ = '.';
    p = put_num(p, (unsigned long long)(nsec / 100), 7);
    *p++ = 'Z';
    put_out(buf, len, tmp, (size_t)(p - tmp));
}

const char *dp_now_iso(apr_pool_t *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return dp_iso_time(ts.tv_sec, ts.tv_nsec, p);
}

const char *dp_iso_time(long long secs, long nsec, apr_pool_t *p)
{
    char buf[48];
    dp_iso_time_buf(buf, sizeof(buf), secs, nsec);
    return apr_pstrdup(p, buf);
}

size_t dp_utf8_seq(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned int cp;

    if (s[0] < 0x80)
        return s[0] ? 1 : 0;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { len = 2; cp = s[0] & 0x1F; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { len = 3; cp = s[0] & 0x0F; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { len = 4; cp = s[0] & 0x07; }
    else return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
        || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

const char *dp_utf8(const char *buf, size_t len, apr_pool_t *p)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0, o = 0, bad = 0;
    char *out;

    while (i < len) {
        size_t k = dp_utf8_seq(s + i, len - i);
        if (!k) { bad++; k = 1; }
        i += k;
    }
    if (!bad)
        return apr_pstrmemdup(p, buf, len);
    out = apr_palloc(p, len + bad * 2 + 1);
    for (i = 0; i < len;) {
        size_t k = dp_utf8_seq(s + i, len - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
        else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);     /* U+FFFD */
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

static int needs_quotes(const char *a)
{
    return *a == '\0' || strpbrk(a, " \t\n\"'") != NULL;
}

const char *dp_join_cmdline(const apr_array_header_t *argv, apr_pool_t *p)
{
    size_t cap = 1, i;
    char *out, *o;

    for (i = 0; i < (size_t)argv->nelts; i++)
        cap += strlen(APR_ARRAY_IDX(argv, i, const char *)) * 2 + 3;
    o = out = apr_palloc(p, cap);
    for (i = 0; i < (size_t)argv->nelts; i++) {
        const char *a = APR_ARRAY_IDX(argv, i, const char *);
        if (i)
            *o++ = ' ';
        if (!needs_quotes(a)) {
            size_t n = strlen(a);
            memcpy(o, a, n);
            o += n;
            continue;
        }
        *o++ = '"';
        for (; *a; a++) {
            if (*a == '"' || *a == '\\')
                *o++ = '\\';
            *o++ = *a;
        }
        *o++ = '"';
    }
    *o = '\0';
    return out;
}

const char *dp_soname_version(const char *path)
{
    const char *base = strrchr(path, '/'), *so;
    base = base ? base + 1 : path;
    so = strstr(base, ".so.");
    if (!so)
        return "";
    so += 4;
    /* only digits and dots: "libc.so.6 (deleted)" has no version we trust */
    return so[strspn(so, "0123456789.")] == '\0' ? so : "";
}

const char *dp_hex(const unsigned char *b, size_t n, apr_pool_t *p)
{
    static const char digits[] = "0123456789abcdef";
    char *out = apr_palloc(p, n * 2 + 1);
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

void dp_split_request_line(const char *req, dp_request_line *out)
{
    const char *sp1 = strchr(req, ' '), *sp2;

    if (!sp1) {
        out->method_len = 0;
        out->uri_off = 0;
        out->uri_len = strlen(req);
        return;
    }
    sp2 = strchr(sp1 + 1, ' ');
    out->method_len = (size_t)(sp1 - req);
    out->uri_off = out->method_len + 1;
    out->uri_len = sp2 ? (size_t)(sp2 - sp1 - 1) : strlen(sp1 + 1);
}

int dp_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}
