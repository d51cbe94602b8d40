# The reserved diagnostics process (DiagProcListen) when the site is in
# trouble: every worker thread of an event httpd (one process x 16 threads)
# is stuck behind a proxied backend that accepts and never answers, or in a
# slow WSGI handler. The reserved listener still answers, lists each stuck
# request, shows its stack and dumps it, and frees the site by DELETE; then
# its own life cycle: kill -9, graceful, stop.
import http.client
import os
import re
import signal
import subprocess
import tempfile
import time

from tap import ok, is_, diag, note, done_testing
from dphttpd import Httpd, free_port, MODDIR, APACHE
import procstate
from reserved import (BlackHole, SITE_THREADS, get, get_json, holder_of,
                      saturable_site_conf, saturate)

STUCK_PROXY, STUCK_WSGI, THREADS = 13, 3, SITE_THREADS


def timed_get(port, path, timeout=10):
    t0 = time.monotonic()
    try:
        st, _ = get(port, path, timeout=timeout)
    except OSError:
        st = None
    return st, time.monotonic() - t0


def frames_of(stacks, tid):
    for t in stacks.get("threads", []):
        if t["id"] == tid:
            return t["frames"]
    return []


backend = BlackHole()
rport = free_port()
tmp = tempfile.mkdtemp(prefix="dpwsgi-")
os.chmod(tmp, 0o755)
calls = os.path.join(tmp, "calls")
open(calls, "w").close()
os.chmod(calls, 0o666)
wsgi = os.path.join(tmp, "slow.wsgi")
with open(wsgi, "w") as f:
    f.write(f"""import os, time
def application(environ, start_response):
    with open({calls!r}, "a") as f:
        f.write("%d %s\\n" % (os.getpid(), environ["PATH_INFO"]))
    time.sleep(600)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"late"]
""")

h = Httpd(locations={
    "/p": "DiagProcAllow kill dump stacks",
}, server_conf=f"""
<Location /denied>
    SetHandler diagproc
    Require ip 192.0.2.1
</Location>
{saturable_site_conf(backend.port)}
LoadModule wsgi_module {MODDIR}/mod_wsgi.so
ExtendedStatus On
WSGIScriptAlias /slow {wsgi}
<Directory {tmp}>
    Require all granted
</Directory>
DiagProcListen 127.0.0.1:{rport}
LogFormat "%{{local}}p %m %U %>s" portlog
""")
h.server_conf += f"CustomLog {h.dir}/ports.log portlog\n"
# every worker thread held on purpose (the event MPM says AH00484, "reached
# MaxRequestWorkers", or, when it counts at a moment one of the threads is
# between two requests, AH03490, "scoreboard is full, not at
# MaxRequestWorkers": ServerLimit 1 has no room for a second process either
# way); Require's refusal; the reserved process killed
h.expect_log("AH00484", "AH03490", "AH01630", "DP00017")
h.start()
ok(procstate.settle(lambda: len(h.reserved()) == 1 and len(h.workers()) == 1, 10),
   "one reserved process beside the worker")
rsv = h.reserved()[0]

# --- saturate: every worker thread stuck ------------------------------------
paths = [f"/slow/w{i}" for i in range(STUCK_WSGI)] + [f"/stuck/p{i}" for i in range(STUCK_PROXY)]
expected = set(paths)


def stuck_now():
    st, d = get_json(rport, "/p/requests")
    return d.get("requests", []) if st == 200 and d else []


workers_before = sorted(h.workers())
clients, missing = saturate(h.port, paths, lambda: {x.get("uri") for x in stuck_now()},
                           secs_each=20)
if not ok(not missing and {x.get("uri") for x in stuck_now()} >= expected,
          f"all {THREADS} requests are in flight"):
    diag(f"not in flight: {missing}; workers before {workers_before}, now {sorted(h.workers())}")
    with open(calls) as f:
        diag("the WSGI application saw: " + f.read().replace("\n", "; "))
    served = {}
    for x in stuck_now():
        served[x["pid"]] = served.get(x["pid"], 0) + 1
    diag(f"requests served by each worker: {served}")
    for path in missing:
        diag(f"{path}: its connection is held by pid {holder_of(clients[paths.index(path)], h.port)}")
st, dt = timed_get(h.port, "/p", timeout=3)
is_(st, None, f"the site's own listener does not answer (no answer in {dt:.1f} s)")

st, dt = timed_get(rport, "/p")
is_(st, 200, "the reserved listener answers the list")
ok(dt < 1.0, f"…within 1 s ({dt * 1000:.0f} ms)")
note(f"list on the reserved listener while saturated: {dt * 1000:.1f} ms")

