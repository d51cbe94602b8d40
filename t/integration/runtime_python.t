# Python as its developers debug it, from bundles this module makes: a
# python3 script with three threads asleep in nested named functions, and a
# mod_wsgi app stuck in a named function during a request inside another
# httpd's worker. Each is dumped as format=zip&dumpType=2, unpacked in one
# directory and opened from another with open-gdb.sh, whose py-bt comes from
# the gdb script the bundle carries (the system's auto-load directory is
# switched off). Every dumpType's raw core keeps read-only file mappings
# whole, first page only, or out.
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from tap import ok, is_, diag, done_testing
from dphttpd import Httpd, spawn, worker_user
from elfcore import layout_problems

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "runtimes"))
PYTHON = "/usr/bin/python3.11"
work = tempfile.mkdtemp(prefix="dp-py-")
os.chmod(work, 0o755)


def curl(url, out):
    r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", url],
                       capture_output=True, text=True, timeout=300)
    return r.stdout


def thread_blocks(text):
    """gdb's `thread apply all` output, one string per thread."""
    return re.split(r"\n(?=Thread \d+ )", text)


def bundle_py_bt(url, name):
    """The bundle at url, unpacked in one place, py-bt run from another."""
    z = os.path.join(work, name + ".zip")
    status = curl(url, z)
    dest = os.path.join(work, name, "unpacked")
    os.makedirs(dest)
    u = subprocess.run(["unzip", "-q", z, "-d", dest], capture_output=True, text=True)
    elsewhere = os.path.join(work, name, "elsewhere")
    os.makedirs(elsewhere)
    r = subprocess.run([os.path.join(dest, "open-gdb.sh"), "-batch", "-nx",
                        "-iex", "set auto-load scripts-directory /nonexistent",
                        "-ex", "thread apply all py-bt"],
                       cwd=elsewhere, capture_output=True, text=True, timeout=300)
    with open(os.path.join(dest, "manifest.json")) as f:
        manifest = json.load(f)
    return status, u.returncode, r.stdout + r.stderr, manifest, dest


def check_manifest(m, exe_or_lib, what):
    py = [x for x in m.get("runtimes", []) if x["name"] == "CPython"]
    ok(py and py[0]["version"] == "3.11", f"{what}: the manifest names CPython 3.11 ({py})")
    ok(py and py[0]["install"] == [], f"{what}: …and needs nothing installed (this server has "
       "python3.11-dbg)")
    mods = [x for x in m["modules"] if x["path"].endswith(exe_or_lib)]
    ok(mods and mods[0]["autoLoadScript"] == "sysroot" + mods[0]["path"] + "-gdb.py",
       f"{what}: {exe_or_lib}'s gdb script is bundled next to it")


h = Httpd(locations={"/p": "DiagProcAllow dump fulldump"}).start()

# ---------------------------------------------------------------- a script
script = os.path.join(work, "sleepers.py")
shutil.copy(os.path.join(FIXTURES, "sleepers.py"), script)
t = spawn([PYTHON, script], ready="ready", user=worker_user())

for dt in ("0", "1", "2", "0x200"):
    core = os.path.join(work, f"py-{dt}.core")
    is_(curl(f"{h.base}/p/{t.pid}/dump?dumpType={dt}", core), "200", f"script: dumpType={dt}")
    is_(layout_problems(core), [], f"…read-only file mappings whole, first page or absent")
    os.unlink(core)

status, unz, out, m, dest = bundle_py_bt(f"{h.base}/p/{t.pid}/dump?format=zip&dumpType=2", "script")
is_(status, "200", "script: format=zip&dumpType=2 answers")
is_(unz, 0, "…unzip extracts it")
ok(os.path.islink(os.path.join(dest, "sysroot", "lib")), "…and restores sysroot/lib as a link")
blocks = thread_blocks(out)
for chain in ("alpha", "beta", "gamma"):
    hits = [b for b in blocks if re.search(rf"in {chain}_leaf\b", b) and re.search(rf"in {chain}_mid\b", b)]
    is_(len(hits), 1, f"script: py-bt shows {chain}_leaf inside {chain}_mid, in one thread")
ok(any("in <module>" in b and "time.sleep(600)" in b for b in blocks),
   "script: …and the main thread in the module's last line")
if not all(f"in {c}_leaf" in out for c in ("alpha", "beta", "gamma")):
    diag(out[-3000:])
check_manifest(m, "/python3.11", "script")

# ------------------------------------------------------ a mod_wsgi app
app = os.path.join(work, "stuck.wsgi")
shutil.copy(os.path.join(FIXTURES, "stuck.wsgi"), app)
wsgi = Httpd(locations={}, server_conf=f"""
LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so
WSGIScriptAlias /app {app}
<Directory {work}>
    Require all granted
</Directory>
""").start()
# the request stays in the app: at the stop its worker outlives the SIGTERMs
wsgi.expect_log("AH00045", "AH00046")
marks = os.path.join(work, "marks")
os.mkdir(marks)
os.chmod(marks, 0o777)
stuck = socket.create_connection(("127.0.0.1", wsgi.port), timeout=150)
stuck.sendall(b"GET /app HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
deadline = time.time() + 60
while time.time() < deadline and not os.path.exists(os.path.join(marks, "entered")):
    time.sleep(0.1)
with open(os.path.join(marks, "entered")) as f:
    worker = int(f.read())
ok(worker in wsgi.workers(), f"mod_wsgi: the request is inside the app, in worker {worker}")
status, unz, out, m, dest = bundle_py_bt(f"{h.base}/p/{worker}/dump?format=zip&dumpType=2", "wsgi")
is_(status, "200", "mod_wsgi: format=zip&dumpType=2 of that worker answers")
hits = [b for b in thread_blocks(out) if re.search(r"in stuck_in_handler\b", b)
        and re.search(r"in application\b", b)]
is_(len(hits), 1, "mod_wsgi: py-bt (libpython's script) shows stuck_in_handler inside application")
if not hits:
    diag(out[-3000:])
check_manifest(m, "/libpython3.11.so.1.0", "mod_wsgi")
stuck.close()
wsgi.stop()
h.stop()
shutil.rmtree(work, ignore_errors=True)
done_testing()
