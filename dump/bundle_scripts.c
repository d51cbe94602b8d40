/* The bundle's sysroot links (the root's lib -> usr/lib, sonames of
 * libraries) and the scripts that open the core with the sysroot:
 * open-gdb.sh, open-lldb.sh, open-jhsdb.sh. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "dump/bundle_internal.h"

/* --------------------------------------------------------------- scripts */

/* Top-level links of the target's root (/lib -> usr/lib on merged-/usr
 * systems): the dynamic linker records libraries under those names, so the
 * sysroot needs them too. */
void dp_bundle_read_root_links(bundle *b)
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

static bundle_module *module_by_file(bundle *b, const char *path)
{
    char full[PATH_MAX + 96];
    struct stat st;
    int i;

    snprintf(full, sizeof(full), "%s/root%s", b->proc, path);
    if (stat(full, &st) != 0)
        return NULL;
    for (i = 0; i < b->mods->nelts; i++) {
        bundle_module *m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
        if (m->source && !m->is_exe && same_file(&st, m) && strcmp(m->path, path) != 0)
            return m;
    }
    return NULL;
}

static void add_alias(bundle *b, bundle_module *m, const char *path)
{
    int i;

    if (!dp_bundle_entry_path_ok(path))
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
        bundle_module *m;
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

void dp_bundle_find_aliases(bundle *b)
{
    apr_hash_t *bases = apr_hash_make(b->p), *dirs = apr_hash_make(b->p);
    apr_hash_index_t *hi;
    bundle_module *m;
    int i;

    for (i = 0; i < b->mods->nelts; i++) {
        const char *slash;
        m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
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
static const char *alias_target(bundle *b, const bundle_module *m, const char *alias)
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
        const bundle_module *m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
        if (m->source && !strcmp(m->path, alias))
            return 0;
    }
    return 1;
}

/* The links as zip symlink entries (unzip restores them), so that a plain
 * `set sysroot` or SA_ALTROOT works before any script has run. */
int dp_bundle_write_links(bundle *b)
{
    int i, j;

    for (i = 0; i + 1 < b->links->nelts; i += 2) {
        const char *name = apr_pstrcat(b->p, "sysroot/", APR_ARRAY_IDX(b->links, i, const char *),
                                       NULL);
        const char *to = APR_ARRAY_IDX(b->links, i + 1, const char *);
        if (dp_entry_put(b->out, name, b->now, DP_ENTRY_SYMLINK, to, strlen(to)) != 0)
            return dp_bundle_sink_failed(b, name);
    }
    for (i = 0; i < b->mods->nelts; i++) {
        const bundle_module *m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
        for (j = 0; m->aliases && j < m->aliases->nelts; j++) {
            const char *a = APR_ARRAY_IDX(m->aliases, j, const char *);
            const char *name = apr_pstrcat(b->p, "sysroot", a, NULL), *to;
            if (!alias_entry_ok(b, a))
                continue;
            to = alias_target(b, m, a);
            if (dp_entry_put(b->out, name, b->now, DP_ENTRY_SYMLINK, to, strlen(to)) != 0)
                return dp_bundle_sink_failed(b, name);
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
        const bundle_module *m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
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
        const bundle_module *m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
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

static const bundle_module *exe_module(const bundle *b)
{
    int i;
    for (i = 0; i < b->mods->nelts; i++) {
        const bundle_module *m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
        if (m->is_exe && m->source)
            return m;
    }
    return NULL;
}
static const char *script_head_for(bundle *b, const char *dbg, const char *example)
{
    return apr_psprintf(b->p, script_head, dbg, (int)b->o->pid,
                        b->o->instance_name ? b->o->instance_name : "", dbg, example,
                        link_lines(b));
}

static const char *exe_word(bundle *b)
{
    const bundle_module *m = exe_module(b);
    return m ? apr_pstrcat(b->p, "\"$sysroot\"", dp_shell_quote(m->path, b->p), NULL) : NULL;
}

int dp_bundle_write_gdb_script(bundle *b)
{
    const char *exe = exe_word(b);
    const char *cmds = b->o->gdb_commands;
    const char *s;

    if (cmds && dp_entry_put(b->out, "diagproc-lang.py", b->now, 0644, cmds, strlen(cmds)) != 0)
        return dp_bundle_sink_failed(b, "diagproc-lang.py");
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
           : dp_bundle_sink_failed(b, "open-gdb.sh");
}

/* lldb: the remote-linux platform with a sysroot makes it look up every
 * module of the core (by the link map's names) below the sysroot, and
 * debug-file-search-paths finds the separate debug files by build id. */
int dp_bundle_write_lldb_script(bundle *b)
{
    const char *exe = exe_word(b);
    const char *s = apr_pstrcat(b->p,
        script_head_for(b, "lldb", "./open-lldb.sh -b -o \"thread backtrace all\""),
        "exec lldb --no-lldbinit \\\n"
        "    -O \"platform select --sysroot '$sysroot' remote-linux\" \\\n"
        "    -O \"settings set target.debug-file-search-paths '$sysroot/usr/lib/debug'\" \\\n"
        "    --core \"$here/core\" ", exe ? exe : "", " \"$@\"\n", NULL);
    return dp_entry_put(b->out, "open-lldb.sh", b->now, 0755, s, strlen(s)) == 0 ? 0
           : dp_bundle_sink_failed(b, "open-lldb.sh");
}

/* jhsdb (the JDK's serviceability agent) reads the core with the JVM's own
 * libraries: SA_ALTROOT makes it take them, and classes.jsa, from the
 * sysroot. The first argument, when not an option, is the jhsdb command. */
int dp_bundle_write_jhsdb_script(bundle *b)
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
           : dp_bundle_sink_failed(b, "open-jhsdb.sh");
}
