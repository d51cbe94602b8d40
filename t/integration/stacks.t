# GET P/{id}/stacks: live, symbolized backtraces of every thread.
import glob
import os
import time

from tap import ok, is_, like, done_testing
from dphttpd import Httpd, spawn, worker_user, BUILD

TARGET = os.path.join(BUILD, "targets", "dump_target")
h = Httpd(locations={"/p": "DiagProcAllow stacks", "/off": ""}).start()
t = spawn([TARGET], ready="ready", user=worker_user())
# "ready" is printed just before main descends into main_leaf: wait until its
# main thread sits in pause() (x86_64 syscall 34), or its stack may not be there yet
deadline = time.time() + 5
while time.time() < deadline:
    with open(f"/proc/{t.pid}/syscall") as f:
        if f.read().split(" ")[0] == "34":
            break
    time.sleep(0.01)

r = h.get(f"/p/{t.pid}/stacks")
is_(r.status, 200, "stacks answer 200")
d = r.json() or {}
is_(d.get("id"), t.pid, "the process id")
is_(d.get("href"), f"{h.base}/p/{t.pid}", "its href")
threads = d.get("threads", [])
is_(sorted(x["id"] for x in threads), sorted(int(x) for x in os.listdir(f"/proc/{t.pid}/task")),
    "one entry per thread")
for chain in ("alpha", "beta", "gamma", "main"):
    hits = [x for x in threads
            if [f["function"] for f in x["frames"]][1:4] ==
            [f"{chain}_leaf", f"{chain}_mid", f"{chain}_top"]]
    is_(len(hits), 1, f"{chain}: leaf, mid and top in order, in one thread")
f0 = threads[0]["frames"][0] if threads and threads[0]["frames"] else {}
like(f0.get("pc", ""), r"^0x[0-9a-f]+$", "frames carry their address")
like(f0.get("module") or "", r"libc\.so", "…and their module")
states = [open(s).read().rsplit(")", 1)[1].split()[0] for s in glob.glob(f"/proc/{t.pid}/task/*/stat")]
ok(not any(s in "Tt" for s in states), "the target runs on")

r = h.get("/p/0/stacks")
is_(r.status, 200, "stacks of id 0 (the serving worker)")
fns = [f["function"] for x in (r.json() or {}).get("threads", []) for f in x["frames"]]
ok("dp_handle_stacks" in fns or "dp_handler" in fns, "…show the handler's own frames")
is_(h.get(f"/off/{t.pid}/stacks").status, 403, "without DiagProcAllow stacks: 403")
is_(h.get("/p/1/stacks").status, 403, "pid 1 outside scope: 403")
h.stop()
done_testing()
