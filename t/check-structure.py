#!/usr/bin/python3
"""Structure checks of the tree and the built module, run by `make test` (TAP).

- no glue file calls a function defined in mod_diagproc.c (it is the top of
  the graph: module record, hooks, dispatch table);
- the module exports diagproc_module and nothing else;
- every log call site of the glue carries its own tag (DPnnnnn), none of
  httpd's AH numbers;
- no source file over 600 lines;
- no function body over 100 lines (a brace-depth scan of the C sources:
  comments, strings and character literals blanked first).
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
MAX_LINES = 600
MAX_FUNCTION_LINES = 100

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


def nm(path, *flags):
    out = subprocess.run(["nm", *flags, path], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return [(r[-2], r[-1]) for r in rows if len(r) >= 2]


os.chdir(ROOT)
glue = sorted(glob.glob("httpd/mod_diagproc_*.c"))

# 1. nothing calls back into mod_diagproc.c
top = os.path.join(BUILD, "glue", "mod_diagproc.o")
defined_top = {name for kind, name in nm(top, "--defined-only") if kind in ("T", "t")}
ok(len(defined_top) > 0, f"mod_diagproc.c defines functions ({len(defined_top)})")
for src in glue:
    obj = os.path.join(BUILD, "glue", src[:-2] + ".o")
    used = {name for kind, name in nm(obj, "--undefined-only")}
    back = sorted(used & defined_top)
    ok(not back, f"{src} calls nothing defined in mod_diagproc.c" + (f": {back}" if back else ""))

# 2. one exported symbol
so = os.path.join(BUILD, "mod_diagproc.so")
exported = sorted(name for kind, name in nm(so, "-D", "--defined-only"))
ok(exported == ["diagproc_module"], f"mod_diagproc.so exports diagproc_module alone (got {exported})")

# 3. log tags
tags = {}
untagged = []
for src in ["mod_diagproc.c"] + glue:
    text = open(src).read()
    ok("APLOGNO(" not in text, f"{src} uses no httpd AH numbers")
    for m in re.finditer(r"ap_log_[a-z]*error\(", text):
        call = text[m.end():text.find(";", m.end())]
        t = re.search(r'DPLOGNO\((\d{5})\)', call) or re.search(r'"DP(\d{5}): ', call)
        line = text.count("\n", 0, m.start()) + 1
        if not t:
            untagged.append(f"{src}:{line}")
        else:
            tags.setdefault(t.group(1), []).append(f"{src}:{line}")
ok(not untagged, "every log call site has a DPLOGNO(nnnnn) tag" + (f": missing at {untagged}" if untagged else ""))
dups = {t: w for t, w in tags.items() if len(w) > 1}
ok(len(tags) > 0 and not dups, f"{len(tags)} log tags, each used once" + (f": {dups}" if dups else ""))

# 4. file length
sources = sorted(glob.glob("*.[ch]") + glob.glob("httpd/*.[ch]") + glob.glob("common/*.[ch]")
                 + glob.glob("proc/*.[ch]") + glob.glob("dump/*.[ch]")
                 + glob.glob("helper/*.[ch]") + glob.glob("worker/*.[ch]"))
for src in sources:
    lines = sum(1 for _ in open(src))
    ok(lines <= MAX_LINES, f"{src}: {lines} lines (limit {MAX_LINES})")

# 5. function length
c_sources = [src for src in sources if src.endswith(".c")]
counted = 0
long_ones = []
for src in c_sources:
    for name, line, length in functions(open(src).read()):
        counted += 1
        if length > MAX_FUNCTION_LINES:
            long_ones.append(f"{src}:{line} {name} ({length} lines)")
ok(counted > 100 and not long_ones,
   f"{counted} functions, none over {MAX_FUNCTION_LINES} lines"
   + (f": {long_ones}" if long_ones else ""))

print(f"1..{n}")
sys.exit(1 if failed else 0)
