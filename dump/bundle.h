/* The zip bundle's contents (format=zip): everything a person needs to open
 * a core on another machine, as named entries on a dp_entry_sink (the zip
 * writer, or the helper's frames to the worker). No httpd in here.
 *
 * Entries, in this order:
 *   core                        the core, streamed by the caller's writer
 *   sysroot/<path>              the executable, every mapped ELF object and
 *                               every other mapped regular file up to
 *                               DP_BUNDLE_DATA_FILE_MAX (the JVM's classes.jsa)
 *                               at its original path, read from what is actually
 *                               mapped (/proc/PID/map_files, /proc/PID/exe),
 *                               so deleted or replaced files are still right;
 *                               /proc/PID/root/<path> when that is not
 *                               permitted and the file is unchanged
 *   sysroot/usr/lib/debug/.build-id/xx/yyyy.debug
 *                               separate debug files found by build id in the
 *                               target's root
 *   sysroot/<path>-gdb.py       gdb's auto-load script of an object (py-bt,
 *                               pretty-printers), from /usr/share/gdb/auto-load
 *   sysroot/lib ...             the root's links (lib -> usr/lib) and the
 *                               sonames of libraries, as zip symlink entries
 *   manifest.json               pid, name, command line, dumpType, time,
 *                               instance, modules (path, size, build id,
 *                               deleted/replaced, source) and the maps lines
 *   open-gdb.sh, open-lldb.sh   open the core with this sysroot in one command
 *                               from any directory; extra arguments are passed
 *                               on (e.g. -batch -ex "thread apply all bt")
 *
 * Every file is read through one constant buffer; no file is held whole.
 * The caller must be able to read the target's /proc entries (ptrace read
 * access): in production the privileged helper. */
#ifndef DP_BUNDLE_H
#define DP_BUNDLE_H

#include <sys/types.h>
#include <apr_pools.h>
#include "common/dp_error.h"
#include "common/sink.h"
#include "common/entries.h"

/* Mapped files that are not ELF objects are bundled up to this size. */
#define DP_BUNDLE_DATA_FILE_MAX (64 << 20)

typedef struct dp_bundle_opts {
    pid_t pid;
    unsigned long dump_type;        /* recorded in the manifest */
    const char *instance_name;      /* DiagProcInstanceName; NULL = "" */
    long long time;                 /* dump time, Unix seconds; 0 = now */
    const char *gdb_commands;       /* a gdb Python script shipped as diagproc-lang.py and
                                       sourced by open-gdb.sh (php-bt, py-bt); NULL = none */
} dp_bundle_opts;

/* Streams the core's bytes into data (the bundle has begun entry "core" and
 * ends it). Returns 0, or -1 with err set; a -1 abandons the bundle. */
typedef int (*dp_bundle_core_fn)(void *arg, dp_sink *data, dp_error *err);

/* Writes every entry above to out. write_core may be NULL (no core entry).
 * /proc/PID/maps is read before the core is written, so the modules are
 * those mapped when the dump was taken.
 * Returns 0, or -1 with err set: 404 when the process is not running, 500
 * when an entry could not be written (the sink failed: the caller must not
 * finish the archive). A module that cannot be read is skipped and marked in
 * the manifest ("source": null), it does not fail the bundle. */
int dp_bundle_write(const dp_bundle_opts *o, dp_entry_sink *out,
                    dp_bundle_core_fn write_core, void *core_arg,
                    apr_pool_t *p, dp_error *err);

/* Writes one whole entry from memory (small generated files). */
int dp_entry_put(dp_entry_sink *out, const char *name, long long mtime, unsigned mode,
                 const void *buf, size_t len);

/* Shell single-quoting: 'it'\''s' (any bytes, newlines included). */
const char *dp_shell_quote(const char *s, apr_pool_t *p);

#endif
