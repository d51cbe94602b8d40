# P/requests?stacks=1 for proxied requests: each request joined with the
# backend process at the other end of its worker's connection (found in the
# kernel's socket tables) and that process's language frames. php-fpm behind
# mod_proxy_fcgi, one pool on a unix socket and one on loopback TCP, two URLs
# stuck in two different PHP functions; gunicorn behind mod_proxy_http, a URL
# stuck in a known Python function; AJP and uwsgi backends (processes that
# accept and never answer: the join does not depend on the protocol); as root, a backend in another network
# namespace (another host, as far as the worker's network stack can tell:
# remote, never a wrong pid) and a backend owned by a user outside the
# Location's DiagProcUsers (named, not read).
import os
import shutil
import subprocess
import tempfile
import threading
import time

from tap import ok, is_, like, diag, done_testing, bail_out
from dphttpd import Httpd, spawn, worker_user, free_port, kill_quietly, IS_ROOT
from phpfpm import PhpFpm, FPM
from backends import OtherHost, hole
import procstate
from langfix import line_of, place

if not os.path.exists(FPM):
    bail_out(f"{FPM} is not installed (php8.2-fpm: make test-deps)")


user = worker_user()
run = tempfile.mkdtemp(prefix="dpback-")
os.chmod(run, 0o755)
for name in ("fpm_page.php", "fpm_other.php", "gunicorn_app.py"):
    place(name, run)
sock = os.path.join(run, "unix.sock")
fport, gport = free_port(), free_port()
fpm = PhpFpm(run, [("unixpool", sock, 2), ("tcppool", f"127.0.0.1:{fport}", 2)]).start()
gun = spawn(["/usr/bin/python3", "-m", "gunicorn", "--workers", "1", "--timeout", "600",
             "--bind", f"127.0.0.1:{gport}", "--chdir", run, "gunicorn_app:application"],
            user=user, stderr=subprocess.DEVNULL)


is_(len(fpm.children()), 4, "php-fpm: the master and two pools of 2 children")
ok(procstate.settle(lambda: len(procstate.children(gun.pid)) == 1
                    and gport in procstate.listen_ports(gun.pid), 20),
   "gunicorn: the arbiter and its worker")
fpm_kids, gun_worker = fpm.children(), int((procstate.children(gun.pid) or [0])[0])

# --- AJP and uwsgi: a process each that accepts and never answers -------------
aport, uport = free_port(), free_port()
ajp, uw = hole("127.0.0.1", aport, user=user), hole("127.0.0.1", uport, user=user)

# --- as root: a backend on "another host" and one of another user -----------
otherhost, far, other = None, None, None
server_conf = ""
if IS_ROOT:
    otherhost = OtherHost(f"dp{os.getpid() % 100000}", "198.18.77")
    far = hole(otherhost.addr, 8080, netns=otherhost.netns)
    oport = free_port()
    other = hole("127.0.0.1", oport)        # root's: outside the /narrow Location's scope
    server_conf = (f"ProxyPass /far/ http://{otherhost.addr}:8080/\n"
                   f"ProxyPass /other/ http://127.0.0.1:{oport}/\n")

h = Httpd(locations={"/p": f"DiagProcAllow stacks\nDiagProcUsers {user} root",
                     "/narrow": f"DiagProcAllow stacks\nDiagProcUsers {user}"},
          modules=("proxy", "proxy_fcgi", "proxy_http", "proxy_ajp", "proxy_uwsgi"),
          server_conf=f"DocumentRoot {run}\nTimeout 600\nProxyTimeout 600\n"
                      "<Files fpm_page.php>\n"
                      f"    SetHandler \"proxy:unix:{sock}|fcgi://localhost\"\n</Files>\n"
                      "<Files fpm_other.php>\n"
                      f"    SetHandler \"proxy:fcgi://127.0.0.1:{fport}\"\n</Files>\n"
                      f"ProxyPass /g/ http://127.0.0.1:{gport}/\n"
                      f"ProxyPass /ajp/ ajp://127.0.0.1:{aport}/\n"
                      f"ProxyPass /uw/ uwsgi://127.0.0.1:{uport}/\n" + server_conf).start()


def request(path):
    def go():
        try:
            h.get(path, timeout=600)
        except OSError:
            pass        # cut when the test stops the backends
    threading.Thread(target=go, daemon=True).start()


paths = ["/fpm_page.php?order=42", "/fpm_other.php", "/g/slow", "/ajp/x", "/uw/x"] + (["/far/x", "/other/x"] if IS_ROOT else [])
for p in paths:
    request(p)


def by_uri(d):
    return {x.get("uri"): x for x in (d or {}).get("requests", [])}


def lang(w):
    return [(f["class"], f["function"], os.path.basename(f["file"] or ""), f["line"])
            for f in (w or {}).get("languageFrames", [])]


