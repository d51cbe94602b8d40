/* dpcore PID DUMPTYPE [KEEP_RUNNING_TID] > core: the core writer alone
 * (needs ptrace access to PID). Prints the exact size on stderr.
 * DPCORE_SNAPSHOT=0 in the environment: no copy-on-write snapshot;
 * DPCORE_RUNTIME=1: with the runtime's pages the helper adds (the language
 * walk's, a JVM's for jhsdb: helper/stacks.h), as a dump through httpd;
 * DPCORE_HIDE_ENVIRONMENT=1: as a Location without `environment` (scrubbed). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <apr_general.h>
#include "dump/core.h"
#include "common/proto.h"
#include "helper/stacks.h"

static int write_fd(dp_sink *s, const void *buf, size_t len)
{
    return dp_write_full(*(int *)s->ctx, buf, len);
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    dp_core_opts o = { 0 };
    dp_core *c;
    dp_error err = { 0 };
    int fd = 1;
    dp_sink out = { write_fd, &fd, NULL, NULL };

    if (argc < 3) {
        fprintf(stderr, "usage: dpcore PID DUMPTYPE [KEEP_RUNNING_TID]\n");
        return 2;
    }
    apr_initialize();
    apr_pool_create(&p, NULL);
    o.pid = (pid_t)atoi(argv[1]);
    o.dump_type = strtoul(argv[2], NULL, 0);
    o.keep_running_tid = argc > 3 ? (pid_t)atoi(argv[3]) : 0;
    o.snapshot = !getenv("DPCORE_SNAPSHOT") || atoi(getenv("DPCORE_SNAPSHOT"));
    if (getenv("DPCORE_RUNTIME") && atoi(getenv("DPCORE_RUNTIME"))) {
        o.add_memory = dp_stacks_add_lang_pages;
        o.add_memory_arg = &o.pid;
    }
    o.hide_environment = getenv("DPCORE_HIDE_ENVIRONMENT") && atoi(getenv("DPCORE_HIDE_ENVIRONMENT"));
    if (dp_core_open(&c, &o, p, &err) != 0) {
        fprintf(stderr, "%d %s\n", err.status, err.msg);
        return 1;
    }
    fprintf(stderr, "%llu\n", dp_core_size(c));
    if (dp_core_write(c, &out, &err) != 0) {
        fprintf(stderr, "%d %s\n", err.status, err.msg);
        return 1;
    }
    apr_pool_destroy(p);
    return 0;
}
