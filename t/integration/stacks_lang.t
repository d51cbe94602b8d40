# GET P/{id}/stacks of PHP and CPython processes (cli, mod_php, mod_wsgi):
# the language frames, in the right thread, under the native frame running
# them; an unknown interpreter version; a Java process's unnamed frames.
import os
import shutil
import subprocess
import tempfile
import threading
import time

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, BUILD, MODDIR
from langfix import LANG, line_of, place


def stacks(h, pid, tries=40, until=lambda d: True):
    """The stacks answer; asked again (bounded) while `until` is not yet true:
    a target may still be on its way into the call it will wait in."""
    d = {}
    for _ in range(tries):
        r = h.get(f"/p/{pid}/stacks")
        d = r.json() or {}
        if r.status == 200 and until(d):
            return d
        time.sleep(0.25)
    return d


def lang(th):
    return [(f["class"], f["function"], os.path.basename(f["file"] or ""), f["line"])
            for f in th.get("languageFrames", [])]


def thread(d, tid):
    return next((t for t in d.get("threads", []) if t["id"] == tid), {})


def runner_ok(th, name):
    """every language frame names a native frame that is `name`"""
    fr = th.get("frames", [])
    idx = [f["nativeIndex"] for f in th.get("languageFrames", [])]
    return bool(idx) and all(i is not None and fr[i]["function"] == name for i in idx)


h = Httpd(locations={"/p": "DiagProcAllow stacks"}).start()

# --- CPython 3.11 (Debian's), a method in a second thread
py = os.path.join(LANG, "stuck.py")
t = spawn(["/usr/bin/python3", py], ready="ready", user=worker_user())
second = int(t.ready_lines[-1].split()[1])
want = [("Worker.wait_for_lock", "stuck.py", line_of(py, "wait_for_lock")),
        ("outer_call", "stuck.py", line_of(py, "outer_call"))]
d = stacks(h, t.pid, until=lambda d: [x[1:] for x in lang(thread(d, second))][:2] == want)
rt = d.get("runtime") or {}
is_((rt.get("name"), rt.get("supported")), ("CPython", True), "python3: CPython, supported")
like(rt.get("version") or "", r"^3\.11\.\d+$", "…its version")
is_([x[1:] for x in lang(thread(d, second))][:2], want,
    "python3: the second thread shows Worker.wait_for_lock and outer_call, file and line")
if not is_([x[1] for x in lang(thread(d, second))][2:3], ["Thread.run"],
           "…then threading's Thread.run"):
    diag(repr(thread(d, second)))
main = lang(thread(d, t.pid))
is_(main[:2], [(None, "main_sleep", "stuck.py", line_of(py, "main_sleep")),
               (None, "<module>", "stuck.py", len(open(py).read().splitlines()))],
    "python3: the main thread shows main_sleep and <module>")
ok(runner_ok(thread(d, second), "_PyEval_EvalFrameDefault"),
   "…each language frame under a _PyEval_EvalFrameDefault native frame")
ok(all(not lang(x) for x in d.get("threads", []) if x["id"] not in (second, t.pid)),
   "no other thread has Python frames")
r = h.get(f"/p/{t.pid}/stacks?format=text")
is_(r.headers.get("content-type"), "text/plain; charset=utf-8", "format=text: plain text")
txt = r.body.decode()
like(txt, r"(?m)^TID %d:\n(#\d+ .*\n(    .*\n)*)*?#\d+ +0x[0-9a-f]+ _PyEval_EvalFrameDefault - .*\n"
     r"(    .*\n)*?    > Worker.wait_for_lock at .*stuck.py:%d\n" % (second, want[0][2]),
     "…Worker.wait_for_lock under the _PyEval_EvalFrameDefault frame of its thread")
is_(h.get(f"/p/{t.pid}/stacks?format=xml").status, 400, "an unknown format: 400")
t.kill()

# --- PHP 8.2 cli: a method of a class
php = os.path.join(LANG, "stuck.php")
t = spawn(["/usr/bin/php8.2", php], ready="ready", user=worker_user())
want = [(None, "sleep", "", None),
        ("Lock", "wait_for_lock", "stuck.php", line_of(php, "wait_for_lock")),
        (None, "handle", "stuck.php", line_of(php, "handle")),
        (None, "{main}", "stuck.php", line_of(php, "main"))]
