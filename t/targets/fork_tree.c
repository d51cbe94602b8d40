/* A process tree for the kill tests: root -> child -> grandchild, and the
 * grandchild keeps forking short- and long-lived children (bounded, so a
 * failed test cannot exhaust the machine). Prints "ready <pid>" once the
 * tree is depth 3. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FORKS 400

static void forker(void)
{
    int n;
    signal(SIGCHLD, SIG_IGN);       /* short-lived children reap themselves */
    for (n = 0; n < MAX_FORKS; n++) {
        pid_t c = fork();
        if (c == 0) {
            if (n % 4 == 0)
                for (;;)
                    pause();            /* some stay */
            usleep(20000);
            _exit(0);
        }
        usleep(5000);
    }
    for (;;)
        pause();
}

int main(void)
{
    int ready[2];
    char b;
    pid_t c;

    if (pipe(ready) != 0)
        return 1;
    c = fork();
    if (c == 0) {                       /* depth 1 */
        pid_t g = fork();
        if (g == 0) {                   /* depth 2: the forker */
            close(ready[0]);
            if (write(ready[1], "x", 1) != 1)
                _exit(1);
            forker();
        }
        for (;;)
            pause();
    }
    close(ready[1]);
    if (read(ready[0], &b, 1) != 1)
        return 1;
    usleep(50000);                      /* let the forker get going: depth 3 */
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;)
        pause();
}
