/* Writes the layout entry of the CPython whose headers it is compiled
 * against, as one C file of helper/layouts/gen/ (run by
 * helper/layouts/generate.sh for `make layouts`):
 *   cpython --name                 the file's base name: cpython-3.11
 *   cpython PACKAGE HEADERS        the file, on stdout
 * PACKAGE names the headers' package and exact version, HEADERS their
 * directory: both go into the provenance comment. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <frameobject.h>
#include <internal/pycore_runtime.h>
#include <internal/pycore_interp.h>
#if PY_VERSION_HEX >= 0x030b0000
#include <internal/pycore_frame.h>
#include <internal/pycore_code.h>
#endif
#include <stdio.h>
#include <string.h>
#include "helper/lang.h"
#include "helper/pylines.h"

/* every number starts as this, so a field the generator forgets is caught */
#define UNSET 0xffffffffu

/* bit position of a one-bit-or-more bitfield: set it alone in a zeroed struct */
static unsigned state_bit(int which)
{
    PyASCIIObject o;
    unsigned v, i;
    memset(&o, 0, sizeof(o));
    if (which == 0) o.state.kind = 7;
    else if (which == 1) o.state.compact = 1;
    else o.state.ascii = 1;
    memcpy(&v, &o.state, sizeof(v));
    for (i = 0; i < 32 && !(v & (1u << i)); i++)
        ;
    return which == 0 ? (v >> i) << 8 | i : i;      /* kind: mask << 8 | shift */
}

/* the interpreter's list of thread states */
#if PY_VERSION_HEX < 0x030b0000
#define THREADS_HEAD tstate_head
#else
#define THREADS_HEAD threads.head
#endif

/* The members every version 3.9 to 3.12 has where the walk expects them */
static void measure_common(dp_py_layout *e)
{
    unsigned kind = state_bit(0);

    e->runtime_size = sizeof(_PyRuntimeState);
    e->rt_interp_head = offsetof(_PyRuntimeState, interpreters.head);
    e->is_next = offsetof(PyInterpreterState, next);
    e->is_threads_head = offsetof(PyInterpreterState, THREADS_HEAD);
    e->ts_next = offsetof(PyThreadState, next);
    e->ts_interp = offsetof(PyThreadState, interp);
    e->ts_thread_id = offsetof(PyThreadState, thread_id);
    e->ob_type = offsetof(PyObject, ob_type);
    e->co_filename = offsetof(PyCodeObject, co_filename);
    e->co_firstlineno = offsetof(PyCodeObject, co_firstlineno);
    e->var_size = offsetof(PyVarObject, ob_size);
    e->bytes_sval = offsetof(PyBytesObject, ob_sval);
    e->str_length = offsetof(PyASCIIObject, length);
    e->str_state = offsetof(PyASCIIObject, state);
    e->ascii_size = sizeof(PyASCIIObject);
    e->compact_size = sizeof(PyCompactUnicodeObject);
    e->state_kind_shift = kind & 0xff;
    e->state_kind_mask = kind >> 8;
    e->state_compact_bit = state_bit(1);
    e->state_ascii_bit = state_bit(2);
    e->ref_tag_bits = 0;
}

#if PY_VERSION_HEX < 0x030b0000
/* 3.9, 3.10: tstate->frame, a PyFrameObject chained by f_back; the code
 * object has no qualified name (co_name it is) and f_lasti is an int */
