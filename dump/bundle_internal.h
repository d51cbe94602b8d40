/* What the pieces of the bundle writer share (dump/bundle.c: the target and
 * the order of entries; bundle_files.c: the mapped files, debug files and
 * auto-load scripts; bundle_manifest.c: manifest.json and its runtimes;
 * bundle_scripts.c: the sysroot's links and the open-*.sh scripts).
 * Internal to dump/: not part of dump/bundle.h's API. */
#ifndef DP_BUNDLE_INTERNAL_H
#define DP_BUNDLE_INTERNAL_H

#include <string.h>
#include <sys/stat.h>
#include <apr_tables.h>
#include "dump/bundle.h"
#include "proc/modules.h"
#include "common/format.h"

#define COPY_BUF (64 * 1024)
#define DELETED_SUFFIX " (deleted)"

typedef struct bundle_module {
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
} bundle_module;

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
    apr_array_header_t *mods;       /* bundle_module */
    unsigned char *buf;             /* COPY_BUF, the one buffer every file goes through */
    const char *interp;             /* the executable's PT_INTERP, NULL when none */
    apr_array_header_t *links;      /* const char * pairs: top-level root links */
    const bundle_module *jvm;       /* libjvm.so, when the process runs a JVM */
} bundle;

static inline int same_file(const struct stat *st, const bundle_module *mod)
{
    return dp_module_same_file(mod->dm, st->st_dev, st->st_ino);
}

/* bundle_entry.c */
/* An absolute path that makes a safe entry name below sysroot/ (the zip
 * writer refuses the others): no empty, "." or ".." component, no backslash. */
int dp_bundle_entry_path_ok(const char *path);
/* -1 with err set (500, the stream was cut) unless it already is */
int dp_bundle_sink_failed(bundle *b, const char *what);

/* bundle_files.c: one module per mapped file; then each copied into the
 * bundle with its debug file and auto-load script */
void dp_bundle_collect_modules(bundle *b);
int dp_bundle_write_modules(bundle *b);

/* bundle_manifest.c */
int dp_bundle_write_manifest(bundle *b);

/* bundle_scripts.c: links first read (before the modules: auto-load scripts
 * are looked up under them), aliases found once the modules are written */
void dp_bundle_read_root_links(bundle *b);
void dp_bundle_find_aliases(bundle *b);
int dp_bundle_write_links(bundle *b);
int dp_bundle_write_gdb_script(bundle *b);
int dp_bundle_write_lldb_script(bundle *b);
int dp_bundle_write_jhsdb_script(bundle *b);

#endif
