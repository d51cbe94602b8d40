/* The zip bundle's entries: see dump/bundle.h. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <jansson.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "proc/procfs.h"
#include "worker/format.h"
#include "proc/elfinfo.h"
#include "dump/bundle.h"
#include "proc/modules.h"

#define COPY_BUF (64 * 1024)
#define DELETED_SUFFIX " (deleted)"

typedef struct module {
    const dp_module *dm;            /* what proc/modules.c collected */
    const char *path;               /* as mapped, " (deleted)" stripped */
    const char *name;               /* entry name, sysroot/<path> */
    unsigned long long start, end, inode;
    unsigned dev_major, dev_minor;
    int deleted, replaced, is_exe;
    const char *source;             /* "map_files", "exe", "root"; NULL = unreadable */
    const char *why;                /* when unreadable */
    long long size, mtime;
    const char *build_id;           /* hex, NULL when none */
    const char *debug_file;         /* entry name of its debug file, NULL when none */
    const char *autoload;           /* entry name of its gdb auto-load script, NULL when none */
    int is_elf;                     /* an ELF object (else a mapped data file) */
    apr_array_header_t *aliases;    /* const char *: other paths naming this file */
} module;

typedef struct bundle {
    const dp_bundle_opts *o;
    dp_entry_sink *out;
    apr_pool_t *p;
    dp_error *err;
    char proc[64];                  /* /proc/PID */
    long long now;
    const char *exe;                /* exe path, " (deleted)" stripped; NULL = unknown */
    int exe_deleted;
    char *maps_buf;
    size_t maps_len;
    apr_array_header_t *maps;       /* dp_map */
    apr_array_header_t *mods;       /* module */
    unsigned char *buf;             /* COPY_BUF, the one buffer every file goes through */
    const char *interp;             /* the executable's PT_INTERP, NULL when none */
    apr_array_header_t *links;      /* const char * pairs: top-level root links */
    const module *jvm;              /* libjvm.so, when the process runs a JVM */
} bundle;

/* ------------------------------------------------------------- helpers */

int dp_entry_put(dp_entry_sink *out, const char *name, long long mtime, unsigned mode,
                 const void *buf, size_t len)
{
    if (out->begin(out, name, mtime, mode) != 0 || dp_sink_write(&out->data, buf, len) != 0)
        return -1;
    return out->end(out);
}

const char *dp_shell_quote(const char *s, apr_pool_t *p)
{
    size_t n = 2, i = 0;
    const char *c;
    char *q;

    for (c = s; *c; c++)
        n += *c == '\'' ? 4 : 1;
    q = apr_palloc(p, n + 1);
    q[i++] = '\'';
    for (c = s; *c; c++) {
        if (*c == '\'') {
            memcpy(q + i, "'\\''", 4);
            i += 4;
        }
        else
            q[i++] = *c;
    }
    q[i++] = '\'';
    q[i] = '\0';
    return q;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static const char *strip_deleted(const char *path, int *deleted, apr_pool_t *p)
{
    *deleted = ends_with(path, DELETED_SUFFIX);
    return *deleted ? apr_pstrndup(p, path, strlen(path) - strlen(DELETED_SUFFIX)) : path;
}

/* An absolute path that makes a safe entry name below sysroot/ (the zip
 * writer refuses the others): no empty, "." or ".." component, no backslash. */
static int entry_path_ok(const char *path)
{
    const char *c = path;

    if (*c != '/' || strchr(path, '\\'))
        return 0;
    while (*c == '/') {
        const char *e = strchr(c + 1, '/');
        size_t k = e ? (size_t)(e - c - 1) : strlen(c + 1);
        if (k == 0 || (k == 1 && c[1] == '.') || (k == 2 && c[1] == '.' && c[2] == '.'))
            return 0;
        c += k + 1;
    }
    return 1;
}

static int sink_failed(bundle *b, const char *what)
{
    if (b->err->status)
        return -1;
    return dp_fail(b->err, 500, "Writing %s into the bundle failed (the stream was cut).", what);
}

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
            return sink_failed(b, what);
        off += n;
    }
    return 0;
}

/* ------------------------------------------------------------ the target */

