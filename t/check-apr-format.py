#!/usr/bin/python3
"""Format strings given to APR's formatter use only what it implements (TAP).

apr_psprintf, apr_snprintf, ap_log_*error, ap_rprintf... format with
apr_vformatter (apr/strings/apr_snprintf.c), which is not printf: it knows
the flags - + # space 0, a width and a precision (digits or *), one size
modifier (APR_INT64_T_FMT's, "l" on LP64 where it means 64 bits; q; l; h)
and the conversions d i u o x X c s f e E g G %, and its own %pA %pI %pT %pt
%pm %pp %pB %pF %pS. Anything else it prints as text and takes no argument
for it, so every later argument shifts: with "%llu" it prints "%l", "u", and
hands the number to the next %s (the helper's request child died that way
in strlen(0x708)). gcc's -Wformat checks these calls as printf's, so a
cast to unsigned long long satisfies it. %n is refused too: APR implements
it, and a format never needs to write through a pointer. So are libc's
64-bit macros (PRIu64...): right on amd64 by chance, "llu" where long has
32 bits.

The calls checked: APR's and httpd's formatting functions, and the tree's
own wrappers of them, found by reading it: a variadic function that hands
its format parameter to apr_pvsprintf, apr_vsnprintf, apr_vformatter,
apr_brigade_vprintf or ap_vrprintf, and a macro that hands its arguments to
any formatter (worker/stacks.c's LINE). A call may span lines; its format is
the string literals at the format argument's position, with the macros
between them expanded (APR_*_FMT, PRI*, the tree's own string macros);
each arm of a ?: is a format of its own. Formats held in variables are not
seen.

    t/check-apr-format.py [FILE|DIR]...   (default: mod_diagproc.c and httpd/,
                                           helper/, dump/, proc/, common/, worker/)
    t/check-apr-format.py --self-test     shows that the checker finds what it must
Exit 1 when a conversion is refused.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = ["mod_diagproc.c", "httpd", "helper", "dump", "proc", "common", "worker"]

# variadic formatters: name -> index of the format argument (APLOG_MARK is one)
FORMATTERS = {
    "apr_psprintf": 1, "apr_snprintf": 2, "apr_brigade_printf": 3, "apr_file_printf": 1,
    "ap_rprintf": 1, "ap_log_error": 4, "ap_log_rerror": 4, "ap_log_cerror": 4,
    "ap_log_perror": 4, "ap_log_cserror": 5, "ap_log_error_": 6, "ap_log_rerror_": 6,
    "ap_log_cerror_": 6, "ap_log_perror_": 6, "ap_log_cserror_": 7,
}
# the va_list forms, through which a wrapper hands its format on
V_FORMATTERS = {
    "apr_pvsprintf": 1, "apr_vsnprintf": 2, "apr_vformatter": 2, "apr_brigade_vprintf": 3,
    "ap_vrprintf": 1,
}
FMT_MACROS = ["APR_INT64_T_FMT", "APR_UINT64_T_FMT", "APR_UINT64_T_HEX_FMT", "APR_SIZE_T_FMT",
              "APR_SSIZE_T_FMT", "APR_OFF_T_FMT", "APR_PID_T_FMT", "APR_TIME_T_FMT"] + \
             [f"PRI{c}{n}" for c in "diouxX" for n in (8, 16, 32, 64)] + ["PRIdMAX", "PRIuMAX"]
# what Debian's amd64 headers give, when they cannot be asked
LP64 = {"APR_INT64_T_FMT": "ld", "APR_UINT64_T_FMT": "lu", "APR_UINT64_T_HEX_FMT": "lx",
        "APR_SIZE_T_FMT": "lu", "APR_SSIZE_T_FMT": "ld", "APR_OFF_T_FMT": "ld",
        "APR_PID_T_FMT": "d", "APR_TIME_T_FMT": "ld"}


def header_macros():
    """the format macros as this machine's APR and libc headers define them"""
    src = "#include <apr.h>\n#include <apr_time.h>\n#include <inttypes.h>\n" + \
        "".join(f"@{i}@ {m}\n" for i, m in enumerate(FMT_MACROS))
    try:
        flags = subprocess.run(["apr-1-config", "--includes", "--cppflags"], capture_output=True,
                               text=True, check=True).stdout.split()
        out = subprocess.run(["cpp", "-P", *flags, "-"], input=src, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return dict(LP64), False
    found = dict(LP64)
    for m in re.finditer(r"@(\d+)@ ((?:\s*\"[^\"]*\")+)", out):
        found[FMT_MACROS[int(m.group(1))]] = "".join(re.findall(r"\"([^\"]*)\"", m.group(2)))
    return found, True


MACROS, ASKED = header_macros()
# APR's size check: APR_INT64_T_FMT without its last letter marks a 64-bit value
QUAD = MACROS["APR_INT64_T_FMT"][:-1]


# ---------------------------------------------------------------- the formats

SHOWN = re.compile(r"%[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+)?)?[hlLqjzt]*(?:p[A-Za-z]|[A-Za-z%$'])?")


def bad_conversions(fmt):
    """(offset, conversion, why) for each conversion of fmt that
    apr_vformatter does not implement, read as apr_snprintf.c reads it"""
    out, i = [], 0
    while True:
        i = fmt.find("%", i)
        if i < 0:
            return out
        start, i = i, i + 1
        while i < len(fmt) and fmt[i] in "-+ #0":
            i += 1
        if fmt[i:i + 1] == "*":
            i += 1
        while i < len(fmt) and fmt[i].isdigit():
            i += 1
        if fmt[i:i + 1] == ".":
            i += 1
            if fmt[i:i + 1] == "*":
                i += 1
            while i < len(fmt) and fmt[i].isdigit():
                i += 1
        if QUAD and fmt.startswith(QUAD, i):
            i += len(QUAD)
        elif fmt[i:i + 1] in ("q", "l", "h"):
            i += 1
        c = fmt[i:i + 1]
        shown = SHOWN.match(fmt, start).group(0)
        if c == "":
            out.append((start, shown, "a % at the end: APR drops it"))
        elif c == "n":
            out.append((start, shown, "%n writes through a pointer: never in a format"))
        elif c == "p":
            if fmt[i + 1:i + 2] not in list("AITtmpBFS"):
                out.append((start, shown, "APR knows %pA %pI %pT %pt %pm %pp %pB %pF %pS only: "
                                          "it prints 'bogus %p' and skips an argument"))
            i += 1
        elif c not in "diuoxXcsfeEgG%":
            out.append((start, shown, f"APR has no '{c}' there: it prints it as text and takes "
                                      "no argument for it, so the later arguments shift; use "
                                      "the APR_*_T_FMT macros or a cast to long"))
        i += 1


# ---------------------------------------------------------------- reading C

TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+|\\\n)
  | (?P<nl>\n)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<str>(?:u8|[uUL])?"(?:\\.|[^"\\\n])*")
  | (?P<chr>(?:[uUL])?'(?:\\.|[^'\\\n])*')
  | (?P<pp>\#[ \t]*define\b)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\.?\d(?:[\w.]|[eEpP][+-])*)
  | (?P<op>\.\.\.|->|[^\s])
""", re.S | re.X)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
           "b": "\b", "f": "\f", "v": "\v", "?": "?"}


def tokens(text):
    """(kind, text, line) of each token; a #define's tokens carry kind 'pp'
    at its start and an 'end' token after its last continued line"""
    out, line, in_define = [], 1, False
    for m in TOKEN.finditer(text):
        kind, value = m.lastgroup, m.group(0)
        if kind == "nl" and in_define:
            out.append(("end", "", line))
            in_define = False
        if kind == "pp":
            in_define = True
        if kind not in ("ws", "nl", "comment"):
            out.append((kind, value, line))
        line += value.count("\n")
    return out


def c_string(lit):
    """the characters of a string literal"""
    def one(m):
        e = m.group(1)
        if e[0] == "x":
            return chr(int(e[1:], 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        return ESCAPES.get(e, e)
    return re.sub(r"\\(x[0-9a-fA-F]+|[0-7]{1,3}|.)", one, lit[lit.index('"') + 1:-1])


def arguments(toks, i):
    """the arguments (token lists) of the call whose '(' is toks[i], and the
    index after its ')'"""
    args, cur, depth = [], [], 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t[1] in "([{" and t[0] == "op":
            depth += 1
            if depth == 1:
                continue
        elif t[1] in ")]}" and t[0] == "op":
            depth -= 1
            if depth == 0:
                args.append(cur)
                return ([] if args == [[]] else args), j + 1
        elif t[1] == "," and t[0] == "op" and depth == 1:
            args.append(cur)
            cur = []
            continue
        if t[0] == "end":
            break
        cur.append(t)
    return None, len(toks)


def formats(arg, macros):
    """the formats an argument can be, with the (offset, line) of their
    pieces: runs of string literals and string macros (the arms of ?: are
    runs of their own); and the complaints about the macros in them (libc's
    64-bit ones, unknown ones, which count as empty)"""
    out, cur, lines, unknown, has_str = [], "", [], [], False
    for kind, value, line in arg + [("op", ";", 0)]:
        if kind == "str":
            lines.append((len(cur), line))
            cur += c_string(value)
            has_str = True
        elif kind == "id" and value in macros:
            lines.append((len(cur), line))
            cur += macros[value]
            if re.fullmatch(r"PRI\w+(64|MAX|PTR)", value):
                unknown.append((value, line, f"{value} is libc's (\"ll\" where long has 32 bits, "
                                             "which APR does not read): use APR_*_T_FMT"))
        elif kind == "id" and re.fullmatch(r"(APR_\w+_FMT|PRI\w+|[A-Z][A-Z0-9_]*_(FMT|FORMAT))",
                                           value):
            unknown.append((value, line, f"{value} is not known here: the format cannot be read"))
        else:
            if has_str:
                out.append((cur, lines))
            cur, lines, has_str = "", [], False
    return out, unknown


def line_at(lines, offset):
    """the source line of a format's offset, from (offset, line) of its pieces"""
    return [line for at, line in lines if at <= offset][-1]


def read_tree(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in os.walk(p):
                files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]
        else:
            files.append(p)
    return {f: tokens(open(f, encoding="utf-8", errors="replace").read()) for f in sorted(files)}


def string_macros(tree):
    """#define NAME "..." (a format piece) anywhere in the tree"""
    found = {}
    for toks in tree.values():
        for i, t in enumerate(toks):
            if t[0] == "pp" and i + 2 < len(toks) and toks[i + 1][0] == "id" \
                    and toks[i + 2][0] == "str" and (i + 3 >= len(toks) or toks[i + 3][0] == "end"):
                found[toks[i + 1][1]] = c_string(toks[i + 2][1])
    return found


def wrappers(tree, known):
    """the tree's own formatters: name -> format argument index"""
    found = {}
    while True:
        before = len(found)
        for toks in tree.values():
            found.update(macro_wrappers(toks, {**known, **found}))
            found.update(function_wrappers(toks))
        if len(found) == before:
            return found


def macro_wrappers(toks, known):
    found = {}
    for i, t in enumerate(toks):
        if t[0] != "pp" or i + 2 >= len(toks) or toks[i + 2][1] != "(" or toks[i + 1][0] != "id":
            continue
        params, j = arguments(toks, i + 2)
        if params is None:
            continue
        names = [p[0][1] for p in params]
        while j < len(toks) and toks[j][0] != "end":
            if toks[j][0] == "id" and toks[j][1] in known and toks[j + 1][1] == "(":
                args, _ = arguments(toks, j + 1)
                at = known[toks[j][1]]
                for k, a in enumerate(args or []):
                    if [x[1] for x in a] == ["__VA_ARGS__"] and k <= at:
                        found[toks[i + 1][1]] = len(names) - 1 + at - k
                    elif k == at and len(a) == 1 and a[0][1] in names:
                        found[toks[i + 1][1]] = names.index(a[0][1])
            j += 1
    return found


def function_wrappers(toks):
    found = {}
    for i in range(len(toks) - 1):
        if toks[i][0] != "id" or toks[i + 1][1] != "(":
            continue
        params, j = arguments(toks, i + 1)
        if not params or [x[1] for x in params[-1]] != ["..."] or j >= len(toks) \
                or toks[j][1] != "{":
            continue
        names = [next((x[1] for x in reversed(p) if x[0] == "id"), None) for p in params]
        depth, k = 0, j
        while k < len(toks):
            depth += {"{": 1, "}": -1}.get(toks[k][1], 0) if toks[k][0] == "op" else 0
            if depth == 0:
                break
            if toks[k][0] == "id" and toks[k][1] in V_FORMATTERS and toks[k + 1][1] == "(":
                args, _ = arguments(toks, k + 1)
                at = V_FORMATTERS[toks[k][1]]
                if args and len(args) > at and len(args[at]) == 1 and args[at][0][1] in names:
                    found[toks[i][1]] = names.index(args[at][0][1])
            k += 1
    return found


def declared(before):
    """a name after a type or a '*' is declared or defined there, not called"""
    return before[1] == "*" or (before[0] == "id" and before[1] not in
                                ("return", "else", "do", "case", "sizeof"))


def check(paths, emit):
    """emit(ok, text) per file and per refused conversion; returns the number refused"""
    tree = read_tree(paths)
    macros = {**MACROS, **string_macros(tree)}
    own = wrappers(tree, FORMATTERS)
    known = {**FORMATTERS, **own}
    emit(None, "formatters of the tree: " + (", ".join(f"{n} (format argument {i + 1})"
                                                      for n, i in sorted(own.items())) or "none"))
    if not ASKED:
        emit(None, "the headers could not be asked: the format macros are taken as amd64's")
    refused = 0
    for path, toks in tree.items():
        calls = checked = 0
        bad = []
        for i in range(len(toks) - 1):
            name = toks[i][1]
            if toks[i][0] != "id" or name not in known or toks[i + 1][1] != "(" \
                    or (i and toks[i - 1][0] == "pp") or (i and declared(toks[i - 1])):
                continue
            args, _ = arguments(toks, i + 1)
            at = known[name]
            if args and name.startswith("ap_log_") and not name.endswith("_") \
                    and [x[1] for x in args[0]] != ["APLOG_MARK"]:
                at += 2         # file, line and module index written out
            if not args or len(args) <= at:
                continue
            calls += 1
            fmts, unknown = formats(args[at], macros)
            checked += len(fmts)
            for fmt, lines in fmts:
                for at, conv, why in bad_conversions(fmt):
                    bad.append(f"{path}:{line_at(lines, at)}: {name}: \"{conv}\": {why}")
            for _, line, why in unknown:
                bad.append(f"{path}:{line}: {name}: {why}")
        for b in bad:
            emit(False, b)
        refused += len(bad)
        if not bad:
            emit(True, f"{os.path.relpath(path, ROOT) if os.path.isabs(path) else path}: "
                       f"{calls} formatting calls, {checked} formats, all APR's")
    return refused


# ---------------------------------------------------------------- TAP

class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def emit(self, good, text):
        if good is None:
            print(f"# {text}", flush=True)
            return
        self.n += 1
        self.failed += not good
        print(f"{'ok' if good else 'not ok'} {self.n} - {text}", flush=True)

    def done(self):
        print(f"1..{self.n}")
        return 1 if self.failed else 0


SAMPLES_GOOD = ["%d", "%5.2f", "%-*s", "%.*s", "%ld", "%lu", "%lx", "%qd", "%hd", "%+05i",
                "%%", "%c", "%pm", "%pI", "%pp", "%pT", "%" + MACROS["APR_UINT64_T_FMT"],
                "%" + MACROS["APR_SIZE_T_FMT"], "%#o", "%G", "no conversion"]
SAMPLES_BAD = ["%llu", "%lld", "%llx", "%zu", "%zd", "%jd", "%hhu", "%Lf", "%a", "%n", "%pZ",
               "%'d", "%1$s", "%tu", "%m", "100%"]

PLANT = """#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>
#define PIECE "%" APR_UINT64_T_FMT
#define SAY(...) ((void)apr_psprintf(pool, __VA_ARGS__))
static const char *say(apr_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    const char *s;
    va_start(ap, fmt);
    s = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    return s;
}
static void calls(apr_pool_t *pool, server_rec *srv, apr_uint64_t n, int c)
{
    /* "%llu" in a comment is no call */
    (void)apr_psprintf(pool, "fine: %" APR_UINT64_T_FMT " and " PIECE, n, n);
    (void)apr_psprintf(pool,
                       "multi-line, %s and "
                       "%BAD1",
                       "x", n);
    (void)say(pool, "through a wrapper: %BAD2", n);
    SAY("through a macro: %BAD3", n);
    (void)apr_psprintf(pool, c ? "one arm fine: %d" : "the other %BAD4", c);
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, srv, "DP00001: %BAD5", n);
}
"""


def self_test():
    tap = Tap()
    for fmt in SAMPLES_GOOD:
        tap.emit(not bad_conversions(fmt), f"{fmt!r} is APR's")
    for fmt in SAMPLES_BAD:
        tap.emit(bool(bad_conversions(fmt)), f"{fmt!r} is refused")
    tmp = tempfile.mkdtemp(prefix="dp-apr-format-")
    try:
        # a planted file: each kind of call site, one %llu each
        planted = os.path.join(tmp, "planted.c")
        with open(planted, "w") as f:
            f.write(PLANT.replace("%BAD", "%llu "))
        found = []
        check([planted], lambda good, text: found.append(text) if good is False else None)
        lines = sorted(int(re.match(r".*?:(\d+):", t).group(1)) for t in found)
        want = [i + 1 for i, line in enumerate(PLANT.splitlines()) if "%BAD" in line]
        tap.emit(lines == want, f"a planted %llu is found at each kind of call site "
                               f"(lines {want}; found {lines})")
        # a real file of the tree, with %llu planted in its first APR format
        src = os.path.join(ROOT, "helper", "lang_layouts.c")
        text = open(src).read()
        copy = os.path.join(tmp, os.path.basename(src))
        shutil.copy(src, copy)
        rc = subprocess.run([sys.executable, __file__, copy], capture_output=True).returncode
        tap.emit(rc == 0, f"a copy of {os.path.relpath(src, ROOT)} passes (exit {rc})")
        planted_text = text.replace('%" APR_UINT64_T_FMT "', "%llu", 1)
        with open(copy, "w") as f:
            f.write(planted_text)
        r = subprocess.run([sys.executable, __file__, copy], capture_output=True, text=True)
        tap.emit(planted_text != text and r.returncode == 1 and '"%llu"' in r.stdout,
                 f"with %llu planted it fails (exit {r.returncode}) naming the conversion")
        # another library's format macro (jansson's "lld") in an APR format
        planted_text = text.replace('%" APR_UINT64_T_FMT "', '%" JSON_INTEGER_FORMAT "', 1)
        with open(copy, "w") as f:
            f.write(planted_text)
        r = subprocess.run([sys.executable, __file__, copy], capture_output=True, text=True)
        tap.emit(planted_text != text and r.returncode == 1 and "JSON_INTEGER_FORMAT" in r.stdout,
                 f"with JSON_INTEGER_FORMAT planted it fails (exit {r.returncode}) naming it")
    finally:
        shutil.rmtree(tmp)
    return tap.done()


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    if not argv:
        os.chdir(ROOT)
    tap = Tap()
    check(argv or DEFAULT, tap.emit)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
