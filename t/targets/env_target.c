/* A target for the environment scrubbing tests. Two threads read every
 * variable of its environment with getenv, strlen and libc's memcpy over and
 * over (the vector code leaves pieces of the block in the vector registers),
 * one thread keeps a copy of every value on its stack, the heap keeps
 * another. Its arguments are not the variables' names (the command line is
 * public: the detail route shows it). Prints "ready" once all is in place. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))

static char **names;
static int nnames;
static pthread_barrier_t started;
static volatile size_t sink;
/* through a pointer: libc's own vector memcpy, never an inlined copy */
static void *(*volatile copy)(void *, const void *, size_t) = memcpy;

/* Reads and copies every value, the first one last: what the vector
 * registers hold while it sleeps. */
static NOINLINE void env_reader_loop(void)
{
    char buf[256];

    for (;;) {
        int i;
        for (i = nnames - 1; i >= 0; i--) {
            const char *v = getenv(names[i]);
            size_t n = v ? strlen(v) : 0;
            if (n < sizeof(buf)) {
                copy(buf, v ? v : "", n + 1);
                __asm__ volatile("" : : "r"(buf) : "memory");
            }
            sink += n;
        }
        usleep(2000);
    }
}

static void *reader(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&started);
    env_reader_loop();
    return NULL;
}

static NOINLINE void stack_copy_hold(void)
{
    char copy[16][160];
    int i;

    for (i = 0; i < nnames && i < 16; i++) {
        const char *v = getenv(names[i]);
        snprintf(copy[i], sizeof(copy[i]), "%s", v ? v : "");
    }
    __asm__ volatile("" : : "r"(copy) : "memory");     /* the copies stay */
    pthread_barrier_wait(&started);
    for (;;)
        pause();
}

static void *holder(void *arg)
{
    (void)arg;
    stack_copy_hold();
    return NULL;
}

extern char **environ;

int main(void)
{
    pthread_t t;
    int i;

    for (nnames = 0; environ[nnames]; nnames++)
        ;
    names = calloc((size_t)nnames + 1, sizeof(char *));
    for (i = 0; i < nnames; i++)
        names[i] = strndup(environ[i], strcspn(environ[i], "="));
    for (i = 0; i < nnames; i++)
        if (getenv(names[i]))
            sink += (size_t)strdup(getenv(names[i]));     /* a heap copy (full dumps) */
    pthread_barrier_init(&started, NULL, 4);
    pthread_create(&t, NULL, reader, NULL);
    pthread_create(&t, NULL, reader, NULL);
    pthread_create(&t, NULL, holder, NULL);
    pthread_barrier_wait(&started);
    usleep(50000);      /* the readers have been round their loop */
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
