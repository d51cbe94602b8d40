/* A target for the dump tests, built -O2 like a user's program: three
 * threads and the main thread each blocked three named calls deep, a heap
 * buffer with a known pattern, and (--reserve) 16 GiB never touched, or
 * (--vast) what a sanitizer's shadow looks like: two read-write reservations
 * of 16 TiB each with one page written, the second MADV_DONTDUMP, or
 * (--random MIB) that much memory of random bytes besides (what does not
 * compress: encrypted or compressed data).
 * Prints "heap 0x...", then "ready". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
/* the empty asm after each call keeps it a real call, not a tail jump */
#define CALL(f) do { f(); __asm__ volatile(""); } while (0)

static pthread_barrier_t started;

#define CHAIN(name)                                                     \
    static NOINLINE void name##_leaf(void) { for (;;) pause(); }        \
    static NOINLINE void name##_mid(void) { CALL(name##_leaf); }        \
    static NOINLINE void name##_top(void) { CALL(name##_mid); }         \
    static void *name##_thread(void *arg)                               \
    {                                                                   \
        (void)arg;                                                      \
        pthread_barrier_wait(&started);                                 \
        CALL(name##_top);                                               \
        return NULL;                                                    \
    }

CHAIN(alpha)
CHAIN(beta)
CHAIN(gamma)

static NOINLINE void main_leaf(void) { for (;;) pause(); }
static NOINLINE void main_mid(void) { CALL(main_leaf); }
static NOINLINE void main_top(void) { CALL(main_mid); }

int main(int argc, char **argv)
{
    const size_t heap_size = 8 << 20;
    uint64_t *heap = malloc(heap_size);
    pthread_t t;
    size_t i;

    if (!heap)
        return 1;
    for (i = 0; i < heap_size / 8; i++)
        heap[i] = 0x5a5aa5a5deadbeefULL;
    if (argc > 1 && !strcmp(argv[1], "--reserve")
        && mmap(NULL, 16ULL << 30, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
        return 1;
    if (argc > 1 && !strcmp(argv[1], "--vast")) {
        for (i = 0; i < 2; i++) {
            char *v = mmap(NULL, 16ULL << 40, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (v == MAP_FAILED || (i == 1 && madvise(v, 16ULL << 40, MADV_DONTDUMP) != 0))
                return 1;
            /* made at run time, so that the text is in no file mapping */
            snprintf(v + (8ULL << 40), 64, "vast-%s-%d", i ? "dontdump" : "dumped", 4242 * (int)(i + 1));
            printf("vast %p\n", (void *)v);
        }
    }
    if (argc > 2 && !strcmp(argv[1], "--random")) {
        size_t n = (size_t)atol(argv[2]) << 20;
        uint64_t *r = malloc(n), x = 88172645463325252ULL ^ (uint64_t)getpid();
        if (!r)
            return 1;
        for (i = 0; i < n / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            r[i] = x;
        }
        printf("random %p\n", (void *)r);
    }
    pthread_barrier_init(&started, NULL, 4);
    pthread_create(&t, NULL, alpha_thread, NULL);
    pthread_create(&t, NULL, beta_thread, NULL);
    pthread_create(&t, NULL, gamma_thread, NULL);
    pthread_barrier_wait(&started);
    usleep(50000);
    printf("heap %p\nready\n", (void *)heap);
    fflush(stdout);
    CALL(main_top);
    return 0;
}
