/* The bundle's manifest.json: the process, dumpType, time, instance, the
 * runtimes it runs, its modules and its maps lines. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <apr_strings.h>
#include <jansson.h>

#include "proc/procfs.h"
#include "proc/runtime.h"
#include "common/format.h"
#include "dump/bundle_internal.h"

static json_t *jstr(bundle *b, const char *s)
{
    return s ? json_string(dp_utf8(s, strlen(s), b->p)) : json_null();
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

/* The runtime an object is the core of (proc/runtime.h); the executable's
 * symbols are read through /proc/PID/exe. */
static dp_runtime_kind kind_of(bundle *b, const bundle_module *m, const char **version)
{
    char path[80];
    int fd = -1;
    dp_runtime_kind k;

    if (m->is_exe) {
        snprintf(path, sizeof(path), "%s/exe", b->proc);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    k = dp_runtime_of_object(m->path, m->is_exe, fd, version, b->p);
    if (fd >= 0)
        close(fd);
    return k;
}

/* The runtimes the process runs, each with the command that opens it at the
 * runtime's level and what the analysing machine must install for it. */
static json_t *runtimes_json(bundle *b)
{
    json_t *out = json_array();
    int i, seen[DP_RUNTIME_NODE + 1] = { 0 };

    for (i = 0; i < b->mods->nelts; i++) {
        bundle_module *m = &APR_ARRAY_IDX(b->mods, i, bundle_module);
        const char *v, *open_with = "./open-gdb.sh";
        dp_runtime_kind k = kind_of(b, m, &v);
        json_t *need = json_array();

        if (k == DP_RUNTIME_NONE || seen[k]) {
            json_decref(need);
            continue;
        }
        seen[k] = 1;
        if (k == DP_RUNTIME_CPYTHON) {
            /* py-bt needs the interpreter's gdb script and its debug info */
            if (v && (!m->autoload || !m->debug_file))
                json_array_append_new(need, json_string(apr_pstrcat(b->p, "python", v, "-dbg",
                                                                     NULL)));
            open_with = "./open-gdb.sh -batch -ex \"thread apply all py-bt\"";
        }
        else if (k == DP_RUNTIME_JVM) {
            v = java_version(b, m->path);
            b->jvm = m;
            json_array_append_new(need, json_string(apr_psprintf(b->p, "openjdk-%.*s-jdk-headless",
                                  v ? (int)strcspn(v, ".") : 2, v ? v : "17")));
            open_with = "./open-jhsdb.sh jstack";
        }
        json_array_append_new(out, runtime_json(b, dp_runtime_name(k), v, m->path, open_with,
                                                need));
    }
    return out;
}

static json_t *module_json(bundle *b, const bundle_module *m)
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

int dp_bundle_write_manifest(bundle *b)
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
        json_array_append_new(mods, module_json(b, &APR_ARRAY_IDX(b->mods, i, bundle_module)));
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
        return dp_bundle_sink_failed(b, "manifest.json");
    return 0;
}
