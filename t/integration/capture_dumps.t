# DiagProcMaxDumps is shared between the API's dumps (the helper's) and the
# capture rules' dumps (the watcher's): while a dump capture holds the only
# slot, a dump through the API answers 503 JSON that says so, with
# Retry-After, and succeeds once the capture is done; while an API dump
# holds it, a dump rule whose condition holds waits, and captures once the
# slot is free.
import os
import re
import shutil
import signal
import socket
import tempfile
import time

import procstate
from tap import ok, is_, like, done_testing
from dphttpd import Httpd, spawn, worker_user, kill_quietly, BUILD

TARGET = os.path.join(BUILD, "targets", "proc_target")
W = worker_user()
top = tempfile.mkdtemp(prefix="dpcapdumps-")


def server(rule):
    # the API's 503s are logged, as every 5xx is
    return Httpd(locations={"/p": "DiagProcAllow dump fulldump captures"}, expect_log=["DP00010"],
                 server_conf=f"DiagProcMaxDumps 1\nDiagProcSpool {top}/{rule} 1G 20\n"
                             f"DiagProcCapture {rule} when=rss>100M/1s users={W} "
                             "do=dump:0x2 limit=1/10m\n").start()


def of(h, rule):
    return [c for c in (h.get("/p/captures").json() or []) if c.get("rule") == rule]


def watcher(h):
    """The watcher's pid from its start line (httpd listens before it forks
    the watcher: on a busy machine the line comes after start() returns)."""
    found = []
    procstate.settle(lambda: found.extend(re.findall(r"DP00063: diagproc: capture watcher "
                                                     r"(\d+) started", h.error_log())) or found,
                     10)
    return int(found[-1]) if found else None


def core_of(c):
    return next((a for a in c.get("artifacts", []) if a["name"] == "core"), {})


# the small process the API dumps (below the rules' 100M)
other = spawn([TARGET, "--rss", "64"], ready="ready", user=W)

# ---- a dump capture holds the slot: the API's dump is 503
h = server("held")
wpid = watcher(h)
big = spawn([TARGET, "--rss-random", "160"], ready="ready", user=W)
child = None
deadline = time.time() + 15
while child is None and time.time() < deadline:
    kids = procstate.children(wpid) if wpid else []
    if kids:
        child = int(kids[0])
        os.kill(child, signal.SIGSTOP)      # the capture, stopped while it holds the slot
    else:
        time.sleep(0.005)
ok(child, f"the rule fired: a capture process of the watcher ({child})")
r = h.get(f"/p/{other.pid}/dump?dumpType=0")
is_(r.status, 503, "meanwhile a dump through the API: 503")
ok(r.headers.get("content-type", "").startswith("application/json"), "…as JSON")
like((r.json() or {}).get("Message"),
     r"^1 dump is already running \(DiagProcMaxDumps 1; the capture rules' take 1 of them\); "
     r"try again shortly\.$", "…whose Message says the capture rules hold the limit")
like(r.headers.get("retry-after", ""), r"^\d+$", "…with Retry-After")
if child:
    os.kill(child, signal.SIGCONT)
ok(procstate.settle(lambda: of(h, "held") and core_of(of(h, "held")[0]).get("size", 0) > 0, 60),
   "the capture completes once resumed: a core of the process")
is_((of(h, "held") or [{}])[0].get("pid"), big.pid, "…of the big process")
r = None
for _ in range(50):         # the watcher gives the slot back when it reaps the capture
    r = h.get(f"/p/{other.pid}/dump?dumpType=0")
    if r.status != 503:
        break
    time.sleep(0.1)
is_(r.status, 200, "then the API's dump is served")
h.stop()
kill_quietly(big)

# ---- an API dump holds the slot: the dump rule waits for it
h = server("waits")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
s.connect(("127.0.0.1", h.port))
s.sendall(f"GET /p/{other.pid}/dump?dumpType=2 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
ok(s.recv(4096).startswith(b"HTTP/1.1 200"),
   "a full dump through the API is under way, its client stalled (it holds the slot)")
big = spawn([TARGET, "--rss-random", "160"], ready="ready", user=W)
time.sleep(4)
is_(of(h, "waits"), [], "a process above the dump rule's bound for 4 s: no capture while the "
    "API's dump holds the slot")
s.close()
ok(procstate.settle(lambda: of(h, "waits") and core_of(of(h, "waits")[0]).get("size", 0) > 0, 60),
   "once that dump's client has gone, the rule captures")
is_((of(h, "waits") or [{}])[0].get("pid"), big.pid, "…the big process")
h.stop()
kill_quietly(big)
kill_quietly(other)
shutil.rmtree(top, ignore_errors=True)
done_testing()
