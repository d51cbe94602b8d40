# gdb commands for a diagproc bundle: php-bt and dp-py-bt (also py-bt, unless
# Debian's python3.11-gdb.py defines it) print the PHP / CPython frames of
# the core by walking the interpreter's own structures with the layout table
# of the server that made the dump, as its live stacks route does.
import re

import gdb

PY_LAYOUTS = {}
PY_DEBUG_SHAPES = {}
PHP_LAYOUTS = {}
# @LAYOUTS@

MAX_FRAMES = 512


def _addr(name):
    try:
        return int(gdb.parse_and_eval("(unsigned long)&'%s'" % name))
    except gdb.error:
        return None


def _mem(addr, n):
    if addr < 4096 or addr + n > 0x7fffffffffff:
        raise gdb.MemoryError("address 0x%x out of range" % addr)
    return bytes(gdb.selected_inferior().read_memory(addr, n))


def _u(addr, n=8):
    return int.from_bytes(_mem(addr, n), "little")


def _i32(addr):
    return int.from_bytes(_mem(addr, 4), "little", signed=True)


# ---------------------------------------------------------------- CPython

NONE = 0xfffffffe      # DP_PY_NONE: a member the version does not have
FRAMES_OBJECT, FRAMES_CFRAME, FRAMES_DIRECT = 1, 2, 3
LNOTAB, LINES_310, LOCATIONS = 0, 1, 2
INSTR_POINTER, LASTI_BYTES, LASTI_UNITS = 1, 2, 3


def _py_str(L, obj, unicode_type):
    if not obj or _u(obj + L["ob_type"]) != unicode_type:
        return None
    n = min(_u(obj + L["str_length"]), 4096)
    st = _u(obj + L["str_state"], 4)
    if not (st >> L["state_compact_bit"]) & 1:
        return None
    if (st >> L["state_ascii_bit"]) & 1:
        return _mem(obj + L["ascii_size"], n).decode("ascii", "replace")
    kind = (st >> L["state_kind_shift"]) & L["state_kind_mask"]
    codec = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}.get(kind)
    if not codec or L["compact_size"] == NONE:
        return None
    return _mem(obj + L["compact_size"], n * kind).decode(codec, "replace")


def _varint(p, i):
    v = shift = 0
    while i < len(p):
        b = p[i]
        i += 1
        v |= (b & 63) << shift
        shift += 6
        if not b & 64:
            break
    return v, i


def _line_lnotab(p, line, offset):
    addr = 0
    for i in range(0, len(p) - 1, 2):
        addr += p[i]
        if addr > offset:
            break
        line += p[i + 1] - 256 if p[i + 1] > 127 else p[i + 1]
    return line


def _line_310(p, line, offset):
    end = 0
    for i in range(0, len(p) - 1, 2):
        start, end = end, end + p[i]
        delta = p[i + 1] - 256 if p[i + 1] > 127 else p[i + 1]
        if delta != -128:
            line += delta
        if end > start and offset < end:
            return None if delta == -128 else line
    return None


def _line_locations(p, line, offset):
    unit, at, i = offset // 2, 0, 0
    while i < len(p):
        b = p[i]
        i += 1
        if not b & 0x80:
            return None
        code_, length = (b >> 3) & 15, (b & 7) + 1
        if code_ in (13, 14):
            v, i = _varint(p, i)
            line += -(v >> 1) if v & 1 else v >> 1
        elif 10 <= code_ <= 12:
            line += code_ - 10
        if unit < at + length:
            return None if code_ == 15 else line
        at += length
        while i < len(p) and not p[i] & 0x80:
            i += 1
    return None


def _py_line(L, code, offset):
    """the line at a byte offset of code's bytecode (see helper/pylines.c)"""
    line = _i32(code + L["co_firstlineno"])
    table = _u(code + L["co_linetable"])
    size = _u(table + L["var_size"])
    if size > 65536 or offset is None:
        return None
    p = _mem(table + L["bytes_sval"], size)
    decode = {LNOTAB: _line_lnotab, LINES_310: _line_310}.get(L["line_format"], _line_locations)
    return decode(p, line, offset)


