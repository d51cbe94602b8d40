/* The layout of a CPython 3.13+ process from its own _Py_DebugOffsets
 * (helper/pydebug.h). What this file knows is where, in _Py_DebugOffsets,
 * each number sits: every member is a uint64_t, so a position is a slot
 * index. The slots below are offsetof(_Py_DebugOffsets, ...) / 8 measured
 * against python3.13-dev 3.13.5 (Debian 13, Include/internal/
 * pycore_runtime.h) and python3.14-dev 3.14.8 (Debian testing, Include/
 * internal/pycore_debug_offsets.h). A later version is read with the
 * newest shape, and only if everything validates: the cookie, the version
 * equal to the interpreter's Py_Version, a build with the GIL, every
 * section's size at least what is read from it, the symbol large enough. */
#include <string.h>
#include <apr_strings.h>
#include "helper/pydebug.h"
#include "helper/pylines.h"

#define COOKIE "xdebugpy"
#define MAX_STRUCT (1u << 20)   /* a larger "size" is not a structure's */

/* the slots the walk reads, in the order of the shapes below; the bundle's
 * gdb commands get the same list (dp_py_debug_shapes_py) */
#define SHAPE_FIELDS(X) \
    X(slots)                /* sizeof(_Py_DebugOffsets) / 8 */ \
    X(free_threaded) \
    X(rt_size) X(rt_interp_head) \
    X(is_size) X(is_next) X(is_threads_head) \
    X(ts_size) X(ts_next) X(ts_interp) X(ts_current_frame) X(ts_thread_id) \
    X(ts_native_thread_id) \
    X(fr_size) X(fr_previous) X(fr_executable) X(fr_instr_ptr) X(fr_owner) \
    X(co_size) X(co_filename) X(co_qualname) X(co_linetable) X(co_firstlineno) \
    X(co_code_adaptive) \
    X(ob_size) X(ob_type) \
    X(by_size) X(by_ob_size) X(by_ob_sval) \
    X(un_size) X(un_state) X(un_length) X(un_ascii_size)

typedef struct shape {
    uint32_t minor;
    SHAPE_FIELDS(DP_LAYOUT_U32)
} shape;

