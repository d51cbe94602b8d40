#!/usr/bin/python3
"""Structure checks of the tree and the built module, run by `make check` (TAP).

- the privilege line in the folders: httpd/ and worker/ include nothing of
  helper/ or dump/ (the helper's launcher aside), helper/ and dump/ nothing of
  worker/ or httpd/, proc/ and common/ nothing outside themselves (proc/ may
  use common/);
- no include circle anywhere, and no circle of calls between files (from the
  objects' symbols: a file that calls into another is never called back by
  it, directly or through others);
- no glue file calls a function defined in mod_diagproc.c (it is the top of
  the graph: module record, hooks, dispatch table);
- the module exports diagproc_module and nothing else;
- every log call site of the glue carries its own tag (DPnnnnn), none of
  httpd's AH numbers;
- no source file over 600 lines (generated files, whose first line says
  "Generated", excepted);
- no function body over 100 lines (a brace-depth scan of the C sources:
  comments, strings and character literals blanked first).

`--sources-only --root DIR` runs the checks that need no build (the include
rules and circles, the caps) on another tree: t/check-structure-selftest.py
plants faults in a copy and expects them to be found.
"""
import argparse
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 600
MAX_FUNCTION_LINES = 100
FOLDERS = ("common", "proc", "dump", "helper", "worker", "httpd")
# what each folder may include besides itself (the module file, at the top,
# may include anything of the worker side and common/)
MAY_INCLUDE = {
    "common": set(),
    "proc": {"common"},
    "dump": {"common", "proc"},
    "helper": {"common", "proc", "dump"},
    "worker": {"common", "proc"},
    "httpd": {"common", "proc", "worker"},
    ".": {"common", "proc", "worker", "httpd"},
}
# the parent's launcher of the helper forks it and calls its entry point
LAUNCHER = {"httpd/mod_diagproc_helperd.c": {"helper/daemon.h", "helper/watch.h"}}

n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {name}", flush=True)
    if not cond:
        failed += 1
    return cond


def functions(text):
    """(name, first line, lines from its { to its }) of each function defined
    at file scope; initialisers (`= {`) and struct bodies are not functions."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    text = re.sub(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'",
                  blank, text, flags=re.S)
    out, depth, name, start = [], 0, None, 0
    for m in re.finditer(r"[{}]", text):
        if m.group(0) == "{":
            if depth == 0:
                head = text[:m.start()].rstrip()
                sig = re.search(r"(\w+)\s*\([^;{}#]*\)\s*$", head)
                name = sig.group(1) if sig else None
                start = text.count("\n", 0, m.start()) + 1
            depth += 1
        else:
            depth -= 1
            if depth == 0 and name:
                out.append((name, start, text.count("\n", 0, m.start()) + 2 - start))
                name = None
    return out


def circles(edges):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def sources():
    out = sorted(glob.glob("*.[ch]"))
    for d in FOLDERS:
        out += sorted(glob.glob(f"{d}/*.[ch]") + glob.glob(f"{d}/**/*.[ch]", recursive=True))
    return sorted(set(out))


def folder(path):
    return path.split("/")[0] if "/" in path else "."


def check_includes(srcs):
    """The privilege line, then include circles among the tree's own headers."""
    edges, crossing = {}, []
    for src in srcs:
        text = open(src, errors="replace").read()
        for m in re.finditer(r'^\s*#\s*include\s+"([^"]+)"', text, flags=re.M):
            inc = m.group(1)
            if not os.path.exists(inc):
                continue            # httpd's, APR's, or a build/ file
            edges.setdefault(src, set()).add(inc)
            mine, theirs = folder(src), folder(inc)
            if theirs == mine or theirs in MAY_INCLUDE.get(mine, set()):
                continue
            if inc in LAUNCHER.get(src, set()):
                continue
            line = text.count("\n", 0, m.start()) + 1
            crossing.append(f"{src}:{line} includes {inc}")
    ok(not crossing, "no include across the privilege line"
       + (f": {crossing}" if crossing else ""))
    found = circles(edges)
    ok(not found, "no include circle" + (f": {found}" if found else ""))


def check_lengths(srcs):
    for src in srcs:
        with open(src, errors="replace") as f:
            first = f.readline()
            lines = 1 + sum(1 for _ in f)
        if "Generated" in first:
            continue
        ok(lines <= MAX_LINES, f"{src}: {lines} lines (limit {MAX_LINES})")
    counted, long_ones = 0, []
    for src in (s for s in srcs if s.endswith(".c")):
        for name, line, length in functions(open(src, errors="replace").read()):
            counted += 1
            if length > MAX_FUNCTION_LINES:
                long_ones.append(f"{src}:{line} {name} ({length} lines)")
    ok(counted > 0 and not long_ones,
       f"{counted} functions, none over {MAX_FUNCTION_LINES} lines"
       + (f": {long_ones}" if long_ones else ""))