def _py_debug_layout(rt, v, size):
    """the layout from the core's _Py_DebugOffsets (see helper/pydebug.c)"""
    minor = (v >> 16) & 255
    S = PY_DEBUG_SHAPES.get(minor) or PY_DEBUG_SHAPES[max(PY_DEBUG_SHAPES)]
    raw = _mem(rt, S["slots"] * 8)

    def slot(name):
        i = S[name] if isinstance(name, str) else name
        return int.from_bytes(raw[i * 8:i * 8 + 8], "little")
    if raw[:8] != b"xdebugpy":
        raise gdb.GdbError('_PyRuntime does not start with the _Py_DebugOffsets cookie "xdebugpy"')
    if slot(1) != v:
        raise gdb.GdbError("_Py_DebugOffsets names version 0x%08x, Py_Version is 0x%08x"
                           % (slot(1), v))
    if slot("free_threaded"):
        raise gdb.GdbError("a free-threaded CPython: not walked")

    def member(section, name, width=8):
        sz, off = slot(section), slot(name)
        if not 0 < sz <= 1 << 20 or off + width > sz:
            raise gdb.GdbError("_Py_DebugOffsets: %s does not fit its section" % name)
        return off
    L = dict(
        rt_interp_head=member("rt_size", "rt_interp_head"),
        is_next=member("is_size", "is_next"), is_threads_head=member("is_size", "is_threads_head"),
        ts_next=member("ts_size", "ts_next"), ts_interp=member("ts_size", "ts_interp"),
        ts_cframe=member("ts_size", "ts_current_frame"),
        ts_thread_id=member("ts_size", "ts_thread_id"),
        ts_native_thread_id=member("ts_size", "ts_native_thread_id"),
        fr_previous=member("fr_size", "fr_previous"), fr_code=member("fr_size", "fr_executable"),
        fr_prev_instr=member("fr_size", "fr_instr_ptr"), fr_owner=member("fr_size", "fr_owner", 1),
        co_filename=member("co_size", "co_filename"), co_qualname=member("co_size", "co_qualname"),
        co_linetable=member("co_size", "co_linetable"),
        co_firstlineno=member("co_size", "co_firstlineno", 4),
        co_code_adaptive=member("co_size", "co_code_adaptive", 0),
        ob_type=member("ob_size", "ob_type"),
        var_size=member("by_size", "by_ob_size"), bytes_sval=member("by_size", "by_ob_sval", 1),
        str_state=member("un_size", "un_state", 4), str_length=member("un_size", "un_length"),
        ascii_size=slot("un_ascii_size"))
    if size is not None and size < L["rt_interp_head"] + 8:
        raise gdb.GdbError("_PyRuntime has %d bytes, too few for interpreters_head" % size)
    L.update(frame_model=FRAMES_DIRECT, line_format=LOCATIONS, instr_kind=INSTR_POINTER,
             cf_current_frame=NONE, fr_is_entry=NONE, co_firsttraceable=NONE,
             owner_generator=1, owner_cstack=3, ref_tag_bits=3 if minor >= 14 else 0,
             state_kind_shift=2, state_kind_mask=7, state_compact_bit=5, state_ascii_bit=6,
             compact_size=L["ascii_size"] + 16 if slot("un_size") == L["ascii_size"] + 24
             else NONE)
    return L


def _py_layout(rt):
    ver = _addr("Py_Version")
    v = _u(ver, 4) if ver else 0
    if v:
        key = "%d.%d" % (v >> 24, (v >> 16) & 255)
    else:   # before 3.11: the version in the name of the object that defines _PyRuntime
        where = gdb.execute("info symbol 0x%x" % rt, to_string=True)
        m = re.search(r"python(3\.\d+)", where + " " + (gdb.current_progspace().filename or ""))
        key = m.group(1) if m else "(unknown)"
    if v >= 0x030d0000 and PY_DEBUG_SHAPES:
        try:
            size = int(gdb.parse_and_eval("sizeof('_PyRuntime')"))
        except gdb.error:
            size = None
        return key, _py_debug_layout(rt, v, size)
    L = PY_LAYOUTS.get(key)
    if L is None:
        raise gdb.GdbError("CPython %s has no layout table entry (known: %s)"
                           % (key, ", ".join(PY_LAYOUTS) or "none"))
    return key, L


