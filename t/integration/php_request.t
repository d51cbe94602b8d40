# The request a PHP process is serving, read by the helper from PHP's own
# memory (SG(request_info)) without stopping it: the detail's php_request
# of a php-fpm child behind mod_proxy_fcgi (php-fpm's children are not
# httpd's: the scoreboard knows nothing of them) and of a mod_php worker of a
# prefork httpd; null for the idle ones, also after they served a request,
# for httpd's parent and for a process that runs no PHP. The helper's reader
# alone (build/tools/dpphpreq): 404 for no PHP, 501 naming an unknown module
# API, four empty fields for the CLI (no request).
import os
import shutil
import subprocess
import tempfile
import threading
import time

from tap import ok, is_, like, diag, done_testing, bail_out
from dphttpd import Httpd, spawn, worker_user, MODDIR, BUILD
from phpfpm import PhpFpm, FPM
from langfix import place

if not os.path.exists(FPM):
    bail_out(f"{FPM} is not installed (php8.2-fpm: make test-deps)")


def in_background(h, method, path):
    """A request left running (cut when the test stops its server)."""
    def run():
        try:
            h.request(method, path, body=b"a=1" if method == "POST" else None,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}
                      if method == "POST" else None, timeout=120)
        except OSError:
            pass
    threading.Thread(target=run, daemon=True).start()


def serving(h, pids, tries=60):
    """The pid among pids() whose detail shows a php_request, and every
    detail (pids asked again each time: prefork starts its workers as it
    goes)."""
    details = {}
    for _ in range(tries):
        details = {p: h.get(f"/p/{p}").json() or {} for p in pids()}
        busy = [p for p, d in details.items() if d.get("php_request")]
        if busy:
            return busy[0], details
        time.sleep(0.25)
    return None, details


user = worker_user()

# --- php-fpm: a pool of 2 children on a unix socket
run = tempfile.mkdtemp(prefix="dpphpreq-")
os.chmod(run, 0o755)
for name in ("fpm_page.php", "fpm_quick.php"):
    place(name, run)
page = os.path.join(run, "fpm_page.php")
sock = os.path.join(run, "www.sock")
fpm = PhpFpm(run, [("www", sock, 2)]).start()
kids = fpm.children()
is_(len(kids), 2, "php-fpm: the master and the pool's 2 children")

h = Httpd(locations={"/p": f"DiagProcUsers {user} root"},
          modules=("proxy", "proxy_fcgi"),
          server_conf=f"DocumentRoot {run}\n"
                      "<FilesMatch \\.php$>\n"
                      f"    SetHandler \"proxy:unix:{sock}|fcgi://localhost\"\n"
                      "</FilesMatch>\n").start()

for k in kids:
    d = h.get(f"/p/{k}").json() or {}
    ok("php_request" in d and d["php_request"] is None,
       f"php-fpm: child {k}, not yet asked anything, has php_request null")
# each child serves a request that ends at once (php-fpm hands them out in
# turn, so a few reach both): idle again, they have no request
for _ in range(4):
    r = h.get("/fpm_quick.php?x=1")
is_((r.status, r.body), (200, b"quick\n"), "php-fpm: quick requests served")
for k in kids:
    d = h.get(f"/p/{k}").json() or {}
    if not ok("php_request" in d and d["php_request"] is None,
              f"php-fpm: child {k}, idle after its requests, has php_request null"):
        diag(repr(d.get("php_request")))

in_background(h, "GET", "/fpm_page.php?order=42")
child, details = serving(h, lambda: kids)
ok(child, "php-fpm: a child's detail shows the request it serves")
q = (details.get(child) or {}).get("php_request") or {}
is_((q.get("method"), q.get("uri"), q.get("query"), q.get("script")),
    ("GET", "/fpm_page.php", "order=42", page),
    "…method, uri, query and the script's file")
other = [k for k in kids if k != child]
if child and other:
    d = details[other[0]]
    ok("php_request" in d and d["php_request"] is None, "php-fpm: the idle child: php_request null")
d = h.get(f"/p/{fpm.pid}").json() or {}
ok("php_request" in d and d["php_request"] is None,
   "php-fpm's master (PHP, serving nothing): php_request null")