static int read_target(bundle *b)
{
    char link[PATH_MAX + 16], path[96];
    ssize_t n;

    snprintf(path, sizeof(path), "%s/maps", b->proc);
    if (dp_read_file(path, &b->maps_buf, &b->maps_len, b->p) != 0) {
        if (errno == ENOENT || errno == ESRCH)
            return dp_fail_not_running(b->err, (long)b->o->pid);
        return dp_fail(b->err, errno == EACCES || errno == EPERM ? 403 : 500,
                       "Cannot read the memory map of process %d: %s.",
                       (int)b->o->pid, strerror(errno));
    }
    b->maps = dp_parse_maps(b->maps_buf, b->maps_len, b->p);
    snprintf(path, sizeof(path), "%s/exe", b->proc);
    n = readlink(path, link, sizeof(link) - 1);
    if (n > 0) {
        link[n] = '\0';
        b->exe = strip_deleted(apr_pstrdup(b->p, link), &b->exe_deleted, b->p);
    }
    return 0;
}

/* ---------------------------------------------------------------- modules */

/* One module per mapped file (proc/modules.c, as the API's module routes). */
static void collect_modules(bundle *b)
{
    apr_array_header_t *files = dp_collect_modules(b->maps, b->p);
    int i;

    b->mods = apr_array_make(b->p, files->nelts, sizeof(module));
    for (i = 0; i < files->nelts; i++) {
        const dp_module *dm = &APR_ARRAY_IDX(files, i, dp_module);
        module *mod = apr_array_push(b->mods);
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

static int same_file(const struct stat *st, const module *mod)
{
    return dp_module_same_file(mod->dm, st->st_dev, st->st_ino);
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
static int open_module(bundle *b, module *mod)
{
    return dp_open_module(b->o->pid, mod->dm, mod->is_exe, &mod->source, &mod->why);
}

/* Flags a path that now names another file (or nothing): the copy in the
 * bundle is what was mapped, not what is on disk. */
static void check_replaced(bundle *b, module *mod)
{
    char path[PATH_MAX + 96];
    struct stat st;

    if (mod->deleted)
        return;
    snprintf(path, sizeof(path), "%s/root%s", b->proc, mod->path);
    mod->replaced = stat(path, &st) != 0 || !same_file(&st, mod);
}

static int write_module(bundle *b, module *mod)
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
    if (!entry_path_ok(mod->path)) {
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
        return sink_failed(b, mod->name);
    }
    rc = copy_fd(b, fd, mod->size, mod->name);
    close(fd);
    if (rc == 0 && b->out->end(b->out) != 0)
        return sink_failed(b, mod->name);
    return rc;
}

/* The separate debug file the distribution installs for a build id
 * (Debian's -dbgsym packages), looked up in the target's root. */
static int write_debug_file(bundle *b, module *mod, apr_hash_t *done)
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
    rc = b->out->begin(b->out, mod->debug_file, st.st_mtime, 0644) != 0 ? sink_failed(b, rel)
         : copy_fd(b, fd, st.st_size, rel);
    close(fd);
    if (rc == 0 && b->out->end(b->out) != 0)
        return sink_failed(b, rel);
    return rc;
}

/* gdb's auto-load script for an object (python3.11-gdb.py gives py-bt,
 * libstdc++'s gives its pretty-printers), looked up as gdb does below
 * /usr/share/gdb/auto-load/ under the object's path and the names its root
 * links give it (Debian keeps libc's under /lib/...). It goes next to the
 * object in the sysroot, where gdb finds it once the sysroot is trusted. */
static int write_autoload(bundle *b, module *mod)
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
                 ? sink_failed(b, mod->autoload) : copy_fd(b, fd, st.st_size, mod->autoload);
            close(fd);
            if (rc == 0 && b->out->end(b->out) != 0)
                return sink_failed(b, mod->autoload);
            return rc;
        }
    }
    return 0;
}

static int write_modules(bundle *b)
{
    apr_hash_t *done = apr_hash_make(b->p);
    int i;

    for (i = 0; i < b->mods->nelts; i++)
        if (write_module(b, &APR_ARRAY_IDX(b->mods, i, module)) != 0)
            return -1;
    for (i = 0; i < b->mods->nelts; i++)
        if (write_debug_file(b, &APR_ARRAY_IDX(b->mods, i, module), done) != 0
            || write_autoload(b, &APR_ARRAY_IDX(b->mods, i, module)) != 0)
            return -1;
    return 0;
}

static const module *exe_module(const bundle *b)
{
    int i;
    for (i = 0; i < b->mods->nelts; i++) {
        const module *m = &APR_ARRAY_IDX(b->mods, i, module);
        if (m->is_exe && m->source)
            return m;
    }
    return NULL;
}