def nm(path, *flags):
    out = subprocess.run(["nm", *flags, path], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return [(r[-2] if len(r) >= 2 else "U", r[-1]) for r in rows]


def check_calls(build, least=10):
    """No circle of calls between files: the module's and the cores' objects.
    The module record (diagproc_module, data every glue file reads its
    configuration through) is not a call."""
    objs = sorted(glob.glob(f"{build}/glue/**/*.o", recursive=True)
                  + [o for d in FOLDERS if d != "httpd" for o in glob.glob(f"{build}/{d}/*.o")])
    defined, used = {}, {}
    for o in objs:
        for kind, name in nm(o, "--defined-only"):
            if kind in "TtDdBbRr":
                defined.setdefault(name, o)
        used[o] = {name for _, name in nm(o, "--undefined-only")} - {"diagproc_module"}
    edges = {o: {defined[s] for s in u if s in defined and defined[s] != o} for o, u in used.items()}
    found = [[os.path.relpath(o, build) for o in c] for c in circles(edges)]
    ok(len(objs) >= least and not found, f"no circle of calls among {len(objs)} objects"
       + (f": {found}" if found else ""))
    return objs


def check_module(build):
    glue = ["mod_diagproc.c"] + sorted(glob.glob("httpd/*.c"))
    top = os.path.join(build, "glue", "mod_diagproc.o")
    defined_top = {name for kind, name in nm(top, "--defined-only") if kind in ("T", "t")}
    ok(len(defined_top) > 0, f"mod_diagproc.c defines functions ({len(defined_top)})")
    for src in glue[1:]:
        obj = os.path.join(build, "glue", src[:-2] + ".o")
        back = sorted({name for _, name in nm(obj, "--undefined-only")} & defined_top)
        ok(not back, f"{src} calls nothing defined in mod_diagproc.c" + (f": {back}" if back else ""))

    so = os.path.join(build, "mod_diagproc.so")
    exported = sorted(name for kind, name in nm(so, "-D", "--defined-only"))
    ok(exported == ["diagproc_module"], f"mod_diagproc.so exports diagproc_module alone (got {exported})")

    tags, untagged, misplaced = {}, [], []
    # the module's lines (ap_log_*error) are DP0nnnn, the helper's own
    # (helper/log.h: dp_log, dp_audit) DP1nnnn: one range each, no tag twice
    helper = sorted(glob.glob("helper/*.c") + glob.glob("dump/*.c"))
    for src, call_re, helper_side in ([(g, r"ap_log_[a-z]*error\(", False) for g in glue]
                                      + [(h, r"(?<!void )\bdp_(?:log|audit)\(", True)
                                         for h in helper]):
        text = open(src).read()
        if not helper_side:
            ok("APLOGNO(" not in text, f"{src} uses no httpd AH numbers")
        for m in re.finditer(call_re, text):
            call = text[m.end():text.find(";", m.end())]
            t = re.search(r'DPLOGNO\((\d{5})\)', call) or re.search(r'"DP(\d{5}): ', call)
            line = text.count("\n", 0, m.start()) + 1
            if not t:
                untagged.append(f"{src}:{line}")
            else:
                tags.setdefault(t.group(1), []).append(f"{src}:{line}")
                if (t.group(1)[0] == "1") != helper_side:
                    misplaced.append(f"{src}:{line} DP{t.group(1)}")
    ok(not untagged, "every log call site has a DPLOGNO(nnnnn) tag"
       + (f": missing at {untagged}" if untagged else ""))
    ok(not misplaced, "module tags are DP0nnnn, the helper's DP1nnnn"
       + (f": {misplaced}" if misplaced else ""))
    dups = {t: w for t, w in tags.items() if len(w) > 1}
    ok(len(tags) > 0 and not dups, f"{len(tags)} log tags, each used once" + (f": {dups}" if dups else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--sources-only", action="store_true")
    args = ap.parse_args()
    os.chdir(args.root)
    srcs = sources()
    check_includes(srcs)
    check_lengths(srcs)
    if not args.sources_only:
        build = os.path.join(args.root, "build")
        check_calls(build)
        check_module(build)
    print(f"1..{n}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
