# A fleet: two backend httpds on 127.0.0.2 and 127.0.0.3 (DiagProcInstanceName
# web1, web2) behind a front httpd on 127.0.0.1 that includes the documented
# config/fleet-front.conf. Shows: an instance-addressed request reaches that
# instance (X-Diagproc-Instance, machineName, and id 0 is one of its own
# workers); every href of the answers leads back through the front to the
# same instance; a full dump through the front is of the named instance's
# process; the fleet view lists both members' targets with their instance,
# and names a member that does not answer in time (stopped with SIGSTOP) or
# at all (stopped) while still showing the other; the fleet view of the
# captures lists every member's, newest first, each with its instance and
# hrefs through the front; forwarded headers from a
# client the backend does not trust, or sent through the front, change no
# href, while the trusted front's do.
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, BUILD, ROOT, IS_ROOT
from elfcore import prpsinfo
import procstate

TARGET = os.path.join(BUILD, "targets", "proc_target")
P = "/diagnostics/processes"
JSON = {"Accept": "application/json"}
UNTRUSTED = "127.0.0.5"      # a client on this machine that is not the front
TIMEOUT = 2                  # the front's proxy timeout for the members

# As root each member sees another account's processes, so that a target is
# in exactly one member's list; as an ordinary user both see the same user.
scope = {"web1": "dptest2", "web2": "dptest3"} if IS_ROOT else {"web1": None, "web2": None}
WORKER = worker_user()


# each member's spool holds captures of its own (a rule that never fires
# makes httpd use it), their times interleaved across the members
CAPTURES = {"web1": ["20260101T000001.000Z-slow-1", "20260101T000003.000Z-slow-2"],
            "web2": ["20260101T000002.000Z-errors-1"]}
spools = {}


def spool_of(name):
    spool = os.path.join(tempfile.mkdtemp(prefix="dpfleetspool-"), "spool")
    for cid in CAPTURES[name]:
        os.makedirs(os.path.join(spool, cid))
        with open(os.path.join(spool, cid, "meta.json"), "w") as f:
            json.dump({"id": cid, "time": "2026-01-01T00:00:00Z", "rule": cid.split("-")[1],
                       "trigger": "request-age>5s", "pid": None, "request": None}, f)
        with open(os.path.join(spool, cid, "stacks.json"), "w") as f:
            json.dump({"capture": cid, "instance": name}, f)
    os.chmod(spool, 0o700)
    spools[name] = spool
    return spool


def backend(name, addr):
    # the workers' own user too, for id 0
    users = f"DiagProcUsers {WORKER} {scope[name]}\n" if scope[name] else ""
    return Httpd(addr=addr,
                 server_conf=f"DiagProcInstanceName {name}\nDiagProcTrustedProxies 127.0.0.1\n"
                             f"DiagProcSpool {spool_of(name)} 1M 20\n"
                             "DiagProcCapture never when=request-age>1h\n"
                             "<Location /diagnostics/denied>\n    SetHandler diagproc\n"
                             "    Require all denied\n</Location>\n",
                 locations={P: "DiagProcAllow dump fulldump kill captures\n" + users}).start()


web = {"web1": backend("web1", "127.0.0.2"), "web2": backend("web2", "127.0.0.3")}
front = Httpd(addr="127.0.0.1", locations={}, modules=("proxy", "proxy_http", "headers"),
              server_conf=f"""DiagProcInstanceName front
Define DIAGPROC_WEB1 http://{web['web1'].hostport}
Define DIAGPROC_WEB2 http://{web['web2'].hostport}
Define DIAGPROC_PROXY_TIMEOUT {TIMEOUT}
Include {ROOT}/config/fleet-front.conf
""").start()
FRONT = front.base


def inst(name):
    return f"/diagnostics/instances/{name}/processes"


def path_of(href):
    return re.sub(r"^http://[^/]+", "", href)


targets = {}
for name in ("web1", "web2"):
    comm = f"fleet-{name}".encode().hex()
    targets[name] = spawn([TARGET, "--comm", comm], ready="ready",
                          user=scope[name] or worker_user())
    targets[name].comm = f"fleet-{name}"
