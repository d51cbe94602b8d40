/* Prints the layout table entry of the CPython whose headers it is compiled
 * against (see the Makefile's `layouts` target). */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_code.h>
#include <stdio.h>
#include <string.h>

/* C (helper/layouts.c) or, with "py", the same entry as a Python dict for
 * the gdb commands the bundle ships */
static int py;
#define F(field, value) printf(py ? "    %s=%lu,\n" : "        .%s = %lu,\n", #field, \
                               (unsigned long)(value))

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

int main(int argc, char **argv)
{
    unsigned kind = state_bit(0);
    py = argc > 1 && !strcmp(argv[1], "py");
    if (py)
        printf("PY_LAYOUTS[\"%d.%d\"] = dict(\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    else
        printf("    {\n        .version = \"%d.%d\",\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    printf(py ? "    source=\"Python %s headers (python%d.%d-dev, -DPy_BUILD_CORE)\",\n"
              : "        .source = \"Python %s headers (python%d.%d-dev, -DPy_BUILD_CORE)\",\n",
           PY_VERSION, PY_MAJOR_VERSION, PY_MINOR_VERSION);
    F(runtime_size, sizeof(_PyRuntimeState));
    F(rt_interp_head, offsetof(_PyRuntimeState, interpreters.head));
    F(rt_gil_tstate, offsetof(_PyRuntimeState, gilstate.tstate_current));
    F(is_next, offsetof(PyInterpreterState, next));
    F(is_threads_head, offsetof(PyInterpreterState, threads.head));
    F(ts_next, offsetof(PyThreadState, next));
    F(ts_interp, offsetof(PyThreadState, interp));
    F(ts_cframe, offsetof(PyThreadState, cframe));
    F(ts_thread_id, offsetof(PyThreadState, thread_id));
    F(ts_native_thread_id, offsetof(PyThreadState, native_thread_id));
    F(cf_current_frame, offsetof(_PyCFrame, current_frame));
    F(fr_code, offsetof(_PyInterpreterFrame, f_code));
    F(fr_previous, offsetof(_PyInterpreterFrame, previous));
    F(fr_prev_instr, offsetof(_PyInterpreterFrame, prev_instr));
    F(fr_is_entry, offsetof(_PyInterpreterFrame, is_entry));
    F(fr_owner, offsetof(_PyInterpreterFrame, owner));
    F(owner_generator, FRAME_OWNED_BY_GENERATOR);
    F(ob_type, offsetof(PyObject, ob_type));
    F(co_qualname, offsetof(PyCodeObject, co_qualname));
    F(co_filename, offsetof(PyCodeObject, co_filename));
    F(co_firstlineno, offsetof(PyCodeObject, co_firstlineno));
    F(co_linetable, offsetof(PyCodeObject, co_linetable));
    F(co_firsttraceable, offsetof(PyCodeObject, _co_firsttraceable));
    F(co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
    F(var_size, offsetof(PyVarObject, ob_size));
    F(bytes_sval, offsetof(PyBytesObject, ob_sval));
    F(str_length, offsetof(PyASCIIObject, length));
    F(str_state, offsetof(PyASCIIObject, state));
    F(ascii_size, sizeof(PyASCIIObject));
    F(compact_size, sizeof(PyCompactUnicodeObject));
    F(state_kind_shift, kind & 0xff);
    F(state_kind_mask, kind >> 8);
    F(state_compact_bit, state_bit(1));
    F(state_ascii_bit, state_bit(2));
    printf(py ? ")\n" : "    },\n");
    return 0;
}
