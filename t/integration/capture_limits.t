# The limits of capture rules: a burst of 5xx statuses (mod_proxy's 503s;
# status:LO-HI>=M/WINDOW, counted by every worker in shared memory) fires
# once per window however many errors follow; a watcher that dies is replaced; a spool full of old captures loses the oldest
# (quota in files, and in bytes); a graceful restart keeps the captures and
# the rules' windows (limit=1/10m stays spent).
import json
import re
import os
import shutil
import signal
import tempfile
import time

import procstate
from tap import ok, is_, done_testing
from dphttpd import Httpd, free_port

run = tempfile.mkdtemp(prefix="dpcaplim-")
os.chmod(run, 0o755)
spool = os.path.join(run, "spool")
down = free_port()          # nothing listens there: mod_proxy answers 503
h = Httpd(locations={"/p": "DiagProcAllow captures"}, modules=("proxy", "proxy_http"),
          server_conf=f"DocumentRoot {run}\n<Location /forbidden>\n    Require all denied\n"
                      "</Location>\n"
                      f"ProxyPass /down/ http://127.0.0.1:{down}/ retry=0\n"
                      f"DiagProcSpool {spool} 64M 100\n"
                      "DiagProcCapture burst when=status:500-599>=5/8s limit=10/10m\n"
                      "DiagProcCapture once when=status:403-403>=3/2s limit=1/10m\n").start()


# a status rule captures the worker of the last counted response (the event
# MPM's one process, which also serves this test's API requests): while its
# threads are stopped for the stacks, the helper refuses a call from it
TRACED = (re.compile(r"DP10003: .*is traced by pid"), re.compile(r"DP00010: The diagproc helper"))


def of(hh, rule):
    return [c for c in (hh.get("/p/captures").json() or []) if c.get("rule") == rule]


def settle(fn, secs):
    return procstate.settle(fn, secs)


# --- a burst fires once per window --------------------------------------------
for i in range(60):
    h.get(f"/down/{i}")
ok(settle(lambda: len(of(h, "burst")) >= 1, 5), "60 503s in a burst: the 5xx rule fires")
t_end = time.time()
while time.time() - t_end < 4:          # hundreds more errors inside the 8 s window
    h.get("/down/more")
    time.sleep(0.01)
time.sleep(1)
caps = of(h, "burst")
is_(len(caps), 1, "…once per window, however many errors follow")
c = caps[0] if caps else {}
is_(c.get("trigger"), "status:500-599>=5/8s", "…naming its trigger")
ok(c.get("request") is None, "…with no request of its own (request: null)")
ok(c.get("pid") in h.workers() or c.get("pid") is None, "…the worker of the last such response as its process")

# --- graceful restart keeps the captures and the windows ----------------------
for i in range(3):
    h.get("/forbidden/x")
ok(settle(lambda: len(of(h, "once")) == 1, 5), "a second rule (limit=1/10m) fires once")
before = set(c["id"] for c in h.get("/p/captures").json() or [])
helpers = h.helpers()
h.signal("graceful")
ok(settle(lambda: h.helpers() and h.helpers() != helpers, 10), "graceful restart: a new generation")
time.sleep(1)
after = set(c["id"] for c in h.get("/p/captures").json() or [])
ok(before and before <= after, "…keeps every capture")
time.sleep(1.5)     # past the 2 s window: another burst would fire, were the limit forgotten
for i in range(6):
    h.get("/forbidden/y")
time.sleep(2.5)
is_(len(of(h, "once")), 1, "…and the rule's window: limit=1/10m stays spent")
time.sleep(max(0, t_end + 9 - time.time()))     # the burst's window is over
for i in range(60):
    h.get(f"/down/again{i}")
ok(settle(lambda: len(of(h, "burst")) == 2, 5),
   "the status counters keep counting in the new generation's workers")
# a watcher that dies is replaced (more than 10 s after its start)
watchers = re.findall(r"DP00063: diagproc: capture watcher (\d+) started", h.error_log())
if watchers:
    os.kill(int(watchers[-1]), signal.SIGKILL)
ok(watchers and settle(lambda: re.findall(r"DP00063: diagproc: capture watcher (\d+) started",
                                          h.error_log())[-1] != watchers[-1], 5),
   "a capture watcher that dies is replaced")
h.expect_log("DP00067")
h.expect_log("AH01630")      # the 403s the second rule counts
h.expect_log(*TRACED)
h.expect_log("AH00957", "AH00959", "AH01114", "AH02806", "AH00940")   # mod_proxy: nothing there
h.stop()

# --- quota: the oldest captures go ---------------------------------------------
spool2 = os.path.join(run, "spool2")
os.makedirs(spool2, mode=0o700)
old = [f"20200101T00000{i}.000Z-old-{i}" for i in range(3)]
for i, cid in enumerate(old):
    os.makedirs(os.path.join(spool2, cid))
    with open(os.path.join(spool2, cid, "meta.json"), "w") as f:
        json.dump({"id": cid, "time": "2020-01-01T00:00:00Z", "rule": "old", "trigger": "x",
                   "pid": None, "request": None}, f)
    with open(os.path.join(spool2, cid, "blob.bin"), "wb") as f:
        f.write(b"x" * 1000)
h2 = Httpd(locations={"/p": "DiagProcAllow captures"},
           server_conf=f"DocumentRoot {run}\nDiagProcSpool {spool2} 1M 3\n"
                       "DiagProcCapture q when=status:404-404>=1/1s\n", expect_log=TRACED).start()
listed = [c["id"] for c in h2.get("/p/captures").json() or []]
is_(listed, list(reversed(old)), "a spool of old captures: listed newest first")
h2.get("/nosuch")
ok(settle(lambda: len(of(h2, "q")) == 1, 6), "a new capture into a full spool (3 files)")
time.sleep(0.5)
ids = sorted(c["id"] for c in h2.get("/p/captures").json() or [])
is_(len(ids), 3, "…the spool keeps its quota of 3")
ok(old[0] not in ids and old[1] in ids and old[2] in ids, "…the oldest one removed")
ok(not os.path.exists(os.path.join(spool2, old[0])), "…from the disk")
h2.stop()

spool3 = os.path.join(run, "spool3")
os.makedirs(spool3, mode=0o700)
for cid in old:
    os.makedirs(os.path.join(spool3, cid))
    with open(os.path.join(spool3, cid, "blob.bin"), "wb") as f:
        f.write(b"x" * 200000)
    with open(os.path.join(spool3, cid, "meta.json"), "w") as f:
        json.dump({"id": cid, "rule": "old"}, f)
h3 = Httpd(locations={"/p": "DiagProcAllow captures"},
           server_conf=f"DocumentRoot {run}\nDiagProcSpool {spool3} 300K 100\n"
                       "DiagProcCapture q2 when=status:404-404>=1/1s\n", expect_log=TRACED).start()
h3.get("/nosuch")
ok(settle(lambda: len(of(h3, "q2")) == 1, 6), "a spool of 600K against a quota of 300K: a new capture")
time.sleep(0.5)
ids = sorted(c["id"] for c in h3.get("/p/captures").json() or [])
is_(ids[:1], [old[2]], f"…removes the oldest until the bytes fit, no more ({ids})")
h3.stop()
shutil.rmtree(run, ignore_errors=True)
done_testing()
