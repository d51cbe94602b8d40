# Every answer must parse as Kudu's clients parse it (Json.NET's default
# settings into Kudu's contracts, whose counts and sizes are int/long value
# types): the detail of every listed process, with DiagProcUsers *, checked
# field by field against its .NET type. As root that list holds the other
# httpd worker, the helper, a setuid target and a zombie — the processes a
# worker may not read itself. Other workers' modules (libc, apache2) are
# listed with build ids; ids follow Kudu's rules; the module list is in
# Kudu's order.
import datetime
import http.client
import json
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

from tap import ok, is_, like, diag, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT, HELPER_ROOT_READS
from procstate import settle

INT32 = ("id", "handle_count", "module_count", "thread_count")
INT64 = ("working_set", "peak_working_set", "private_memory", "virtual_memory",
         "peak_virtual_memory", "paged_memory", "paged_system_memory",
         "non_paged_system_memory", "peak_paged_memory")
DATETIMES = ("start_time", "time_stamp")
TIMESPANS = ("total_cpu_time", "user_cpu_time", "privileged_cpu_time")
URIS = ("href", "minidump", "parent")
STRINGS = ("name", "machineName", "file_name", "command_line", "user_name")
BOOLS = ("is_scm_site", "is_webjob")
# .NET's TimeSpan.Parse, invariant culture: [-][d.]hh:mm:ss[.fffffff]
TIMESPAN = re.compile(r"^-?(\d+\.)?([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,7})?$")
# Json.NET's ISO-8601 reading of a DateTime
DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$")


def is_int(v, bits):
    return type(v) is int and -(1 << (bits - 1)) <= v < (1 << (bits - 1))


def datetime_ok(v):
    m = isinstance(v, str) and DATETIME.match(v)
    if not m:
        return False
    try:
        datetime.datetime(*(int(g) for g in m.groups()[:6]))
        return True
    except ValueError:
        return False


def absolute(v):
    return isinstance(v, str) and re.match(r"^https?://[^/]+/", v) is not None


def contract_problems(d):
    """Everything in a detail that Json.NET could not put into Kudu's ProcessInfo."""
    bad = []
    for k in INT32:
        if not is_int(d.get(k), 32):
            bad.append(f"{k}={d.get(k)!r} is not an Int32")
    for k in INT64:
        if not is_int(d.get(k), 64):
            bad.append(f"{k}={d.get(k)!r} is not an Int64")
    for k in BOOLS:
        if k in d and type(d[k]) is not bool:
            bad.append(f"{k}={d[k]!r} is not a Boolean")
    for k in DATETIMES:
        if not datetime_ok(d.get(k)):
            bad.append(f"{k}={d.get(k)!r} is not a DateTime")
    for k in TIMESPANS:
        if not (isinstance(d.get(k), str) and TIMESPAN.match(d[k])):
            bad.append(f"{k}={d.get(k)!r} is not a TimeSpan")
    for k in URIS:
        if not absolute(d.get(k)):
            bad.append(f"{k}={d.get(k)!r} is not an absolute Uri")
    for k in STRINGS:
        if d.get(k) is not None and not isinstance(d[k], str):
            bad.append(f"{k}={d[k]!r} is not a string")
    if not isinstance(d.get("children"), list) or not all(absolute(c) for c in d["children"]):
        bad.append(f"children={d.get('children')!r} are not absolute Uris")
    fh = d.get("open_file_handles")
    if fh is not None and not (isinstance(fh, list) and all(isinstance(x, str) for x in fh)):
        bad.append("open_file_handles is not a list of strings")
    for t in d.get("threads") or []:
        if not (is_int(t.get("id"), 32) and absolute(t.get("href")) and isinstance(t.get("state"), str)):
            bad.append(f"thread {t!r} does not fit ProcessThreadInfo")
    for m in d.get("modules") or []:
        if not (isinstance(m.get("base_address"), str) and isinstance(m.get("file_name"), str)
                and absolute(m.get("href")) and isinstance(m.get("file_version"), str)):
            bad.append(f"module {m!r} does not fit ProcessModuleInfo")
    env = d.get("environment_variables")
    if env is not None and not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
        bad.append("environment_variables is not a string dictionary")
    mods = d.get("modules")
    if isinstance(mods, list) and is_int(d.get("module_count"), 32) and d["module_count"] >= 0 \
            and d["module_count"] != len(mods):
        bad.append(f"module_count {d['module_count']} but {len(mods)} modules")
    return bad


