/* The process table scan behind the list: as few system calls per process
 * as the kernel allows (getdents, fstatat, open+read+close of stat), with
 * paths relative to one /proc descriptor. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_strings.h>
#include "proc/procfs.h"

static ssize_t read_at(int dirfd, const char *path, char *buf, size_t cap)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, cap - 1);     /* /proc/PID/stat comes in one read */
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static const char *scan_name(int procfd, const char *pidstr, const dp_stat *st, apr_pool_t *p)
{
    char path[300], buf[4096];
    ssize_t n;

    /* a kernel thread has no command line (its 15-byte names, kworker/u4:1-…,
     * would cost an open and a read each for nothing) */
    if (strlen(st->comm) < 15 || (st->flags & DP_PF_KTHREAD))
        return apr_pstrdup(p, st->comm);
    snprintf(path, sizeof(path), "%s/cmdline", pidstr);
    n = read_at(procfd, path, buf, sizeof(buf));
    if (n <= 0)
        return apr_pstrdup(p, st->comm);
    return apr_pstrdup(p, dp_process_name(st->comm, dp_split_nul(buf, (size_t)n, p), p));
}

apr_array_header_t *dp_scan_procs(int (*keep)(long uid, void *ctx), void *ctx, apr_pool_t *p)
{
    apr_array_header_t *out = apr_array_make(p, 512, sizeof(dp_proc_entry));
    int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = procfd >= 0 ? fdopendir(dup(procfd)) : NULL;
    struct dirent *de;

    if (!d) {
        if (procfd >= 0)
            close(procfd);
        return out;
    }
    while ((de = readdir(d)) != NULL) {
        char path[300], buf[1024];
        struct stat sb;
        dp_proc_entry e;
        ssize_t n;

        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        if (fstatat(procfd, de->d_name, &sb, 0) != 0 || !keep((long)sb.st_uid, ctx))
            continue;
        snprintf(path, sizeof(path), "%s/stat", de->d_name);
        n = read_at(procfd, path, buf, sizeof(buf));
        if (n <= 0 || dp_parse_stat(buf, (size_t)n, &e.st) != 0)
            continue;       /* exited meanwhile */
        e.pid = e.st.pid;
        e.uid = (long)sb.st_uid;
        e.name = scan_name(procfd, de->d_name, &e.st, p);
        *(dp_proc_entry *)apr_array_push(out) = e;
    }
    closedir(d);
    close(procfd);
    return out;
}