/* -------------------------------------------------------------- runtimes */

static json_t *jstr(bundle *b, const char *s);

/* "3.11" from "python3.11", "libpython3.11.so.1.0" etc.: digits and dots
 * right after prefix in the base name; NULL when there are none. */
static const char *version_after(const char *path, const char *prefix, apr_pool_t *p)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, *v, *e;
    size_t k = strlen(prefix);

    if (strncmp(base, prefix, k) != 0)
        return NULL;
    v = base + k;
    for (e = v; (*e >= '0' && *e <= '9') || (*e == '.' && e[1] >= '0' && e[1] <= '9'); e++)
        ;
    return e > v && strchr(v, '.') && strchr(v, '.') < e ? apr_pstrndup(p, v, (apr_size_t)(e - v))
                                                          : NULL;
}

/* JAVA_VERSION from the JDK's release file: home is libjvm.so's path less
 * /lib/server/libjvm.so. */
static const char *java_version(bundle *b, const char *libjvm)
{
    const char *cut = strstr(libjvm, "/lib/server/libjvm.so");
    char path[PATH_MAX + 96], *text, *v, *e;
    size_t len;

    if (!cut)
        return NULL;
    snprintf(path, sizeof(path), "%s/root%.*s/release", b->proc, (int)(cut - libjvm), libjvm);
    if (dp_read_file(path, &text, &len, b->p) != 0 || !(v = strstr(text, "JAVA_VERSION=\"")))
        return NULL;
    v += strlen("JAVA_VERSION=\"");
    for (e = v; *e && *e != '"' && *e != '\n' && e - v < 64; e++)
        ;
    return *e == '"' ? apr_pstrndup(b->p, v, (apr_size_t)(e - v)) : NULL;
}

static json_t *runtime_json(bundle *b, const char *name, const char *version,
                            const char *module_path, const char *open_with, json_t *install)
{
    json_t *o = json_object();

    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "version", jstr(b, version));
    json_object_set_new(o, "module", jstr(b, module_path));
    json_object_set_new(o, "openWith", json_string(open_with));
    json_object_set_new(o, "install", install ? install : json_array());
    return o;
}

/* The runtimes the process runs, each with the command that opens it at the
 * runtime's level and what the analysing machine must install for it. */
static json_t *runtimes_json(bundle *b)
{
    json_t *out = json_array();
    int i, python = 0, jvm = 0, php = 0, node = 0;

    for (i = 0; i < b->mods->nelts; i++) {
        module *m = &APR_ARRAY_IDX(b->mods, i, module);
        const char *v;
        if (!python && ((m->is_exe && (v = version_after(m->path, "python", b->p)) != NULL)
                        || (v = version_after(m->path, "libpython", b->p)) != NULL)) {
            json_t *need = json_array();
            python = 1;
            /* py-bt needs the interpreter's gdb script and its debug info */
            if (!m->autoload || !m->debug_file)
                json_array_append_new(need, json_string(apr_pstrcat(b->p, "python", v, "-dbg",
                                                                     NULL)));
            json_array_append_new(out, runtime_json(b, "CPython", v, m->path,
                                  "./open-gdb.sh -batch -ex \"thread apply all py-bt\"", need));
        }
        else if (!jvm && ends_with(m->path, "/lib/server/libjvm.so")) {
            const char *jv = java_version(b, m->path);
            json_t *need = json_array();
            jvm = 1;
            b->jvm = m;
            json_array_append_new(need, json_string(apr_psprintf(b->p, "openjdk-%.*s-jdk-headless",
                                  jv ? (int)strcspn(jv, ".") : 2, jv ? jv : "17")));
            json_array_append_new(out, runtime_json(b, "Java (HotSpot JVM)", jv, m->path,
                                                    "./open-jhsdb.sh jstack", need));
        }
        else if (!php && ((m->is_exe && (v = version_after(m->path, "php", b->p)) != NULL)
                          || (v = version_after(m->path, "php-fpm", b->p)) != NULL
                          || (v = version_after(m->path, "libphp", b->p)) != NULL)) {
            php = 1;
            json_array_append_new(out, runtime_json(b, "PHP", v, m->path, "./open-gdb.sh", NULL));
        }
        else if (!node && ((m->is_exe && (ends_with(m->path, "/node")
                                          || ends_with(m->path, "/nodejs")))
                           || strstr(m->path, "/libnode.so"))) {
            node = 1;
            json_array_append_new(out, runtime_json(b, "Node.js", NULL, m->path,
                                                    "./open-gdb.sh", NULL));
        }
    }
    return out;
}

