/* The bundle's files: every mapped file as it is mapped (sysroot/<path>),
 * separate debug files by build id, gdb's auto-load scripts and the Python
 * packages they import. */
#include <elf.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "proc/elfinfo.h"
#include "common/format.h"
#include "dump/bundle_internal.h"

/* Copies fd from offset 0 into the current entry, size bytes at most (a
 * file that grows while we read would otherwise never end). */
static int copy_fd(bundle *b, int fd, long long size, const char *what)
{
    long long off = 0;

    while (off < size) {
        size_t want = size - off < COPY_BUF ? (size_t)(size - off) : COPY_BUF;
        ssize_t n = pread(fd, b->buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;                  /* shrank meanwhile: the entry is shorter */
        if (dp_sink_write(&b->out->data, b->buf, (size_t)n) != 0)
            return dp_bundle_sink_failed(b, what);
        off += n;
    }
    return 0;
}

/* One module per mapped file (proc/modules.c, as the API's bundle_module routes). */
void dp_bundle_collect_modules(bundle *b)
{
    apr_array_header_t *files = dp_collect_modules(b->maps, b->p);
    int i;

    b->mods = apr_array_make(b->p, files->nelts, sizeof(bundle_module));
    for (i = 0; i < files->nelts; i++) {
        const dp_module *dm = &APR_ARRAY_IDX(files, i, dp_module);
        bundle_module *mod = apr_array_push(b->mods);
        memset(mod, 0, sizeof(*mod));
        mod->dm = dm;
        mod->path = dm->path;
        mod->deleted = dm->deleted;
        mod->start = dm->map_start;
        mod->end = dm->map_end;
        mod->inode = dm->inode;
        mod->dev_major = dm->dev_major;
        mod->dev_minor = dm->dev_minor;
        mod->is_exe = b->exe && strcmp(mod->path, b->exe) == 0;
    }
}

/* The program interpreter named in the executable (/lib64/ld-linux-x86-64.so.2):
 * the name under which the debugger will look for the dynamic linker. */
static const char *elf_interp(int fd, apr_pool_t *p)
{
    Elf64_Ehdr eh;
    int i;

    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh)
        || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        return NULL;
    for (i = 0; i < eh.e_phnum && i < 256; i++) {
        Elf64_Phdr ph;
        char path[PATH_MAX];
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof(ph)))
            != (ssize_t)sizeof(ph))
            return NULL;
        if (ph.p_type != PT_INTERP || ph.p_filesz < 2 || ph.p_filesz >= sizeof(path))
            continue;
        if (pread(fd, path, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz)
            return NULL;
        path[ph.p_filesz - 1] = '\0';
        return path[0] == '/' ? apr_pstrdup(p, path) : NULL;
    }
    return NULL;
}

/* What is actually mapped: map_files (needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE), /proc/PID/exe for the executable, else the path in
 * the target's root when it is still the same file. */
static int open_module(bundle *b, bundle_module *mod)
{
    return dp_open_module(b->o->pid, mod->dm, mod->is_exe, &mod->source, &mod->why);
}

/* Flags a path that now names another file (or nothing): the copy in the
 * bundle is what was mapped, not what is on disk. */
static void check_replaced(bundle *b, bundle_module *mod)
{
    char path[PATH_MAX + 96];
    struct stat st;

    if (mod->deleted)
        return;
    snprintf(path, sizeof(path), "%s/root%s", b->proc, mod->path);
    mod->replaced = stat(path, &st) != 0 || !same_file(&st, mod);
}