static const shape shapes[] = {
    { 13, 73, 2, 3, 5, 6, 8, 9, 19, 21, 22, 23, 24, 25, 28, 29, 30, 31, 33,
      34, 35, 37, 38, 39, 43, 44, 45, 64, 65, 66, 67, 68, 69, 70 },
    { 14, 95, 2, 3, 5, 6, 8, 9, 22, 24, 25, 26, 27, 28, 31, 32, 33, 34, 36,
      39, 40, 42, 43, 44, 48, 50, 51, 74, 75, 76, 77, 78, 79, 80 },
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static const shape *shape_of(uint32_t py_version)
{
    uint32_t minor = py_version >> 16 & 0xff;
    size_t i;

    if (py_version >> 24 != 3 || minor < shapes[0].minor)
        return NULL;
    for (i = 0; i < NSHAPES; i++)
        if (shapes[i].minor == minor)
            return &shapes[i];
    return &shapes[NSHAPES - 1];    /* newer than any known: the newest, validated */
}

const char *dp_py_debug_shapes_py(apr_pool_t *p)
{
    const char *out = "";
    size_t i;

    for (i = 0; i < NSHAPES; i++) {
        const shape *s = &shapes[i];
        out = apr_psprintf(p, "%sPY_DEBUG_SHAPES[%u] = dict(\n", out, s->minor);
#define SHAPE_PY(f) out = apr_psprintf(p, "%s    %s=%u,\n", out, #f, s->f);
        SHAPE_FIELDS(SHAPE_PY)
        out = apr_pstrcat(p, out, ")\n", NULL);
    }
    return out;
}

int dp_py_debug_published(uint32_t py_version)
{
    return shape_of(py_version) != NULL;
}

size_t dp_py_debug_bytes(uint32_t py_version)
{
    const shape *s = shape_of(py_version);
    return s ? (size_t)s->slots * 8 : 0;
}

typedef struct parse {
    const unsigned char *buf;
    const char *why;
    apr_pool_t *p;
} parse;

static uint64_t slot(const parse *x, uint32_t i)
{
    uint64_t v;
    memcpy(&v, x->buf + (size_t)i * 8, 8);
    return v;
}

/* the offset in slot `field` of the section whose size is in slot
 * `size_slot`, when a member of `width` bytes there lies inside the size */
static uint32_t member(parse *x, const char *section, uint32_t size_slot, uint32_t field,
                       const char *name, uint32_t width)
{
    uint64_t size = slot(x, size_slot), off = slot(x, field);

    if (x->why)
        return 0;
    if (size == 0 || size > MAX_STRUCT)
        x->why = apr_psprintf(x->p, "_Py_DebugOffsets gives %s a size of %" APR_UINT64_T_FMT,
                              section, size);
    else if (off + width > size)
        x->why = apr_psprintf(x->p, "_Py_DebugOffsets puts %s.%s at %" APR_UINT64_T_FMT
                              ", past the section's size %" APR_UINT64_T_FMT, section, name,
                              off, size);
    return (uint32_t)off;
}

/* the numbers the debug offsets give; the rest are facts of every version
 * that publishes them (see each) */
static void fill(parse *x, const shape *s, dp_py_layout *l)
{
    l->runtime_size = (uint32_t)slot(x, s->rt_size);
    l->rt_interp_head = member(x, "runtime_state", s->rt_size, s->rt_interp_head,
                               "interpreters_head", 8);
    l->is_next = member(x, "interpreter_state", s->is_size, s->is_next, "next", 8);
    l->is_threads_head = member(x, "interpreter_state", s->is_size, s->is_threads_head,
                                "threads_head", 8);
    l->ts_next = member(x, "thread_state", s->ts_size, s->ts_next, "next", 8);
    l->ts_interp = member(x, "thread_state", s->ts_size, s->ts_interp, "interp", 8);
    l->ts_cframe = member(x, "thread_state", s->ts_size, s->ts_current_frame, "current_frame", 8);
    l->ts_thread_id = member(x, "thread_state", s->ts_size, s->ts_thread_id, "thread_id", 8);
    l->ts_native_thread_id = member(x, "thread_state", s->ts_size, s->ts_native_thread_id,
                                    "native_thread_id", 8);
    l->fr_previous = member(x, "interpreter_frame", s->fr_size, s->fr_previous, "previous", 8);
    l->fr_code = member(x, "interpreter_frame", s->fr_size, s->fr_executable, "executable", 8);
    l->fr_prev_instr = member(x, "interpreter_frame", s->fr_size, s->fr_instr_ptr,
                              "instr_ptr", 8);
    l->fr_owner = member(x, "interpreter_frame", s->fr_size, s->fr_owner, "owner", 1);
    l->co_filename = member(x, "code_object", s->co_size, s->co_filename, "filename", 8);
    l->co_qualname = member(x, "code_object", s->co_size, s->co_qualname, "qualname", 8);
    l->co_linetable = member(x, "code_object", s->co_size, s->co_linetable, "linetable", 8);
    l->co_firstlineno = member(x, "code_object", s->co_size, s->co_firstlineno,
                               "firstlineno", 4);
    /* the bytecode follows the fixed part: its offset may equal the size */
    l->co_code_adaptive = member(x, "code_object", s->co_size, s->co_code_adaptive,
                                 "co_code_adaptive", 0);
    l->ob_type = member(x, "pyobject", s->ob_size, s->ob_type, "ob_type", 8);
    l->var_size = member(x, "bytes_object", s->by_size, s->by_ob_size, "ob_size", 8);
    l->bytes_sval = member(x, "bytes_object", s->by_size, s->by_ob_sval, "ob_sval", 1);
    l->str_state = member(x, "unicode_object", s->un_size, s->un_state, "state", 4);
    l->str_length = member(x, "unicode_object", s->un_size, s->un_length, "length", 8);
    l->ascii_size = (uint32_t)slot(x, s->un_ascii_size);
    if (!x->why && (l->ascii_size == 0 || l->ascii_size > slot(x, s->un_size)))
        x->why = apr_psprintf(x->p, "_Py_DebugOffsets gives an asciiobject_size of %u",
                              l->ascii_size);
    /* PyCompactUnicodeObject = PyASCIIObject + utf8_length + utf8, and
     * PyUnicodeObject adds the data pointer (3.12 and later; measured 40,
     * 56, 64 in 3.13 and 3.14); when the sizes disagree, only ASCII
     * strings are read */
    l->compact_size = slot(x, s->un_size) == (uint64_t)l->ascii_size + 24 ? l->ascii_size + 16
                      : DP_PY_NONE;
}

const char *dp_py_debug_layout(const unsigned char *buf, size_t n, uint32_t py_version,
                               uint64_t symbol_size, dp_py_layout *l, apr_pool_t *p)
{
    const shape *s = shape_of(py_version);
    parse x = { buf, NULL, p };
    uint64_t version;

    if (!s)
        return "this CPython publishes no _Py_DebugOffsets (3.13 and later do)";
    if (n < (size_t)s->slots * 8 || symbol_size < (uint64_t)s->slots * 8)
        return apr_psprintf(p, "_PyRuntime has %" APR_UINT64_T_FMT " bytes, fewer than the "
                            "%u of CPython 3.%u's _Py_DebugOffsets", symbol_size, s->slots * 8,
                            s->minor);
    if (memcmp(buf, COOKIE, 8) != 0)
        return "_PyRuntime does not start with the _Py_DebugOffsets cookie \"" COOKIE "\"";
    version = slot(&x, 1);
    if (version != py_version)
        return apr_psprintf(p, "_Py_DebugOffsets names version 0x%08" APR_UINT64_T_HEX_FMT
                            ", Py_Version is 0x%08x", version, py_version);
    if (slot(&x, s->free_threaded) != 0)
        return "a free-threaded CPython (its frames' code may be thread-local bytecode): "
               "not walked";
    memset(l, 0xff, sizeof(*l));
    fill(&x, s, l);
    if (x.why)
        return x.why;
    if (symbol_size < (uint64_t)l->rt_interp_head + 8)
        return apr_psprintf(p, "_PyRuntime has %" APR_UINT64_T_FMT " bytes, fewer than the "
                            "%u its interpreters_head needs", symbol_size, l->rt_interp_head + 8);
    l->version = apr_psprintf(p, "%u.%u", (unsigned)(py_version >> 24),
                              (unsigned)(py_version >> 16 & 0xff));
    l->source = apr_psprintf(p, "the interpreter's _Py_DebugOffsets (read as 3.%u's)", s->minor);
    l->frame_model = DP_PY_FRAMES_DIRECT;
    l->line_format = DP_PYLINES_LOCATIONS;
    l->instr_kind = DP_PY_INSTR_POINTER;
    l->rt_gil_tstate = DP_PY_NONE;
    l->cf_current_frame = DP_PY_NONE;
    l->fr_is_entry = DP_PY_NONE;
    l->co_firsttraceable = DP_PY_NONE;
    /* facts of the headers, not in the debug offsets: owner values
     * (FRAME_OWNED_BY_GENERATOR 1 in both; 3 and up are the C stack's and
     * the interpreter's own frames: FRAME_OWNED_BY_CSTACK 3 in 3.13,
     * FRAME_OWNED_BY_INTERPRETER 3 and FRAME_OWNED_BY_CSTACK 4 in 3.14,
     * which _PyFrame_IsIncomplete skips), the executable a _PyStackRef from
     * 3.14 (Py_TAG_BITS 3 with the GIL: pycore_stackref.h), the unicode
     * state bits (interned:2, kind:3, compact:1, ascii:1 in both) */
    l->owner_generator = 1;
    l->owner_cstack = 3;
    l->ref_tag_bits = s->minor >= 14 ? 3 : 0;
    l->state_kind_shift = 2;
    l->state_kind_mask = 7;
    l->state_compact_bit = 5;
    l->state_ascii_bit = 6;
    return NULL;
}
