/* dpzip: the zip writer and the bundle outside httpd, writing to stdout.
 *
 *   dpzip [options] PID          bundle of a live process (core + sysroot +
 *                                manifest + scripts)
 *   dpzip [options] --synthetic  an archive of generated entries, to show
 *                                readers accept ZIP64 without a huge process
 *
 * options:
 *   --level N          deflate level 0..9 (default: the writer's default)
 *   --fail-after N     the sink refuses everything past N bytes (a reader
 *                      that went away): the output must be rejected
 *   --sparse           stdout is a regular file: seek over 4 KiB blocks of
 *                      zeros instead of writing them (cheap multi-GiB tests)
 *   --instance NAME    instance name in the manifest
 *   --core-file PATH   bundle mode: stream this file as the core
 *   --gcore            bundle mode: produce the core with gdb's gcore
 *   --core-stub        bundle mode: a placeholder core (default)
 *   --zero-bytes N     synthetic: an entry "zeros" of N zero bytes
 *   --entries N        synthetic: N small text entries "e/<i>.txt"
 *   --add PATH         synthetic: the file as entry "file" (benchmarks)
 *   --force-zip64      ZIP64 records for every entry
 *
 * Exit status 0 when the archive was finished, 1 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <apr_general.h>
#include "worker/zip.h"
#include "dump/bundle.h"

typedef struct out_ctx {
    int fd;
    int sparse;
    unsigned long long pos, fail_after;
} out_ctx;

static int all_zero(const unsigned char *b, size_t n)
{
    return n && b[0] == 0 && memcmp(b, b + 1, n - 1) == 0;
}

static int write_all(int fd, const unsigned char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* With --sparse, blocks of zeros aligned on 4 KiB file offsets become holes. */
static int out_write(dp_sink *s, const void *buf, size_t len)
{
    out_ctx *o = s->ctx;
    const unsigned char *b = buf;

    if (o->fail_after && o->pos + len > o->fail_after) {
        size_t k = (size_t)(o->fail_after - o->pos);
        if (write_all(o->fd, b, k) == 0)
            o->pos += k;
        return -1;
    }
    while (len) {
        size_t k = 4096 - (size_t)(o->pos % 4096);
        if (k > len)
            k = len;
        if (o->sparse && k == 4096 && all_zero(b, k)) {
            if (lseek(o->fd, (off_t)k, SEEK_CUR) < 0)
                return -1;
        }
        else if (write_all(o->fd, b, k) != 0)
            return -1;
        o->pos += k;
        b += k;
        len -= k;
    }
    return 0;
}

static int stream_file(const char *path, dp_sink *data, dp_error *err);

static int synthetic(dp_zip *z, unsigned long long zero_bytes, unsigned long entries,
                     const char *add, dp_error *err)
{
    static unsigned char zeros[1 << 20];
    char name[64], text[128];
    unsigned long i;

    if (zero_bytes) {
        if (dp_zip_begin(z, "zeros", 1700000000, 0644) != 0)
            return -1;
        while (zero_bytes) {
            size_t k = zero_bytes < sizeof(zeros) ? (size_t)zero_bytes : sizeof(zeros);
            if (dp_zip_write(z, zeros, k) != 0)
                return -1;
            zero_bytes -= k;
        }
    }
    if (add && (dp_zip_begin(z, "file", 1700000000, 0644) != 0
                || stream_file(add, &dp_zip_entry_sink(z)->data, err) != 0))
        return -1;
    for (i = 0; i < entries; i++) {
        int n = snprintf(text, sizeof(text), "entry %lu of %lu\n", i, entries);
        snprintf(name, sizeof(name), "e/%lu.txt", i);
        if (dp_zip_begin(z, name, 1700000000 + (long long)i, 0644) != 0
            || dp_zip_write(z, text, (size_t)n) != 0)
            return -1;
    }
    /* an entry after everything: its offset passes 4 GiB in the big test */
    if (dp_zip_begin(z, "tail.txt", 1700000000, 0600) != 0
        || dp_zip_write(z, "the end\n", 8) != 0)
        return -1;
    return 0;
}

/* ----------------------------------------------------------------- cores */

typedef struct core_src {
    const char *file;           /* stream this file */
    pid_t pid;
    int gcore;                  /* run gcore into a temp file first */
} core_src;

