/* CPython frames of a stopped process: _PyRuntime → interpreters → thread
 * states → each thread's newest frame → the chain of frames, with the
 * layout of the running version (helper/lang.h): its own _Py_DebugOffsets
 * from 3.13 (helper/pydebug.c), else the table's entry. Three frame
 * models: PyFrameObject via tstate->frame (3.9, 3.10), _PyInterpreterFrame
 * via the thread's _PyCFrame (3.11, 3.12) or via tstate->current_frame
 * (3.13+). Every pointer is checked (user range, full reads, object types
 * against the interpreter's own type objects, back-pointers) and every loop
 * is capped. */

#include <stdio.h>
#include <string.h>
#include <sys/user.h>
#include <apr_strings.h>

#include "helper/stacks.h"
#include "helper/lang.h"
#include "helper/pydebug.h"
#include "helper/pylines.h"
#include "common/proto.h"

#define MAX_INTERPRETERS 64
#define MAX_THREAD_STATES 4096
#define MAX_LINETABLE 65536

typedef struct py_walk {
    dp_lang_target *t;
    const dp_py_layout *l;
    uint64_t code_type, unicode_type;
} py_walk;

static int u32_at(dp_lang_target *t, uint64_t a, uint32_t *v)
{
    return dp_lang_read(t, a, v, 4);
}

