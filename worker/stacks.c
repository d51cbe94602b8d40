#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "worker/stacks.h"
#include "common/proto.h"
#include "common/format.h"
#include "proc/procfs.h"

typedef struct native_frame {
    uint64_t pc, offset;
    int line;
    const char *function, *module, *file;
} native_frame;

typedef struct lang_frame {
    uint32_t native_index;
    int line;
    const char *function, *class_name, *file;
} lang_frame;

typedef struct thread_view {
    pid_t tid;
    uint32_t flags;
    const char *why;
    apr_array_header_t *native, *lang;
} thread_view;

struct dp_stacks_view {
    apr_pool_t *pool;
    apr_array_header_t *threads;
    int complete;
    uint64_t paused_us, elapsed_us;
    uint32_t flags;
    const char *runtime, *version, *unsupported;
};

dp_stacks_view *dp_stacks_view_make(apr_pool_t *p)
{
    dp_stacks_view *v = apr_pcalloc(p, sizeof(*v));
    v->pool = p;
    v->threads = apr_array_make(p, 16, sizeof(thread_view));
    return v;
}

/* a string of the record, valid UTF-8 (process memory is anyone's to write) */
static const char *str(dp_rec_reader *r, apr_pool_t *p)
{
    size_t len;
    const char *s = dp_rec_get_str(r, &len);
    return s ? dp_utf8(s, len, p) : NULL;
}

int dp_stacks_view_add(dp_stacks_view *v, int type, const void *payload, size_t len)
{
    dp_rec_reader r = { payload, len, 0, 0 };
    thread_view *t = v->threads->nelts
                   ? &APR_ARRAY_IDX(v->threads, v->threads->nelts - 1, thread_view) : NULL;

    if (v->complete)
        return -1;
    switch (type) {
    case DP_FR_STACK_THREAD:
        t = apr_array_push(v->threads);
        t->tid = (pid_t)dp_rec_get_u32(&r);
        t->flags = dp_rec_get_u32(&r);
        t->why = str(&r, v->pool);
        t->native = apr_array_make(v->pool, 32, sizeof(native_frame));
        t->lang = apr_array_make(v->pool, 8, sizeof(lang_frame));
        break;
    case DP_FR_STACK_NATIVE: {
        native_frame *f;
        if (!t || t->lang->nelts)
            return -1;
        f = apr_array_push(t->native);
        f->pc = dp_rec_get_u64(&r);
        f->offset = dp_rec_get_u64(&r);
        f->line = (int)dp_rec_get_u32(&r);
        f->function = str(&r, v->pool);
        f->module = str(&r, v->pool);
        f->file = str(&r, v->pool);
        break;
    }
    case DP_FR_STACK_LANG: {
        lang_frame *f;
        if (!t)
            return -1;
        f = apr_array_push(t->lang);
        f->native_index = dp_rec_get_u32(&r);
        f->line = (int)dp_rec_get_u32(&r);
        f->function = str(&r, v->pool);
        f->class_name = str(&r, v->pool);
        f->file = str(&r, v->pool);
        if (f->native_index != UINT32_MAX && f->native_index >= (uint32_t)t->native->nelts)
            f->native_index = UINT32_MAX;
        break;
    }
    case DP_FR_STACK_SUMMARY:
        v->paused_us = dp_rec_get_u64(&r);
        v->elapsed_us = dp_rec_get_u64(&r);
        v->flags = dp_rec_get_u32(&r);
        v->runtime = str(&r, v->pool);
        v->version = str(&r, v->pool);
        v->unsupported = str(&r, v->pool);
        v->complete = 1;
        break;
    default:
        return -1;
    }
    return r.bad || r.pos != r.len ? -1 : 0;
}

int dp_stacks_view_complete(const dp_stacks_view *v)
{
    return v->complete;
}

static json_t *jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *jline(int line)
{
    return line > 0 ? json_integer(line) : json_null();
}

static const char *thread_name(pid_t pid, pid_t tid, apr_pool_t *p)
{
    char path[64], comm[64] = "";
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    n = dp_read_small(path, comm, sizeof(comm));
    if (n <= 0)
        return NULL;
    comm[strcspn(comm, "\n")] = '\0';
    return dp_utf8(comm, strlen(comm), p);
}