static int write_module(bundle *b, bundle_module *mod)
{
    unsigned char id[64];
    struct stat st;
    int fd, rc, n;

    check_replaced(b, mod);
    if ((fd = open_module(b, mod)) < 0)
        return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        mod->source = NULL;
        mod->why = "not a regular file";
        return 0;
    }
    mod->is_elf = dp_is_elf_fd(fd);
    if (!mod->is_elf && st.st_size > DP_BUNDLE_DATA_FILE_MAX) {
        close(fd);
        mod->source = NULL;
        mod->why = apr_psprintf(b->p, "not an ELF object, and larger than the %d MiB kept "
                                "of such files", DP_BUNDLE_DATA_FILE_MAX >> 20);
        return 0;
    }
    mod->size = (long long)st.st_size;
    mod->mtime = (long long)st.st_mtime;
    n = mod->is_elf ? dp_elf_build_id(fd, id, sizeof(id)) : 0;
    mod->build_id = n > 0 ? dp_hex(id, (size_t)n, b->p) : NULL;
    if (mod->is_exe)
        b->interp = elf_interp(fd, b->p);
    if (!dp_bundle_entry_path_ok(mod->path)) {
        close(fd);
        mod->source = NULL;
        mod->why = "its path cannot be an entry name";
        return 0;
    }
    mod->name = apr_pstrcat(b->p, "sysroot", mod->path, NULL);
    /* data files are never made executable by the bundle */
    if (b->out->begin(b->out, mod->name, mod->mtime,
                      mod->is_elf ? st.st_mode & 0755 : 0644) != 0) {
        close(fd);
        return dp_bundle_sink_failed(b, mod->name);
    }
    rc = copy_fd(b, fd, mod->size, mod->name);
    close(fd);
    if (rc == 0 && b->out->end(b->out) != 0)
        return dp_bundle_sink_failed(b, mod->name);
    return rc;
}

/* The separate debug file the distribution installs for a build id
 * (Debian's -dbgsym packages), looked up in the target's root. */
static int write_debug_file(bundle *b, bundle_module *mod, apr_hash_t *done)
{
    const char *rel, *h = mod->build_id;
    char path[PATH_MAX + 96];
    struct stat st;
    int fd, rc;

    if (!h || strlen(h) < 4 || apr_hash_get(done, h, APR_HASH_KEY_STRING))
        return 0;
    apr_hash_set(done, h, APR_HASH_KEY_STRING, h);
    rel = apr_psprintf(b->p, "usr/lib/debug/.build-id/%.2s/%s.debug", h, h + 2);
    snprintf(path, sizeof(path), "%s/root/%s", b->proc, rel);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !dp_is_elf_fd(fd)) {
        close(fd);
        return 0;
    }
    mod->debug_file = apr_pstrcat(b->p, "sysroot/", rel, NULL);
    rc = b->out->begin(b->out, mod->debug_file, st.st_mtime, 0644) != 0
         ? dp_bundle_sink_failed(b, rel) : copy_fd(b, fd, st.st_size, rel);
    close(fd);
    if (rc == 0 && b->out->end(b->out) != 0)
        return dp_bundle_sink_failed(b, rel);
    return rc;
}

#define PKG_MAX_FILES 256
#define PKG_MAX_BYTES (4 << 20)

/* A file of a script's Python package into the sysroot at its own path. */
static int write_package_file(bundle *b, const char *path, unsigned *files, long long *bytes)
{
    char full[PATH_MAX + 96];
    const char *name = apr_pstrcat(b->p, "sysroot", path, NULL);
    struct stat st;
    int fd, rc;

    snprintf(full, sizeof(full), "%s/root%s", b->proc, path);
    if ((fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)) < 0)
        return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || *files >= PKG_MAX_FILES
        || *bytes + st.st_size > PKG_MAX_BYTES) {
        close(fd);
        return 0;
    }
    ++*files;
    *bytes += st.st_size;
    rc = b->out->begin(b->out, name, st.st_mtime, 0644) != 0
         ? dp_bundle_sink_failed(b, name) : copy_fd(b, fd, st.st_size, name);
    close(fd);
    if (rc == 0 && b->out->end(b->out) != 0)
        return dp_bundle_sink_failed(b, name);
    return rc;
}

/* The .py files below dir (in the target's root), a few levels deep. */
static int write_package_dir(bundle *b, const char *dir, int depth, unsigned *files,
                             long long *bytes)
{
    char full[PATH_MAX + 96];
    struct dirent *e;
    DIR *d;
    int rc = 0;

    snprintf(full, sizeof(full), "%s/root%s", b->proc, dir);
    if (depth > 4 || !(d = opendir(full)))
        return 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        const char *path = apr_pstrcat(b->p, dir, "/", e->d_name, NULL);
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        if (e->d_type == DT_DIR)
            rc = write_package_dir(b, path, depth + 1, files, bytes);
        else if (e->d_type == DT_REG && n > 3 && !strcmp(e->d_name + n - 3, ".py"))
            rc = write_package_file(b, path, files, bytes);
    }
    closedir(d);
    return rc;
}