/* a str object as UTF-8 (compact strings only, as CPython makes them) */
static char *py_str(py_walk *w, uint64_t obj)
{
    const dp_py_layout *l = w->l;
    uint64_t type, len;
    uint32_t state, kind;
    unsigned char raw[DP_REC_STR_MAX * 4];
    char *out;
    size_t i, o = 0;

    if (!obj || dp_lang_ptr(w->t, obj + l->ob_type, &type) != 0 || type != w->unicode_type
        || dp_lang_read(w->t, obj + l->str_length, &len, 8) != 0
        || u32_at(w->t, obj + l->str_state, &state) != 0
        || !(state >> l->state_compact_bit & 1))
        return NULL;
    if (len > DP_REC_STR_MAX)
        len = DP_REC_STR_MAX;
    if (state >> l->state_ascii_bit & 1) {
        out = apr_palloc(w->t->pool, len + 1);
        if (dp_lang_read(w->t, obj + l->ascii_size, out, len) != 0)
            return NULL;
        out[len] = '\0';
        return out;
    }
    kind = state >> l->state_kind_shift & l->state_kind_mask;
    if (l->compact_size == DP_PY_NONE || (kind != 1 && kind != 2 && kind != 4)
        || dp_lang_read(w->t, obj + l->compact_size, raw, len * kind) != 0)
        return NULL;
    out = apr_palloc(w->t->pool, len * 4 + 1);
    for (i = 0; i < len; i++) {
        uint32_t c = kind == 1 ? raw[i] : kind == 2 ? (uint32_t)raw[2 * i] | raw[2 * i + 1] << 8
                   : (uint32_t)raw[4 * i] | raw[4 * i + 1] << 8 | raw[4 * i + 2] << 16
                     | (uint32_t)raw[4 * i + 3] << 24;
        if (c < 0x80)
            out[o++] = (char)c;
        else if (c < 0x800) {
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
        else if (c < 0x10000 && (c < 0xd800 || c > 0xdfff)) {
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
        else if (c >= 0x10000 && c < 0x110000) {
            out[o++] = (char)(0xf0 | c >> 18);
            out[o++] = (char)(0x80 | (c >> 12 & 0x3f));
            out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
        else
            out[o++] = '?';     /* a lone surrogate */
    }
    out[o] = '\0';
    return out;
}

/* the line of the instruction at byte `offset` of code's bytecode */
static int code_line(py_walk *w, uint64_t code, uint64_t offset)
{
    const dp_py_layout *l = w->l;
    uint64_t table, size;
    int32_t first;
    unsigned char *buf;

    if (dp_lang_read(w->t, code + l->co_firstlineno, &first, 4) != 0
        || dp_lang_ptr(w->t, code + l->co_linetable, &table) != 0
        || dp_lang_read(w->t, table + l->var_size, &size, 8) != 0 || size > MAX_LINETABLE)
        return 0;
    buf = apr_palloc(w->t->pool, size + 1);
    if (dp_lang_read(w->t, table + l->bytes_sval, buf, size) != 0)
        return 0;
    return dp_pylines_line((dp_pylines_format)l->line_format, buf, size, first, offset);
}

static dp_stack_thread *thread_of(dp_stacks *s, uint64_t native_tid, uint64_t pthread_id)
{
    int i;
    for (i = 0; i < s->threads->nelts; i++) {
        dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        if ((uint64_t)th->tid == native_tid)
            return th;
    }
    /* a starting thread may still show its parent's tid or 0: its pthread_t
     * is its fs_base on glibc x86-64 */
    for (i = 0; i < s->threads->nelts; i++) {
        dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        if (th->regs && th->regs->fs_base == pthread_id)
            return th;
    }
    return NULL;
}

/* One frame's code and byte offset; 0 = a Python frame, 1 = a frame that
 * is no Python code's but ends an eval call (3.12+ entry frames, 3.13+
 * frames of the C stack and the interpreter), -1 = unreadable. */
static int frame_code(py_walk *w, uint64_t frame, uint64_t *code, uint64_t *offset,
                      int *shown)
{
    const dp_py_layout *l = w->l;
    uint64_t type, instr = 0;
    unsigned char owner = 0;
    int32_t lasti = 0, first_traceable;

    *shown = 1;
    if (dp_lang_ptr(w->t, frame + l->fr_code, code) != 0)
        return -1;
    *code &= ~(uint64_t)l->ref_tag_bits;
    if (l->fr_owner != DP_PY_NONE && dp_lang_read(w->t, frame + l->fr_owner, &owner, 1) != 0)
        return -1;
    if (l->owner_cstack != DP_PY_NONE && owner >= l->owner_cstack)
        return 1;
    if (dp_lang_ptr(w->t, *code + l->ob_type, &type) != 0)
        return -1;
    if (type != w->code_type)
        return l->frame_model == DP_PY_FRAMES_DIRECT ? 1 : -1;
    if (l->instr_kind != DP_PY_INSTR_POINTER) {
        if (dp_lang_read(w->t, frame + l->fr_prev_instr, &lasti, 4) != 0)
            return -1;
        /* -1 before the first instruction */
        *offset = lasti < 0 ? 0
                  : (uint64_t)lasti * (l->instr_kind == DP_PY_INSTR_LASTI_UNITS ? 2 : 1);
        return 0;
    }
    if (dp_lang_ptr(w->t, frame + l->fr_prev_instr, &instr) != 0)
        return -1;
    *offset = instr >= *code + l->co_code_adaptive ? instr - (*code + l->co_code_adaptive)
                                                   : UINT64_MAX;
    /* incomplete frames (still being set up) are skipped, as CPython does;
     * 3.13+'s debug offsets give no _co_firsttraceable: shown there */
    if (l->co_firsttraceable != DP_PY_NONE && owner != l->owner_generator) {
        if (dp_lang_read(w->t, *code + l->co_firsttraceable, &first_traceable, 4) != 0)
            return -1;
        *shown = *offset != UINT64_MAX && *offset >= 2ULL * (uint32_t)first_traceable;
    }
    return 0;
}

static void walk_frames(py_walk *w, dp_stack_thread *th, uint64_t frame)
{
    const dp_py_layout *l = w->l;
    uint32_t group = 0;
    int n;

    for (n = 0; frame && n < DP_STACK_MAX_FRAMES; n++) {
        uint64_t code = 0, offset = UINT64_MAX, next, q, fn;
        unsigned char is_entry = 0;
        int kind, shown;
        dp_lang_frame *f;

        if ((kind = frame_code(w, frame, &code, &offset, &shown)) < 0
            || dp_lang_ptr(w->t, frame + l->fr_previous, &next) != 0
            || (l->fr_is_entry != DP_PY_NONE
                && dp_lang_read(w->t, frame + l->fr_is_entry, &is_entry, 1) != 0)) {
            th->why = "a CPython frame could not be read";
            return;
        }
        if (kind == 1) {
            if (th->lang->nelts > 0)
                group++;    /* the frames after it run in an outer eval call */
            frame = next;
            continue;
        }
        if (shown) {
            if (!(f = dp_lang_push(th)))
                return;
            f->native_index = group;
            if (dp_lang_ptr(w->t, code + l->co_qualname, &q) == 0)
                f->function = py_str(w, q);
            if (dp_lang_ptr(w->t, code + l->co_filename, &fn) == 0)
                f->file = py_str(w, fn);
            f->line = offset == UINT64_MAX || w->t->no_lines ? 0 : code_line(w, code, offset);
        }
        /* 3.11 marks the first frame of an eval call; before 3.11 each frame is one */
        if (is_entry || l->frame_model == DP_PY_FRAMES_OBJECT)
            group++;
        frame = next;
    }
    if (frame)
        th->flags |= DP_ST_TRUNCATED;
}

/* "3.9" from the name of the object that defines _PyRuntime (python3.9,
 * libpython3.9.so.1.0): before 3.11 there is no Py_Version */
static const char *minor_of_module(const char *module, apr_pool_t *p)
{
    const char *base = strrchr(module, '/') ? strrchr(module, '/') + 1 : module;
    const char *v = strstr(base, "python3."), *e;

    if (!v)
        return NULL;
    v += 6;
    for (e = v + 2; *e >= '0' && *e <= '9'; e++)
        ;
    return e > v + 2 ? apr_pstrndup(p, v, (apr_size_t)(e - v)) : NULL;
}

/* The layout of the running interpreter: its own _Py_DebugOffsets (3.13
 * and later), else the table's entry for its version; NULL with
 * s->unsupported set when there is none or it does not fit. */
static const dp_py_layout *layout_of(dp_lang_target *t, uint64_t runtime, uint64_t runtime_size,
                                     const char *module)
{
    dp_stacks *s = t->out;
    uint64_t version_at;
    uint32_t version = 0;
    const char *minor;
    const dp_py_layout *l;

    if (dp_lang_symbol(t, DP_RUNTIME_CPYTHON, "Py_Version", &version_at, NULL, NULL) == 0) {
        if (dp_lang_read(t, version_at, &version, 4) != 0) {
            s->unsupported = "CPython's Py_Version could not be read";
            return NULL;
        }
        s->version = apr_psprintf(t->pool, "%u.%u.%u", version >> 24, version >> 16 & 0xff,
                                  version >> 8 & 0xff);
        minor = apr_psprintf(t->pool, "%u.%u", version >> 24, version >> 16 & 0xff);
    }
    else if (!(minor = minor_of_module(module, t->pool))) {
        s->unsupported = "CPython without Py_Version whose version its file name does not give";
        return NULL;
    }
    else
        s->version = minor;
    if (dp_py_debug_published(version)) {
        size_t n = dp_py_debug_bytes(version);
        unsigned char *buf = apr_palloc(t->pool, n);
        dp_py_layout *d = apr_palloc(t->pool, sizeof(*d));
        /* a symbol smaller than the debug offsets: not read, the parse says why */
        const char *why = n > runtime_size ? dp_py_debug_layout(buf, 0, version, runtime_size,
                                                                d, t->pool)
                          : dp_lang_read(t, runtime, buf, n) != 0
                          ? "the start of _PyRuntime could not be read"
                          : dp_py_debug_layout(buf, n, version, runtime_size, d, t->pool);
        if (why)
            s->unsupported = apr_psprintf(t->pool, "CPython %s: %s", s->version, why);
        return why ? NULL : d;
    }
    if (!(l = dp_py_layout_find(minor))) {
        s->unsupported = apr_psprintf(t->pool, "CPython %s has no layout table entry (known: "
                                      "%s; 3.13 and later need none)", s->version,
                                      dp_py_layouts_known(t->pool));
        return NULL;
    }
    if ((s->unsupported = dp_py_runtime_refused(l, runtime_size, module, t->pool)))
        return NULL;
    return l;
}

static void walk_thread(py_walk *w, uint64_t ts)
{
    const dp_py_layout *l = w->l;
    uint64_t native_tid = 0, pthread_id, frame;
    dp_stack_thread *th;

    if ((l->ts_native_thread_id != DP_PY_NONE
         && dp_lang_ptr(w->t, ts + l->ts_native_thread_id, &native_tid) != 0)
        || dp_lang_ptr(w->t, ts + l->ts_thread_id, &pthread_id) != 0)
        return;
    th = thread_of(w->t->out, native_tid, pthread_id);
    if (!th || th->lang->nelts != 0 || dp_lang_ptr(w->t, ts + l->ts_cframe, &frame) != 0
        || !frame)
        return;
    /* 3.11 and 3.12: the thread's _PyCFrame holds the frame */
    if (l->cf_current_frame != DP_PY_NONE
        && dp_lang_ptr(w->t, frame + l->cf_current_frame, &frame) != 0)
        return;
    walk_frames(w, th, frame);
}

int dp_pystack_walk(dp_lang_target *t)
{
    dp_stacks *s = t->out;
    uint64_t runtime, runtime_size, interp;
    const char *module;
    py_walk w;
    int ni;

    if (dp_lang_symbol(t, DP_RUNTIME_CPYTHON, "_PyRuntime", &runtime, &runtime_size, &module) != 0)
        return 0;
    s->flags |= DP_SS_LANG;
    s->runtime = "CPython";
    memset(&w, 0, sizeof(w));
    w.t = t;
    if (!(w.l = layout_of(t, runtime, runtime_size, module)))
        return 1;
    if (dp_lang_symbol(t, DP_RUNTIME_CPYTHON, "PyCode_Type", &w.code_type, NULL, NULL) != 0
        || dp_lang_symbol(t, DP_RUNTIME_CPYTHON, "PyUnicode_Type", &w.unicode_type, NULL, NULL) != 0) {
        s->unsupported = "CPython's PyCode_Type or PyUnicode_Type symbol is missing";
        return 1;
    }
    s->runner = "_PyEval_EvalFrameDefault";
    if (dp_lang_ptr(t, runtime + w.l->rt_interp_head, &interp) != 0)
        return 1;
    for (ni = 0; interp && ni < MAX_INTERPRETERS; ni++) {
        uint64_t ts, next_interp;
        int nt;
        if (dp_lang_ptr(t, interp + w.l->is_threads_head, &ts) != 0
            || dp_lang_ptr(t, interp + w.l->is_next, &next_interp) != 0)
            break;
        for (nt = 0; ts && nt < MAX_THREAD_STATES; nt++) {
            uint64_t back, next;
            if (dp_lang_ptr(t, ts + w.l->ts_interp, &back) != 0 || back != interp
                || dp_lang_ptr(t, ts + w.l->ts_next, &next) != 0)
                break;
            walk_thread(&w, ts);
            ts = next;
        }
        interp = next_interp;
    }
    return 1;
}
