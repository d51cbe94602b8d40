# The read-only API against a real httpd: list, detail, id 0, threads,
# modules, prefix-aware hrefs, the same-user filter, values checked against
# what this test reads itself from /proc for targets it spawned.
import os
import re
import subprocess
import time

from tap import ok, is_, like, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT
import procstate

TARGET = os.path.join(BUILD, "targets", "proc_target")
TIMESPAN = r"^(\d+\.)?\d\d:\d\d:\d\d\.\d{7}$"
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$"


def proc_stat(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    comm = raw[raw.index(b"(") + 1:raw.rindex(b")")]
    rest = raw[raw.rindex(b")") + 2:].split()
    return comm, rest


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


# Second Location with a wider scope, to test DiagProcUsers and allUsers.
other = "dptest2" if IS_ROOT else None
locs = {
    "/diagnostics/processes": "",
    "/api/processes": "",
}
if other:
    locs["/wide/processes"] = f"DiagProcUsers {worker_user()} {other}"
h = Httpd(locations=locs).start()
base = h.base

tmpfile = os.path.join(h.dir, "opened-by-target.txt")
with open(tmpfile, "w") as f:
    f.write("x")
os.chmod(tmpfile, 0o644)

t = spawn([TARGET, "--threads", "3", "--rss", "32", "--open", tmpfile, "--children", "2",
           "extra arg", "--"], ready="ready", user=worker_user())
pid = t.pid
children = [int(l.split()[1]) for l in t.ready_lines if l.startswith("child ")]
# "ready" is printed just before the target's main thread pauses: on a busy
# machine it can still be runnable a while after, and the detail's state word
# below is read from the main thread
procstate.settle(lambda: proc_stat(pid)[1][0] == b"S", 10)

# ---- list
r = h.get("/diagnostics/processes")
is_(r.status, 200, "list answers 200")
is_(r.headers.get("content-type"), "application/json; charset=utf-8", "list is JSON, UTF-8")
lst = r.json()
ok(isinstance(lst, list) and lst, "list is a non-empty JSON array")
mine = [e for e in lst if e["id"] == pid]
is_(len(mine), 1, "the spawned target is listed")
e = mine[0] if mine else {}
is_(list(e.keys())[:4], ["id", "name", "machineName", "href"], "Kudu's fields first, in order")
for k in ("user_name", "parent_id", "state", "thread_count", "working_set", "total_cpu_time",
          "start_time"):
    ok(k in e, f"list entry has {k}")
is_(e.get("name"), "proc_target", "name")
is_(e.get("href"), f"{base}/diagnostics/processes/{pid}", "href uses the requested prefix")
is_(e.get("user_name"), worker_user(), "user_name is the owner")
is_(e.get("parent_id"), os.getpid(), "parent_id")
is_(e.get("thread_count"), 4, "thread_count (main + 3)")
like(e.get("total_cpu_time", ""), TIMESPAN, "total_cpu_time is a TimeSpan")
like(e.get("start_time", ""), ISO, "start_time is ISO-8601 UTC")
names = [(x["name"].lower(), x["id"]) for x in lst]
is_(names, sorted(names), "sorted by name (case-insensitive), then pid")
ok(all(x["user_name"] == worker_user() for x in lst), "default filter: only the worker's user")
workers = [x for x in lst if x["parent_id"] == h.parent_pid]
ok(workers and all(x["name"] == "apache2" for x in workers),
   "every entry keeps its own name (the httpd workers are apache2)")
ok(not any(x["id"] == 1 for x in lst), "pid 1 (root) is not in the default list")

r2 = h.get("/api/processes/")
ok(any(x["href"] == f"{base}/api/processes/{pid}" for x in r2.json() or []),
   "second Location: hrefs carry its prefix (trailing slash accepted)")

# ---- scope: another user's process
if other:
    o = spawn([TARGET], ready="ready", user=other)
    lst = h.get("/api/processes?allUsers=true").json()
    ok(not any(x["id"] == o.pid for x in lst),
       "allUsers=true still stays within the default scope (User)")
    lst = h.get("/wide/processes").json()
    ok(not any(x["id"] == o.pid for x in lst), "wide scope, default filter: same user only")
    lst = h.get("/wide/processes?allUsers=true").json()
    ok(any(x["id"] == o.pid for x in lst), "wide scope + allUsers=true lists dptest2's process")
    r = h.get(f"/api/processes/{o.pid}")
    is_(r.status, 403, "detail of another user's process outside scope is 403")
    like((r.json() or {}).get("Message"), "DiagProcUsers", "the 403 names the directive")
    r = h.get(f"/wide/processes/{o.pid}")
    is_(r.status, 200, "detail within the wide scope is 200")
    dphttpd.kill_quietly(o)
else:
    lst = h.get("/api/processes?allUsers=true").json()
    ok(not any(x["id"] == 1 for x in lst), "allUsers=true stays within scope (own user)")

# ---- detail
r = h.get(f"/diagnostics/processes/{pid}")
is_(r.status, 200, "detail answers 200")
d = r.json() or {}
comm, rest = proc_stat(pid)
is_(d.get("id"), pid, "detail id")
is_(d.get("name"), comm.decode(), "detail name = comm")
is_(d.get("ppid"), int(rest[1]), "ppid")
is_(d.get("href"), f"{base}/diagnostics/processes/{pid}", "detail href")
is_(d.get("minidump"), f"{base}/diagnostics/processes/{pid}/dump", "minidump href")
if IS_ROOT:
    is_(d.get("parent"), f"{base}/diagnostics/processes/-1",
        "parent (root's test runner) outside the visible set is P/-1")
else:
    is_(d.get("parent"), f"{base}/diagnostics/processes/{os.getpid()}",
        "parent (the test runner, same user) is its href")
is_(sorted(d.get("children", [])), sorted(f"{base}/diagnostics/processes/{c}" for c in children),
    "children hrefs")
is_(d.get("thread_count"), 4, "detail thread_count")
is_(len(d.get("threads", [])), 4, "threads array")
uid = os.stat(f"/proc/{pid}").st_uid
is_((d.get("uids") or {}).get("real"), uid, "uids.real")
is_(d.get("user_name"), worker_user(), "user_name")
rss = status_kb(pid, "VmRSS")
ok(d.get("working_set") and abs(d["working_set"] - rss) < 4 << 20,
   f"working_set {d.get('working_set')} within 4 MiB of VmRSS {rss}")
ok(d.get("working_set", 0) > 32 << 20, "working_set includes the 32 MiB the target touched")
ok(d.get("private_memory", 0) >= 32 << 20, "private_memory counts the anonymous memory")
is_(d.get("file_name"), TARGET, "file_name is the executable")
is_(d.get("cmdline"), [TARGET, "--threads", "3", "--rss", "32", "--open", tmpfile,
                       "--children", "2", "extra arg", "--"], "cmdline array")
ok(d.get("command_line", "").endswith('"extra arg" --'), "command_line quotes an argument with a space")
ok(tmpfile in (d.get("open_file_handles") or []), "open_file_handles has the file the target opened")
is_(d.get("handle_count"), len(os.listdir(f"/proc/{pid}/fd")), "handle_count = #fds")
mods = [m["file_name"] for m in d.get("modules", [])]
ok(any(m.startswith("libc.so") for m in mods), "modules include libc")
is_(d.get("module_count"), len(d.get("modules", [])), "module_count")
for k in ("total_cpu_time", "user_cpu_time", "privileged_cpu_time"):
    like(d.get(k, ""), TIMESPAN, f"{k} is a TimeSpan")
like(d.get("start_time", ""), ISO, "start_time ISO")
like(d.get("time_stamp", ""), ISO, "time_stamp ISO")
for k in ("virtual_memory", "peak_virtual_memory", "peak_working_set", "paged_memory",
          "paged_system_memory", "non_paged_system_memory", "peak_paged_memory",
          "nice", "num_fds", "cpu_times", "create_time", "memory_info", "io_counters",
          "num_ctx_switches", "cgroup", "cwd", "gids", "state", "machineName"):
    ok(k in d, f"detail has {k}")
ok("environment_variables" not in d, "no environment unless DiagProcAllow environment")
ok(time.time() - 120 < d.get("create_time", 0) <= time.time() + 1,
   f"create_time is the target's recent start in epoch seconds ({d.get('create_time')})")
is_(d.get("state"), "sleeping", "state word")
ok("cpu_percent" not in d, "no cpu_percent without sample_ms")

# cpu_percent of a spinning process
spinner = spawn([TARGET, "--spin"], ready="ready", user=worker_user())
dphttpd.favour_cpu(spinner.pid)


def cpu_ticks(pid):
    rest = proc_stat(pid)[1]
    return int(rest[11]) + int(rest[12])     # utime + stime


# cpu_percent against the spinner's share of a core as /proc tells this test
# over the whole request: the route's 300 ms lie inside it, and the share is
# steady (about 100 on a quiet machine, less where other work takes the
# cores). Where the spinner got almost nothing, measure again: a share near
# 0 would not tell a right cpu_percent from a wrong one.
for _ in range(5):
    c0, w0 = cpu_ticks(spinner.pid), time.monotonic()
    r = h.get(f"/diagnostics/processes/{spinner.pid}?sample_ms=300")
    c1, w1 = cpu_ticks(spinner.pid), time.monotonic()
    share = (c1 - c0) / os.sysconf("SC_CLK_TCK") / (w1 - w0) * 100
    cp = (r.json() or {}).get("cpu_percent")
    if share >= 10:
        break
ok(cp is not None and share >= 10 and 0.6 * share - 5 < cp < min(130, 1.4 * share + 10),
   f"cpu_percent of a spinning thread is its share of a core (got {cp}, /proc: {share:.0f})")
r = h.get(f"/diagnostics/processes/{spinner.pid}?sample_ms=5000")
is_(r.status, 400, "sample_ms out of range is 400")
dphttpd.kill_quietly(spinner)

# ---- id 0
r = h.get("/api/processes/0")
is_(r.status, 200, "id 0 answers")
d0 = r.json() or {}
ok(d0.get("id", 0) > 0, "id 0 reports the real pid")
is_(d0.get("href"), f"{base}/api/processes/{d0.get('id')}", "id 0 href carries the real pid")
comm0, rest0 = proc_stat(d0["id"]) if d0.get("id") else (b"", [])
is_(comm0, b"apache2", "id 0 is an httpd process")
is_(int(rest0[1]) if rest0 else None, h.parent_pid, "id 0 is a child of the httpd parent")

# ---- threads
r = h.get(f"/api/processes/{pid}/threads")
th = r.json() or []
is_(sorted(x["id"] for x in th), sorted(int(x) for x in os.listdir(f"/proc/{pid}/task")),
    "threads list = /proc/PID/task")
tid = max(x["id"] for x in th) if th else 0
r = h.get(f"/api/processes/{pid}/threads/{tid}")
td = r.json() or {}
is_(r.status, 200, "thread detail answers")
like(td.get("name", ""), r"^worker-\d$", "thread name (task comm)")
is_(td.get("process"), f"{base}/api/processes/{pid}", "thread's process href")
for k in ("start_address", "current_priority", "priority_level", "base_priority", "start_time",
          "total_processor_time", "user_processor_time", "priviledged_processor_time", "state",
          "wait_reason"):
    ok(k in td, f"thread detail has {k}")
is_(td.get("priority_level"), "Normal", "priority_level of nice 0")
is_(h.get(f"/api/processes/{pid}/threads/{pid + 100000}").status, 404, "unknown tid is 404")
is_(h.get(f"/api/processes/{pid}/threads/x1").status, 400, "malformed tid is 400")

# ---- modules
r = h.get(f"/api/processes/{pid}/modules")
ml = r.json() or []
libc = [m for m in ml if m["file_name"].startswith("libc.so")]
is_(len(libc), 1, "libc listed once")
if libc:
    m = libc[0]
    like(m["base_address"], r"^[0-9a-f]+$", "base_address is lower-case hex without 0x")
    is_(m["href"], f"{base}/api/processes/{pid}/modules/{m['base_address']}", "module href")
    is_(m["file_version"], "6", "file_version from the soname")
    md = h.get(f"/api/processes/{pid}/modules/{m['base_address']}").json() or {}
    path = md.get("file_path", "")
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    want = re.search(r"Build ID: ([0-9a-f]+)", out)
    ok(want is not None, "readelf finds libc's build id")
    is_(md.get("build_id"), want.group(1) if want else None, "build_id matches readelf -n")
    ok(md.get("module_memory_size", 0) > 1 << 20, "module_memory_size spans libc's mappings")
    with open(f"/proc/{pid}/maps") as f:
        first = [l for l in f if l.rstrip().endswith(path)][0]
    is_(md.get("base_address"), first.split("-")[0].lstrip("0") or "0", "base = first mapping")
is_(h.get(f"/api/processes/{pid}/modules/zzz").status, 400, "malformed base address is 400")
is_(h.get(f"/api/processes/{pid}/modules/1000").status, 404, "no module at that base is 404")

h.stop()
done_testing()
