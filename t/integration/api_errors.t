# Every error the contract names, each a JSON {"Message"} with the right
# status; hostile process names and arguments come back intact and valid;
# processes vanishing mid-list never cause a 500.
import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tap import ok, is_, like, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, HELPER_ROOT_READS

TARGET = os.path.join(BUILD, "targets", "proc_target")
h = Httpd().start()
P = "/diagnostics/processes"


def error(method, path, status, pattern, name, **kw):
    r = h.request(method, path, **kw)
    is_(r.status, status, f"{name}: {status}")
    is_(r.headers.get("content-type"), "application/json; charset=utf-8", f"{name}: JSON")
    msg = (r.json() or {}).get("Message")
    like(msg, pattern, f"{name}: Message says why")
    return r


t = spawn([TARGET], ready="ready", user=worker_user())
dead = subprocess.Popen(["true"])
dead.wait()

# 400: malformed parameters, naming which
for bad in ("abc", "1.5", "0x10", "+5", "-", "1-"):
    error("GET", f"{P}/{bad}", 400, "not a valid process id", f"id '{bad}'")
# numbers no process can have are Kudu's 404
for none in ("-1", "-42", "99999999999"):
    error("GET", f"{P}/{none}", 404, f"^Process with an Id of {none} is not running\\.$", f"id '{none}'")
error("GET", f"{P}/{t.pid}/threads/abc", 400, "thread id", "bad tid")
error("GET", f"{P}/{t.pid}/modules/0xzz", 400, "base address", "bad base address")
error("GET", f"{P}/{t.pid}?sample_ms=0", 400, "sample_ms", "sample_ms 0")
error("GET", f"{P}?allUsers=maybe", 400, "allUsers", "allUsers not a boolean")

# 404: Kudu's exact text for a pid that is not running
r = error("GET", f"{P}/{dead.pid}", 404, "", "pid not running")
is_((r.json() or {}).get("Message"), f"Process with an Id of {dead.pid} is not running.",
    "Kudu's exact text")
for sub in ("threads", "modules", "dump", "stacks"):
    r = h.get(f"{P}/{dead.pid}/{sub}")
    ok(r.status in (403, 404), f"{sub} of a dead pid: {r.status} (404, or 403 before the lookup)")
error("GET", f"{P}/{t.pid}/nothing", 404, "No such route", "unknown route")
# httpd refuses an encoded '/' or NUL before its Location walk: still the
# instance header and a JSON body in our URL space, and only there
for enc, why in (("%2F", "encoded '/'"), ("%2f", "encoded '/'"), ("%00", "encoded NUL")):
    r = error("GET", f"{P}/{t.pid}{enc}x", 404, why, f"{enc} in the path")
    ok(r.headers.get("x-diagproc-instance"), f"{enc} in the path: X-Diagproc-Instance")
r = h.get(f"/elsewhere/a%2Fb")
is_((r.status, r.headers.get("x-diagproc-instance"), "html" in r.headers.get("content-type", "")),
    (404, None, True), "outside our Locations httpd's own page stays as it is")
error("GET", f"{P}/{t.pid}/threads/1/2", 404, "No such route", "too deep a route")

# 405 + Allow
r = error("PUT", f"{P}/{t.pid}", 405, "PUT", "PUT on detail")
is_(r.headers.get("allow"), "GET, HEAD, DELETE", "Allow on detail")
r = error("DELETE", P, 405, "DELETE", "DELETE on the list")
is_(r.headers.get("allow"), "GET, HEAD", "Allow on the list")
r = error("GET", f"{P}/{t.pid}/stop", 405, "GET", "GET on stop")
is_(r.headers.get("allow"), "POST", "Allow on stop")
r = error("POST", f"{P}/{t.pid}/threads", 405, "POST", "POST on threads")

# 403: actions off until DiagProcAllow names them
error("DELETE", f"{P}/{t.pid}", 403, "DiagProcAllow kill", "kill not enabled")
error("POST", f"{P}/{t.pid}/stop", 403, "DiagProcAllow kill", "stop not enabled")
error("GET", f"{P}/{t.pid}/dump", 403, "DiagProcAllow dump", "dump not enabled")
error("GET", f"{P}/{t.pid}/environments/all", 403, "DiagProcAllow environment",
      "environment not enabled")
error("GET", f"{P}/{t.pid}/stacks", 403, "DiagProcAllow stacks", "stacks not enabled")
error("GET", f"{P}/1", 403, "DiagProcUsers", "pid 1 is outside the default scope")

# HEAD works like GET, without a body
r = h.request("HEAD", f"{P}/{t.pid}")
is_((r.status, r.body), (200, b""), "HEAD on detail")

