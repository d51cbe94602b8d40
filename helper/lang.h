/* Language-level stacks: the interpreter structures a walk follows, one
 * layout entry per interpreter version. Each entry is a generated file of
 * helper/layouts/gen/ (`make layouts` writes it from that version's -dev
 * headers with helper/layouts/cpython.c or php.c, and touches no other
 * version's file); the build lists the files it finds into dp_py_layouts[]
 * and dp_php_layouts[]. A version without an entry gets native frames and a
 * reason, never a guessed layout. */
#ifndef DP_LANG_H
#define DP_LANG_H

#include <stdint.h>
#include <stddef.h>

/* no APR header: the generators (helper/layouts/) include this file against
 * an interpreter's headers alone */
struct apr_pool_t;

/* The numbers of an entry, each a uint32_t, listed once so that the struct,
 * the generators' checks and the gdb commands' Python dicts
 * (helper/lang_gdb.c) cannot disagree on what an entry holds. */
#define DP_PY_LAYOUT_FIELDS(X) \
    X(runtime_size)         /* sizeof(_PyRuntimeState): the headers' size of the symbol */ \
    X(frame_model)          /* DP_PY_FRAMES_*: how a thread's frames chain */ \
    X(line_format)          /* dp_pylines_format (helper/pylines.h) */ \
    X(instr_kind)           /* DP_PY_INSTR_*: what fr_prev_instr holds */ \
    X(rt_interp_head) X(rt_gil_tstate) \
    X(is_next) X(is_threads_head) \
    X(ts_next) X(ts_interp) X(ts_cframe) X(ts_thread_id) X(ts_native_thread_id) \
    X(cf_current_frame) \
    X(fr_code) X(fr_previous) X(fr_prev_instr) X(fr_is_entry) X(fr_owner) X(owner_generator) \
    X(owner_cstack)         /* 3.12: the entry frame of an eval call (its code is a trampoline) */ \
    X(ref_tag_bits)         /* 3.14: the low bits of a _PyStackRef that are tags, not address */ \
    X(ob_type) \
    X(co_qualname) X(co_filename) X(co_firstlineno) X(co_linetable) X(co_firsttraceable) \
    X(co_code_adaptive) \
    X(var_size)             /* PyVarObject.ob_size */ \
    X(bytes_sval) \
    X(str_length) X(str_state) X(ascii_size) X(compact_size) \
    X(state_kind_shift) X(state_kind_mask) X(state_compact_bit) X(state_ascii_bit)

#define DP_PHP_LAYOUT_FIELDS(X) \
    X(eg_size)              /* sizeof(zend_executor_globals): the headers' size of the symbol \
                               (0 in an entry made by hand: not known) */ \
    X(eg_current_execute_data) \
    X(ex_opline) X(ex_func) X(ex_this_type_info) X(ex_prev) \
    X(call_top)             /* ZEND_CALL_TOP in This.u1.type_info */ \
    X(fn_type) X(fn_name) X(fn_scope) X(user_function) \
    X(op_filename) X(op_opcodes) X(op_last) \
    X(ce_name) \
    X(opline_size) X(opline_lineno) \
    X(str_type_info) X(str_len) X(str_val) X(gc_type_mask) X(is_string) \
    X(sg_size)              /* sizeof(sapi_globals_struct) (0 in an entry made by hand) */ \
    X(sg_request_method)    /* SG(request_info): the request being served (const char *s, \
                               request_method NULL before the first request) */ \
    X(sg_query_string) X(sg_request_uri) X(sg_path_translated) \
    X(sg_sapi_started)      /* SG(sapi_started), a bool: 1 from a request's startup to its \
                               shutdown; request_info keeps the last request's pointers */

#define DP_LAYOUT_U32(name) uint32_t name;

/* A CPython member the version does not have (3.9 has no native_thread_id,
 * 3.13 no _co_firsttraceable the debug offsets would name) */
#define DP_PY_NONE 0xfffffffeu
/* frame_model: where a thread state keeps its newest frame, and what a frame is */
#define DP_PY_FRAMES_OBJECT 1   /* 3.9, 3.10: ts_cframe is tstate->frame, a PyFrameObject
                                   (f_back, f_code, f_lasti); every frame is one eval call */
#define DP_PY_FRAMES_CFRAME 2   /* 3.11, 3.12: tstate->cframe->current_frame, a
                                   _PyInterpreterFrame */
#define DP_PY_FRAMES_DIRECT 3   /* 3.13 and later: ts_cframe is tstate->current_frame, a
                                   _PyInterpreterFrame whose executable is a tagged
                                   reference from 3.14; frames whose executable is no
                                   code object (the C stack's entry frames) separate
                                   eval calls */
/* instr_kind: the frame's position in its code */
#define DP_PY_INSTR_POINTER 1   /* a pointer into co_code_adaptive (3.11+ prev_instr, 3.13+
                                   instr_ptr: both give the offset CPython's
                                   _PyInterpreterFrame_LASTI takes to PyCode_Addr2Line) */
#define DP_PY_INSTR_LASTI_BYTES 2   /* 3.9 f_lasti, an int: a byte offset */
#define DP_PY_INSTR_LASTI_UNITS 3   /* 3.10 f_lasti, an int: in 2-byte code units */

typedef struct dp_py_layout {
    const char *version;            /* "3.11": matched against Py_Version's major.minor */
    const char *source;             /* the headers the numbers came from */
    DP_PY_LAYOUT_FIELDS(DP_LAYOUT_U32)
} dp_py_layout;

typedef struct dp_php_layout {
    const char *version;            /* "8.2" */
    const char *api;                /* the build id string in .rodata: "API20220829,NTS" */
    const char *source;
    DP_PHP_LAYOUT_FIELDS(DP_LAYOUT_U32)
} dp_php_layout;

/* The entries the build found in helper/layouts/gen/, NULL-terminated. */
extern const dp_py_layout *const dp_py_layouts[];
extern const size_t dp_py_nlayouts;
extern const dp_php_layout *const dp_php_layouts[];
extern const size_t dp_php_nlayouts;

/* The entry of CPython "3.11" / of PHP module API "API20220829,NTS", or NULL. */
const dp_py_layout *dp_py_layout_find(const char *minor);
const dp_php_layout *dp_php_layout_find(const char *api);
/* What the table knows, for a reason text: "3.11, 3.13" / "API20220829,NTS
 * (PHP 8.2)"; "none" when the build found no entry. */
const char *dp_py_layouts_known(struct apr_pool_t *p);
const char *dp_php_layouts_known(struct apr_pool_t *p);

/* The check of the root symbol's size against what the walk reads from it
 * (not against the headers' whole size: a patch release may append members,
 * as a PHP 8.2 release appended delayed_oom to the executor globals: 1776
 * bytes in 8.2.32, 1800 in 8.2.36). NULL when the
 * symbol is large enough, else the reason, naming the numbers. */
const char *dp_py_runtime_refused(const dp_py_layout *l, uint64_t size, const char *module,
                                  struct apr_pool_t *p);
const char *dp_php_globals_refused(const dp_php_layout *l, uint64_t size, const char *module,
                                   struct apr_pool_t *p);

/* helper/gdb/diagproc-lang.py, embedded at build time (tools/embed.c); its
 * "# @LAYOUTS@" line stands for the entries as Python dicts. */
extern const char dp_lang_gdb_py[];
extern const size_t dp_lang_gdb_py_len;

#endif
