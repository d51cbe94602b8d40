/* Parsers for /proc files. They take a buffer so fixtures can drive them. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "proc/procfs.h"

int dp_parse_stat(const char *buf, size_t len, dp_stat *st)
{
    const char *open, *close = NULL, *p;
    char tail[1024];
    size_t n;

    memset(st, 0, sizeof(*st));
    open = memchr(buf, '(', len);
    if (!open)
        return -1;
    /* comm may hold ')' and spaces: it ends at the last ')' of the line */
    for (p = buf + len; p > open; p--) {
        if (p[-1] == ')') {
            close = p - 1;
            break;
        }
    }
    if (!close)
        return -1;
    st->pid = (pid_t)strtol(buf, NULL, 10);
    n = (size_t)(close - open - 1);
    if (n >= sizeof(st->comm))
        n = sizeof(st->comm) - 1;
    memcpy(st->comm, open + 1, n);
    st->comm[n] = '\0';

    n = len - (size_t)(close + 1 - buf);
    if (n >= sizeof(tail))
        n = sizeof(tail) - 1;
    memcpy(tail, close + 1, n);
    tail[n] = '\0';
    /* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue
     * starttime vsize rss ... exit_signal(38) processor(39) ... arg_start(48)
     * arg_end env_start env_end(51) */
    {
        unsigned long long f[52] = {0};
        long long sf[52] = {0};
        char state = 0;
        char *s = tail, *end;
        int i;

        while (*s == ' ')
            s++;
        if (*s == '\0' || *s == '\n')
            return -1;      /* cut after the name: never step past tail's NUL */
        state = *s++;
        for (i = 4; i <= 51 && *s; i++) {
            while (*s == ' ' || *s == '\n')   /* the line's final newline ends it */
                s++;
            if (!*s)
                break;
            sf[i] = strtoll(s, &end, 10);
            f[i] = (unsigned long long)sf[i];
            if (*s != '-')
                f[i] = strtoull(s, &end, 10);
            if (end == s)
                return -1;
            s = end;
        }
        if (i <= 22)
            return -1;
        st->state = state;
        st->ppid = (pid_t)sf[4];
        st->pgrp = (pid_t)sf[5];
        st->session = (pid_t)sf[6];
        st->flags = (unsigned long)f[9];
        st->utime = f[14];
        st->stime = f[15];
        st->cutime = sf[16];
        st->cstime = sf[17];
        st->priority = (long)sf[18];
        st->nice = (long)sf[19];
        st->num_threads = (long)sf[20];
        st->starttime = f[22];
        st->vsize = f[23];
        st->rss = sf[24];
        st->exit_signal = (int)sf[38];
        st->processor = (int)sf[39];
        st->arg_start = f[48];
        st->arg_end = f[49];
        st->env_start = f[50];
        st->env_end = f[51];
    }
    return 0;
}

/* "1234 kB" in bytes; a value that would not fit is clamped, never wrapped. */
static long long kb_value(const char *v)
{
    long long kb = strtoll(v, NULL, 10);
    if (kb < 0)
        return -1;
    return kb > LLONG_MAX / 1024 ? LLONG_MAX : kb * 1024;
}

int dp_parse_status(const char *buf, size_t len, dp_status *st)
{
    const char *line = buf, *end = buf + len;
    int i;

    for (i = 0; i < 4; i++)
        st->uid[i] = st->gid[i] = -1;
    st->vm_peak = st->vm_size = st->vm_hwm = st->vm_rss = -1;
    st->rss_anon = st->rss_file = st->rss_shmem = -1;
    st->vm_data = st->vm_stk = st->vm_exe = st->vm_lib = st->vm_swap = -1;
    st->threads = st->vol_ctxt = st->nonvol_ctxt = -1;
    st->cap_prm = st->cap_eff = st->cap_amb = 0;
    st->caps_known = 0;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (colon) {
            size_t klen = (size_t)(colon - line), vlen = (size_t)(le - colon - 1);
            char v[128];    /* the value alone, terminated: the buffer need not be */
            if (vlen >= sizeof(v))
                vlen = sizeof(v) - 1;
            memcpy(v, colon + 1, vlen);
            v[vlen] = '\0';
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
            if (KEY("Uid") || KEY("Gid")) {
                long *dst = KEY("Uid") ? st->uid : st->gid;
                char *s = v, *e;
                for (i = 0; i < 4; i++) {
                    long id = strtol(s, &e, 10);
                    dst[i] = e == s || id < 0 ? -1 : id;
                    s = e;
                }
            }
            else if (KEY("CapPrm")) st->cap_prm = strtoull(v, NULL, 16), st->caps_known |= 1;
            else if (KEY("CapEff")) st->cap_eff = strtoull(v, NULL, 16), st->caps_known |= 2;
            else if (KEY("CapAmb")) st->cap_amb = strtoull(v, NULL, 16);
            else if (KEY("VmPeak")) st->vm_peak = kb_value(v);
            else if (KEY("VmSize")) st->vm_size = kb_value(v);
            else if (KEY("VmHWM")) st->vm_hwm = kb_value(v);
            else if (KEY("VmRSS")) st->vm_rss = kb_value(v);
            else if (KEY("RssAnon")) st->rss_anon = kb_value(v);
            else if (KEY("RssFile")) st->rss_file = kb_value(v);
            else if (KEY("RssShmem")) st->rss_shmem = kb_value(v);
            else if (KEY("VmData")) st->vm_data = kb_value(v);
            else if (KEY("VmStk")) st->vm_stk = kb_value(v);
            else if (KEY("VmExe")) st->vm_exe = kb_value(v);
            else if (KEY("VmLib")) st->vm_lib = kb_value(v);
            else if (KEY("VmSwap")) st->vm_swap = kb_value(v);
            else if (KEY("Threads")) st->threads = strtoll(v, NULL, 10);
            else if (KEY("voluntary_ctxt_switches")) st->vol_ctxt = strtoll(v, NULL, 10);
            else if (KEY("nonvoluntary_ctxt_switches")) st->nonvol_ctxt = strtoll(v, NULL, 10);
#undef KEY
        }
        line = nl ? nl + 1 : end;
    }
    return st->uid[0] == -1 ? -1 : 0;
}

