# php-fpm (Debian 12's php8.2-fpm) behind an event httpd through
# mod_proxy_fcgi, with a pool of its own (pm = static, 2 children, a unix
# socket in a temporary directory): the child serving a stuck request shows
# its PHP frames (function, class, file, line) under execute_ex; the detail of
# a child names its pool and that of the master its role; a minimal bundle of
# the child gives the same frames through the bundle's php-bt in gdb.
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile

from tap import ok, is_, diag, done_testing, bail_out
from dphttpd import Httpd, worker_user
from phpfpm import PhpFpm, FPM
from langfix import line_of, place

if not os.path.exists(FPM):
    bail_out(f"{FPM} is not installed (php8.2-fpm: make test-deps)")


def lang(th):
    return [(f["class"], f["function"], os.path.basename(f["file"] or ""), f["line"])
            for f in th.get("languageFrames", [])]


def gdb_frames(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^#\d+\s+(?:(\S+)::)?(\S+) at (.*):(\d+|\?)$", line)
        if m:
            out.append((m.group(1), m.group(2), "" if m.group(3) == "??"
                        else os.path.basename(m.group(3)),
                        None if m.group(4) == "?" else int(m.group(4))))
    return out


user = worker_user()
run = tempfile.mkdtemp(prefix="dpfpm-")
os.chmod(run, 0o755)
page = place("fpm_page.php", run)
sock = os.path.join(run, "www.sock")
fpm = PhpFpm(run, [("www", sock, 2)]).start()
kids = fpm.children()
is_(len(kids), 2, "php-fpm: the master and the pool's 2 children")

# the master runs as root: the Location names root besides the workers' user
h = Httpd(locations={"/p": f"DiagProcAllow stacks dump\nDiagProcUsers {user} root"},
          modules=("proxy", "proxy_fcgi"),
          server_conf=f"DocumentRoot {run}\n"
                      "<FilesMatch \\.php$>\n"
                      f"    SetHandler \"proxy:unix:{sock}|fcgi://localhost\"\n"
                      "</FilesMatch>\n").start()


def request():
    try:
        h.get("/fpm_page.php", timeout=120)
    except OSError:
        pass        # cut when the test stops php-fpm
threading.Thread(target=request, daemon=True).start()

want = [(None, "sleep", "", None),
        ("Checkout", "charge", "fpm_page.php", line_of(page, "charge")),
        (None, "handle_order", "fpm_page.php", line_of(page, "handle_order")),
        (None, "{main}", "fpm_page.php", line_of(page, "main"))]
child, d, th = None, {}, {}
for _ in range(60):
    for k in kids:
        r = h.get(f"/p/{k}/stacks")
        dd = r.json() or {}
        for x in dd.get("threads", []):
            if lang(x) == want:
                child, d, th = k, dd, x
    if child:
        break
    time.sleep(0.25)
if not ok(child, "php-fpm: a child shows sleep, Checkout::charge, handle_order, {main} with lines"):
    diag(repr([h.get(f"/p/{k}/stacks").json() for k in kids])[:3000])
rt = d.get("runtime") or {}
is_((rt.get("name"), rt.get("version"), rt.get("supported")), ("PHP", "8.2", True),
    "…PHP 8.2, supported (php-fpm8.2 exports executor_globals)")
fr = th.get("frames", [])
ok(th and all(fr[f["nativeIndex"]]["function"] == "execute_ex" for f in th["languageFrames"]),
   "…each language frame under the execute_ex native frame")
is_(os.path.dirname((th.get("languageFrames") or [{}])[-1].get("file") or ""), run,
    "…in the script of the request it serves")

# the detail: the pool of each child, the master's role
for k in kids:
    dd = h.get(f"/p/{k}").json() or {}
    is_((dd.get("php_fpm_role"), dd.get("php_fpm_pool")), ("worker", "www"),
        f"php-fpm: the detail of child {k} names its pool")
dd = h.get(f"/p/{fpm.pid}").json() or {}
if not is_((dd.get("php_fpm_role"), dd.get("php_fpm_pool")), ("master", None),
           "php-fpm: the detail of the master says master, no pool"):
    diag(repr({k: dd.get(k) for k in ("name", "cmdline", "command_line", "file_name")}))
dd = h.get(f"/p/{h.parent_pid}").json() or {}
is_((dd.get("php_fpm_role"), dd.get("php_fpm_pool")), (None, None),
    "httpd's parent: no php-fpm part")

# a minimal bundle of the child, opened with its own gdb commands
if child:
    r = h.get(f"/p/{child}/dump?dumpType=0&format=zip")
    is_(r.status, 200, "php-fpm child: dumpType 0 as a zip")
    z = tempfile.mkdtemp(prefix="dpfpmzip-")
    zipfile.ZipFile(io.BytesIO(r.body)).extractall(z)
    os.chmod(os.path.join(z, "open-gdb.sh"), 0o755)
    out = subprocess.run([os.path.join(z, "open-gdb.sh"), "-batch", "-ex", "php-bt"],
                         capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=120)
    if not is_(gdb_frames(out.stdout), want, "…its php-bt in gdb prints the same frames"):
        diag(out.stdout[-3000:] + out.stderr[-2000:])
    shutil.rmtree(z, ignore_errors=True)

# php-fpm first: the worker thread proxying the stuck request is freed, so
# httpd's children exit at once when it stops (else the parent's SIGTERMs
# time out and it logs AH00045/AH00046); mod_proxy_fcgi says that the
# backend went away mid-request
h.expect_log("AH01067", "AH01075")
fpm.stop()
h.stop()
shutil.rmtree(run, ignore_errors=True)
done_testing()