json_t *dp_stacks_view_json(const dp_stacks_view *v, pid_t pid, const char *href)
{
    json_t *threads = json_array(), *runtime = json_null();
    int i, j, truncated = (v->flags & DP_SS_TIME_CAP) != 0;

    for (i = 0; i < v->threads->nelts; i++) {
        const thread_view *t = &APR_ARRAY_IDX(v->threads, i, thread_view);
        json_t *frames = json_array(), *lang = json_array();
        const char *name = thread_name(pid, t->tid, v->pool);
        for (j = 0; j < t->native->nelts; j++) {
            const native_frame *f = &APR_ARRAY_IDX(t->native, j, native_frame);
            json_array_append_new(frames, json_pack(
                "{s:i,s:s,s:o,s:o,s:o,s:o,s:o}", "index", j,
                "pc", apr_psprintf(v->pool, "0x%" APR_UINT64_T_HEX_FMT, f->pc),
                "function", jstr(f->function),
                "offset", f->offset == DP_REC_NONE ? json_null() : json_integer((json_int_t)f->offset),
                "module", jstr(f->module), "file", jstr(f->file), "line", jline(f->line)));
        }
        for (j = 0; j < t->lang->nelts; j++) {
            const lang_frame *f = &APR_ARRAY_IDX(t->lang, j, lang_frame);
            json_array_append_new(lang, json_pack(
                "{s:o,s:o,s:o,s:o,s:o}", "function", jstr(f->function),
                "class", jstr(f->class_name), "file", jstr(f->file), "line", jline(f->line),
                "nativeIndex", f->native_index == UINT32_MAX ? json_null()
                                                               : json_integer(f->native_index)));
        }
        truncated |= (t->flags & DP_ST_TRUNCATED) != 0;
        json_array_append_new(threads, json_pack(
            "{s:i,s:o,s:s,s:b,s:b,s:o,s:o,s:o}", "id", (int)t->tid, "name", jstr(name),
            "href", apr_psprintf(v->pool, "%s/threads/%d", href, (int)t->tid),
            "truncated", (t->flags & DP_ST_TRUNCATED) != 0,
            "running", (t->flags & DP_ST_RUNNING) != 0,
            "error", jstr(t->why), "frames", frames, "languageFrames", lang));
    }
    if (v->flags & DP_SS_LANG)
        runtime = json_pack("{s:o,s:o,s:b,s:o}", "name", jstr(v->runtime),
                            "version", jstr(v->version), "supported", v->unsupported == NULL,
                            "unsupported", jstr(v->unsupported));
    return json_pack("{s:i,s:s,s:I,s:I,s:b,s:o,s:o}", "id", (int)pid, "href", href,
                     "pausedMicroseconds", (json_int_t)v->paused_us,
                     "elapsedMicroseconds", (json_int_t)v->elapsed_us, "truncated", truncated,
                     "runtime", runtime, "threads", threads);
}

/* eu-stack's layout ("TID n:", "#i  0xpc function - module", the source
 * line indented below), each language frame under the native frame that
 * runs it. */
char *dp_stacks_view_text(const dp_stacks_view *v, pid_t pid, const char *comm)
{
    apr_array_header_t *out = apr_array_make(v->pool, 256, sizeof(char *));
    int i, j, k;

#define LINE(...) (APR_ARRAY_PUSH(out, char *) = apr_psprintf(v->pool, __VA_ARGS__))
    LINE("PID %d - %s\n", (int)pid, comm ? comm : "");
    if (v->flags & DP_SS_LANG)
        LINE("%s %s%s%s\n", v->runtime ? v->runtime : "", v->version ? v->version : "?",
             v->unsupported ? ": unsupported, " : "", v->unsupported ? v->unsupported : "");
    for (i = 0; i < v->threads->nelts; i++) {
        const thread_view *t = &APR_ARRAY_IDX(v->threads, i, thread_view);
        LINE("TID %d:%s%s\n", (int)t->tid, t->why ? " " : "", t->why ? t->why : "");
        for (j = 0; j < t->native->nelts; j++) {
            const native_frame *f = &APR_ARRAY_IDX(t->native, j, native_frame);
            LINE("#%-2d 0x%016" APR_UINT64_T_HEX_FMT " %s - %s\n", j, f->pc,
                 f->function ? f->function : "??", f->module ? f->module : "??");
            if (f->file)
                LINE("    %s:%d\n", f->file, f->line);
            for (k = 0; k < t->lang->nelts; k++) {
                const lang_frame *l = &APR_ARRAY_IDX(t->lang, k, lang_frame);
                if (l->native_index != (uint32_t)j)
                    continue;
                LINE("    > %s%s%s at %s:%d\n", l->class_name ? l->class_name : "",
                     l->class_name ? "::" : "", l->function ? l->function : "??",
                     l->file ? l->file : "??", l->line);
            }
        }
        for (k = 0; k < t->lang->nelts; k++) {
            const lang_frame *l = &APR_ARRAY_IDX(t->lang, k, lang_frame);
            if (l->native_index == UINT32_MAX)
                LINE("    > %s%s%s at %s:%d\n", l->class_name ? l->class_name : "",
                     l->class_name ? "::" : "", l->function ? l->function : "??",
                     l->file ? l->file : "??", l->line);
        }
        if (t->flags & DP_ST_TRUNCATED)
            LINE("    (truncated at %d frames)\n", t->native->nelts);
    }
    LINE("paused %" APR_UINT64_T_FMT " us, %" APR_UINT64_T_FMT " us in all%s\n", v->paused_us,
         v->elapsed_us, (v->flags & DP_SS_TIME_CAP) ? " (time cap reached)" : "");
#undef LINE
    return apr_array_pstrcat(v->pool, out, 0);
}
