/* CPython frames of a stopped process: _PyRuntime → interpreters → thread
 * states → each thread's _PyCFrame → _PyInterpreterFrame chain, with the
 * layout of the running version (helper/lang.h). Every pointer is
 * checked (user range, full reads, object types against the interpreter's
 * own type objects, back-pointers) and every loop is capped. */

#include <stdio.h>
#include <string.h>
#include <sys/user.h>
#include <apr_strings.h>

#include "helper/stacks.h"
#include "helper/lang.h"
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
    if ((kind != 1 && kind != 2 && kind != 4)
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

static unsigned varint(const unsigned char *p, size_t n, size_t *i)
{
    unsigned v = 0, shift = 0;
    while (*i < n) {
        unsigned b = p[(*i)++];
        v |= (b & 63) << shift;
        shift += 6;
        if (!(b & 64) || shift > 30)
            break;
    }
    return v;
}

/* The line of code unit `unit` from a 3.11 location table (Objects/
 * locations.md): entries start with bit 7 set; code = bits 3-6, length =
 * bits 0-2 + 1 units; 15 = no line, 14/13 = signed varint delta, 10-12 =
 * delta code-10, 0-9 = same line. 0 = unknown, -1 = none. */
static int line_of(const unsigned char *p, size_t n, int first_line, uint64_t unit)
{
    size_t i = 0;
    uint64_t at = 0;
    int line = first_line;

    while (i < n) {
        unsigned b = p[i++], code = b >> 3 & 15, len = (b & 7) + 1;
        int entry_line;
        if (!(b & 0x80))
            return 0;           /* not the start of an entry: a torn table */
        if (code == 15)
            entry_line = -1;
        else {
            if (code == 14 || code == 13) {
                unsigned v = varint(p, n, &i);
                line += (v & 1) ? -(int)(v >> 1) : (int)(v >> 1);
            }
            else if (code >= 10)
                line += (int)code - 10;
            entry_line = line;
        }
        if (unit < at + len)
            return entry_line;
        at += len;
        while (i < n && !(p[i] & 0x80))
            i++;                /* the rest of the entry: columns */
    }
    return 0;
}

static int code_line(py_walk *w, uint64_t code, uint64_t prev_instr)
{
    const dp_py_layout *l = w->l;
    uint64_t table, size;
    int32_t first;
    unsigned char *buf;

    if (dp_lang_read(w->t, code + l->co_firstlineno, &first, 4) != 0
        || dp_lang_ptr(w->t, code + l->co_linetable, &table) != 0
        || dp_lang_read(w->t, table + l->var_size, &size, 8) != 0 || size > MAX_LINETABLE
        || prev_instr < code + l->co_code_adaptive)
        return 0;
    buf = apr_palloc(w->t->pool, size + 1);
    if (dp_lang_read(w->t, table + l->bytes_sval, buf, size) != 0)
        return 0;
    return line_of(buf, size, first, (prev_instr - (code + l->co_code_adaptive)) / 2);
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

static void walk_frames(py_walk *w, dp_stack_thread *th, uint64_t frame)
{
    const dp_py_layout *l = w->l;
    uint32_t group = 0;
    int n;

    for (n = 0; frame && n < DP_STACK_MAX_FRAMES; n++) {
        uint64_t code, prev_instr, type, next;
        unsigned char owner, is_entry;
        int32_t first_traceable;
        dp_lang_frame *f;

        if (dp_lang_ptr(w->t, frame + l->fr_code, &code) != 0
            || dp_lang_ptr(w->t, frame + l->fr_prev_instr, &prev_instr) != 0
            || dp_lang_ptr(w->t, frame + l->fr_previous, &next) != 0
            || dp_lang_read(w->t, frame + l->fr_owner, &owner, 1) != 0
            || dp_lang_read(w->t, frame + l->fr_is_entry, &is_entry, 1) != 0
            || dp_lang_ptr(w->t, code + l->ob_type, &type) != 0 || type != w->code_type
            || dp_lang_read(w->t, code + l->co_firsttraceable, &first_traceable, 4) != 0) {
            th->why = "a CPython frame could not be read";
            return;
        }
        /* incomplete frames (still being set up) are skipped, as CPython does */
        if (owner == l->owner_generator
            || prev_instr >= code + l->co_code_adaptive + 2ULL * (uint32_t)first_traceable) {
            if (!(f = dp_lang_push(th)))
                return;
            f->native_index = group;
            {
                uint64_t q, fn;
                if (dp_lang_ptr(w->t, code + l->co_qualname, &q) == 0)
                    f->function = py_str(w, q);
                if (dp_lang_ptr(w->t, code + l->co_filename, &fn) == 0)
                    f->file = py_str(w, fn);
            }
            f->line = code_line(w, code, prev_instr);
        }
        if (is_entry)
            group++;        /* the frames after it run in an outer eval call */
        frame = next;
    }
    if (frame)
        th->flags |= DP_ST_TRUNCATED;
}

int dp_pystack_walk(dp_lang_target *t)
{
    dp_stacks *s = t->out;
    uint64_t runtime, runtime_size, version_at, interp;
    uint32_t version;
    const char *module;
    char minor[16];
    py_walk w;
    int ni;

    if (dp_lang_symbol(t, DP_RUNTIME_CPYTHON, "_PyRuntime", &runtime, &runtime_size, &module) != 0)
        return 0;
    s->flags |= DP_SS_LANG;
    s->runtime = "CPython";
    if (dp_lang_symbol(t, DP_RUNTIME_CPYTHON, "Py_Version", &version_at, NULL, NULL) != 0
        || u32_at(t, version_at, &version) != 0) {
        s->unsupported = "CPython without a readable Py_Version (older than 3.11)";
        return 1;
    }
    s->version = apr_psprintf(t->pool, "%u.%u.%u", version >> 24, version >> 16 & 0xff,
                              version >> 8 & 0xff);
    snprintf(minor, sizeof(minor), "%u.%u", version >> 24, version >> 16 & 0xff);
    memset(&w, 0, sizeof(w));
    w.t = t;
    if (!(w.l = dp_py_layout_find(minor))) {
        s->unsupported = apr_psprintf(t->pool, "CPython %s has no layout table entry (known: "
                                      "%s)", s->version, dp_py_layouts_known(t->pool));
        return 1;
    }
    if ((s->unsupported = dp_py_runtime_refused(w.l, runtime_size, module, t->pool)))
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
            uint64_t back, native_tid, pthread_id, cframe, frame, next;
            dp_stack_thread *th;
            if (dp_lang_ptr(t, ts + w.l->ts_interp, &back) != 0 || back != interp
                || dp_lang_ptr(t, ts + w.l->ts_next, &next) != 0
                || dp_lang_ptr(t, ts + w.l->ts_native_thread_id, &native_tid) != 0
                || dp_lang_ptr(t, ts + w.l->ts_thread_id, &pthread_id) != 0)
                break;
            th = thread_of(s, native_tid, pthread_id);
            if (th && th->lang->nelts == 0
                && dp_lang_ptr(t, ts + w.l->ts_cframe, &cframe) == 0 && cframe
                && dp_lang_ptr(t, cframe + w.l->cf_current_frame, &frame) == 0)
                walk_frames(&w, th, frame);
            ts = next;
        }
        interp = next_interp;
    }
    return 1;
}
