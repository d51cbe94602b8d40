# gdb commands for a diagproc bundle: php-bt and dp-py-bt (also py-bt, unless
# Debian's python3.11-gdb.py defines it) print the PHP / CPython frames of
# the core by walking the interpreter's own structures with the layout table
# of the server that made the dump, as its live stacks route does.
import re

import gdb

PY_LAYOUTS = {}
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
    return _mem(obj + L["compact_size"], n * kind).decode(codec, "replace") if codec else None


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


def _py_line(L, code, prev_instr):
    """the 3.11 location table at prev_instr (see helper/pystack.c)"""
    line = _i32(code + L["co_firstlineno"])
    table = _u(code + L["co_linetable"])
    size = _u(table + L["var_size"])
    base = code + L["co_code_adaptive"]
    if size > 65536 or prev_instr < base:
        return None
    p = _mem(table + L["bytes_sval"], size)
    unit, at, i = (prev_instr - base) // 2, 0, 0
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


def py_threads():
    rt, ver = _addr("_PyRuntime"), _addr("Py_Version")
    if rt is None:
        raise gdb.GdbError("no _PyRuntime symbol: not a CPython process")
    v = _u(ver, 4) if ver else 0
    key = "%d.%d" % (v >> 24, (v >> 16) & 255)
    L = PY_LAYOUTS.get(key)
    if L is None:
        raise gdb.GdbError("CPython %s has no layout table entry (known: %s)"
                           % (key, ", ".join(PY_LAYOUTS) or "none"))
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
                cf = _u(ts + L["ts_cframe"])
                fr, n = (_u(cf + L["cf_current_frame"]) if cf else 0), 0
                while fr and n < MAX_FRAMES:
                    code = _u(fr + L["fr_code"])
                    prev = _u(fr + L["fr_prev_instr"])
                    owner = _u(fr + L["fr_owner"], 1)
                    if _u(code + L["ob_type"]) != code_t:
                        err = "not a code object at 0x%x" % code
                        break
                    ft = _i32(code + L["co_firsttraceable"])
                    if owner == L["owner_generator"] or prev >= code + L["co_code_adaptive"] + 2 * ft:
                        frames.append((None, _py_str(L, _u(code + L["co_qualname"]), uni_t),
                                       _py_str(L, _u(code + L["co_filename"]), uni_t),
                                       _py_line(L, code, prev)))
                    fr, n = _u(fr + L["fr_previous"]), n + 1
            except gdb.MemoryError as e:
                err = str(e)
            out.append((_u(ts + L["ts_native_thread_id"]), frames, err))
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