work = tempfile.mkdtemp(prefix="dp-kudu-")
os.chmod(work, 0o755)
h = Httpd(server_conf="StartServers 2\nThreadsPerChild 25\nMaxRequestWorkers 50\n"
                      "MinSpareThreads 50\nMaxSpareThreads 75",
          locations={"/p": "DiagProcUsers *\nDiagProcAllow kill environment"}).start()
# root's processes are in this scope but outside the helper's ceiling (root
# only if named): the helper refuses the worker's reads of them, and logs each
h.expect_log(HELPER_ROOT_READS)
ok(settle(lambda: len(h.workers()) == 2), "httpd runs two worker processes")
workers = h.workers()
helper = h.helpers()[0]

# ---- the processes a worker may not read itself
setuid_pid = None
if IS_ROOT:
    suid = os.path.join(work, "suid_target")
    shutil.copy(os.path.join(BUILD, "targets", "dump_target"), suid)
    shutil.chown(suid, "dptest2", "dptest2")
    os.chmod(suid, 0o4755)
    st = spawn([suid], ready="ready", user=worker_user())
    setuid_pid = st.pid
    with open(f"/proc/{st.pid}/status") as f:
        uids = [l for l in f if l.startswith("Uid:")][0].split()[1:3]
    ok(uids[0] != uids[1], f"the setuid target runs with real uid {uids[0]}, effective {uids[1]}")
zombie = spawn(["/bin/true"], user=worker_user())


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


ok(settle(lambda: state(zombie.pid) == "Z"), "a zombie is waiting to be reaped")
r = h.get(f"/p/{zombie.pid}/environments/all")
is_((r.status, "zombie" in ((r.json() or {}).get("Message") or "")), (409, True),
    "the zombie's environment: 409 zombie, as the other routes of a zombie say")

# ---- the detail of every listed process
lst = h.get("/p?allUsers=true")
is_(lst.status, 200, "the list of every user's processes answers 200")
pids = [e["id"] for e in lst.json()]


def entry_problems(e):
    bad = [f"{k}={e.get(k)!r}" for k in ("id", "thread_count") if not is_int(e.get(k), 32)]
    bad += [f"working_set={e.get('working_set')!r}"] if not is_int(e.get("working_set"), 64) else []
    bad += [] if datetime_ok(e.get("start_time")) else [f"start_time={e.get('start_time')!r}"]
    bad += [] if TIMESPAN.match(str(e.get("total_cpu_time"))) else ["total_cpu_time"]
    bad += [] if absolute(e.get("href")) else ["href"]
    return bad


is_({e["id"]: entry_problems(e) for e in lst.json() if entry_problems(e)}, {},
    "every list entry fits Kudu's ProcessInfo too")
need = set(workers) | {helper, zombie.pid} | ({setuid_pid} if setuid_pid else set())
ok(need <= set(pids), "the list holds both workers, the helper, the zombie and the setuid target")


def detail(pid):
    r = h.get(f"/p/{pid}")
    return pid, r.status, r.json()


with ThreadPoolExecutor(max_workers=4) as ex:
    details = list(ex.map(detail, pids))
answered = {pid: d for pid, st, d in details if st == 200}
gone = [pid for pid, st, d in details if st == 404]
odd = [(pid, st) for pid, st, d in details if st not in (200, 404)]
if not is_(odd, [], "every detail answers 200 (or 404 for a process that ended meanwhile)"):
    diag("; ".join(f"{pid}: {(d or {}).get('Message')}" for pid, st, d in details
                   if st not in (200, 404)) + "\n" + h.logs()[-1500:])
ok(len(answered) >= len(pids) - len(gone) and len(answered) > 10,
   f"{len(answered)} details checked ({len(gone)} processes ended meanwhile)")
problems = {pid: contract_problems(d) for pid, d in answered.items()}
problems = {pid: p for pid, p in problems.items() if p}
is_(problems, {}, "every detail fits Kudu's ProcessInfo: no null int/long/bool, "
    "parseable TimeSpans and DateTimes, absolute hrefs")
