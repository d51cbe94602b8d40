#include <stdio.h>
#include "common/dp_error.h"

int dp_fail(dp_error *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return -1;
}

int dp_fail_not_running(dp_error *err, long pid)
{
    return dp_fail(err, 404, "Process with an Id of %ld is not running.", pid);
}
