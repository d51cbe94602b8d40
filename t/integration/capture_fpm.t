# Capture rules on proxied requests: a PHP request stuck in php-fpm (behind
# mod_proxy_fcgi on the event MPM) is captured in the php-fpm child serving
# it (the backend, found as the request attribution finds it) within the
# threshold + 2 s, with the URI and the PHP frames; 20 stuck requests
# against limit=3 give 3 captures, one target at a time.
import io
import os
import zipfile
import shutil
import tempfile
import threading
import time

import procstate
from tap import ok, is_, diag, done_testing, bail_out
from dphttpd import Httpd, free_port
from langfix import line_of, place
from phpfpm import PhpFpm, FPM
from backends import hole
from dphttpd import worker_user, kill_quietly

if not os.path.exists(FPM):
    bail_out(f"{FPM} is not installed (php8.2-fpm: make test-deps)")


run = tempfile.mkdtemp(prefix="dpcapfpm-")
os.chmod(run, 0o755)
place("fpm_page.php", run)
sock = os.path.join(run, "unix.sock")
fpm = PhpFpm(run, [("unixpool", sock, 2)]).start()
hport = free_port()
hl = hole("127.0.0.1", hport, user=worker_user())
hport3 = free_port()
hl3 = hole("127.0.0.1", hport3, user=worker_user())
spool = os.path.join(run, "spool")
h = Httpd(locations={"/p": "DiagProcAllow captures"},
          modules=("proxy", "proxy_fcgi", "proxy_http"),
          server_conf=f"DocumentRoot {run}\nTimeout 600\nProxyTimeout 600\n"
                      "<Files fpm_page.php>\n"
                      f"    SetHandler \"proxy:unix:{sock}|fcgi://localhost\"\n</Files>\n"
                      f"ProxyPass /hole/ http://127.0.0.1:{hport}/\n"
                      f"ProxyPass /hole2/ http://localhost:{hport}/\n"
                      f"ProxyPass /hole3/ http://127.0.0.1:{hport3}/\n"
                      f"DiagProcSpool {spool} 64M 100\n"
                      "DiagProcCapture fpm when=request-age>2s path=/fpm_page.php\n"
                      "DiagProcCapture many when=request-age>1s path=/hole/* limit=3/10m\n"
                      "DiagProcCapture core when=request-age>1s path=/hole2/* do=dump:0\n"
                      "DiagProcCapture bundle when=request-age>1s path=/hole3/* do=dump:0,zip\n").start()


def request(path):
    def go():
        try:
            h.get(path, timeout=600)
        except OSError:
            pass
    threading.Thread(target=go, daemon=True).start()


def of(rule):
    return [c for c in (h.get("/p/captures").json() or []) if c.get("rule") == rule]


uri = "/fpm_page.php?order=42"
t0 = time.time()
request(uri)
caps, took = procstate.first_capture(lambda: of("fpm"),
                                     lambda c: os.path.exists(os.path.join(spool, c["id"])), t0)
ok(caps, "a request stuck in php-fpm past request-age>2s is captured")
ok(took <= 2 + 2, f"…taken within the threshold + 2 s ({took:.1f} s)")
c = caps[0] if caps else {}
is_((c.get("request") or {}).get("uri"), uri, "…with the request's URI")
if not ok(c.get("pid") in fpm.children("unixpool"), "…and the php-fpm child serving it as the process"):
    diag(f"{c} {fpm.children()} {fpm.pid}")
ok(c.get("pid") != (c.get("request") or {}).get("pid"), "…not the httpd worker that waits on it")
is_(((c.get("request") or {}).get("backend") or {}).get("pid"), c.get("pid"),
    "…which the request's metadata names as its backend")
hrefs = {a["name"]: a["href"] for a in c.get("artifacts", [])}
stacks = h.get(hrefs.get("stacks.json", h.base + "/x")[len(h.base):]).json() or {}
frames = [(f["class"], f["function"], os.path.basename(f["file"] or ""), f["line"])
          for t in stacks.get("threads", []) for f in t.get("lang", [])]
ok(("Checkout", "charge", "fpm_page.php", line_of(os.path.join(run, "fpm_page.php"), "charge"))
   in frames, "…its stacks hold the PHP frames (Checkout::charge)")
if not frames:
    diag(str(stacks)[:1500])
is_((stacks.get("php_request") or {}).get("uri"), "/fpm_page.php", "…and php-fpm's record of the request")
reqs = h.get(hrefs.get("requests.json", h.base + "/x")[len(h.base):]).json() or []
mine = next((q for q in reqs if q.get("uri") == uri), {})
is_((mine.get("backend") or {}).get("pid"), c.get("pid"), "requests.json names the backend of each request")

# --- 20 triggers against limit=3 ------------------------------------------------
for i in range(20):
    request(f"/hole/{i}")
deadline = time.time() + 30      # captures run at nice 19: a busy machine slows them
while time.time() < deadline and len(of("many")) < 3:
    time.sleep(0.3)
time.sleep(3)       # every one of the 20 is older than 1 s by now, several times over
many = of("many")
is_(len(many), 3, "20 stuck requests against limit=3/10m: 3 captures")
is_(len({(c.get("request") or {}).get("uri") for c in many}), 3, "…of 3 different requests")
ids = [c["id"] for c in (h.get("/p/captures").json() or [])]
is_(ids, sorted(ids, reverse=True), "P/captures lists newest first")

# --- do=dump: a core of the backend -------------------------------------------
request("/hole2/x")
ok(procstate.settle(lambda: of("core"), 15), "do=dump:0: a capture of the stuck request's backend")
d = (of("core") or [{}])[0]
is_(d.get("pid"), hl.pid, "…the backend process (the one that never answers)")
arts = {a["name"]: a for a in d.get("artifacts", [])}
ok("core" in arts and arts["core"]["size"] > 4096, "…whose artifact is its core")
r = h.get(arts.get("core", {}).get("href", h.base + "/x")[len(h.base):])
ok(r.status == 200 and r.body[:4] == b"\x7fELF" and len(r.body) == arts.get("core", {}).get("size"),
   "…downloaded whole, an ELF core")
is_(r.headers.get("content-type"), "application/octet-stream", "…as an attachment")

# --- do=dump:…,zip: the bundle ------------------------------------------------
request("/hole3/x")
ok(procstate.settle(lambda: of("bundle"), 20), "do=dump:0,zip: a capture of the backend's bundle")
b = (of("bundle") or [{}])[0]
arts = {a["name"]: a for a in b.get("artifacts", [])}
r = h.get(arts.get("bundle.zip", {}).get("href", h.base + "/x")[len(h.base):])
names = []
try:
    with zipfile.ZipFile(io.BytesIO(r.body)) as z:
        bad = z.testzip()
        names = z.namelist()
        core = z.read("core") if "core" in names else b""
    ok(bad is None, "…bundle.zip: a zip whose every entry checks out (CRC)")
except (zipfile.BadZipFile, KeyError) as e:
    ok(False, f"…bundle.zip: a zip whose every entry checks out ({e})")
    core = b""
ok("core" in names and "manifest.json" in names, f"…with the core and the manifest ({len(names)} entries)")
ok(core[:4] == b"\x7fELF", "…the core an ELF file")
is_(b.get("pid"), hl3.pid, "…of the backend")

fpm.stop()
kill_quietly(hl)
kill_quietly(hl3)
h.expect_log("AH01067", "AH01075", "AH01102", "AH00898", "AH01097", "AH00045", "AH00046",
             "AH01030", "AH00992", "AH00878")
h.stop()
shutil.rmtree(run, ignore_errors=True)
done_testing()
