/* An error as the cores report it: an HTTP-like status the glue maps 1:1,
 * and a plain-words message that goes into {"Message": "..."} unchanged.
 * Keeps proc/, dump/ and helper/ free of httpd headers. */
#ifndef DP_ERROR_H
#define DP_ERROR_H

#include <stdarg.h>

#define DP_MSG_MAX 512

typedef struct dp_error {
    int status;             /* 0 = no error; else 400, 403, 404, 409, 500, 503 ... */
    char msg[DP_MSG_MAX];
} dp_error;

/* Sets err (if not NULL) and returns -1, so callers can `return dp_fail(...)`. */
int dp_fail(dp_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Kudu's exact text for a pid that is not running (404). */
int dp_fail_not_running(dp_error *err, long pid);

#endif
