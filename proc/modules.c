/* The files a process maps, and how to open the very file that is mapped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "proc/modules.h"

#define DELETED_SUFFIX " (deleted)"

apr_array_header_t *dp_collect_modules(const apr_array_header_t *maps, apr_pool_t *p)
{
    apr_array_header_t *mods = apr_array_make(p, 32, sizeof(dp_module));
    apr_hash_t *seen = apr_hash_make(p);
    int i;

    for (i = 0; i < maps->nelts; i++) {
        const dp_map *m = &APR_ARRAY_IDX(maps, i, dp_map);
        size_t n = strlen(m->path), sl = sizeof(DELETED_SUFFIX) - 1;
        char id[64];
        const char *key;
        dp_module *mod;

        if (m->path[0] != '/' || m->inode == 0 || strncmp(m->path, "/dev/", 5) == 0)
            continue;
        /* apr's formatter has no %llu: the numbers go through snprintf */
        snprintf(id, sizeof(id), "%x:%x:%llu:", m->dev_major, m->dev_minor, m->inode);
        key = apr_pstrcat(p, id, m->path, NULL);
        if ((mod = apr_hash_get(seen, key, APR_HASH_KEY_STRING)) != NULL) {
            if (m->end > mod->end)
                mod->end = m->end;
            continue;
        }
        mod = apr_array_push(mods);
        memset(mod, 0, sizeof(*mod));
        mod->deleted = n > sl && strcmp(m->path + n - sl, DELETED_SUFFIX) == 0;
        mod->path = apr_pstrmemdup(p, m->path, mod->deleted ? n - sl : n);
        mod->start = mod->map_start = m->start;
        mod->end = mod->map_end = m->end;
        mod->first_offset = m->offset;
        mod->inode = m->inode;
        mod->dev_major = m->dev_major;
        mod->dev_minor = m->dev_minor;
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, mod);
    }
    return mods;
}

int dp_module_same_file(const dp_module *m, dev_t dev, ino_t ino)
{
    return (unsigned long long)ino == m->inode && major(dev) == m->dev_major
           && minor(dev) == m->dev_minor;
}

int dp_open_module(pid_t pid, const dp_module *m, int is_exe, const char **source,
                   const char **why)
{
    char path[PATH_MAX + 96];
    struct stat st;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid, m->map_start,
             m->map_end);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        *source = "map_files";
        return fd;
    }
    if (is_exe) {
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
            *source = "exe";
            return fd;
        }
    }
    snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, m->path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0
        && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0
        /* the root of a process we may not trace is closed to us: the same
           path in ours, if it is the very file (checked below) */
        && (errno != EACCES || (fd = open(m->path, O_RDONLY | O_CLOEXEC)) < 0)) {
        *why = m->deleted ? "deleted, and the mapping is not readable without "
                            "CAP_CHECKPOINT_RESTORE" : strerror(errno);
        return -1;
    }
    if (fstat(fd, &st) != 0 || !dp_module_same_file(m, st.st_dev, st.st_ino)) {
        close(fd);
        *why = "the file at this path is not the one mapped";
        return -1;
    }
    *source = "root";
    return fd;
}