list_q = "?allUsers=true" if IS_ROOT else ""

# --- instance addressing: each name reaches its own member ---
for name, h in web.items():
    r = front.get(inst(name) + list_q, headers=JSON)
    is_(r.status, 200, f"{name}: list through the front")
    is_(r.headers.get("x-diagproc-instance"), name, f"{name}: X-Diagproc-Instance says {name}")
    lst = r.json() or []
    ok(lst and all(e["machineName"] == name for e in lst), f"{name}: every machineName is {name}")
    ok(lst and all(e["href"].startswith(f"{FRONT}{inst(name)}/") for e in lst),
       f"{name}: every href leads back through the front to {name}")
    pids = {e["id"] for e in lst}
    ok(targets[name].pid in pids, f"{name}: lists its target")
    if IS_ROOT:
        other = "web2" if name == "web1" else "web1"
        ok(targets[other].pid not in pids, f"{name}: not the other member's target (scope)")
    # id 0 is the process that serves the request: one of this member's workers
    r = front.get(inst(name) + "/0", headers=JSON)
    d = r.json() or {}
    ok(d.get("id") in h.workers(), f"{name}: id 0 is a worker of {name}'s httpd ({d.get('id')})")
    is_(d.get("machineName"), name, f"{name}: its detail says {name}")

# --- following every href of a detail stays on the instance ---
name = "web1"
lst = front.get(inst(name) + list_q, headers=JSON).json()
entry = next(e for e in lst if e["id"] == targets[name].pid)
is_(front.get(path_of(entry["href"]), headers=JSON).status, 200,
    "the target's href through the front answers")
# a worker of web1 (the workers' user: its modules are readable without the helper)
wpid = front.get(inst(name) + "/0", headers=JSON).json()["id"]
detail = front.get(f"{inst(name)}/{wpid}", headers=JSON)
d = detail.json()
# a parent outside the scope is P/-1 (a route no process answers): left out
hrefs = [d["href"]] + [d["parent"]] * (not d["parent"].endswith("/-1")) + list(d.get("children") or [])
threads = front.get(path_of(d["href"]) + "/threads", headers=JSON).json() or []
hrefs += [t["href"] for t in threads]
modules = front.get(path_of(d["href"]) + "/modules", headers=JSON).json() or []
hrefs += [m["href"] for m in modules[:3]]
ok(len(threads) >= 1 and len(modules) >= 1 and len(hrefs) >= 3,
   f"{len(hrefs)} hrefs to follow (detail, parent, threads, modules)")
bad = [u for u in hrefs if not u.startswith(f"{FRONT}{inst(name)}/")]
is_(bad, [], "every href of the detail, its threads and modules leads through the front")
seen = set()
for u in hrefs:
    r = front.get(path_of(u), headers=JSON)
    seen.add((r.headers.get("x-diagproc-instance"), r.status))
    if r.status != 200:
        diag(f"{u}: {r}")
is_(seen, {("web1", 200)}, "following them: each answers 200 from web1")
r = front.get(path_of(d["minidump"]) + "?dumpType=0", headers=JSON)
is_((r.status, r.headers.get("x-diagproc-instance")), (200, "web1"),
    "the minidump href answers a core from web1")
# the page a browser gets through the front works from the front's path
r = front.get(inst(name), headers={"Accept": "text/html"})
page = r.body.decode(errors="replace")
like(page, rf'data-base="{re.escape(inst(name))}"', "HTML page through the front: its base "
     "is the front's path to the instance")
assets = re.findall(r'(?:href|src)="(/[^"]*)"', page)
ok(assets and all(u.startswith(inst(name) + "/ui/") for u in assets),
   f"its {len(assets)} script/style/icon URLs are below the front's path")
is_({front.get(u).status for u in assets}, {200}, "and load through the front")
# an error of the member names it too
gone = subprocess.Popen(["true"])
gone.wait()
r = front.get(f"{inst(name)}/{gone.pid}", headers=JSON)
is_((r.status, r.headers.get("x-diagproc-instance")), (404, "web1"),
    "an error answer carries X-Diagproc-Instance")

