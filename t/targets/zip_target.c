/* Target for the bundle tests: a main thread and a worker thread blocked in
 * pause() below named, non-inlined functions, so a debugger opening the
 * bundle must show zt_worker_wait / zt_main_wait. Prints "ready" when both
 * are in place. Loads libz with dlopen (when present) so the bundle carries
 * a library beyond libc and the dynamic linker. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

volatile double zt_sink;

__attribute__((noinline)) static void zt_worker_wait(void)
{
    for (;;)
        pause();
}

__attribute__((noinline)) static void *zt_worker_main(void *arg)
{
    (void)arg;
    zt_worker_wait();
    return NULL;
}

__attribute__((noinline)) static void zt_main_wait(int n)
{
    zt_sink = n;
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    pthread_t t;

    (void)argv;
    dlopen("libz.so.1", RTLD_NOW);
    if (pthread_create(&t, NULL, zt_worker_main, NULL) != 0)
        return 1;
    usleep(20000);
    printf("ready\n");
    fflush(stdout);
    zt_main_wait(argc);
    return 0;
}
