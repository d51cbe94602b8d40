/* Formats the API speaks: .NET TimeSpan, ISO-8601 UTC, valid UTF-8, the
 * joined command line. No httpd, no jansson. */
#ifndef DP_FORMAT_H
#define DP_FORMAT_H

#include <stddef.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* [d.]hh:mm:ss.fffffff from clock ticks. */
const char *dp_timespan(unsigned long long ticks, long ticks_per_sec, apr_pool_t *p);
/* yyyy-mm-ddThh:mm:ss.fffffffZ from epoch seconds + nanoseconds. */
const char *dp_iso_time(long long secs, long nsec, apr_pool_t *p);
/* The current time, the same way. */
const char *dp_now_iso(apr_pool_t *p);
/* The same into a caller's buffer (at least 32 bytes), for hot loops. */
void dp_timespan_buf(char *buf, size_t len, unsigned long long ticks, long ticks_per_sec);
/* v in decimal into buf (at least 21 bytes), NUL-terminated; returns its length. */
size_t dp_format_int(char *buf, long long v);
void dp_iso_time_buf(char *buf, size_t len, long long secs, long nsec);
/* Length of the valid UTF-8 sequence at s (n bytes available); 0 if invalid
 * or NUL. */
size_t dp_utf8_seq(const unsigned char *s, size_t n);
/* The bytes as valid UTF-8: each invalid byte becomes U+FFFD; NULs become U+FFFD too
 * (JSON and HTML consumers must not see a truncated string). */
const char *dp_utf8(const char *buf, size_t len, apr_pool_t *p);
/* argv joined by spaces; arguments with spaces, quotes, or empty are quoted
 * (Windows-style, as Kudu shows a command line). */
const char *dp_join_cmdline(const apr_array_header_t *argv, apr_pool_t *p);
/* "6" for libc.so.6, "4.14.0" for libjansson.so.4.14.0, "" otherwise. */
const char *dp_soname_version(const char *path);
/* httpd's request line as its scoreboard keeps it ("GET /x HTTP/1.1", cut at
 * 63 bytes): the method and the URI, each as offset and length into req.
 * A line without a space is all URI (method_len 0). */
typedef struct dp_request_line {
    size_t method_len;
    size_t uri_off, uri_len;
} dp_request_line;
void dp_split_request_line(const char *req, dp_request_line *out);
/* Lower-case hex of bytes. */
const char *dp_hex(const unsigned char *b, size_t n, apr_pool_t *p);
/* Does s end with suffix? */
int dp_ends_with(const char *s, const char *suffix);

#endif