# The worker is still alive and well after all that
is_(h.get(P).status, 200, "still serving")
h.stop()

# ---- hostile names and arguments, and the environment route
h = Httpd(allow="environment").start()
hostile_comm = b"<script>)(\xff\xfe x"          # 14 bytes, invalid UTF-8, parens
hostile_arg = b"<b>\"quoted\" \n\xc3\x28 ok"   # quote, newline, invalid 2-byte seq
env = {"DP_TEST_VAR": "value with \xe9", "PATH": "/usr/bin"}
t2 = spawn([TARGET.encode(), b"--comm", hostile_comm.hex().encode(), hostile_arg],
           ready="ready", user=worker_user(), env=env)
r = h.get(P)
try:
    lst = json.loads(r.body.decode("utf-8", errors="strict"))
    ok(True, "list with a hostile name is valid UTF-8 JSON")
except Exception as e:
    lst = []
    ok(False, f"list with a hostile name is valid UTF-8 JSON: {e}")
e2 = [x for x in lst if x["id"] == t2.pid]
is_(e2[0]["name"] if e2 else None, "<script>)(\ufffd\ufffd x",
    "name kept whole: invalid bytes become U+FFFD, nothing dropped")
d = h.get(f"{P}/{t2.pid}").json() or {}
is_(d.get("cmdline", [None, None])[-1], "<b>\"quoted\" \n\ufffd( ok", "argv with invalid UTF-8 intact")
like(d.get("command_line", ""), r'"<b>\\"quoted\\" \n\ufffd\( ok"$', "command_line quotes it")
ok("environment_variables" in d, "environment in the detail once allowed")
is_((d.get("environment_variables") or {}).get("DP_TEST_VAR"), "value with \xe9",
    "environment value (UTF-8)")
r = h.get(f"{P}/{t2.pid}/environments/test_v")
is_(r.json(), {"DP_TEST_VAR": "value with \xe9"}, "environment filter: key contains, any case")
r = h.get(f"{P}/{t2.pid}/environments/all")
is_(sorted((r.json() or {}).keys()), ["DP_TEST_VAR", "PATH"], "environments/all")

# ---- processes that vanish between enumeration and reading
stop = threading.Event()


def churn():
    while not stop.is_set():
        as_worker = {"user": worker_user(), "group": worker_user()} if dphttpd.IS_ROOT else {}
        ps = [subprocess.Popen([TARGET], stdout=subprocess.DEVNULL, **as_worker)
              for _ in range(10)]
        for p in ps:
            p.kill()
        for p in ps:
            p.wait()


churner = threading.Thread(target=churn)
churner.start()
statuses = set()
try:
    deadline = time.time() + 3
    while time.time() < deadline:
        statuses.add(h.get(P + "?allUsers=true").status)
finally:
    stop.set()
    churner.join()
is_(statuses, {200}, "list under process churn: always 200")
h.stop()

# ---- details of every process, four at a time, while processes come and go:
# each answer is 200 or 404, never a 5xx (the helper's children end all the
# time, and their SIGCHLD once cut its check of the asking worker short: one
# detail in about 300 answered 503)
h = Httpd(server_conf="StartServers 2\nThreadsPerChild 25\nMaxRequestWorkers 50\n"
                      "MinSpareThreads 50\nMaxSpareThreads 75",
          locations={"/all": "DiagProcUsers *\nDiagProcAllow environment"}).start()
# root's processes are in this scope but outside the helper's ceiling (root
# only if named): the helper refuses the worker's reads of them, and logs each
h.expect_log(HELPER_ROOT_READS)
stop.clear()
churner = threading.Thread(target=churn)
churner.start()
seen, odd = 0, {}


def detail(pid):
    r = h.get(f"/all/{pid}")
    return pid, r.status, (r.json() or {}).get("Message") if r.status >= 500 else None


try:
    # a count, not a time: an instrumented build (the sanitizer pass) answers
    # about a quarter as many details a second
    deadline = time.time() + 90
    while seen <= 1200 and time.time() < deadline:
        pids = [e["id"] for e in h.get("/all?allUsers=true").json()]
        with ThreadPoolExecutor(max_workers=4) as ex:
            for pid, st, msg in ex.map(detail, pids):
                seen += 1
                if st not in (200, 404):
                    odd[pid] = (st, msg)
finally:
    stop.set()
    churner.join()
ok(seen > 1000, f"{seen} details asked during the churn")
is_(odd, {}, "every detail under churn is 200 or 404, never a 5xx")

h.stop()
done_testing()