/* -------------------------------------------------------------- manifest */

static json_t *jstr(bundle *b, const char *s)
{
    return s ? json_string(dp_utf8(s, strlen(s), b->p)) : json_null();
}

static json_t *module_json(bundle *b, const module *m)
{
    json_t *o = json_object();

    json_object_set_new(o, "path", jstr(b, m->path));
    json_object_set_new(o, "bundlePath", jstr(b, m->source ? m->name : NULL));
    json_object_set_new(o, "size", m->source ? json_integer(m->size) : json_null());
    json_object_set_new(o, "buildId", jstr(b, m->build_id));
    json_object_set_new(o, "debugFile", jstr(b, m->debug_file));
    json_object_set_new(o, "autoLoadScript", jstr(b, m->autoload));
    json_object_set_new(o, "elf", m->source ? json_boolean(m->is_elf) : json_null());
    json_object_set_new(o, "executable", json_boolean(m->is_exe));
    if (m->aliases) {
        json_t *a = json_array();
        int i;
        for (i = 0; i < m->aliases->nelts; i++)
            json_array_append_new(a, jstr(b, APR_ARRAY_IDX(m->aliases, i, const char *)));
        json_object_set_new(o, "aliases", a);
    }
    json_object_set_new(o, "deleted", json_boolean(m->deleted));
    json_object_set_new(o, "replaced", json_boolean(m->replaced));
    json_object_set_new(o, "source", jstr(b, m->source));
    if (!m->source)
        json_object_set_new(o, "skipped", jstr(b, m->why));
    json_object_set_new(o, "device", json_string(apr_psprintf(b->p, "%02x:%02x",
                                                             m->dev_major, m->dev_minor)));
    json_object_set_new(o, "inode", json_integer((json_int_t)m->inode));
    return o;
}

static json_t *maps_json(bundle *b)
{
    json_t *a = json_array();
    const char *line = b->maps_buf, *end = b->maps_buf + b->maps_len;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        json_array_append_new(a, json_string(dp_utf8(line, (size_t)(le - line), b->p)));
        line = nl ? nl + 1 : end;
    }
    return a;
}

static json_t *process_json(bundle *b)
{
    json_t *o = json_object(), *jargv = json_array();
    char path[96], *cmd = NULL;
    size_t len = 0;
    apr_array_header_t *argv;
    dp_stat st;
    dp_error ignore;
    int i;

    snprintf(path, sizeof(path), "%s/cmdline", b->proc);
    if (dp_read_file(path, &cmd, &len, b->p) != 0)
        len = 0;
    argv = dp_split_nul(cmd ? cmd : "", len, b->p);
    for (i = 0; i < argv->nelts; i++)
        json_array_append_new(jargv, jstr(b, APR_ARRAY_IDX(argv, i, const char *)));
    json_object_set_new(o, "pid", json_integer(b->o->pid));
    if (dp_read_stat(b->o->pid, 0, &st, &ignore) == 0)
        json_object_set_new(o, "name", jstr(b, dp_process_name(st.comm, argv, b->p)));
    json_object_set_new(o, "commandLine", jstr(b, dp_join_cmdline(argv, b->p)));
    json_object_set_new(o, "argv", jargv);
    json_object_set_new(o, "executable", jstr(b, b->exe));
    json_object_set_new(o, "executableDeleted", json_boolean(b->exe_deleted));
    return o;
}

static int json_out(const char *buf, size_t len, void *ctx)
{
    dp_entry_sink *out = ctx;
    return dp_sink_write(&out->data, buf, len);
}

