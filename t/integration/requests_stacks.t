# P/requests joined with where each request's code is (stacks=1), for a
# request served in the worker itself: mod_php on a prefork httpd. The list
# keeps what the scoreboard cuts (the whole URI), UNIQUE_ID and the client's
# traceparent; stacks=1 gives the serving thread's PHP frames, as JSON and as
# text, with one audit line per process read; without DiagProcAllow stacks it
# is refused, and bad parameters are 400.
import os
import re
import shutil
import tempfile
import threading
import time

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, MODDIR
from langfix import line_of, place


docroot = tempfile.mkdtemp(prefix="dpreq-")
os.chmod(docroot, 0o755)
page = place("page.php", docroot)
h = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow stacks", "/ro": ""},
          modules=("unique_id",),
          server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\n"
                      f"DocumentRoot {docroot}\n"
                      "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n</FilesMatch>\n").start()

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
uri = "/page.php?" + "q=" + "x" * 100      # longer than the scoreboard's 63 bytes


def run():
    try:
        h.get(uri, headers={"traceparent": TRACE}, timeout=60)
    except OSError:
        pass        # cut when the test stops httpd


threading.Thread(target=run, daemon=True).start()


def mine(d):
    return next((x for x in (d or {}).get("requests", []) if x.get("uri") == uri), None)


req = None
for _ in range(60):
    req = mine(h.get("/p/requests").json())
    if req:
        break
    time.sleep(0.25)
if not ok(req, "P/requests lists the PHP request by its whole URI (110 bytes, the scoreboard keeps 63)"):
    diag(repr(h.get("/p/requests").json())[:2000])
req = req or {}
is_(req.get("traceparent"), TRACE, "…with the client's traceparent")
like(req.get("unique_id") or "", r"^[A-Za-z0-9@_-]{20,}$", "…and mod_unique_id's UNIQUE_ID")
ok("where" not in req, "…and without stacks=1, no stacks are taken")

want = [(None, "sleep", "", None),
        ("Report", "build", "page.php", line_of(page, "build")),
        (None, "render_page", "page.php", line_of(page, "render_page"))]


def lang(w):
    return [(f["class"], f["function"], os.path.basename(f["file"] or ""), f["line"])
            for f in (w or {}).get("languageFrames", [])]


before = h.logs()
w = {}
for _ in range(40):
    r = h.get("/p/requests?stacks=1")
    w = (mine(r.json()) or {}).get("where") or {}
    if lang(w)[:3] == want:
        break
    time.sleep(0.25)
is_(r.status, 200, "P/requests?stacks=1: 200")
if not is_(lang(w)[:3], want, "…the request's where: the worker thread's PHP frames"):
    diag(repr(w)[:2000])
is_((w.get("pid"), w.get("tid")), (req.get("pid"), req.get("tid")),
    "…of the worker and thread that serve it")
is_((w.get("class"), w.get("function"), w.get("line")), ("Report", "build", line_of(page, "build")),
    "…first the innermost frame of the site's code (sleep() has no file: its caller)")
is_(((w.get("runtime") or {}).get("name"), (w.get("runtime") or {}).get("version")), ("PHP", "8.2"),
    "…and the runtime")
like(w.get("stacks") or "", rf"/p/{req.get('pid')}/stacks$", "…and the link to all of its stacks")
ok(isinstance(w.get("pausedMicroseconds"), int), "…and how long the worker was paused")
audit = [l for l in h.logs()[len(before):].splitlines() if "diagproc audit" in l and "action stacks" in l]
ok(any(f"pid {req.get('pid')} " in l for l in audit), "an audit line names the process read")

text = h.get("/p/requests?stacks=1&format=text")
is_(text.headers.get("content-type"), "text/plain; charset=utf-8", "format=text: plain text")
body = text.body.decode()
ok(f"GET {uri}" in body and f"traceparent {TRACE}" in body, "…with the request line and traceparent")
like(body, rf"#1 Report::build  {re.escape(page)}:{line_of(page, 'build')}",
     "…and its PHP frames with file and line")

r = h.get("/ro/requests?stacks=1")
is_(r.status, 403, "stacks=1 where the Location does not allow stacks: 403")
like((r.json() or {}).get("Message", ""), r"DiagProcAllow stacks", "…saying what enables it")
is_(h.get("/ro/requests").status, 200, "…while the list itself is read-only: 200")
for q, what in (("stacks=2", "stacks=2"), ("format=xml", "format=xml")):
    r = h.get(f"/p/requests?{q}")
    is_(r.status, 400, f"{what}: 400")
    ok((r.json() or {}).get("Message"), "…with a message")
h.stop()
shutil.rmtree(docroot, ignore_errors=True)
done_testing()