# --- a full dump through the front is of the named instance's process ---
tmp = tempfile.mkdtemp(prefix="dpfleet-")
for name in ("web1", "web2"):
    core = os.path.join(tmp, f"{name}.core")
    url = f"{FRONT}{inst(name)}/{targets[name].pid}/dump?dumpType=2"
    rc = subprocess.run(["curl", "-sS", "-f", "-o", core, "-D", core + ".h", url]).returncode
    is_(rc, 0, f"{name}: full dump of its target through the front")
    with open(core + ".h") as f:
        like(f.read(), rf"(?im)^x-diagproc-instance: {name}\r?$", f"{name}: the dump came from {name}")
    pid, fname = prpsinfo(core)
    is_((pid, fname), (targets[name].pid, targets[name].comm),
        f"{name}: the core is of the process {name} listed")
# and of a member's own worker: the core's pid is in that member's list, as one of its workers
core = os.path.join(tmp, "self.core")
rc = subprocess.run(["curl", "-sS", "-f", "-o", core, f"{FRONT}{inst('web2')}/0/dump"]).returncode
pid, fname = prpsinfo(core) if rc == 0 else (None, None)
ok(pid in web["web2"].workers(), f"web2: a dump of id 0 is of one of web2's workers ({pid})")
lst2 = front.get(inst("web2") + "?allUsers=true", headers=JSON).json() or []
ok(any(e["id"] == pid and e["machineName"] == "web2" for e in lst2),
   "web2's list through the front names that worker")
if IS_ROOT:
    r = front.get(f"{inst('web2')}/{targets['web1'].pid}/dump", headers=JSON)
    is_(r.status, 403, "web2 does not dump web1's target (outside its scope)")

# --- a browser on the front may kill through it: its Origin is the front's ---
victim = spawn([TARGET], ready="ready", user=scope["web1"] or worker_user())
vpath = f"{inst('web1')}/{victim.pid}"
r = front.request("DELETE", vpath, headers=dict(JSON, Origin="http://evil.example"))
is_(r.status, 403, "DELETE through the front from another origin: 403")
r = web["web1"].request("DELETE", f"{P}/{victim.pid}", source=UNTRUSTED,
                        headers=dict(JSON, Origin=FRONT, **{"X-Forwarded-Host": front.hostport}))
is_(r.status, 403, "DELETE straight to web1 with the front's Origin, from an untrusted "
    "client that forwards the front's host: 403")
ok(victim.poll() is None, "the target still runs")
r = front.request("DELETE", vpath, headers=dict(JSON, Origin=FRONT,
                                                **{"Sec-Fetch-Site": "same-origin"}))
is_(r.status, 204, "DELETE through the front from the front's own page (its Origin): 204")
ok(victim.wait(timeout=10) is not None, "the target is gone")

# --- the fleet view ---
fleet_url = "/diagnostics/fleet/processes" + list_q
r = front.get(fleet_url, headers=JSON)
is_(r.status, 200, "fleet view answers")
is_(r.headers.get("x-diagproc-instance"), "front", "the fleet view is the front's answer")
fv = r.json() or {}
st = {i["name"]: i for i in fv.get("instances", [])}
is_(sorted(st), ["web1", "web2"], "fleet view names both members")
ok(all(i.get("status") == 200 and "error" not in i for i in st.values()), "both answered")
is_({k: v.get("href") for k, v in st.items()}, {n: FRONT + inst(n) for n in st},
    "each member's href is its path on the front")
is_({k: v.get("machineName") for k, v in st.items()}, {"web1": "web1", "web2": "web2"},
    "each member reported its own name")
procs = fv.get("processes", [])
for name in ("web1", "web2"):
    mine = [e for e in procs if e["id"] == targets[name].pid]
    ok(any(e["instance"] == name and e["machineName"] == name for e in mine),
       f"fleet view lists {name}'s target with instance {name}")
    if IS_ROOT:
        is_([e["instance"] for e in mine], [name], f"{name}'s target only under {name}")
