/* Target for the bundle tests: a main thread and a worker thread blocked in
 * pause() below named, non-inlined functions, so a debugger opening the
 * bundle must show zt_worker_wait / zt_main_wait. Prints "ready" when both
 * are in place. Loads libz with dlopen (when present) so the bundle carries
 * a library beyond libc and the dynamic linker.
 *   zip_target [--lib PATH]: also dlopen PATH and block the worker thread in
 *   its lib_wait() instead (a library the test may delete afterwards). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile double zt_sink;

__attribute__((noinline)) static void zt_worker_wait(void)
{
    for (;;)
        pause();
}

__attribute__((noinline)) static void *zt_worker_main(void *arg)
{
    void (*lib_wait)(void) = (void (*)(void))arg;
    if (lib_wait)
        lib_wait();
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
    void *lib_wait = NULL;

    dlopen("libz.so.1", RTLD_NOW);
    if (argc > 2 && !strcmp(argv[1], "--lib")) {
        void *h = dlopen(argv[2], RTLD_NOW);
        if (!h || !(lib_wait = dlsym(h, "lib_wait"))) {
            fprintf(stderr, "zip_target: %s\n", dlerror());
            return 1;
        }
    }
    if (pthread_create(&t, NULL, zt_worker_main, lib_wait) != 0)
        return 1;
    usleep(20000);
    printf("ready\n");
    fflush(stdout);
    zt_main_wait(argc);
    return 0;
}