d = stacks(h, t.pid, until=lambda d: lang(thread(d, t.pid)) == want)
rt = d.get("runtime") or {}
is_((rt.get("name"), rt.get("version"), rt.get("supported")), ("PHP", "8.2", True),
    "php8.2: PHP 8.2, supported")
is_(lang(thread(d, t.pid)), want, "php8.2: sleep, Lock::wait_for_lock, handle, {main} with lines")
ok(runner_ok(thread(d, t.pid), "execute_ex"), "…under the execute_ex native frame")
t.kill()

# --- a version without a layout entry
t = spawn([os.path.join(BUILD, "targets", "fake_python")], ready="ready", user=worker_user())
r = h.get(f"/p/{t.pid}/stacks")
d = r.json() or {}
is_(r.status, 200, "a fake CPython 3.8: 200")
rt = d.get("runtime") or {}
is_((rt.get("name"), rt.get("version"), rt.get("supported")), ("CPython", "3.8.0", False),
    "…named, versioned, unsupported")
like(rt.get("unsupported") or "", r"3\.8\.0 has no layout table entry", "…with the reason")
fns = [f["function"] for f in thread(d, t.pid).get("frames", [])]
ok("main" in fns and not lang(thread(d, t.pid)), "…native frames only")
t.kill()

# --- a known version whose _PyRuntime is smaller than what the walk reads:
# refused with the numbers (this reason's formatting once killed the helper's
# request child, and the route answered 503)
t = spawn([os.path.join(BUILD, "targets", "fake_python"), "3.11"], ready="ready",
          user=worker_user())
r = h.get(f"/p/{t.pid}/stacks")
d = r.json() or {}
is_(r.status, 200, "a fake CPython 3.11 with a 32-byte _PyRuntime: 200")
rt = d.get("runtime") or {}
is_((rt.get("name"), rt.get("version"), rt.get("supported")), ("CPython", "3.11.2", False),
    "…named, versioned, unsupported")
like(rt.get("unsupported") or "", r"^_PyRuntime in \S*fake_python has 32 bytes, fewer than the \d+ "
     r"that the walk reads with CPython 3\.11's layout \(\d+ in the headers it was made from\)$",
     "…with the reason, naming the numbers")
fns = [f["function"] for f in thread(d, t.pid).get("frames", [])]
ok("main" in fns and not lang(thread(d, t.pid)), "…native frames only")
t.kill()

# --- 3.13 and later read their layout from the start of _PyRuntime: one too
# small for _Py_DebugOffsets is refused with the numbers, and not read
t = spawn([os.path.join(BUILD, "targets", "fake_python"), "3.13"], ready="ready",
          user=worker_user())
r = h.get(f"/p/{t.pid}/stacks")
d = r.json() or {}
is_(r.status, 200, "a fake CPython 3.13 with a 32-byte _PyRuntime: 200")
rt = d.get("runtime") or {}
is_((rt.get("name"), rt.get("version"), rt.get("supported")), ("CPython", "3.13.5", False),
    "…named, versioned, unsupported")
like(rt.get("unsupported") or "", r"^CPython 3\.13\.5: _PyRuntime has 32 bytes, fewer than the 584 "
     r"of CPython 3\.13's _Py_DebugOffsets$", "…with the reason, naming the numbers")
fns = [f["function"] for f in thread(d, t.pid).get("frames", [])]
ok("main" in fns and not lang(thread(d, t.pid)), "…native frames only")
t.kill()

# --- Java (-Xint): interpreter frames have no name and keep their index
jdir = tempfile.mkdtemp(prefix="dpjava-")
os.chmod(jdir, 0o755)
subprocess.run(["javac", "-d", jdir, os.path.join(LANG, "Stuck.java")], check=True)
t = spawn(["java", "-Xint", "-Xss1m", "-cp", jdir, "Stuck"], ready="ready", user=worker_user(),
          env=dict(os.environ, HOME="/tmp"))


def unnamed_between(th):
    fr = th.get("frames", [])
    names = [f["function"] for f in fr]
    return any(n is None and any(names[:i]) and any(names[i + 1:]) for i, n in enumerate(names))