ok(all(e["href"].startswith(f"{FRONT}{inst(e['instance'])}/") for e in procs),
   f"every fleet entry's href leads to its instance through the front ({len(procs)} entries)")
is_(sum(i.get("count", 0) for i in st.values()), len(procs), "counts add up to the entries")
r = front.get("/diagnostics/fleet/processes?allUsers=maybe", headers=JSON)
is_(r.status, 400, "fleet view: a malformed allUsers is 400")
r = front.request("DELETE", "/diagnostics/fleet/processes", headers=JSON)
is_((r.status, r.headers.get("allow")), (405, "GET"), "fleet view: DELETE is 405, Allow: GET")
r = front.get("/diagnostics/fleet/processes", headers={"Accept": "text/html"})
like(r.headers.get("content-type", ""), r"^application/json",
     "the members are asked for JSON whatever the browser accepts")

# the fleet view of the captures: every member's, newest first
r = front.get("/diagnostics/fleet/processes/captures", headers=JSON)
is_(r.status, 200, "fleet view of the captures answers")
fc = r.json() or {}
st = {i["name"]: i for i in fc.get("instances", [])}
ok(sorted(st) == ["web1", "web2"] and all(i.get("status") == 200 and i.get("count") == len(
    CAPTURES[n]) for n, i in st.items()), "both members answered, counting their captures")
caps = fc.get("captures", [])
is_([(c.get("id"), c.get("instance")) for c in caps],
    sorted(((cid, n) for n, ids in CAPTURES.items() for cid in ids), reverse=True),
    "every member's captures, newest first across the members, each with its instance")
ok(caps and all(a["href"].startswith(f"{FRONT}{inst(c['instance'])}/captures/{c['id']}/")
                for c in caps for a in c.get("artifacts", [])),
   "each artifact's href leads to its capture through the front")
href = next((a["href"] for c in caps if c.get("instance") == "web2"
             for a in c.get("artifacts", []) if a["name"] == "stacks.json"), "")
r = front.get(path_of(href), headers=JSON)
is_((r.status, (r.json() or {}).get("instance")), (200, "web2"),
    "…and downloads it from that member")
r = front.get("/diagnostics/fleet/processes/captures/x", headers=JSON)
is_(r.status, 404, "fleet view: another path below it is 404")

# a member that does not answer in time: web2 stopped with SIGSTOP (its
# listening socket still accepts, nothing reads)
front.expect_log("AH01102", "AH00898", "DP00002")    # logged by the proxy and the fleet view
os.killpg(web["web2"].proc.pid, signal.SIGSTOP)
try:
    # every process of web2 stopped before it is asked (a busy machine runs
    # the signal's delivery late); which did not, if one does not
    web2_procs = [web["web2"].proc.pid] + [int(k) for k in procstate.children(web["web2"].proc.pid)]
    if not ok(procstate.settle(lambda: all(set(procstate.thread_states(p)) <= {"T"}
                                           for p in web2_procs), secs=5),
              "web2's processes are all stopped"):
        diag({p: (procstate.thread_states(p), os.getpgid(p) if os.path.exists(f"/proc/{p}") else None)
              for p in web2_procs})
    t0 = time.time()
    r = front.get(fleet_url, headers=JSON)
    took = time.time() - t0
finally:
    os.killpg(web["web2"].proc.pid, signal.SIGCONT)
is_(r.status, 200, "fleet view answers while web2 hangs")
fv = r.json() or {}
st = {i["name"]: i for i in fv.get("instances", [])}
ok(st.get("web2", {}).get("status") in (502, 504), f"web2 is named: {st.get('web2')}")
like(st.get("web2", {}).get("error"), r"no answer in time", "web2: no answer in time")
ok(st.get("web1", {}).get("status") == 200 and
   any(e["id"] == targets["web1"].pid for e in fv.get("processes", [])),
   "web1's processes are still shown")
