/* A target for dumpType 0x40 and 0x1: one thread stuck in a call that holds
 * a pointer (on its stack only) into a large heap buffer with a known
 * pattern; another thread whose stack holds 2048 pointers 5 pages apart into
 * touched memory (far more than the bound, with short gaps between); and a known value in .bss beyond
 * the object's last file page. Prints "held 0x...", "bss 0x...", "ready". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
#define FLOOD_REFS 2048
#define FLOOD_STRIDE (5 * 4096)

/* 1 MiB of zeros ahead of the marker puts it in the anonymous mapping that
 * follows the writable file mapping, not in the file's last page */
struct bss_area {
    char pad[1 << 20];
    volatile uint64_t marker;
};
struct bss_area dp_bss_area;

static pthread_barrier_t started;

static NOINLINE void stuck_holding(char *obj)
{
    char *volatile held = obj;     /* the stuck frame's only reference */
    (void)held;
    for (;;)
        pause();
}

static void *holder_thread(void *arg)
{
    pthread_barrier_wait(&started);
    stuck_holding(arg);
    return NULL;
}

static NOINLINE void stuck_flooded(char *pages)
{
    char *volatile refs[FLOOD_REFS];
    size_t i;
    for (i = 0; i < FLOOD_REFS; i++)
        refs[i] = pages + i * FLOOD_STRIDE + 64;
    for (;;)
        pause();
}

static void *flood_thread(void *arg)
{
    pthread_barrier_wait(&started);
    stuck_flooded(arg);
    return NULL;
}

int main(void)
{
    const size_t buf_size = 16 << 20, flood_size = (size_t)FLOOD_REFS * FLOOD_STRIDE;
    char *buf = malloc(buf_size), *flood = malloc(flood_size), *obj;
    pthread_attr_t big;
    pthread_t t;

    if (!buf || !flood)
        return 1;
    memset(buf, 0x11, buf_size);
    memset(flood, 0x22, flood_size);
    obj = buf + buf_size / 2;           /* deep inside: nothing else points near it */
    strcpy(obj, "DIAGPROC-REFERENCED-OBJECT-7d1c");
    dp_bss_area.marker = 0x6273735f76616c75ULL;
    pthread_barrier_init(&started, NULL, 3);
    pthread_attr_init(&big);
    pthread_attr_setstacksize(&big, 1 << 20);
    pthread_create(&t, &big, flood_thread, flood);
    pthread_create(&t, NULL, holder_thread, obj);
    pthread_barrier_wait(&started);
    usleep(50000);
    printf("held %p\nbss %p\nready\n", (void *)obj, (void *)&dp_bss_area.marker);
    fflush(stdout);
    buf = flood = obj = NULL;           /* main keeps no reference either */
    for (;;)
        pause();
    return 0;
}
