/* sleepers N: forks N children that only pause (they die with the parent),
 * for the process-list benchmark. Prints "ready" once all are up. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int i, n = argc > 1 ? atoi(argv[1]) : 0;

    for (i = 0; i < n; i++) {
        pid_t c = fork();
        if (c == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            for (;;)
                pause();
        }
        if (c < 0) {
            perror("fork");
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