for pid in sorted(need):
    ok(pid in answered and not contract_problems(answered[pid]),
       f"process {pid} ({answered.get(pid, {}).get('name')}) answers a detail Kudu parses")

# ---- what each of them shows
z = answered.get(zombie.pid, {})
is_([z.get(k) for k in ("working_set", "private_memory", "virtual_memory")], [-1, -1, -1],
    "the zombie's memory figures are -1, Kudu's 'could not be read'")
is_(z.get("state"), "zombie", "…and its psutil state says why")
hd = answered.get(helper, {})
if IS_ROOT:
    # it holds capabilities: outside any scope that does not name root, so
    # Kudu's 'could not be read' values, not nulls
    is_((hd.get("module_count"), hd.get("modules")), (-1, []),
        "the helper (it holds capabilities) keeps its modules from a scope without root: -1")
else:
    # without CAP_SYS_PTRACE nobody may read a non-dumpable process's maps
    is_(hd.get("module_count"), -1, "the helper's modules cannot be read: module_count is -1")
if setuid_pid:
    sd = answered.get(setuid_pid, {})
    ok(sd.get("module_count", 0) > 0 and any(m["file_name"] == "suid_target" for m in sd.get("modules", [])),
       f"the setuid target's modules are listed ({sd.get('module_count')})")
    ok(isinstance(sd.get("open_file_handles"), list) and sd.get("handle_count", -1) >= 3,
       "…and its open files")

# other workers: one connection stays on one worker, which then asks about the other
conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=60)
conn.request("GET", "/p/0")
me = json.loads(conn.getresponse().read())["id"]
other = [w for w in workers if w != me][0]
conn.request("GET", f"/p/{other}")
r = conn.getresponse()
od = json.loads(r.read())
is_(r.status, 200, f"worker {me} answers the detail of worker {other}")
is_(contract_problems(od), [], "…which Kudu parses")
names = [m["file_name"] for m in od.get("modules", [])]
ok(od.get("module_count", 0) > 5 and "apache2" in names and any(n.startswith("libc.so") for n in names),
   f"…listing its modules, apache2 and libc among them ({od.get('module_count')})")
is_(names, sorted(names, key=str.lower), "…sorted by file name, any case (Kudu's order)")
for want in ("apache2", "libc.so.6"):
    m = [m for m in od.get("modules", []) if m["file_name"] == want]
    if not m:
        ok(False, f"{want} is a module of worker {other}")
        continue
    path = m[0]["href"].split(str(h.port), 1)[1]
    conn.request("GET", path)
    r = conn.getresponse()
    md = json.loads(r.read())
    like(md.get("build_id") or "", r"^[0-9a-f]{40}$", f"…{want}'s module detail has its build id")
    conn.request("GET", f"/p/{other}/modules")
    r = conn.getresponse()
    ok(want in [x["file_name"] for x in json.loads(r.read())], f"…and the modules route lists {want}")
conn.close()

# ---- ids as Kudu reads them
with open("/proc/sys/kernel/pid_max") as f:
    pid_max = int(f.read())
for q, why in ((str(pid_max + 1), "above pid_max"), ("-7", "a negative id"),
               ("99999999999999999999", "beyond any integer")):
    r = h.get(f"/p/{q}")
    is_(r.status, 404, f"id {why} is 404, as Kudu answers")
    like((r.json() or {}).get("Message"), r"is not running", "…with Kudu's message")
r = h.get(f"/p/0{workers[0]}")
is_((r.status, (r.json() or {}).get("id")), (200, workers[0]), "a leading zero names the same pid")
r = h.get("/p/abc")
is_(r.status, 400, "a non-number id is 400")
r = h.get(f"/p/{workers[0]}/threads/{pid_max + 1}")
is_(r.status, 404, "a thread id above pid_max is 404")

# ---- the helper refuses to act on itself, and says so
r = h.request("DELETE", f"/p/{helper}")
is_(r.status, 403, "DELETE of the helper is 403")
like((r.json() or {}).get("Message"), "diagproc helper", "…naming it the helper, not the httpd parent")
ok(helper in h.helpers(), "…and the helper runs on")

dphttpd.kill_quietly(zombie)
h.stop()
shutil.rmtree(work, ignore_errors=True)
done_testing()
