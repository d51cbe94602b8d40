/* The files a process maps, once each: the one collector behind the API's
 * module routes and the bundle, so that both name the same files and read
 * their build ids from the same bytes. */
#ifndef DP_MODULES_H
#define DP_MODULES_H

#include <sys/types.h>
#include <apr_tables.h>
#include "proc/procfs.h"

typedef struct dp_module {
    const char *path;                   /* as mapped, " (deleted)" stripped */
    int deleted;
    unsigned long long start, end;      /* lowest address, end of its last mapping */
    unsigned long long map_start, map_end;  /* its first mapping (the map_files name) */
    unsigned long long first_offset;    /* file offset of that first mapping */
    unsigned long long inode;
    unsigned dev_major, dev_minor;
} dp_module;

/* Every regular file-backed mapping of maps (device files left out: opening
 * one could have side effects), one dp_module per file (device, inode and
 * path), in the order of first appearance. */
apr_array_header_t *dp_collect_modules(const apr_array_header_t *maps, apr_pool_t *p);

/* Opens what is actually mapped: /proc/PID/map_files (needs
 * CAP_CHECKPOINT_RESTORE), /proc/PID/exe when is_exe, else the path in the
 * target's root when it is still the very file mapped. fd, or -1 with *why;
 * *source says which way ("map_files", "exe", "root"). */
int dp_open_module(pid_t pid, const dp_module *m, int is_exe, const char **source,
                   const char **why);

/* Is st the file the module maps? */
int dp_module_same_file(const dp_module *m, dev_t dev, ino_t ino);

#endif