ok(not any(e["instance"] == "web2" for e in fv.get("processes", [])), "nothing under web2")
ok(took >= TIMEOUT * 0.9, f"the front waited its proxy timeout for web2 ({took:.1f} s)")

# web2 stopped: refused connections
front.expect_log("AH00957", "AH01114")      # the proxy logs each
web["web2"].stop()
r = front.get(fleet_url, headers=JSON)
is_(r.status, 200, "fleet view answers with web2 stopped")
fv = r.json() or {}
st = {i["name"]: i for i in fv.get("instances", [])}
ok(st.get("web2", {}).get("status") in (502, 503), f"web2 is named: {st.get('web2')}")
like(st.get("web2", {}).get("error"), r"not reachable", "web2: not reachable")
ok(any(e["id"] == targets["web1"].pid and e["instance"] == "web1"
       for e in fv.get("processes", [])), "web1's target still listed")
r = front.get(inst("web2"), headers=JSON)
ok(r.status in (502, 503), f"web2 addressed directly: the proxy's {r.status}")
r = front.get("/diagnostics/fleet/processes/captures", headers=JSON)
fc = r.json() or {}
st = {i["name"]: i for i in fc.get("instances", [])}
ok(r.status == 200 and st.get("web2", {}).get("status") in (502, 503)
   and [c["id"] for c in fc.get("captures", [])] == sorted(CAPTURES["web1"], reverse=True),
   "fleet view of the captures with web2 stopped: web2 named, web1's captures listed")

# --- forwarded headers: trusted front only ---
w1 = web["web1"]
spoof = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
         "X-Forwarded-Prefix": "/evil", "Forwarded": "host=evil.example;proto=https"}
direct = f"{w1.base}{P}/{targets['web1'].pid}"
r = w1.get(f"{P}/{targets['web1'].pid}", headers=dict(JSON, **spoof), source=UNTRUSTED)
is_((r.json() or {}).get("href"), direct, "from an untrusted client: the href ignores all "
    "forwarded headers")
r = w1.get(P + list_q, headers=dict(JSON, **spoof), source=UNTRUSTED)
ok(r.json() and all(e["href"].startswith(f"{w1.base}{P}/") for e in r.json()),
   "untrusted: every list href unchanged")
r = w1.get(f"{P}/{targets['web1'].pid}", headers=JSON, source=UNTRUSTED)
is_((r.json() or {}).get("href"), direct, "untrusted, no headers: the same href")
# through the front, a client's own forwarded headers change nothing either
r = front.get(f"{inst('web1')}/{targets['web1'].pid}", headers=dict(JSON, **spoof))
is_((r.json() or {}).get("href"), f"{FRONT}{inst('web1')}/{targets['web1'].pid}",
    "through the front: the client's X-Forwarded-*/Forwarded do not reach the href")
# the trusted peer's headers are used (RFC 7239 Forwarded wins over X-Forwarded-*)
r = w1.get(f"{P}/{targets['web1'].pid}", headers=dict(JSON, **spoof))
is_((r.json() or {}).get("href"), f"https://evil.example/evil/{targets['web1'].pid}",
    "from the trusted address: Forwarded host/proto and X-Forwarded-Prefix build the href")
r = w1.get(f"{P}/{targets['web1'].pid}", source=UNTRUSTED,
           headers={"Accept": "application/json"})
is_(r.headers.get("x-diagproc-instance"), "web1", "direct answers carry X-Diagproc-Instance")
# httpd's own refusals in a Location of ours name the instance as well
w1.expect_log("AH01630")        # the two refusals of Require below
r = w1.get("/diagnostics/denied", headers=JSON)
is_((r.status, r.headers.get("x-diagproc-instance")), (403, "web1"),
    "a 403 of Require in a diagproc Location carries X-Diagproc-Instance")
r = w1.get("/server-status?auto", headers=JSON, source=UNTRUSTED)
is_((r.status, r.headers.get("x-diagproc-instance")), (403, None),
    "other handlers' answers do not")
for spool in spools.values():
    shutil.rmtree(os.path.dirname(spool), ignore_errors=True)
done_testing()