def _py_frame(L, fr, code_t):
    """(code, byte offset, shown) of a frame; code None for a frame that is
    no Python code's (an entry frame of the C stack or the interpreter)"""
    code = _u(fr + L["fr_code"]) & ~L["ref_tag_bits"]
    owner = _u(fr + L["fr_owner"], 1) if L["fr_owner"] != NONE else 0
    if L["owner_cstack"] != NONE and owner >= L["owner_cstack"]:
        return None, None, False
    if _u(code + L["ob_type"]) != code_t:
        if L["frame_model"] == FRAMES_DIRECT:
            return None, None, False
        raise gdb.MemoryError("not a code object at 0x%x" % code)
    if L["instr_kind"] != INSTR_POINTER:
        lasti = _i32(fr + L["fr_prev_instr"])
        return code, max(lasti, 0) * (2 if L["instr_kind"] == LASTI_UNITS else 1), True
    base = code + L["co_code_adaptive"]
    instr = _u(fr + L["fr_prev_instr"])
    offset = instr - base if instr >= base else None
    shown = True
    if L["co_firsttraceable"] != NONE and owner != L["owner_generator"]:
        shown = offset is not None and offset >= 2 * _i32(code + L["co_firsttraceable"])
    return code, offset, shown


def _py_thread_frames(L, ts, code_t, uni_t):
    frames = []
    fr = _u(ts + L["ts_cframe"])
    if fr and L["cf_current_frame"] != NONE:
        fr = _u(fr + L["cf_current_frame"])
    n = 0
    while fr and n < MAX_FRAMES:
        code, offset, shown = _py_frame(L, fr, code_t)
        if code is not None and shown:
            frames.append((None, _py_str(L, _u(code + L["co_qualname"]), uni_t),
                           _py_str(L, _u(code + L["co_filename"]), uni_t),
                           _py_line(L, code, offset)))
        fr, n = _u(fr + L["fr_previous"]), n + 1
    return frames


def _lwp_of_pthread(pthread_id):
    """before 3.11 a thread state has only the pthread_t: its fs_base on
    glibc x86-64 names the thread"""
    for t in gdb.selected_inferior().threads():
        t.switch()
        try:
            if int(gdb.parse_and_eval("$fs_base")) & (2**64 - 1) == pthread_id:
                return t.ptid[1]
        except gdb.error:
            pass
    return pthread_id


def py_threads():
    rt = _addr("_PyRuntime")
    if rt is None:
        raise gdb.GdbError("no _PyRuntime symbol: not a CPython process")
    key, L = _py_layout(rt)
    code_t, uni_t = _addr("PyCode_Type"), _addr("PyUnicode_Type")
    out = []
    interp, ni = _u(rt + L["rt_interp_head"]), 0
    while interp and ni < 64:
        ts, nt = _u(interp + L["is_threads_head"]), 0
        while ts and nt < 4096:
            if _u(ts + L["ts_interp"]) != interp:
                break
            frames, err = [], None
            try:
                frames = _py_thread_frames(L, ts, code_t, uni_t)
            except gdb.MemoryError as e:
                err = str(e)
            tid = _u(ts + L["ts_native_thread_id"]) if L["ts_native_thread_id"] != NONE \
                else _lwp_of_pthread(_u(ts + L["ts_thread_id"]))
            out.append((tid, frames, err))
            ts, nt = _u(ts + L["ts_next"]), nt + 1
        interp, ni = _u(interp + L["is_next"]), ni + 1
    return "CPython " + key, out


# ---------------------------------------------------------------- PHP

def _zstr(L, s):
    if not s or (_u(s + L["str_type_info"], 4) & L["gc_type_mask"]) != L["is_string"]:
        return None
    n = min(_u(s + L["str_len"]), 4096)
    return _mem(s + L["str_val"], n).decode("utf-8", "replace")


def _php_thread(ex):
    """the only thread, or the one stopped in execute_ex with r14 = ex"""
    threads = gdb.selected_inferior().threads()
    if len(threads) == 1:
        return threads[0]
    for t in threads:
        t.switch()
        f = gdb.newest_frame()
        if f.name() == "execute_ex" and int(f.read_register("r14")) & (2**64 - 1) == ex:
            return t
    return None


