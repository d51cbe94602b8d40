/* A target for the process API tests: known name, threads, memory, open
 * file and children, so a test can compare what the API says with what it
 * set up.
 *   proc_target [--comm HEX] [--threads N] [--rss MIB] [--open PATH]
 *               [--rss-random MIB] [--children N] [--spin] [--spinners N] [--churn-threads]
 *               [--heartbeat] [--seccomp] [--holes] [--runs N] [--writer MIB] [args...]
 * --churn-threads: a thread keeps creating short-lived threads (the dump
 * must cope with threads that appear and vanish while it seizes them).
 * --heartbeat: a thread ticks every millisecond and tracks the longest gap
 * between ticks (how long the process was paused); SIGUSR1 makes it print
 * "maxgap_us N" and start over.
 * --seccomp: run under an allow-all seccomp filter (put it first, so every
 * thread has it): a dump must not inject calls into such a process.
 * --holes: 64 anonymous pages, each holding 1000 + its index, except two in
 * every eight, never touched: absent gaps inside one run of present pages
 * (prints "holes_at ADDR").
 * --runs N: one reservation in which only every 18th page is touched (holding
 * its run's index): N separate runs of present pages, so N PT_LOADs in a full
 * dump (prints "runs_at ADDR").
 * --writer MIB: a thread rewrites MIB of memory without pause, writing the
 * pass number into each page in turn: a consistent copy holds at most one
 * place where the number changes (prints "writer_at ADDR").
 * Prints "ready <pid>" when everything is in place, then sleeps until killed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static volatile int spin_forever = 1;

static void *idle_thread(void *arg)
{
    char name[16];
    snprintf(name, sizeof(name), "worker-%ld", (long)(size_t)arg);
    pthread_setname_np(pthread_self(), name);
    for (;;)
        pause();
    return NULL;
}

static void *spin_thread(void *arg)
{
    volatile unsigned long n = 0;
    (void)arg;
    pthread_setname_np(pthread_self(), "spinner");
    while (spin_forever)
        n++;
    return NULL;
}

static volatile sig_atomic_t report_gap;

static void on_usr1(int sig)
{
    (void)sig;
    report_gap = 1;
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *heartbeat_thread(void *arg)
{
    long long last = now_us(), max_gap = 0;
    struct timespec ms = { 0, 1000000 };
    (void)arg;
    pthread_setname_np(pthread_self(), "heartbeat");
    for (;;) {
        long long t;
        nanosleep(&ms, NULL);
        t = now_us();
        if (t - last > max_gap)
            max_gap = t - last;
        last = t;
        if (report_gap) {
            report_gap = 0;
            printf("maxgap_us %lld\n", max_gap);
            fflush(stdout);
            max_gap = 0;
            last = now_us();
        }
    }
    return NULL;
}

static void *short_thread(void *arg)
{
    (void)arg;
    usleep(1000);
    return NULL;
}

static void *churn_thread(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_thread, NULL) == 0)
            pthread_detach(t);
        usleep(200);
    }
    return NULL;
}

static size_t writer_pages;

static void *writer_thread(void *arg)
{
    volatile long *mem = arg;
    long pass, stride = sysconf(_SC_PAGESIZE) / (long)sizeof(long);
    size_t i;
    for (pass = 1;; pass++)
        for (i = 0; i < writer_pages; i++)
            mem[i * (size_t)stride] = pass;
    return NULL;
}

static int unhex(const char *h, char *out, size_t cap)
{
    size_t i, n = strlen(h) / 2;
    if (n >= cap)
        n = cap - 1;
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (char)v;
    }
    out[n] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    int i, threads = 0, children = 0, spin = 0;
    long rss_mib = 0;
    pthread_t t;

    signal(SIGPIPE, SIG_IGN);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--comm") && i + 1 < argc) {
            char comm[17];
            if (unhex(argv[++i], comm, sizeof(comm)) == 0)
                prctl(PR_SET_NAME, comm, 0, 0, 0);
        }
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rss") && i + 1 < argc)
            rss_mib = atol(argv[++i]);
        else if (!strcmp(argv[i], "--rss-random") && i + 1 < argc) {
            /* incompressible memory, for streams that must take a while */
            size_t n = (size_t)atol(argv[++i]) << 20, k;
            uint64_t *mem = malloc(n), x = 88172645463325252ULL;
            if (!mem)
                return 1;
            for (k = 0; k < n / 8; k++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                mem[k] = x;
            }
        }
        else if (!strcmp(argv[i], "--open") && i + 1 < argc) {
            if (!fopen(argv[++i], "r"))
                perror("open");
        }
        else if (!strcmp(argv[i], "--children") && i + 1 < argc)
            children = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--spin"))
            spin = 1;
        else if (!strcmp(argv[i], "--spinners") && i + 1 < argc)
            spin = atoi(argv[++i]);     /* busy even on a crowded machine */
        else if (!strcmp(argv[i], "--churn-threads"))
            pthread_create(&t, NULL, churn_thread, NULL);
        else if (!strcmp(argv[i], "--holes")) {
            long pg = sysconf(_SC_PAGESIZE), k;
            char *h = mmap(NULL, 64 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
            if (h == MAP_FAILED)
                return 1;
            for (k = 0; k < 64; k++)
                if (k % 8 != 3 && k % 8 != 4)
                    *(long *)(h + k * pg) = 1000 + k;
            printf("holes_at %p\n", (void *)h);
        }
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            long pg = sysconf(_SC_PAGESIZE), k, n = atol(argv[++i]);
            char *h = mmap(NULL, (size_t)(n * 18 * pg), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (h == MAP_FAILED)
                return 1;
            for (k = 0; k < n; k++)
                *(long *)(h + k * 18 * pg) = k;
            printf("runs_at %p\n", (void *)h);
        }
        else if (!strcmp(argv[i], "--writer") && i + 1 < argc) {
            size_t n = (size_t)atol(argv[++i]) << 20;
            char *w = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (w == MAP_FAILED)
                return 1;
            memset(w, 0, n);
            writer_pages = n / (size_t)sysconf(_SC_PAGESIZE);
            printf("writer_at %p\n", (void *)w);
            pthread_create(&t, NULL, writer_thread, w);
        }
        else if (!strcmp(argv[i], "--seccomp")) {
            struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
            struct sock_fprog prog = { 1, &allow };
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
                perror("seccomp");
        }
        else if (!strcmp(argv[i], "--heartbeat")) {
            signal(SIGUSR1, on_usr1);
            pthread_create(&t, NULL, heartbeat_thread, NULL);
        }
    }
    if (rss_mib > 0) {
        size_t n = (size_t)rss_mib << 20;
        char *mem = malloc(n);
        if (!mem)
            return 1;
        memset(mem, 0x5a, n);      /* touched: resident */
        printf("rss_at %p\n", (void *)mem);
    }
    for (i = 0; i < threads; i++)
        pthread_create(&t, NULL, idle_thread, (void *)(size_t)i);
    for (i = 0; i < spin; i++)
        pthread_create(&t, NULL, spin_thread, NULL);
    for (i = 0; i < children; i++) {
        pid_t c = fork();
        if (c == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            for (;;)
                pause();
        }
        printf("child %d\n", (int)c);
    }
    usleep(50000);  /* let the threads name themselves */
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;)
        pause();
}