static int write_manifest(bundle *b)
{
    json_t *m = process_json(b), *mods = json_array();
    struct utsname u;
    int i, rc;

    json_object_set_new(m, "dumpType", json_integer((json_int_t)b->o->dump_type));
    json_object_set_new(m, "time", json_string(dp_iso_time(b->now, 0, b->p)));
    json_object_set_new(m, "instanceName", jstr(b, b->o->instance_name ? b->o->instance_name
                                                                      : ""));
    if (uname(&u) == 0) {
        json_object_set_new(m, "machine", jstr(b, u.machine));
        json_object_set_new(m, "kernel", jstr(b, u.release));
    }
    json_object_set_new(m, "core", json_string("core"));
    json_object_set_new(m, "sysroot", json_string("sysroot"));
    for (i = 0; i < b->mods->nelts; i++)
        json_array_append_new(mods, module_json(b, &APR_ARRAY_IDX(b->mods, i, module)));
    json_object_set_new(m, "runtimes", runtimes_json(b));
    json_object_set_new(m, "modules", mods);
    json_object_set_new(m, "maps", maps_json(b));
    /* streamed straight into the entry: the maps of a big process are long */
    rc = b->out->begin(b->out, "manifest.json", b->now, 0644);
    if (rc == 0)
        rc = json_dump_callback(m, json_out, b->out, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (rc == 0)
        rc = dp_sink_write(&b->out->data, "\n", 1);
    json_decref(m);
    if (rc != 0 || b->out->end(b->out) != 0)
        return sink_failed(b, "manifest.json");
    return 0;
}

/* --------------------------------------------------------------- scripts */

/* Top-level links of the target's root (/lib -> usr/lib on merged-/usr
 * systems): the dynamic linker records libraries under those names, so the
 * sysroot needs them too. */
static void read_root_links(bundle *b)
{
    static const char *names[] = { "lib", "lib32", "lib64", "libx32", "bin", "sbin" };
    char path[96], target[256];
    size_t i;

    b->links = apr_array_make(b->p, 12, sizeof(const char *));
    for (i = 0; i < sizeof(names) / sizeof(*names); i++) {
        ssize_t n;
        const char *t = target;
        snprintf(path, sizeof(path), "%s/root/%s", b->proc, names[i]);
        if ((n = readlink(path, target, sizeof(target) - 1)) <= 0)
            continue;
        target[n] = '\0';
        while (*t == '/')
            t++;
        if (!*t || strstr(t, "..") || strchr(t, '\n'))
            continue;
        APR_ARRAY_PUSH(b->links, const char *) = names[i];
        APR_ARRAY_PUSH(b->links, const char *) = apr_pstrdup(b->p, t);
    }
}

/* path with its first component's root link resolved: /lib64/x -> /usr/lib64/x */
static const char *canonical(bundle *b, const char *path)
{
    int i;

    for (i = 0; i + 1 < b->links->nelts; i += 2) {
        const char *name = APR_ARRAY_IDX(b->links, i, const char *);
        size_t k = strlen(name);
        if (path[0] == '/' && strncmp(path + 1, name, k) == 0 && path[k + 1] == '/')
            return apr_pstrcat(b->p, "/", APR_ARRAY_IDX(b->links, i + 1, const char *),
                               path + k + 1, NULL);
    }
    return path;
}

static module *module_by_file(bundle *b, const char *path)
{
    char full[PATH_MAX + 96];
    struct stat st;
    int i;

    snprintf(full, sizeof(full), "%s/root%s", b->proc, path);
    if (stat(full, &st) != 0)
        return NULL;
    for (i = 0; i < b->mods->nelts; i++) {
        module *m = &APR_ARRAY_IDX(b->mods, i, module);
        if (m->source && !m->is_exe && same_file(&st, m) && strcmp(m->path, path) != 0)
            return m;
    }
    return NULL;
}

static void add_alias(bundle *b, module *m, const char *path)
{
    int i;

    if (!entry_path_ok(path))
        return;
    if (!m->aliases)
        m->aliases = apr_array_make(b->p, 2, sizeof(const char *));
    for (i = 0; i < m->aliases->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(m->aliases, i, const char *), path))
            return;
    APR_ARRAY_PUSH(m->aliases, const char *) = path;
}

/* Links next to a library that name it (libz.so.1 -> libz.so.1.2.13): the
 * loader opened it by its soname, so that is the name the core's link map
 * and the debugger use, while maps shows the file. */
static void scan_dir_aliases(bundle *b, const char *dir, apr_hash_t *bases)
{
    char full[PATH_MAX + 96], target[PATH_MAX];
    struct dirent *d;
    DIR *dh;

    snprintf(full, sizeof(full), "%s/root%s", b->proc, dir);
    if ((dh = opendir(full)) == NULL)
        return;
    while ((d = readdir(dh)) != NULL) {
        const char *base, *path;
        module *m;
        ssize_t n;
        if (d->d_type != DT_LNK && d->d_type != DT_UNKNOWN)
            continue;
        snprintf(full, sizeof(full), "%s/root%s/%s", b->proc, dir, d->d_name);
        if ((n = readlink(full, target, sizeof(target) - 1)) <= 0)
            continue;
        target[n] = '\0';
        base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
        if (!apr_hash_get(bases, base, APR_HASH_KEY_STRING))
            continue;
        path = apr_pstrcat(b->p, dir, "/", d->d_name, NULL);
        if ((m = module_by_file(b, path)) != NULL)
            add_alias(b, m, path);
    }
    closedir(dh);
}

