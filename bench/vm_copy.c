/* Baseline for the dump benchmark: the cheapest possible copy of a
 * process's memory. Reads every readable mapping with process_vm_readv in
 * 1 MiB chunks and writes it to stdout, no ELF, no page selection.
 *   vm_copy PID > /dev/null   (needs ptrace access to PID) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHUNK (1 << 20)

int main(int argc, char **argv)
{
    char path[64], line[512];
    static char buf[CHUNK];
    unsigned long long total = 0;
    FILE *maps;
    pid_t pid;

    if (argc != 2)
        return 2;
    pid = (pid_t)atoi(argv[1]);
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    maps = fopen(path, "r");
    if (!maps)
        return 1;
    while (fgets(line, sizeof(line), maps)) {
        unsigned long long start, end, a;
        char perms[5];
        if (sscanf(line, "%llx-%llx %4s", &start, &end, perms) != 3 || perms[0] != 'r'
            || strstr(line, "[vvar") || strstr(line, "[vsyscall]"))
            continue;
        for (a = start; a < end; a += CHUNK) {
            size_t n = end - a < CHUNK ? end - a : CHUNK;
            struct iovec local = { buf, n }, remote = { (void *)a, n };
            ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
            if (got <= 0)
                memset(buf, 0, n), got = (ssize_t)n;
            if (fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
                return 1;
            total += (unsigned long long)got;
        }
    }
    fclose(maps);
    fprintf(stderr, "%llu\n", total);
    return 0;
}