d = stacks(h, t.pid, until=lambda d: any(unnamed_between(x) for x in d.get("threads", [])))
threads = d.get("threads", [])
ok(all([f["index"] for f in x["frames"]] == list(range(len(x["frames"]))) for x in threads),
   "java: every thread's frames are indexed 0..n-1")
jt = next((x for x in threads if unnamed_between(x)), {})
ok(jt, "java: a thread has frames without a name between named ones (the interpreter's)")
f = next((f for f in jt.get("frames", []) if f["function"] is None), {})
like(f.get("pc") or "", r"^0x[0-9a-f]+$", "…kept, with their pc")
ok(not any((x.get("module") or "").startswith("- ") or (x.get("function") or "").startswith("- ")
           for x in jt.get("frames", [])), "…no module text taken for a function name")
t.kill()
shutil.rmtree(jdir, ignore_errors=True)
h.stop()


# --- mod_php on a prefork httpd, mod_wsgi on an event httpd
def serving(h, path):
    """A request left running in the background."""
    def run():
        try:
            h.get(path, timeout=60)
        except OSError:
            pass        # cut when the test stops httpd
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def stuck_worker(h, want, key):
    """The worker (and its answer) whose stacks show the `want` frames."""
    for _ in range(40):
        for w in h.workers():
            r = h.get(f"/p/{w}/stacks")
            d = r.json() or {}
            for x in d.get("threads", []):
                if key(x)[:len(want)] == want:
                    return w, d, x
        time.sleep(0.25)
    return None, {}, {}


docroot = tempfile.mkdtemp(prefix="dpdoc-")
os.chmod(docroot, 0o755)
page = place("page.php", docroot)
h = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow stacks"},
          server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\n"
                      f"DocumentRoot {docroot}\n"
                      "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n</FilesMatch>\n").start()
serving(h, "/page.php")
want = [("Report", "build", "page.php", line_of(page, "build")),
        (None, "render_page", "page.php", line_of(page, "render_page"))]
w, d, x = stuck_worker(h, [(None, "sleep", "", None)] + want, lang)
ok(w, "mod_php: a prefork worker shows sleep, Report::build, render_page")
is_(lang(x)[1:3], want, "…with file and line")
is_(os.path.dirname((x.get("languageFrames") or [{}])[-1].get("file") or ""), docroot,
    "…in the script of the request it is stuck in")
is_(((d.get("runtime") or {}).get("name"), (d.get("runtime") or {}).get("supported")),
    ("PHP", True), "…PHP, supported (libphp8.2.so)")
h.stop()

wsgi = place("app.wsgi", docroot)
h = Httpd(locations={"/p": "DiagProcAllow stacks"},
          server_conf=f"LoadModule wsgi_module {MODDIR}/mod_wsgi.so\n"
                      f"WSGIScriptAlias /app {wsgi}\n"
                      f"<Directory {docroot}>\n    Require all granted\n</Directory>\n").start()
# the request stays in the app: at the stop its worker outlives the SIGTERMs
h.expect_log("AH00045", "AH00046")
serving(h, "/app")
want = [("Report.build", "app.wsgi", line_of(wsgi, "build")),
        ("render_page", "app.wsgi", line_of(wsgi, "render_page")),
        ("application", "app.wsgi", None)]
w, d, x = stuck_worker(h, want[:2], lambda x: [y[1:] for y in lang(x)])
ok(w, "mod_wsgi: a worker thread shows Report.build and render_page")
is_([y[1] for y in lang(x)][:3], [y[0] for y in want], "…called from the application")
is_(os.path.dirname((x.get("languageFrames") or [{}])[0].get("file") or ""), docroot,
    "…in the script of the request it is stuck in")
others = [y for y in d.get("threads", []) if y is not x and lang(y)]
ok(not others, "…and no other thread of that worker shows Python frames")
is_(((d.get("runtime") or {}).get("name"), (d.get("runtime") or {}).get("supported")),
    ("CPython", True), "…CPython, supported (libpython3.11)")
h.stop()
shutil.rmtree(docroot, ignore_errors=True)
done_testing()