def _php_build_id(eg):
    """the module build id ("API20220829,NTS") in the file of the object that
    defines executor_globals, as the helper reads it (helper/phpstack.c)"""
    where = gdb.execute("info symbol 0x%x" % eg, to_string=True)
    m = re.search(r" of (/.*)$", where.strip())
    path = m.group(1) if m else gdb.current_progspace().filename
    try:
        with open(path, "rb") as f:
            m = re.search(rb"API20\d{6},[^\x00]{1,52}", f.read())
    except (OSError, TypeError):
        return None
    return m.group(0).decode() if m else None


def _php_layout(eg):
    api = _php_build_id(eg)
    if api is None and len(PHP_LAYOUTS) == 1:
        return next(iter(PHP_LAYOUTS.values()))
    L = PHP_LAYOUTS.get(api)
    if L is None:
        raise gdb.GdbError("PHP with module API %s has no layout table entry (known: %s)"
                           % (api or "(not found)", ", ".join(PHP_LAYOUTS) or "none"))
    return L


def php_threads():
    eg = _addr("executor_globals")
    if eg is None:
        raise gdb.GdbError("no executor_globals symbol: not a PHP process, or a ZTS build")
    L = _php_layout(eg)
    ex = _u(eg + L["eg_current_execute_data"])
    th = _php_thread(ex) if ex else None
    if th is None:
        return "PHP " + L["version"], []
    th.switch()
    top = gdb.newest_frame()
    in_vm = top.name() == "execute_ex" and int(top.read_register("r14")) & (2**64 - 1) == ex
    frames, err, first, n = [], None, True, 0
    try:
        while ex and n < MAX_FRAMES:
            func = _u(ex + L["ex_func"])
            if func:
                name = _u(func + L["fn_name"])
                scope = _u(func + L["fn_scope"])
                fn = _zstr(L, name) if name else "{main}"
                cls = _zstr(L, _u(scope + L["ce_name"])) if scope else None
                path = line = None
                if _u(func + L["fn_type"], 1) == L["user_function"]:
                    path = _zstr(L, _u(func + L["op_filename"]))
                    ops = _u(func + L["op_opcodes"])
                    end = ops + _u(func + L["op_last"], 4) * L["opline_size"]
                    op = _u(ex + L["ex_opline"])
                    r15 = int(top.read_register("r15")) & (2**64 - 1)
                    if first and in_vm and ops <= r15 < end:
                        op = r15
                    if ops <= op < end:
                        line = _u(op + L["opline_lineno"], 4)
                    first = False
                frames.append((cls, fn, path, line))
            ex, n = _u(ex + L["ex_prev"]), n + 1
    except gdb.MemoryError as e:
        err = str(e)
    return "PHP " + L["version"], [(th.ptid[1], frames, err)]


# ---------------------------------------------------------------- commands

def _print(what):
    runtime, threads = what
    gdb.write("%s\n" % runtime)
    for tid, frames, err in threads:
        gdb.write("Thread LWP %d:\n" % tid)
        for i, (cls, fn, path, line) in enumerate(frames):
            gdb.write("#%-2d %s%s at %s:%s\n" % (i, cls + "::" if cls else "", fn or "??",
                                                path or "??", line if line else "?"))
        if err:
            gdb.write("    (stopped: %s)\n" % err)


class _Bt(gdb.Command):
    def __init__(self, name, walk, doc):
        self.__doc__ = doc
        super().__init__(name, gdb.COMMAND_STACK)
        self.walk = walk

    def invoke(self, arg, from_tty):
        selected = gdb.selected_thread()
        try:
            _print(self.walk())
        finally:
            if selected is not None:
                selected.switch()


_Bt("php-bt", php_threads, "The PHP frames of every PHP thread (diagproc's layout table).")
_Bt("dp-py-bt", py_threads, "The CPython frames of every thread (diagproc's layout table).")
try:
    gdb.execute("help py-bt", to_string=True)
except gdb.error:
    _Bt("py-bt", py_threads, "The CPython frames of every thread (diagproc's layout table; "
                             "Debian's python3.11-gdb.py replaces it where installed).")