static void find_aliases(bundle *b)
{
    apr_hash_t *bases = apr_hash_make(b->p), *dirs = apr_hash_make(b->p);
    apr_hash_index_t *hi;
    module *m;
    int i;

    for (i = 0; i < b->mods->nelts; i++) {
        const char *slash;
        m = &APR_ARRAY_IDX(b->mods, i, module);
        if (!m->source || m->is_exe || !(slash = strrchr(m->path, '/')))
            continue;
        apr_hash_set(bases, slash + 1, APR_HASH_KEY_STRING, m);
        apr_hash_set(dirs, apr_pstrndup(b->p, m->path, (apr_size_t)(slash - m->path)),
                     APR_HASH_KEY_STRING, m);
    }
    for (hi = apr_hash_first(b->p, dirs); hi; hi = apr_hash_next(hi))
        scan_dir_aliases(b, apr_hash_this_key(hi), bases);
    if (b->interp && (m = module_by_file(b, b->interp)) != NULL)
        add_alias(b, m, canonical(b, b->interp));
}

/* An alias as a link relative to where it sits, so a moved bundle stays right. */
static const char *alias_target(bundle *b, const module *m, const char *alias)
{
    const char *up = "", *c;

    for (c = alias + 1; (c = strchr(c, '/')) != NULL; c++)
        up = apr_pstrcat(b->p, up, "../", NULL);
    return apr_pstrcat(b->p, up, m->path + 1, NULL);
}

/* An alias the zip may hold as a link: not below one of the root links (an
 * entry there would make unzip create a directory where the link goes), and
 * not the path of a bundled file. */
static int alias_entry_ok(bundle *b, const char *alias)
{
    int i;

    for (i = 0; i + 1 < b->links->nelts; i += 2) {
        const char *name = APR_ARRAY_IDX(b->links, i, const char *);
        size_t k = strlen(name);
        if (strncmp(alias + 1, name, k) == 0 && alias[k + 1] == '/')
            return 0;
    }
    for (i = 0; i < b->mods->nelts; i++) {
        const module *m = &APR_ARRAY_IDX(b->mods, i, module);
        if (m->source && !strcmp(m->path, alias))
            return 0;
    }
    return 1;
}

/* The links as zip symlink entries (unzip restores them), so that a plain
 * `set sysroot` or SA_ALTROOT works before any script has run. */
static int write_links(bundle *b)
{
    int i, j;

    for (i = 0; i + 1 < b->links->nelts; i += 2) {
        const char *name = apr_pstrcat(b->p, "sysroot/", APR_ARRAY_IDX(b->links, i, const char *),
                                       NULL);
        const char *to = APR_ARRAY_IDX(b->links, i + 1, const char *);
        if (dp_entry_put(b->out, name, b->now, DP_ENTRY_SYMLINK, to, strlen(to)) != 0)
            return sink_failed(b, name);
    }
    for (i = 0; i < b->mods->nelts; i++) {
        const module *m = &APR_ARRAY_IDX(b->mods, i, module);
        for (j = 0; m->aliases && j < m->aliases->nelts; j++) {
            const char *a = APR_ARRAY_IDX(m->aliases, j, const char *);
            const char *name = apr_pstrcat(b->p, "sysroot", a, NULL), *to;
            if (!alias_entry_ok(b, a))
                continue;
            to = alias_target(b, m, a);
            if (dp_entry_put(b->out, name, b->now, DP_ENTRY_SYMLINK, to, strlen(to)) != 0)
                return sink_failed(b, name);
        }
    }
    return 0;
}

/* Shell lines that recreate, at run time, links a zip tool did not restore:
 * root links first, then aliases. */
