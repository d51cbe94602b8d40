#!/usr/bin/python3
"""The structure checker's own test (TAP): it passes on a copy of the tree,
and fails on each fault planted in a copy: an include across the privilege
line, an include circle, a circle of calls between two objects, a file over
the cap. Run by `make check`."""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHECKER = os.path.join(HERE, "check-structure.py")
n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {name}", flush=True)
    failed += 0 if cond else 1


def tree_copy():
    d = tempfile.mkdtemp(prefix="dp-structure-")
    files = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if f.startswith(("t/", "bench/", "ui/")):
            continue
        os.makedirs(os.path.join(d, os.path.dirname(f)), exist_ok=True)
        shutil.copy(os.path.join(ROOT, f), os.path.join(d, f))
    return d


def run(root):
    r = subprocess.run([sys.executable, CHECKER, "--sources-only", "--root", root],
                       capture_output=True, text=True)
    return r.returncode, [l for l in r.stdout.splitlines() if l.startswith("not ok")]


def planted(name, edit, expect):
    d = tree_copy()
    try:
        edit(d)
        rc, bad = run(d)
        ok(rc != 0 and any(expect in l for l in bad),
           f"{name}: found ({bad[0] if bad else 'nothing reported'})")
    finally:
        shutil.rmtree(d)


def append(d, path, text):
    with open(os.path.join(d, path), "a") as f:
        f.write(text)


d = tree_copy()
rc, bad = run(d)
shutil.rmtree(d)
ok(rc == 0 and not bad, f"the tree as it is passes ({bad})")

planted("worker/ includes helper/",
        lambda d: append(d, "worker/route.c", '\n#include "helper/daemon.h"\n'),
        "worker/route.c:")
planted("dump/ includes httpd/",
        lambda d: append(d, "dump/scrub.c", '\n#include "httpd/mod_diagproc_config.h"\n'),
        "includes httpd/mod_diagproc_config.h")
planted("common/ includes proc/",
        lambda d: append(d, "common/format.c", '\n#include "proc/procfs.h"\n'),
        "common/format.c:")
planted("an include circle in common/",
        lambda d: (append(d, "common/sink.h", '\n#include "common/entries.h"\n')),
        "no include circle")
planted("a file over the cap",
        lambda d: append(d, "proc/parse.c", "\n" * 700),
        "proc/parse.c:")

# a circle of calls: two objects that call each other
d = tempfile.mkdtemp(prefix="dp-calls-")
try:
    os.makedirs(os.path.join(d, "build", "proc"))
    for a, b in (("a", "b"), ("b", "a")):
        src = os.path.join(d, f"{a}.c")
        with open(src, "w") as f:
            f.write(f"void {b}_fn(void);\nvoid {a}_fn(void) {{ {b}_fn(); }}\n")
        subprocess.run(["cc", "-c", src, "-o", os.path.join(d, "build", "proc", f"{a}.o")], check=True)
    spec = importlib.util.spec_from_file_location("checker", CHECKER)
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        checker.check_calls(os.path.join(d, "build"), least=2)
    ok(out.getvalue().startswith("not ok") and "proc/a.o" in out.getvalue(),
       f"a circle of calls between two objects: found ({out.getvalue().strip()})")
finally:
    shutil.rmtree(d)

print(f"1..{n}")
sys.exit(1 if failed else 0)
