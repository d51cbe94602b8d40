/* Reading the process table from /proc: small parsers that work on buffers
 * (so unit tests feed them fixture files) and readers that fill them.
 * APR pools only; no httpd headers. */
#ifndef DP_PROCFS_H
#define DP_PROCFS_H

#include <sys/types.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include "common/dp_error.h"

#define DP_COMM_MAX 64      /* comm is at most 15 bytes; room for odd kernels */

/* /proc/PID/stat (and task/TID/stat), the fields we use. */
typedef struct dp_stat {
    pid_t pid;
    char comm[DP_COMM_MAX];         /* raw bytes, NUL-terminated */
    char state;                     /* R S D T t Z X I ... */
    pid_t ppid, pgrp, session;
    unsigned long flags;            /* PF_* */
    unsigned long long utime, stime;        /* clock ticks */
    long long cutime, cstime;
    long priority, nice, num_threads;
    unsigned long long starttime;           /* ticks since boot */
    unsigned long long vsize;               /* bytes */
    long long rss;                          /* pages */
    int exit_signal;                        /* sent to the parent at exit; 0 = none */
    int processor;
    /* where the kernel put argv's and the environment's strings at exec
     * (0 when the reader may not ptrace the process) */
    unsigned long long arg_start, arg_end, env_start, env_end;
} dp_stat;

#define DP_PF_KTHREAD 0x00200000UL

/* The comm field ends at the *last* ')' in the line: names may hold ')' too. */
int dp_parse_stat(const char *buf, size_t len, dp_stat *st);

/* /proc/PID/status, the fields we use; -1 means absent. Sizes in bytes. */
typedef struct dp_status {
    long uid[4], gid[4];            /* real, effective, saved, fs */
    long long vm_peak, vm_size, vm_hwm, vm_rss, rss_anon, rss_file, rss_shmem;
    long long vm_data, vm_stk, vm_exe, vm_lib, vm_swap;
    long long threads;
    long long vol_ctxt, nonvol_ctxt;
    unsigned long long cap_prm, cap_eff, cap_amb;   /* capability sets (hex in the file) */
    int caps_known;                 /* bit 0: CapPrm seen, bit 1: CapEff seen */
} dp_status;

int dp_parse_status(const char *buf, size_t len, dp_status *st);

/* /proc/PID/statm in pages. */
typedef struct dp_statm {
    unsigned long long size, resident, shared, text, lib, data, dirty;
} dp_statm;
int dp_parse_statm(const char *buf, dp_statm *sm);

/* One line of /proc/PID/maps. */
typedef struct dp_map {
    unsigned long long start, end, offset, inode;
    unsigned int dev_major, dev_minor;
    char perms[5];
    const char *path;               /* "" for anonymous; "[stack]", "... (deleted)" */
} dp_map;

/* Parses every line of a maps buffer into an array of dp_map (paths copied into p). */
apr_array_header_t *dp_parse_maps(const char *buf, size_t len, apr_pool_t *p);

/* /proc/PID/io */
typedef struct dp_io {
    long long read_count, write_count, read_bytes, write_bytes, read_chars, write_chars;
} dp_io;
int dp_parse_io(const char *buf, size_t len, dp_io *io);

/* Reads a whole /proc file (small: stat, status, cmdline, environ, maps) into
 * a pool buffer, NUL-terminated. Returns 0, or -1 with errno set. */
int dp_read_file(const char *path, char **buf, size_t *len, apr_pool_t *p);
/* Same with a caller buffer: returns bytes read or -1 (errno). Stops at cap-1. */
ssize_t dp_read_small(const char *path, char *buf, size_t cap);

/* pid's stat; -1 with err 404 (Kudu text) when it is not running. */
int dp_read_stat(pid_t pid, pid_t tid, dp_stat *st, dp_error *err);

/* Owner (uid of /proc/PID), -1 when gone. */
long dp_proc_owner(pid_t pid);

/* argv from a cmdline buffer (NUL-separated; a trailing NUL is optional). */
apr_array_header_t *dp_split_nul(const char *buf, size_t len, apr_pool_t *p);

/* The process name psutil reports: comm, or argv[0]'s basename when comm is
 * the 15-byte truncation of it. */
const char *dp_process_name(const char *comm, const apr_array_header_t *argv, apr_pool_t *p);

/* php-fpm's part, from the titles it writes over argv[0] (sapi/fpm's
 * fpm_env_setproctitle): "php-fpm: master process (CONF)" gives role
 * "master" and no pool, "php-fpm: pool NAME" role "worker" and pool NAME.
 * Only for a process whose comm (the executable's name, which the title
 * leaves alone) starts with "php-fpm"; 0 with *role and *pool NULL for any
 * other process, 1 for php-fpm's. */
int dp_php_fpm_title(const char *comm, const apr_array_header_t *argv, const char **role,
                     const char **pool);

/* One process of a table scan: what the list shows, from one read of
 * /proc/PID/stat plus the owner of /proc/PID. */
typedef struct dp_proc_entry {
    pid_t pid;
    long uid;
    const char *name;       /* psutil's name (argv[0] read only when comm is truncated) */
    dp_stat st;
} dp_proc_entry;

/* Scans /proc. keep(uid, ctx) is asked first, so a process that is not
 * wanted costs one fstatat. Processes that exit meanwhile are skipped. */
apr_array_header_t *dp_scan_procs(int (*keep)(long uid, void *ctx), void *ctx, apr_pool_t *p);

/* A pid as Kudu reads an id: decimal, an optional '-', leading zeros the
 * same number. 0 with *pid set; DP_PID_NONE for a well-formed number no
 * process can have (negative, not below pid_max; Kudu answers those "not
 * running"); -1 when it is not a number at all. */
#define DP_PID_NONE 1
int dp_parse_pid(const char *s, pid_t *pid);
/* /proc/sys/kernel/pid_max: pids stay below it. */
long dp_pid_max(void);

/* Pids under /proc, ascending. */
apr_array_header_t *dp_list_pids(apr_pool_t *p);
/* Tids under /proc/PID/task, ascending; NULL when the process is gone. */
apr_array_header_t *dp_list_tids(pid_t pid, apr_pool_t *p);

/* The children of every thread of pid (pid_t), zombies included; NULL when
 * pid is gone. */
apr_array_header_t *dp_list_children(pid_t pid, apr_pool_t *p);

/* The text after "key:" on its line of /proc/PID/status (tid 0) or of
 * task/TID/status, blanks trimmed; -1 when the file or the line is missing. */
int dp_read_status_field(pid_t pid, pid_t tid, const char *key, char *out, size_t cap);

/* Boot time (epoch seconds, /proc/stat btime) and clock ticks per second. */
long long dp_boot_time(void);
long dp_clock_ticks(void);
/* A process's start (clock ticks after boot, /proc/PID/stat) as UTC ISO-8601. */
void dp_start_time_buf(char *buf, size_t len, unsigned long long ticks);
const char *dp_start_time_iso(unsigned long long ticks, apr_pool_t *p);

long dp_page_size(void);

/* psutil's status words for a state letter. */
const char *dp_state_word(char state);

/* User name for a uid (cached), or the number as a string. */
const char *dp_user_name(long uid, apr_pool_t *p);

#endif