static const char *link_lines(bundle *b)
{
    const char *out = "";
    int i, j;

    for (i = 0; i + 1 < b->links->nelts; i += 2)
        out = apr_pstrcat(b->p, out, "rootlink ", APR_ARRAY_IDX(b->links, i, const char *), " ",
                          dp_shell_quote(APR_ARRAY_IDX(b->links, i + 1, const char *), b->p),
                          "\n", NULL);
    for (i = 0; i < b->mods->nelts; i++) {
        const module *m = &APR_ARRAY_IDX(b->mods, i, module);
        for (j = 0; m->aliases && j < m->aliases->nelts; j++) {
            const char *a = APR_ARRAY_IDX(m->aliases, j, const char *);
            out = apr_pstrcat(b->p, out, "solink ", dp_shell_quote(a + 1, b->p), " ",
                              dp_shell_quote(alias_target(b, m, a), b->p), "\n", NULL);
        }
    }
    return out;
}

/* Directories holding modules, as shell words relative to $sysroot, for
 * gdb's solib-search-path: the fallback (by file name) when a library is
 * recorded under a name the sysroot does not have. */
static const char *module_dirs(bundle *b, const char *sep)
{
    apr_hash_t *seen = apr_hash_make(b->p);
    const char *out = "";
    int i;

    for (i = 0; i < b->mods->nelts; i++) {
        const module *m = &APR_ARRAY_IDX(b->mods, i, module);
        const char *slash = strrchr(m->path, '/');
        char *dir;
        if (!m->source || !slash)
            continue;
        dir = apr_pstrndup(b->p, m->path, (apr_size_t)(slash - m->path));
        if (strchr(dir, ':') || strchr(dir, '\n') || strchr(dir, ' ')
            || apr_hash_get(seen, dir, APR_HASH_KEY_STRING))
            continue;
        apr_hash_set(seen, dir, APR_HASH_KEY_STRING, dir);
        out = apr_pstrcat(b->p, out, *out ? sep : "", "\"$sysroot\"",
                          dp_shell_quote(dir, b->p), NULL);
    }
    return *out ? out : "\"$sysroot\"";
}

static const char script_head[] =
    "#!/bin/sh\n"
    "# Opens this bundle's core in %s with the bundle's own sysroot: the\n"
    "# executable, libraries and debug files as they were mapped in process\n"
    "# %d (%s). Works from any directory; extra arguments go to %s, e.g.\n"
    "#   %s\n"
    "here=$(CDPATH= cd -- \"$(dirname -- \"$0\")\" && pwd -P) || exit 1\n"
    "sysroot=\"$here/sysroot\"\n"
    "# the bundle's links, for unzip tools that extracted them as files\n"
    "unlinked() {\n"
    "    [ ! -L \"$sysroot/$1\" ] && [ -f \"$sysroot/$1\" ] \\\n"
    "        && [ \"$(head -c 4097 \"$sysroot/$1\")\" = \"$2\" ]\n"
    "}\n"
    "rootlink() {\n"
    "    unlinked \"$1\" \"$2\" && rm -f \"$sysroot/$1\"\n"
    "    [ -e \"$sysroot/$1\" ] || [ -L \"$sysroot/$1\" ] || ln -s \"$2\" \"$sysroot/$1\" 2>/dev/null\n"
    "}\n"
    "solink() {\n"
    "    unlinked \"$1\" \"$2\" && rm -f \"$sysroot/$1\"\n"
    "    [ -e \"$sysroot/$1\" ] && return\n"
    "    mkdir -p \"$(dirname -- \"$sysroot/$1\")\" 2>/dev/null\n"
    "    rm -f \"$sysroot/$1\" 2>/dev/null\n"
    "    ln -s \"$2\" \"$sysroot/$1\" 2>/dev/null\n"
    "}\n"
    "%s";

static const char *script_head_for(bundle *b, const char *dbg, const char *example)
{
    return apr_psprintf(b->p, script_head, dbg, (int)b->o->pid,
                        b->o->instance_name ? b->o->instance_name : "", dbg, example,
                        link_lines(b));
}

static const char *exe_word(bundle *b)
{
    const module *m = exe_module(b);
    return m ? apr_pstrcat(b->p, "\"$sysroot\"", dp_shell_quote(m->path, b->p), NULL) : NULL;
}