/* GCC's auto-load scripts (libstdc++'s printers) import a package from the
 * directory their `pythondir = '…'` line names, found relative to the
 * object: that directory goes into the sysroot too, once. */
static int write_script_package(bundle *b, int fd, apr_hash_t *done)
{
    ssize_t n = pread(fd, b->buf, COPY_BUF - 1, 0);
    const char *at, *end;
    char *dir;
    unsigned files = 0;
    long long bytes = 0;

    if (n <= 0)
        return 0;
    ((char *)b->buf)[n] = '\0';
    if (!(at = strstr((const char *)b->buf, "\npythondir = '")))
        return 0;
    at += strlen("\npythondir = '");
    if (*at != '/' || !(end = strchr(at, '\'')) || memchr(at, '\n', (size_t)(end - at))
        || strstr(at, "/../") || end - at > 512)
        return 0;
    dir = apr_pstrndup(b->p, at, (apr_size_t)(end - at));
    if (apr_hash_get(done, dir, APR_HASH_KEY_STRING))
        return 0;
    apr_hash_set(done, dir, APR_HASH_KEY_STRING, dir);
    return write_package_dir(b, dir, 0, &files, &bytes);
}

/* gdb's auto-load script for an object (python3.11-gdb.py gives py-bt,
 * libstdc++'s gives its pretty-printers), looked up as gdb does below
 * /usr/share/gdb/auto-load/ under the object's path and the names its root
 * links give it (Debian keeps libc's under /lib/...). It goes next to the
 * object in the sysroot, where gdb finds it once the sysroot is trusted. */
static int write_autoload(bundle *b, bundle_module *mod, apr_hash_t *done)
{
    static const char *kinds[] = { "-gdb.py", "-gdb.gdb" };
    char path[PATH_MAX + 96];
    struct stat st;
    size_t k;
    int fd, rc, i;

    if (!mod->source || !mod->is_elf)
        return 0;
    for (k = 0; k < sizeof(kinds) / sizeof(*kinds); k++) {
        for (i = -2; i < b->links->nelts; i += 2) {
            const char *as = mod->path;
            if (i >= 0) {       /* /usr/lib/x -> /lib/x when lib -> usr/lib */
                const char *to = APR_ARRAY_IDX(b->links, i + 1, const char *);
                size_t n = strlen(to);
                if (strncmp(mod->path + 1, to, n) != 0 || mod->path[n + 1] != '/')
                    continue;
                as = apr_pstrcat(b->p, "/", APR_ARRAY_IDX(b->links, i, const char *),
                                 mod->path + n + 1, NULL);
            }
            snprintf(path, sizeof(path), "%s/root/usr/share/gdb/auto-load%s%s", b->proc, as,
                     kinds[k]);
            if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
                continue;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
                close(fd);
                continue;
            }
            mod->autoload = apr_pstrcat(b->p, mod->name, kinds[k], NULL);
            rc = b->out->begin(b->out, mod->autoload, st.st_mtime, 0644) != 0
                 ? dp_bundle_sink_failed(b, mod->autoload)
                 : copy_fd(b, fd, st.st_size, mod->autoload);
            if (rc == 0 && b->out->end(b->out) != 0)
                rc = dp_bundle_sink_failed(b, mod->autoload);
            if (rc == 0 && k == 0)
                rc = write_script_package(b, fd, done);
            close(fd);
            return rc;
        }
    }
    return 0;
}

int dp_bundle_write_modules(bundle *b)
{
    apr_hash_t *done = apr_hash_make(b->p);
    int i;

    for (i = 0; i < b->mods->nelts; i++)
        if (write_module(b, &APR_ARRAY_IDX(b->mods, i, bundle_module)) != 0)
            return -1;
    for (i = 0; i < b->mods->nelts; i++)
        if (write_debug_file(b, &APR_ARRAY_IDX(b->mods, i, bundle_module), done) != 0
            || write_autoload(b, &APR_ARRAY_IDX(b->mods, i, bundle_module), done) != 0)
            return -1;
    return 0;
}