want = {
    "/fpm_page.php?order=42": [(None, "sleep", "", None),
                               ("Checkout", "charge", "fpm_page.php", line_of(f"{run}/fpm_page.php", "charge"))],
    "/fpm_other.php": [(None, "usleep", "", None),
                       (None, "export_report", "fpm_other.php", line_of(f"{run}/fpm_other.php", "export_report"))],
    "/g/slow": [(None, "Inventory.reserve", "gunicorn_app.py", line_of(f"{run}/gunicorn_app.py", "reserve"))],
}
reqs = {}
for _ in range(80):
    d = h.get("/p/requests?stacks=1", timeout=60).json()
    reqs = by_uri(d)
    if all(p in reqs for p in paths) and all(lang(reqs[p].get("where"))[:len(w)] == w
                                             for p, w in want.items()):
        break
    time.sleep(0.25)
if not ok(all(p in reqs for p in paths), f"all {len(paths)} proxied requests are listed"):
    diag(repr(reqs)[:3000])

# --- php-fpm over a unix socket and over TCP --------------------------------
for path, transport, addr in (("/fpm_page.php?order=42", "unix", sock),
                              ("/fpm_other.php", "tcp", f"127.0.0.1:{fport}")):
    x = reqs.get(path, {})
    be, w = x.get("backend") or {}, x.get("where") or {}
    is_((be.get("transport"), be.get("address"), be.get("remote")), (transport, addr, False),
        f"{path}: proxied over {transport} to {addr}, a local backend")
    ok(be.get("pid") in fpm_kids, f"…served by a child of php-fpm ({be.get('pid')} of {fpm_kids})")
    is_(be.get("user"), user, "…running as the pool's user")
    is_(w.get("pid"), be.get("pid"), "…and where is that child")
    if not is_(lang(w)[:len(want[path])], want[path], "…in the function, class, file and line of its PHP code"):
        diag(repr(w)[:2000])
    is_(((w.get("runtime") or {}).get("name")), "PHP", "…PHP")
ok(reqs.get("/fpm_page.php?order=42", {}).get("backend", {}).get("pid")
   != reqs.get("/fpm_other.php", {}).get("backend", {}).get("pid"), "two requests, two children")
rq = (reqs.get("/fpm_page.php?order=42", {}).get("where") or {}).get("request") or {}
is_((rq.get("method"), rq.get("query")), ("GET", "order=42"),
    "the php-fpm child's own record of the request: method and query (SG(request_info))")
like(rq.get("script") or "", r"fpm_page\.php$", "…and the script it runs")

# --- gunicorn behind mod_proxy_http -------------------------------------------
x = reqs.get("/g/slow", {})
be, w = x.get("backend") or {}, x.get("where") or {}
is_((be.get("transport"), be.get("address"), be.get("pid")), ("tcp", f"127.0.0.1:{gport}", gun_worker),
    "/g/slow: proxied over TCP to gunicorn's worker process (not its arbiter)")
if not ok(lang(w)[:1] == want["/g/slow"] and any(f[1] == "application" for f in lang(w)),
          "…where: Inventory.reserve under the WSGI application, with file and line"):
    diag(repr(w)[:2000])
is_(((w.get("runtime") or {}).get("name")), "CPython", "…CPython")

# --- AJP, uwsgi -------------------------------------------------------------------
for path, port, proc in (("/ajp/x", aport, ajp), ("/uw/x", uport, uw)):
    be = reqs.get(path, {}).get("backend") or {}
    is_((be.get("transport"), be.get("address"), be.get("pid"), be.get("remote")),
        ("tcp", f"127.0.0.1:{port}", proc.pid, False), f"{path}: the backend process behind it")

# --- another host; another user -----------------------------------------------
if IS_ROOT:
    x = reqs.get("/far/x", {})
    be = x.get("backend") or {}
    is_((be.get("remote"), be.get("pid"), be.get("address")), (True, None, "198.18.77.2:8080"),
        "a backend in another network namespace: remote, its address, no pid")
    ok("where" not in x, "…and nothing read for it")
    d = h.get("/narrow/requests?stacks=1", timeout=60).json()
    x = by_uri(d).get("/other/x", {})
    be, w = x.get("backend") or {}, x.get("where") or {}
    is_((be.get("pid"), be.get("user")), (other.pid, "root"),
        "a backend of a user outside DiagProcUsers is named: its pid and user")
    like(w.get("error") or "", r"outside this location's scope", "…and not read")
    ok("languageFrames" not in w and "frames" not in w, "…no frames of it")

# --- one pause per process, one audit line per process read ---------------------
reads = [l for l in h.logs().splitlines() if "diagproc audit" in l and "action stacks" in l]
ok(reads, "the reads are audited")
fpm.stop()
for s in (gun, ajp, uw) + ((far, other) if IS_ROOT else ()):
    kill_quietly(s)
if otherhost:
    otherhost.delete()
# the backends went away mid-request (mod_proxy says so); the stuck ones are cut at stop
h.expect_log("AH01067", "AH01075", "AH01102", "AH00898", "AH01097", "AH00045", "AH00046",
             "AH01030", "AH00992", "AH00878")
h.stop()
shutil.rmtree(run, ignore_errors=True)
done_testing()