static int write_gdb_script(bundle *b)
{
    const char *exe = exe_word(b);
    const char *cmds = b->o->gdb_commands;
    const char *s;

    if (cmds && dp_entry_put(b->out, "diagproc-lang.py", b->now, 0644, cmds, strlen(cmds)) != 0)
        return sink_failed(b, "diagproc-lang.py");
    s = apr_pstrcat(b->p,
        script_head_for(b, "gdb", "./open-gdb.sh -batch -ex \"thread apply all bt\""),
        "ssp=", module_dirs(b, ":"), "\n",
        "exec gdb -q -iex \"set sysroot $sysroot\" \\\n"
        "    -iex \"add-auto-load-safe-path $sysroot\" \\\n"
        "    -iex \"set debug-file-directory $sysroot/usr/lib/debug:/usr/lib/debug\" \\\n"
        "    -iex \"set solib-search-path $ssp\" \\\n",
        cmds ? "    -iex \"source $here/diagproc-lang.py\" \\\n" : "",
        "    \"$@\" ", exe ? apr_pstrcat(b->p, "-se ", exe, " ", NULL) : "",
        "-c \"$here/core\"\n", NULL);
    return dp_entry_put(b->out, "open-gdb.sh", b->now, 0755, s, strlen(s)) == 0 ? 0
           : sink_failed(b, "open-gdb.sh");
}

/* lldb: the remote-linux platform with a sysroot makes it look up every
 * module of the core (by the link map's names) below the sysroot, and
 * debug-file-search-paths finds the separate debug files by build id. */
static int write_lldb_script(bundle *b)
{
    const char *exe = exe_word(b);
    const char *s = apr_pstrcat(b->p,
        script_head_for(b, "lldb", "./open-lldb.sh -b -o \"thread backtrace all\""),
        "exec lldb --no-lldbinit \\\n"
        "    -O \"platform select --sysroot '$sysroot' remote-linux\" \\\n"
        "    -O \"settings set target.debug-file-search-paths '$sysroot/usr/lib/debug'\" \\\n"
        "    --core \"$here/core\" ", exe ? exe : "", " \"$@\"\n", NULL);
    return dp_entry_put(b->out, "open-lldb.sh", b->now, 0755, s, strlen(s)) == 0 ? 0
           : sink_failed(b, "open-lldb.sh");
}

/* jhsdb (the JDK's serviceability agent) reads the core with the JVM's own
 * libraries: SA_ALTROOT makes it take them, and classes.jsa, from the
 * sysroot. The first argument, when not an option, is the jhsdb command. */
static int write_jhsdb_script(bundle *b)
{
    const char *exe = exe_word(b), *s;

    if (!b->jvm || !exe)
        return 0;
    s = apr_pstrcat(b->p,
        script_head_for(b, "jhsdb", "./open-jhsdb.sh jstack --locks"),
        "cmd=jstack\n"
        "case \"$1\" in\n"
        "    ''|-*) ;;\n"
        "    *) cmd=$1; shift ;;\n"
        "esac\n"
        "SA_ALTROOT=\"$sysroot\" exec \"${JHSDB:-jhsdb}\" \"$cmd\" --exe ", exe,
        " --core \"$here/core\" \"$@\"\n", NULL);
    return dp_entry_put(b->out, "open-jhsdb.sh", b->now, 0755, s, strlen(s)) == 0 ? 0
           : sink_failed(b, "open-jhsdb.sh");
}

/* ------------------------------------------------------------------ api */

static int write_core_entry(bundle *b, dp_bundle_core_fn write_core, void *arg)
{
    if (b->out->begin(b->out, "core", b->now, 0644) != 0)
        return sink_failed(b, "the core");
    if (write_core(arg, &b->out->data, b->err) != 0)
        return b->err->status ? -1 : sink_failed(b, "the core");
    return b->out->end(b->out) == 0 ? 0 : sink_failed(b, "the core");
}

int dp_bundle_write(const dp_bundle_opts *o, dp_entry_sink *out,
                    dp_bundle_core_fn write_core, void *core_arg,
                    apr_pool_t *p, dp_error *err)
{
    bundle b;

    memset(&b, 0, sizeof(b));
    b.o = o;
    b.out = out;
    b.p = p;
    b.err = err;
    b.now = o->time ? o->time : (long long)time(NULL);
    b.buf = apr_palloc(p, COPY_BUF);
    snprintf(b.proc, sizeof(b.proc), "/proc/%d", (int)o->pid);
    err->status = 0;
    if (read_target(&b) != 0)
        return -1;
    collect_modules(&b);
    read_root_links(&b);
    if (write_core && write_core_entry(&b, write_core, core_arg) != 0)
        return -1;
    if (write_modules(&b) != 0)
        return -1;
    find_aliases(&b);
    if (write_links(&b) != 0)
        return -1;
    if (write_manifest(&b) != 0
        || write_gdb_script(&b) != 0 || write_lldb_script(&b) != 0
        || write_jhsdb_script(&b) != 0)
        return -1;
    return 0;
}
