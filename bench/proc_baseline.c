/* Baseline (a) of the list benchmark: only the reads a process list cannot
 * avoid: getdents on /proc, fstatat for the owner, one read of stat.
 *   proc_baseline SECONDS  -> prints "iterations/s processes" */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0, t0 = now();
    long iters = 0, procs = 0;
    char buf[1024], path[300];

    while (now() - t0 < secs) {
        int procfd = open("/proc", O_RDONLY | O_DIRECTORY);
        DIR *d = fdopendir(dup(procfd));
        struct dirent *de;
        procs = 0;
        while ((de = readdir(d)) != NULL) {
            struct stat sb;
            int fd;
            if (de->d_name[0] < '1' || de->d_name[0] > '9')
                continue;
            if (fstatat(procfd, de->d_name, &sb, 0) != 0)
                continue;
            snprintf(path, sizeof(path), "%s/stat", de->d_name);
            fd = openat(procfd, path, O_RDONLY);
            if (fd < 0)
                continue;
            if (read(fd, buf, sizeof(buf)) > 0)
                procs++;
            close(fd);
        }
        closedir(d);
        close(procfd);
        iters++;
    }
    printf("%.1f %ld\n", iters / (now() - t0), procs);
    return 0;
}