int dp_parse_statm(const char *buf, dp_statm *sm)
{
    return sscanf(buf, "%llu %llu %llu %llu %llu %llu %llu", &sm->size, &sm->resident,
                  &sm->shared, &sm->text, &sm->lib, &sm->data, &sm->dirty) == 7 ? 0 : -1;
}

apr_array_header_t *dp_parse_maps(const char *buf, size_t len, apr_pool_t *p)
{
    apr_array_header_t *maps = apr_array_make(p, 64, sizeof(dp_map));
    const char *line = buf, *end = buf + len;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        char tmp[256];
        size_t n = (size_t)(le - line);
        dp_map m;
        int used = 0;

        memset(&m, 0, sizeof(m));
        if (n >= sizeof(tmp))
            n = sizeof(tmp) - 1;    /* the fixed fields fit; the path is taken below */
        memcpy(tmp, line, n);
        tmp[n] = '\0';
        if (sscanf(tmp, "%llx-%llx %4s %llx %x:%x %llu %n", &m.start, &m.end, m.perms,
                   &m.offset, &m.dev_major, &m.dev_minor, &m.inode, &used) >= 7) {
            const char *path = line + used;
            if (used == 0 || path > le)
                path = le;
            while (path < le && *path == ' ')
                path++;
            m.path = apr_pstrmemdup(p, path, (apr_size_t)(le - path));
            *(dp_map *)apr_array_push(maps) = m;
        }
        line = nl ? nl + 1 : end;
    }
    return maps;
}

int dp_parse_io(const char *buf, size_t len, dp_io *io)
{
    const char *line = buf, *end = buf + len;
    int found = 0;

    memset(io, 0, sizeof(*io));
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)((nl ? nl : end) - line);
        char text[96], key[32];     /* the line alone, terminated: the buffer need not be */
        long long v;
        if (n >= sizeof(text))
            n = sizeof(text) - 1;
        memcpy(text, line, n);
        text[n] = '\0';
        if (sscanf(text, "%31[a-z_]: %lld", key, &v) == 2) {
            found++;
            if (!strcmp(key, "rchar")) io->read_chars = v;
            else if (!strcmp(key, "wchar")) io->write_chars = v;
            else if (!strcmp(key, "syscr")) io->read_count = v;
            else if (!strcmp(key, "syscw")) io->write_count = v;
            else if (!strcmp(key, "read_bytes")) io->read_bytes = v;
            else if (!strcmp(key, "write_bytes")) io->write_bytes = v;
        }
        line = nl ? nl + 1 : end;
    }
    return found ? 0 : -1;
}

apr_array_header_t *dp_split_nul(const char *buf, size_t len, apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 8, sizeof(const char *));
    size_t i = 0;

    while (i < len) {
        const char *s = buf + i;
        const char *z = memchr(s, '\0', len - i);
        size_t n = z ? (size_t)(z - s) : len - i;
        *(const char **)apr_array_push(a) = apr_pstrmemdup(p, s, n);
        i += n + 1;
    }
    return a;
}

const char *dp_process_name(const char *comm, const apr_array_header_t *argv, apr_pool_t *p)
{
    (void)p;
    if (strlen(comm) >= 15 && argv && argv->nelts > 0) {
        const char *a0 = APR_ARRAY_IDX(argv, 0, const char *);
        const char *base = strrchr(a0, '/');
        base = base ? base + 1 : a0;
        if (strncmp(base, comm, strlen(comm)) == 0)
            return base;
    }
    return comm;
}

int dp_php_fpm_title(const char *comm, const apr_array_header_t *argv, const char **role,
                     const char **pool)
{
    const char *a0;

    *role = *pool = NULL;
    /* comm is what the kernel named the process at exec: a title alone
     * ("php-fpm: pool x" written by any program) does not make one */
    if (!comm || strncmp(comm, "php-fpm", 7) != 0 || !argv || argv->nelts < 1)
        return 0;
    a0 = APR_ARRAY_IDX(argv, 0, const char *);
    if (!strncmp(a0, "php-fpm: master process", 23))
        *role = "master";
    else if (!strncmp(a0, "php-fpm: pool ", 14) && a0[14]) {
        *role = "worker";
        *pool = a0 + 14;
    }
    return *role != NULL;
}

const char *dp_state_word(char state)
{
    switch (state) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk-sleep";
    case 'T': return "stopped";
    case 't': return "tracing-stop";
    case 'Z': return "zombie";
    case 'X': case 'x': return "dead";
    case 'K': return "wake-kill";
    case 'W': return "waking";
    case 'I': return "idle";
    case 'P': return "parked";
    default: return "unknown";
    }
}
