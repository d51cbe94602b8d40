# dumpType 0 of a CPython and a PHP process: the zip bundle, unzipped in
# another directory, gives the same language frames as the live stacks
# through its own gdb commands (py-bt, php-bt); the pages added for that walk
# stay under the documented bound, and without them the walk fails.
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile

from tap import ok, is_, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, TOOLS
from langfix import LANG, line_of

BOUND = 512 * 1024      # README: at most 128 pages are added
h = Httpd(locations={"/p": "DiagProcAllow stacks dump"}).start()


def live(pid, tid_of):
    """[(tid, [(class, function, file, line)])] of the threads with language frames"""
    for _ in range(40):
        d = h.get(f"/p/{pid}/stacks").json() or {}
        out = [(x["id"], [(f["class"], f["function"], f["file"], f["line"])
                          for f in x["languageFrames"]])
               for x in d.get("threads", []) if x["languageFrames"]]
        if tid_of(out):
            return out
        time.sleep(0.25)
    return out


def gdb_frames(text):
    """the same shape from php-bt / py-bt output"""
    out, cur = [], None
    for line in text.splitlines():
        m = re.match(r"^Thread LWP (\d+):$", line)
        if m:
            cur = (int(m.group(1)), [])
            out.append(cur)
            continue
        m = re.match(r"^#\d+\s+(?:(\S+)::)?(\S+) at (.*):(\d+|\?)$", line)
        if m and cur:
            cur[1].append((m.group(1), m.group(2), None if m.group(3) == "??" else m.group(3),
                           None if m.group(4) == "?" else int(m.group(4))))
    return [x for x in out if x[1]]


for argv, cmd, exe, ready in (
        (["/usr/bin/python3", os.path.join(LANG, "stuck.py")], "dp-py-bt", "/usr/bin/python3.11",
         # settled: blocked on the lock, not still on its way there
         lambda o: any(f and f[0][1] == "Worker.wait_for_lock"
                       and f[0][3] == line_of(os.path.join(LANG, "stuck.py"), "wait_for_lock")
                       for _, f in o)),
        (["/usr/bin/php8.2", os.path.join(LANG, "stuck.php")], "php-bt", "/usr/bin/php8.2",
         lambda o: any(f and f[0][1] == "sleep" for _, f in o))):
    name = os.path.basename(argv[1])
    t = spawn(argv, ready="ready", user=worker_user())
    want = sorted(live(t.pid, ready))
    ok(want, f"{name}: the live stacks have language frames")
    r = h.get(f"/p/{t.pid}/dump?dumpType=0&format=zip")
    is_(r.status, 200, f"{name}: dumpType 0 as a zip")
    d = tempfile.mkdtemp(prefix="dplang-")
    zipfile.ZipFile(io.BytesIO(r.body)).extractall(d)
    os.chmod(os.path.join(d, "open-gdb.sh"), 0o755)
    ok(os.path.exists(os.path.join(d, "diagproc-lang.py")), f"{name}: the bundle ships its gdb commands")
    out = subprocess.run([os.path.join(d, "open-gdb.sh"), "-batch", "-ex", cmd],
                         capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=120)
    got = sorted(gdb_frames(out.stdout))
    if not is_(got, want, f"{name}: {cmd} from the unzipped bundle prints the live language frames"):
        diag(out.stdout[-3000:] + out.stderr[-2000:])

    # the same target dumped without the walk's pages (the core writer alone)
    plain = os.path.join(d, "plain.core")
    with open(plain, "wb") as f:
        subprocess.run([os.path.join(TOOLS, "dpcore"), str(t.pid), "0"], stdout=f,
                       stderr=subprocess.DEVNULL, check=True)
    added = os.path.getsize(os.path.join(d, "core")) - os.path.getsize(plain)
    ok(0 < added <= BOUND, f"{name}: the walk's pages add {added} bytes (0 < added <= {BOUND})")
    out = subprocess.run(["gdb", "-batch", "-nx", "-x", os.path.join(d, "diagproc-lang.py"),
                          "-ex", cmd, exe, plain], capture_output=True, text=True, timeout=120)
    ok(sorted(gdb_frames(out.stdout)) != want,
       f"{name}: without them {cmd} cannot give those frames")
    t.kill()
    shutil.rmtree(d, ignore_errors=True)
h.stop()
done_testing()
