# DiagProcProfileLimits: what an operator sets holds at both ends. With
# sessions=2 seconds=4 hz=200 memory=64K: a rate or a duration beyond them
# is 400 naming the limit, a third profile at once is 503 naming sessions=2,
# a profile started without seconds stops on its own after 4 s, and a
# target whose stacks are all different fills the 64 KiB store (the rest
# count as lost) while its first stacks are answered.
import re
import time

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, kill_quietly, favour_cpu
import procstate

# a CPython program whose samples are all different stacks: it recurses to a
# random depth and spins there
DEEP = r"""
import random, sys
# 50 leaf functions with long names, reached at random depths: thousands of
# distinct stacks of a few KiB each
leaves = []
for i in range(50):
    name = f"leaf_{i}_" + "x" * 200
    exec(f"def {name}():\n    x = 0\n    for i in range(20000):\n        x += i\n    return x\n")
    leaves.append(globals()[name])
print("ready", flush=True)
def down(n, leaf):
    return down(n - 1, leaf) if n else leaf()
while True:
    down(random.randrange(1, 100), random.choice(leaves))
"""

h = Httpd(server_conf="DiagProcProfileLimits sessions=2 seconds=4 hz=200 memory=64K",
          locations={"/p": "DiagProcAllow profile"}).start()
h.expect_log(re.compile(r"DP00010: .*(not valid|profiles are already running)"))
loops = [spawn(["/usr/bin/perl", "-e", "$|=1; print qq(ready\\n); 1 while 1"], ready="ready",
               user=worker_user()) for _ in range(3)]
deep = spawn(["/usr/bin/python3", "-c", DEEP], ready="ready", user=worker_user())
favour_cpu(deep.pid)    # its samples are its CPU time

# the parameters' bounds are the configured ones
r = h.get(f"/p/{loops[0].pid}/profile?seconds=2&hz=201")
is_(r.status, 400, "hz=201 beyond hz=200: 400")
like((r.json() or {}).get("Message", ""), r"from 1 to 200", "…giving the range the limits allow")
r = h.get(f"/p/{loops[0].pid}/profile?seconds=5")
is_(r.status, 400, "a one-call profile of 5 s beyond seconds=4: 400")
r = h.request("POST", f"/p/{loops[0].pid}/profile/start?seconds=5")
is_(r.status, 400, "a session of 5 s beyond seconds=4: 400")
r = h.get(f"/p/{loops[0].pid}/profile?seconds=1&hz=200")
is_(r.status, 200, "hz=200 for 1 s, within them: 200")

# sessions=2: a third at once is 503; a start without seconds runs at most 4 s
for t in loops[:2]:
    r = h.request("POST", f"/p/{t.pid}/profile/start")
    is_(r.status, 200, f"start {t.pid}: 200")
r = h.request("POST", f"/p/{loops[2].pid}/profile/start")
is_(r.status, 503, "a third profile at once: 503")
like((r.json() or {}).get("Message", ""), r"sessions=2", "…naming sessions=2")
time.sleep(5)
r = h.get(f"/p/{loops[0].pid}/profile/stop?format=folded")
is_(r.status, 200, "the first one's samples are kept")
m = re.search(r"duration_ms=(\d+); ended=(\w+)", r.headers.get("x-diagproc-profile", ""))
ok(m and m.group(2) == "expired" and 3500 <= int(m.group(1)) <= 5000,
   f"…it stopped on its own after seconds=4 ({r.headers.get('x-diagproc-profile')})")
r = h.get(f"/p/{loops[1].pid}/profile/stop?format=folded")
is_(r.status, 200, "the second one's too")
r = h.request("POST", f"/p/{loops[2].pid}/profile/start?seconds=1")
is_(r.status, 200, "with those fetched, a new one starts")
time.sleep(2)
h.get(f"/p/{loops[2].pid}/profile/stop?format=folded")

# memory=64K: distinct stacks stop being kept once the store is full
r = h.get(f"/p/{deep.pid}/profile?seconds=4&hz=200&format=folded")
is_(r.status, 200, "a profile of a target whose stacks all differ: 200")
hdr = r.headers.get("x-diagproc-profile", "")
m = re.search(r"samples=(\d+); lost=(\d+)", hdr)
samples, lost = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
stacks = r.body.decode().splitlines()
diag(f"{len(stacks)} distinct stacks, {len(r.body)} bytes folded ({hdr})")
ok(samples > 0 and lost > 0, f"…the store filled: {samples} samples kept, {lost} lost")
ok(0 < len(stacks) < samples + lost, "…its first stacks are answered")
for t in loops + [deep]:
    ok(procstate.running(t.pid), f"{t.pid} runs, nothing stopped")
    kill_quietly(t)
h.stop()
done_testing()
