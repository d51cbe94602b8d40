# DELETE P/{id} and POST P/{id}/stop: the whole tree goes, nothing else is
# hit, and every refusal the contract names.
import os
import subprocess
import time

from tap import ok, is_, like, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, TOOLS, IS_ROOT

TREE = os.path.join(BUILD, "targets", "fork_tree")
TARGET = os.path.join(BUILD, "targets", "proc_target")
DPKILL = os.path.join(TOOLS, "dpkill")


def stat_of(pid):
    try:
        with open(f"/proc/{pid}/stat", errors="replace") as f:  # any process may name itself in any bytes
            rest = f.read().rsplit(")", 1)[1].split()
        return rest
    except OSError:
        return None


def live_in_session(sid):
    """Processes of a session that are not dead (zombies count as dead)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = stat_of(int(d))
            if st and int(st[3]) == sid and st[0] not in ("Z", "X"):
                out.append(int(d))
    return out


def gone_within(sid, secs=3.0):
    deadline = time.time() + secs
    while time.time() < deadline:
        if not live_in_session(sid):
            return True
        time.sleep(0.05)
    return False


h = Httpd(locations={
    "/p": "DiagProcAllow kill",
    "/all": "DiagProcAllow kill\nDiagProcUsers *",
}).start()

# ---- the whole tree, a child that keeps forking included
for method, suffix, name in (("DELETE", "", "DELETE"), ("POST", "/stop", "POST stop")):
    t = spawn([TREE], ready="ready", user=worker_user())
    time.sleep(0.3)
    before = live_in_session(t.pid)
    ok(len(before) >= 4, f"{name}: the tree is up ({len(before)} processes, depth 3)")
    r = h.request(method, f"/p/{t.pid}{suffix}")
    is_(r.status, 204, f"{name} answers 204")
    is_(r.body, b"", f"{name}: no body")
    ok(gone_within(t.pid), f"{name}: no process of the tree is left alive")
    left = [p for p in live_in_session(t.pid)]
    is_(left, [], f"{name}: nothing escaped (reparented or forked meanwhile)")
    dphttpd.kill_quietly(t)

# ---- a recycled pid is never hit: the start time must match
t = spawn([TARGET], ready="ready", user=worker_user())
start = int(stat_of(t.pid)[19])
out = subprocess.run([DPKILL, str(t.pid), str(start + 1)], capture_output=True, text=True)
is_(out.returncode, 1, "kill with another start time fails")
like(out.stdout, rf"^404 Process with an Id of {t.pid} is not running", "…as not running")
ok(stat_of(t.pid) is not None and stat_of(t.pid)[0] != "Z", "…and the process is untouched")
out = subprocess.run([DPKILL, str(t.pid), str(start)], capture_output=True, text=True)
is_(out.returncode, 0, "kill with the right start time succeeds")
dphttpd.kill_quietly(t)

# ---- refusals
t = spawn([TARGET], ready="ready", user=worker_user())
for hdrs, why in (({"Origin": "http://evil.example"}, "an Origin of another site"),
                  ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
                  ({"Origin": "null"}, "an opaque Origin")):
    r = h.request("POST", f"/p/{t.pid}/stop", headers=hdrs)
    is_(r.status, 403, f"cross-origin refused: {why}")
    like((r.json() or {}).get("Message"), "(?i)origin|cross-site", f"…the Message says why ({why})")
ok(stat_of(t.pid)[0] != "Z", "the target survived the cross-origin attempts")
r = h.request("DELETE", f"/p/{t.pid}", headers={"Origin": h.base, "Sec-Fetch-Site": "same-origin"})
is_(r.status, 204, "a same-origin DELETE works")
dphttpd.kill_quietly(t)

r = h.request("DELETE", "/all/1")
is_(r.status, 403, "pid 1 is protected")
like((r.json() or {}).get("Message"), "init", "…Message names init")
r = h.request("DELETE", f"/all/{h.parent_pid}")
is_(r.status, 403, "the httpd parent is protected")
like((r.json() or {}).get("Message"), "httpd parent", "…Message names the httpd parent")
r = h.request("DELETE", "/all/2")
is_(r.status, 403, "kthreadd (a kernel thread) is protected")
like((r.json() or {}).get("Message"), "kernel thread", "…Message names kernel threads")
if IS_ROOT:
    o = spawn([TARGET], ready="ready", user="dptest2")
    r = h.request("DELETE", f"/p/{o.pid}")
    is_(r.status, 403, "another user's process is outside the default scope")
    ok(stat_of(o.pid)[0] != "Z", "…and survives")
    dphttpd.kill_quietly(o)
dead = subprocess.Popen(["true"])
dead.wait()
r = h.request("DELETE", f"/p/{dead.pid}")
is_(r.status, 404, "a pid not running is 404")
is_((r.json() or {}).get("Message"), f"Process with an Id of {dead.pid} is not running.",
    "…with Kudu's text")

# ---- id 0: the answer goes out, then the worker ends; httpd starts another
me = h.get("/p/0").json()["id"]
r = h.request("DELETE", "/p/0")
is_(r.status, 204, "DELETE P/0 answers 204 before the worker ends")


def gone(pid):
    """Reaped, or a zombie: one read of its state (it can vanish between two)."""
    st = stat_of(pid)
    return not st or st[0] == "Z"


deadline = time.time() + 5
while time.time() < deadline and not gone(me):
    time.sleep(0.05)
ok(gone(me), "the worker that served it is gone")
nxt = None
deadline = time.time() + 10
while time.time() < deadline:
    try:
        nxt = h.get("/p/0").json()["id"]
        break
    except Exception:
        time.sleep(0.2)
ok(nxt is not None and nxt != me, f"the next request is served by a new worker ({me} -> {nxt})")

h.stop()
done_testing()