static void measure(dp_py_layout *e)
{
    measure_common(e);
    e->frame_model = DP_PY_FRAMES_OBJECT;
#if PY_VERSION_HEX < 0x030a0000
    e->line_format = DP_PYLINES_LNOTAB;
    e->instr_kind = DP_PY_INSTR_LASTI_BYTES;
    e->co_linetable = offsetof(PyCodeObject, co_lnotab);
#else
    e->line_format = DP_PYLINES_310;
    e->instr_kind = DP_PY_INSTR_LASTI_UNITS;
    e->co_linetable = offsetof(PyCodeObject, co_linetable);
#endif
    e->rt_gil_tstate = offsetof(_PyRuntimeState, gilstate.tstate_current);
    e->ts_cframe = offsetof(PyThreadState, frame);
    e->ts_native_thread_id = DP_PY_NONE;
    e->cf_current_frame = DP_PY_NONE;
    e->fr_code = offsetof(PyFrameObject, f_code);
    e->fr_previous = offsetof(PyFrameObject, f_back);
    e->fr_prev_instr = offsetof(PyFrameObject, f_lasti);
    e->fr_is_entry = DP_PY_NONE;
    e->fr_owner = DP_PY_NONE;
    e->owner_generator = DP_PY_NONE;
    e->owner_cstack = DP_PY_NONE;
    e->co_qualname = offsetof(PyCodeObject, co_name);
    e->co_firsttraceable = DP_PY_NONE;
    e->co_code_adaptive = DP_PY_NONE;
}
#elif PY_VERSION_HEX < 0x030d0000
/* 3.11, 3.12: tstate->cframe->current_frame, a _PyInterpreterFrame */
static void measure(dp_py_layout *e)
{
    measure_common(e);
    e->frame_model = DP_PY_FRAMES_CFRAME;
    e->line_format = DP_PYLINES_LOCATIONS;
    e->instr_kind = DP_PY_INSTR_POINTER;
    e->ts_cframe = offsetof(PyThreadState, cframe);
    e->ts_native_thread_id = offsetof(PyThreadState, native_thread_id);
    e->cf_current_frame = offsetof(_PyCFrame, current_frame);
    e->fr_code = offsetof(_PyInterpreterFrame, f_code);
    e->fr_previous = offsetof(_PyInterpreterFrame, previous);
    e->fr_prev_instr = offsetof(_PyInterpreterFrame, prev_instr);
    e->fr_owner = offsetof(_PyInterpreterFrame, owner);
    e->owner_generator = FRAME_OWNED_BY_GENERATOR;
#if PY_VERSION_HEX < 0x030c0000
    e->rt_gil_tstate = offsetof(_PyRuntimeState, gilstate.tstate_current);
    e->fr_is_entry = offsetof(_PyInterpreterFrame, is_entry);
    e->owner_cstack = DP_PY_NONE;
#else
    /* 3.12: the current thread state is a thread-local; an eval call's
     * first frame is its entry frame, owned by the C stack */
    e->rt_gil_tstate = DP_PY_NONE;
    e->fr_is_entry = DP_PY_NONE;
    e->owner_cstack = FRAME_OWNED_BY_CSTACK;
#endif
    e->co_qualname = offsetof(PyCodeObject, co_qualname);
    e->co_linetable = offsetof(PyCodeObject, co_linetable);
    e->co_firsttraceable = offsetof(PyCodeObject, _co_firsttraceable);
    e->co_code_adaptive = offsetof(PyCodeObject, co_code_adaptive);
}
#else
/* 3.13 and later: main() writes nothing */
static void measure(dp_py_layout *e)
{
    (void)e;
}
#endif

int main(int argc, char **argv)
{
    dp_py_layout e;
    int unset = 0;

    if (argc == 2 && !strcmp(argv[1], "--name")) {
        printf("cpython-%d.%d\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: cpython --name | cpython PACKAGE HEADERS\n");
        return 2;
    }
#if PY_VERSION_HEX >= 0x030d0000
    fprintf(stderr, "cpython: %s publishes _Py_DebugOffsets: the walk reads its layout from the "
            "running interpreter, no entry is written\n", PY_VERSION);
    return 3;
#endif
    memset(&e, 0xff, sizeof(e));
    measure(&e);
#define CHECK(f) if (e.f == UNSET) { fprintf(stderr, "cpython: %s is not measured\n", #f); unset = 1; }
    DP_PY_LAYOUT_FIELDS(CHECK)
    if (unset)
        return 1;
    printf("/* Generated by `make layouts` with helper/layouts/cpython.c: do not edit.\n"
           " * From the Python %s headers of %s\n"
           " * (%s, -DPy_BUILD_CORE). */\n"
           "#include \"helper/lang.h\"\n\n"
           "const dp_py_layout dp_py_layout_%d_%d = {\n"
           "    .version = \"%d.%d\",\n"
           "    .source = \"Python %s headers (%s, -DPy_BUILD_CORE)\",\n",
           PY_VERSION, argv[1], argv[2], PY_MAJOR_VERSION, PY_MINOR_VERSION,
           PY_MAJOR_VERSION, PY_MINOR_VERSION, PY_VERSION, argv[1]);
#define PRINT(f) printf("    .%s = %u,\n", #f, (unsigned)e.f);
    DP_PY_LAYOUT_FIELDS(PRINT)
    printf("};\n");
    return 0;
}
