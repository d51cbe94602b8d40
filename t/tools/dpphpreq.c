/* dpphpreq PID: the helper's DP_READ_PHP_REQUEST reader alone (no httpd),
 * for the tests and bench/: "method\turi\tquery\tscript" and the time it
 * took, or "error STATUS MESSAGE" (exit 1). */
#include <stdio.h>
#include <stdlib.h>
#include <apr_general.h>
#include <apr_time.h>
#include "helper/phpreq.h"

int main(int argc, char **argv)
{
    dp_error err = { 0 };
    dp_phpreq q;
    apr_pool_t *p;
    apr_time_t t0;

    if (argc != 2)
        return 2;
    apr_initialize();
    apr_pool_create(&p, NULL);
    t0 = apr_time_now();
    if (dp_phpreq_read((pid_t)atoi(argv[1]), &q, p, &err) != 0) {
        printf("error %d %s\n", err.status, err.msg);
        return 1;
    }
    printf("%s\t%s\t%s\t%s\n", q.method, q.uri, q.query, q.script);
    fprintf(stderr, "elapsed_us %lld\n", (long long)(apr_time_now() - t0));
    return 0;
}