reqs = stuck_now()
is_({x["uri"] for x in reqs} & expected, expected, "every stuck request is listed by its URI")
ok(all(x["method"] == "GET" and x["state"] == "writing" for x in reqs if x["uri"] in expected),
   "…with its method and state")
ok(all(isinstance(x.get("seconds"), float) and x["seconds"] > 0 for x in reqs),
   "…and its age in seconds")
ages = [x["seconds"] for x in reqs]
is_(ages, sorted(ages, reverse=True), "longest-running first")
ok(all(x["client"] == "127.0.0.1" and x["pid"] in h.workers() for x in reqs),
   "each names the client and the worker serving it")
ok(all(x["tid"] and os.path.exists(f"/proc/{x['pid']}/task/{x['tid']}") for x in reqs),
   "…and the kernel thread id, a live thread of that worker")
is_(len({(x["pid"], x["tid"]) for x in reqs}), len(reqs), "one thread per request")

# where each one's code is, asked on the reserved listener: the WSGI requests'
# own Python frames in their worker threads; the proxied ones' backend (the
# black hole is this test's own process)
st, d = get_json(rport, "/p/requests?stacks=1", timeout=60)
byuri = {x["uri"]: x for x in (d or {}).get("requests", [])}
w = (byuri.get("/slow/w0") or {}).get("where") or {}
if not is_((w.get("function"), os.path.basename(w.get("file") or ""), w.get("tid")),
           ("application", "slow.wsgi", (byuri.get("/slow/w0") or {}).get("tid")),
           "stacks=1 on the reserved listener: a WSGI request is in its application, in its worker thread"):
    diag(repr(w)[:1500])
be = (byuri.get("/stuck/p0") or {}).get("backend") or {}
is_((be.get("transport"), be.get("address"), be.get("pid"), be.get("remote")),
    ("tcp", f"127.0.0.1:{backend.port}", os.getpid(), False),
    "…a proxied one names its backend: the process holding the other end of the worker's connection")

proxied = next(x for x in reqs if x["uri"].startswith("/stuck/"))
wpid, wtid = proxied["pid"], proxied["tid"]
st, d = get_json(rport, f"/p/{wpid}")
is_((st, d.get("httpd_role")), (200, "worker"), "the worker's detail: httpd_role worker")
ok(isinstance(d.get("httpd_slot"), int) and isinstance(d.get("httpd_generation"), int),
   "…with its slot and generation")
mine = [t for t in d.get("httpd_threads", []) if t.get("tid") == wtid]
is_(len(mine) == 1 and mine[0].get("uri"), proxied["uri"],
    "…and the request each of its threads serves")
st, lst = get_json(rport, "/p")
roles = {e["id"]: e.get("httpd_role") for e in lst or []}
ok(all(roles.get(w) == "worker" for w in h.workers()) and roles.get(rsv) == "reserved"
   and roles.get(h.helpers()[0]) == "helper", "the list marks workers, the helper and the reserved process")

# --- stacks and a dump of the stuck worker ----------------------------------
st, stacks = get_json(rport, f"/p/{wpid}/stacks", timeout=30)
is_(st, 200, "stacks of a stuck worker")
fr = frames_of(stacks or {}, wtid)
fns = [f["function"] or "" for f in fr]
mods = [f.get("module") or "" for f in fr]
ok(any("apr_socket_recv" in f for f in fns), "the stuck thread waits in apr_socket_recv…")
first = {name: next((i for i, m in enumerate(mods) if m.endswith(name)), None)
         for name in ("mod_proxy_http.so", "mod_proxy.so")}
if not ok(None not in first.values() and first["mod_proxy_http.so"] < first["mod_proxy.so"],
          "…called from mod_proxy_http's read of the backend, below mod_proxy's handler"):
    diag("\n".join(f"{f['function']} {f.get('module')}" for f in fr))

core = os.path.join(tmp, "worker.core")
with open(core, "wb") as f:
    c = http.client.HTTPConnection("127.0.0.1", rport, timeout=120)
    c.request("GET", f"/p/{wpid}/dump")
    r = c.getresponse()
    is_(r.status, 200, "a dump of the stuck worker on the reserved listener")
    while True:
        b = r.read(1 << 16)
        if not b:
            break
        f.write(b)
    c.close()
gdb = subprocess.run(["gdb", "-batch", "-nx", "-ex", "set pagination off",
                      "-ex", "thread apply all bt", APACHE, core],
                     capture_output=True, text=True, timeout=120).stdout