static int stream_file(const char *path, dp_sink *data, dp_error *err)
{
    static unsigned char buf[64 * 1024];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return dp_fail(err, 500, "%s: %s", path, strerror(errno));
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (dp_sink_write(data, buf, (size_t)n) != 0) {
            close(fd);
            return dp_fail(err, 500, "the zip stream failed");
        }
    close(fd);
    return n < 0 ? dp_fail(err, 500, "%s: %s", path, strerror(errno)) : 0;
}

static int run_gcore(pid_t pid, const char *prefix)
{
    char spid[32];
    pid_t c;
    int st;

    snprintf(spid, sizeof(spid), "%d", (int)pid);
    c = fork();
    if (c == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("gcore", "gcore", "-o", prefix, spid, (char *)NULL);
        _exit(127);
    }
    if (c < 0 || waitpid(c, &st, 0) != c)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int write_core(void *arg, dp_sink *data, dp_error *err)
{
    core_src *cs = arg;
    char prefix[64], path[96];
    int rc;

    if (cs->file)
        return stream_file(cs->file, data, err);
    if (!cs->gcore) {
        static const char stub[] = "placeholder: dpzip was run without a core writer\n";
        return dp_sink_write(data, stub, sizeof(stub) - 1) == 0 ? 0
               : dp_fail(err, 500, "the zip stream failed");
    }
    snprintf(prefix, sizeof(prefix), "/tmp/dpzip-gcore-%d", (int)getpid());
    snprintf(path, sizeof(path), "%s.%d", prefix, (int)cs->pid);
    if (run_gcore(cs->pid, prefix) != 0) {
        unlink(path);
        return dp_fail(err, 500, "gcore %d failed", (int)cs->pid);
    }
    rc = stream_file(path, data, err);
    unlink(path);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: dpzip [--level N] [--fail-after N] [--sparse] [--force-zip64]\n"
            "             [--instance NAME] [--core-file PATH | --gcore | --core-stub] PID\n"
            "       dpzip [--level N] ... --synthetic [--zero-bytes N] [--entries N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    out_ctx oc = { .fd = 1 };
    dp_sink sink = { out_write, &oc, NULL, NULL };
    dp_zip_opts zo = { .level = -1 };
    dp_bundle_opts bo = { .instance_name = "dpzip" };
    core_src cs = { 0 };
    unsigned long long zero_bytes = 0;
    unsigned long entries = 0;
    const char *add = NULL;
    int synth = 0, i, rc;
    apr_pool_t *p;
    dp_zip *z;
    dp_error err = { 0 };

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--synthetic"))
            synth = 1;
        else if (!strcmp(a, "--sparse"))
            oc.sparse = 1;
        else if (!strcmp(a, "--force-zip64"))
            zo.force_zip64 = 1;
        else if (!strcmp(a, "--gcore"))
            cs.gcore = 1;
        else if (!strcmp(a, "--core-stub"))
            cs.gcore = 0, cs.file = NULL;
        else if (!v && a[0] == '-')
            usage();
        else if (!strcmp(a, "--level"))
            zo.level = atoi(argv[++i]);
        else if (!strcmp(a, "--fail-after"))
            oc.fail_after = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--zero-bytes"))
            zero_bytes = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--entries"))
            entries = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(a, "--add"))
            add = argv[++i];
        else if (!strcmp(a, "--instance"))
            bo.instance_name = argv[++i];
        else if (!strcmp(a, "--core-file"))
            cs.file = argv[++i];
        else if (a[0] != '-' && !bo.pid)
            bo.pid = (pid_t)atoi(a);
        else
            usage();
    }
    if (synth == !!bo.pid)
        usage();
    signal(SIGPIPE, SIG_IGN);
    apr_initialize();
    apr_pool_create(&p, NULL);
    if (dp_zip_open(&z, &sink, &zo, p, &err) != 0) {
        fprintf(stderr, "dpzip: %s\n", err.msg);
        return 1;
    }
    cs.pid = bo.pid;
    if (synth)
        rc = synthetic(z, zero_bytes, entries, add, &err);
    else
        rc = dp_bundle_write(&bo, dp_zip_entry_sink(z), write_core, &cs, p, &err);
    if (rc == 0)
        rc = dp_zip_finish(z);
    else
        dp_zip_abort(z);
    if (rc != 0)
        fprintf(stderr, "dpzip: %s\n", err.status ? err.msg : dp_zip_error(z)->msg);
    else if (oc.sparse && ftruncate(oc.fd, (off_t)oc.pos) != 0)
        rc = -1;
    apr_pool_destroy(p);
    apr_terminate();
    return rc == 0 ? 0 : 1;
}