for w in h.workers():
    d = h.get(f"/p/{w}").json() or {}
    ok("php_request" in d and d["php_request"] is None,
       f"httpd worker {w} (no PHP in it): php_request null")
    break

# php-fpm first: the worker thread proxying the stuck request is freed (see
# runtime_php_fpm.t); mod_proxy_fcgi says the backend went away mid-request
h.expect_log("AH01067", "AH01075")
fpm.stop()
h.stop()
shutil.rmtree(run, ignore_errors=True)

# --- mod_php in a prefork httpd: the worker serving a POST
docroot = tempfile.mkdtemp(prefix="dpphpreqdoc-")
os.chmod(docroot, 0o755)
page = place("page.php", docroot)
h = Httpd(mpm="prefork", locations={"/p": f"DiagProcUsers {user} root"},
          server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\n"
                      f"DocumentRoot {docroot}\n"
                      "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n"
                      "</FilesMatch>\n").start()
in_background(h, "POST", "/page.php?order=7&item=x")
w, details = serving(h, h.workers)
if not ok(w, "mod_php: a prefork worker's detail shows the request it serves"):
    diag(repr({p: (d.get("php_request", "absent"), d.get("state")) for p, d in details.items()}))
    for p in details:
        diag(repr(subprocess.run([os.path.join(BUILD, "tools", "dpphpreq"), str(p)],
                                 capture_output=True, text=True).stdout))
q = (details.get(w) or {}).get("php_request") or {}
is_((q.get("method"), q.get("uri"), q.get("query"), q.get("script")),
    ("POST", "/page.php", "order=7&item=x", page),
    "…method, uri, query and the script's file")
# the workers prefork started since (one of them serves these details)
others = {p: (h.get(f"/p/{p}").json() or {}) for p in h.workers() if p != w}
if not ok(others and all("php_request" in d and d["php_request"] is None for d in others.values()),
          "mod_php: the other workers (idle, or serving this route) have php_request null"):
    diag(repr({p: d.get("php_request", "absent") for p, d in others.items()}))
r = h.get(f"/p/{h.parent_pid}")
d = r.json() or {}
if not ok("php_request" in d and d["php_request"] is None,
          "httpd's parent (mod_php loaded, no request): php_request null"):
    diag(repr(r))
h.stop()
shutil.rmtree(docroot, ignore_errors=True)

# --- the helper's reader alone, on targets that serve no request
DPPHPREQ = os.path.join(BUILD, "tools", "dpphpreq")


def phpreq(pid):
    out = subprocess.run([DPPHPREQ, str(pid)], capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout.rstrip("\n")


t = spawn(["sleep", "60"])
is_(phpreq(t.pid), (1, f"error 404 Process {t.pid} runs no PHP."), "reader: no PHP: 404")
t.kill()
t = spawn(["/usr/bin/php8.2", "-n", "-r", 'echo "ready\n"; sleep(60);'], ready="ready")
is_(phpreq(t.pid), (0, "\t\t\t"), "reader: the CLI (PHP, no request): four empty fields")
t.kill()
# a copy of php8.2 whose module build id names an API without an entry (-n:
# no extension is loaded, whose build id would then differ)
tmp = tempfile.mkdtemp(prefix="dpphpreqfake-")
fake = os.path.join(tmp, "php-fake")
with open("/usr/bin/php8.2", "rb") as f:
    blob = f.read()
is_(blob.count(b"API20220829,NTS"), 1, "php8.2 holds its module build id once")
with open(fake, "wb") as f:
    f.write(blob.replace(b"API20220829,NTS", b"API20990101,NTS"))
os.chmod(fake, 0o755)
t = spawn([fake, "-n", "-r", 'echo "ready\n"; sleep(60);'], ready="ready")
rc, out = phpreq(t.pid)
is_(rc, 1, "reader: a PHP whose module API has no layout entry fails")
like(out, r"^error 501 Process \d+ runs PHP with module API API20990101,NTS, which has no "
     r"layout table entry \(known: .*API20220829,NTS \(PHP 8\.2\).*\)\.$",
     "…501, naming the API and the known ones")
t.kill()
shutil.rmtree(tmp, ignore_errors=True)
done_testing()