block = re.search(rf"^Thread \d+ \(LWP {wtid}\):\n(.*?)(?:\n\n|\Z)", gdb, re.S | re.M)
block = block.group(1) if block else ""
ok(block != "", "gdb opens the dump and shows the stuck thread")
# the same frames: every return address of the live stack, in the same order
# (gdb may add inlined frames from debug info, which have no address of their own)
gaddrs = [int(a, 16) for a in re.findall(r"^#\d+\s+(0x[0-9a-f]+) in ", block, re.M)]
eaddrs = [int(f["pc"], 16) for f in fr[1:]]
it = iter(gaddrs)
if not ok(eaddrs and all(a in it for a in eaddrs),
          f"…with the same frames as the live stacks ({len(eaddrs) + 1} frames)"):
    diag(block)


def plain(name):
    return re.sub(r"^(__GI_)?_*", "", name)


ok(plain(fns[0]) in {plain(f) for f in re.findall(r"^#0\s+(?:0x[0-9a-f]+ in )?(\S+) ", block, re.M)},
   f"…the same innermost function ({fns[0] if fns else None})")
ok(re.search(r" in apr_socket_recv \(\)", block), "…waiting in apr_socket_recv")

# --- the reserved listener serves only diagproc, under httpd's rules --------
st, dt = timed_get(rport, "/slow/from-reserved")
is_(st, 404, f"a WSGI URL on the reserved listener is 404 ({dt * 1000:.0f} ms)")
is_(timed_get(rport, "/stuck/from-reserved")[0], 404, "a proxied URL there is 404")
is_(timed_get(rport, "/no/such/file")[0], 404, "a plain URL there is 404")
with open(calls) as f:
    ok("from-reserved" not in f.read(), "the WSGI application never ran for it")
is_(timed_get(rport, "/denied")[0], 403, "Require on the Location is enforced there: 403")


def logged():
    with open(os.path.join(h.dir, "ports.log")) as f:
        return f.read().splitlines()


if not ok(procstate.settle(lambda: f"{rport} GET /denied 403" in logged()
                           and f"{rport} GET /slow/from-reserved 404" in logged()
                           and f"{rport} GET /p 200" in logged(), 5),
          "the access log records the reserved listener's requests"):
    diag("\n".join(logged()))

# --- DELETE of the stuck workers frees the site -----------------------------
stuck_workers = sorted({x["pid"] for x in reqs})
for w in stuck_workers:
    is_(get(rport, f"/p/{w}", method="DELETE")[0], 204, f"DELETE of stuck worker {w}: 204")
ok(procstate.settle(lambda: not set(stuck_workers) & set(h.workers()), 10), "the stuck workers are gone")
ok(procstate.settle(lambda: timed_get(h.port, "/p", timeout=2)[0] == 200, 20),
   "the site serves a normal request again")
for c in clients:
    c.close()

# --- no listener crossing ---------------------------------------------------
rsv = h.reserved()[0]
is_(procstate.listen_ports(rsv), {rport}, "the reserved process holds its listener and none of the site's")
ok(all(rport not in procstate.listen_ports(w) for w in h.workers() + h.helpers()),
   "no worker (nor the helper) holds the reserved listener")

# --- kill -9: a new one serves at once ---------------------------------------
os.kill(rsv, signal.SIGKILL)
st, dt = timed_get(rport, "/p/0")
is_(st, 200, "after kill -9 the reserved listener answers")
ok(dt < 1.0, f"…within 1 s ({dt * 1000:.0f} ms)")
note(f"kill -9 to answer: {dt * 1000:.1f} ms")
ok(procstate.settle(lambda: h.reserved() and h.reserved()[0] != rsv, 5), "…from a new process")
rsv = h.reserved()[0]

# --- graceful: a new one of the new generation; stop: none ------------------
st, d = get_json(rport, "/p/0")
is_((d or {}).get("httpd_role"), "reserved", "id 0 on the reserved listener is the reserved process")
gen = (d or {}).get("httpd_generation")
h.signal("graceful")
ok(procstate.settle(lambda: h.reserved() and rsv not in h.reserved(), 15), "after -k graceful: a new reserved process")
st, d = get_json(rport, "/p/0")
is_((st, (d or {}).get("httpd_generation")), (200, gen + 1 if isinstance(gen, int) else None),
    "…of the new generation, serving")
ok(procstate.settle(lambda: not os.path.exists(f"/proc/{rsv}") or "State:\tZ" in open(f"/proc/{rsv}/status").read(), 10),
   "…and the old one has ended")
rsv = h.reserved()[0]
ok("long lost child" not in h.logs(), "httpd reaps every reserved process it forked")
h.signal("stop")
ok(procstate.settle(lambda: h.proc.poll() is not None, 15), "-k stop ends httpd")
ok(procstate.settle(lambda: not os.path.exists(f"/proc/{rsv}"), 5), "…and the reserved process")
ok(rport not in procstate._listening_inodes().values(), "nothing listens on the reserved port any more")
h.stop()
done_testing()
