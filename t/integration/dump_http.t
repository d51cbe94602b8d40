# Dumps through a real httpd: raw cores that gdb, lldb and eu-stack read,
# dumpType memory selection, zip bundles, id 0, limits, and faults half-way
# (the target is never left stopped, the truncation is visible to curl).
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import zipfile

from tap import ok, is_, like, diag, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT
from procstate import running, settle, children
from elfcore import layout_problems, segments

TARGET = os.path.join(BUILD, "targets", "dump_target")
BIG = os.path.join(BUILD, "targets", "proc_target")
FUNCS = ["alpha_leaf", "alpha_mid", "alpha_top", "beta_leaf", "beta_mid", "beta_top",
         "gamma_leaf", "gamma_mid", "gamma_top", "main_leaf", "main_mid", "main_top"]
PATTERN = "0x5a5aa5a5deadbeef"
work = tempfile.TemporaryDirectory(prefix="dp-dump-")


def settle_not_stopped(pid, secs=5):
    return settle(lambda: running(pid), secs)


def curl(url, out, *extra):
    return subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", *extra, url],
                          capture_output=True, text=True, timeout=300)


def gdb_bt(exe, core):
    return subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", exe, core],
                          capture_output=True, text=True, timeout=120).stdout


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])


h = Httpd(server_conf="DiagProcMaxDumps 1",
          locations={"/p": "DiagProcAllow dump fulldump",
                     "/min": "DiagProcAllow dump"}).start()
t = spawn([TARGET], ready="ready", user=worker_user())
heap = [l.split()[1] for l in t.ready_lines if l.startswith("heap ")][0]

# ---- dumpType 0: a small core with complete backtraces
core0 = os.path.join(work.name, "min.core")
hdr = os.path.join(work.name, "hdr")
r = curl(f"{h.base}/p/{t.pid}/dump", core0, "-D", hdr)
is_(r.stdout, "200", "dump answers 200")
headers = open(hdr).read()
like(headers, r"(?i)content-type: application/octet-stream", "raw dump is octet-stream")
like(headers, rf'(?i)content-disposition: attachment; filename="dump_target-{t.pid}-\d{{8}}-\d{{6}}\.core"',
     "Content-Disposition names process, pid and UTC time")
m = re.search(r"(?i)content-length: (\d+)", headers)
ok(m and int(m.group(1)) == os.path.getsize(core0), "Content-Length is exact")
size0 = os.path.getsize(core0)
ok(size0 < 2 << 20, f"minimal core is small ({size0 // 1024} KiB)")
ok(running(t.pid), "target runs again after the dump")
bt = gdb_bt(TARGET, core0)
missing = [f for f in FUNCS if f not in bt]
is_(missing, [], "gdb: every thread's named frames are in the minimal core")
for leaf in ("alpha", "beta", "gamma"):
    blocks = [b for b in bt.split("\nThread ") if f"{leaf}_leaf" in b]
    ok(len(blocks) == 1 and f"{leaf}_mid" in blocks[0] and f"{leaf}_top" in blocks[0],
       f"gdb: {leaf}_leaf, _mid and _top are in one thread")
lldb = subprocess.run(["lldb", "-b", "-o", "thread backtrace all", "-c", core0, TARGET],
                      capture_output=True, text=True, timeout=120).stdout
is_([f for f in FUNCS if f not in lldb], [], "lldb: the same frames")
eu = subprocess.run(["eu-stack", f"--core={core0}", "-e", TARGET],
                    capture_output=True, text=True, timeout=120).stdout
is_([f for f in FUNCS if f not in eu], [], "eu-stack: the same frames")

# ---- dumpType 2 and 0x200: memory
core2 = os.path.join(work.name, "full.core")
is_(curl(f"{h.base}/p/{t.pid}/dump?dumpType=2", core2).stdout, "200", "dumpType=2 answers")
x = subprocess.run(["gdb", "-batch", "-nx", "-ex", f"x/2gx {heap}", TARGET, core2],
                   capture_output=True, text=True).stdout
ok(PATTERN in x, "dumpType=2: gdb reads the known pattern from the heap")
corep = os.path.join(work.name, "priv.core")
is_(curl(f"{h.base}/p/{t.pid}/dump?dumpType=0x200", corep).stdout, "200", "dumpType=0x200 answers")
x = subprocess.run(["gdb", "-batch", "-nx", "-ex", f"x/2gx {heap}", TARGET, corep],
                   capture_output=True, text=True).stdout
ok(PATTERN in x, "dumpType=0x200: the heap is there")
ok(os.path.getsize(corep) < os.path.getsize(core2),
   f"…and the core is smaller than with 2 ({os.path.getsize(corep) >> 10} < {os.path.getsize(core2) >> 10} KiB)")
is_(layout_problems(core0) + layout_problems(core2) + layout_problems(corep), [],
    "every PT_LOAD of the three cores is page-aligned and inside the file")
os.unlink(core2)
os.unlink(corep)

# ---- short absent gaps inside a run of present pages are zeros, in place
holes = spawn([BIG, "--holes"], ready="ready", user=worker_user())
at = int([l.split()[1] for l in holes.ready_lines if l.startswith("holes_at ")][0], 16)
coreh = os.path.join(work.name, "holes.core")
is_(curl(f"{h.base}/p/{holes.pid}/dump?dumpType=2", coreh).stdout, "200", "dumpType=2 of a target with holes")
is_(layout_problems(coreh), [], "…its PT_LOADs are page-aligned and inside the file")
x = subprocess.run(["gdb", "-batch", "-nx"] + sum([["-ex", f"x/1gd {at + k * 4096}"] for k in range(64)], [])
                   + [BIG, coreh], capture_output=True, text=True).stdout
got = [int(v) for v in re.findall(r":\s+(-?\d+)", x)]
is_(got, [0 if k % 8 in (3, 4) else 1000 + k for k in range(64)],
    "…gdb reads every page's value at its address, and zeros in the holes")
dphttpd.kill_quietly(holes)
os.unlink(coreh)

# ---- more than 65535 segments: PN_XNUM, with the real count in section 0
runs = spawn([BIG, "--runs", "70000"], ready="ready", user=worker_user())
at = int([l.split()[1] for l in runs.ready_lines if l.startswith("runs_at ")][0], 16)
corer = os.path.join(work.name, "runs.core")
is_(curl(f"{h.base}/p/{runs.pid}/dump?dumpType=2", corer).stdout, "200", "dumpType=2 of 70000 separate runs")
loads = [s for s in segments(corer) if s[0] == 1]
ok(len(loads) >= 70000, f"…{len(loads)} PT_LOADs, counted through PN_XNUM")
is_(layout_problems(corer), [], "…each page-aligned and inside the file")
probe = {k: at + k * 18 * 4096 for k in (0, 35000, 69999)}
x = subprocess.run(["gdb", "-batch", "-nx"] + sum([["-ex", f"x/1gd {a:#x}"] for a in probe.values()], [])
                   + [BIG, corer], capture_output=True, text=True, timeout=300).stdout
is_([int(v) for v in re.findall(r":\s+(-?\d+)", x)], list(probe), "…gdb reads the first, middle and last run")
dphttpd.kill_quietly(runs)
os.unlink(corer)

# ---- parameters and policy
for q, status, pattern, name in (("dumpType=0x2000000", 400, "MiniDumpValidTypeFlags", "a bit Windows does not define"),
                                 ("dumpType=abc", 400, "not a number", "a non-number"),
                                 ("format=tar", 400, "format", "an unknown format")):
    r = h.get(f"/p/{t.pid}/dump?{q}")
    is_(r.status, status, f"{name}: {status}")
    like((r.json() or {}).get("Message"), pattern, f"{name}: the Message says why")
r = h.get(f"/min/{t.pid}/dump?dumpType=2")
is_(r.status, 403, "dumpType 2 without DiagProcAllow fulldump is 403")
like((r.json() or {}).get("Message"), "DiagProcAllow fulldump", "…naming the directive")
ok(running(t.pid), "refused requests never touched the target")

# ---- zip bundle
zpath = os.path.join(work.name, "b.zip")
r = curl(f"{h.base}/p/{t.pid}/dump?format=zip", zpath, "-D", hdr)
is_(r.stdout, "200", "format=zip answers")
headers = open(hdr).read()
like(headers, r"(?i)content-type: application/zip", "zip content type")
like(headers, r'(?i)filename="dump_target-\d+-\d{8}-\d{6}\.zip"', "zip filename")
is_(subprocess.run(["unzip", "-tq", zpath], capture_output=True).returncode, 0, "unzip -t accepts it")
with zipfile.ZipFile(zpath) as z:
    names = z.namelist()
    is_(z.testzip(), None, "Python's zipfile accepts it")
    z.extractall(os.path.join(work.name, "bundle"))
for n in ("core", "manifest.json", "open-gdb.sh", "open-lldb.sh"):
    ok(n in names, f"bundle has {n}")
ok(any(n.endswith("/dump_target") for n in names), "bundle has the executable in its sysroot")
ok(any("libc.so" in n for n in names), "bundle has libc in its sysroot")
elsewhere = tempfile.mkdtemp(dir=work.name)
script = os.path.join(work.name, "bundle", "open-gdb.sh")
os.chmod(script, 0o755)
out = subprocess.run([script, "-batch", "-ex", "thread apply all bt"], cwd=elsewhere,
                     capture_output=True, text=True, timeout=120).stdout
is_([f for f in FUNCS if f not in out], [], "open-gdb.sh from another directory: named frames")

# ---- id 0: the serving worker's own stack
c0 = os.path.join(work.name, "self.core")
r = curl(f"{h.base}/p/0/dump", c0, "-D", hdr)
is_(r.stdout, "200", "dumping id 0 works (the streaming thread keeps running)")
wpid = int(re.search(r'filename="[^"]*-(\d+)-\d{8}', open(hdr).read()).group(1))
bt = gdb_bt("/usr/sbin/apache2", c0)
ok("handle_dump" in bt or "dp_handler" in bt, "id 0's core shows the handler's own stack")
ok(settle_not_stopped(wpid), "the worker runs on")
is_(h.get("/p/0").status, 200, "…and serves the next request")

# ---- a target a debugger is attached to: 409 naming the tracer, and it stays traced
gdbp = subprocess.Popen(["gdb", "-nx", "-batch", "-p", str(t.pid), "-ex", "shell sleep 5"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
traced = lambda: re.search(r"TracerPid:\s*(\d+)", open(f"/proc/{t.pid}/status").read()).group(1)  # noqa: E731
deadline = time.time() + 20
while traced() == "0" and time.time() < deadline:
    time.sleep(0.1)
r = h.get(f"/p/{t.pid}/dump")
is_(r.status, 409, "a target under a debugger is 409")
like(r.json().get("Message", "") if r.status == 409 else "", rf"traced by process {gdbp.pid}\b",
     "…naming the debugger's pid")
is_(traced(), str(gdbp.pid), "…and the debugger keeps it")
gdbp.wait(timeout=60)
ok(settle_not_stopped(t.pid), "…which runs on once the debugger detaches")

# ---- DiagProcMaxDumps: a second dump while one runs is 503 + Retry-After
# (logged, as every 5xx is); the dumps cut below log that they ended early
h.expect_log("DP00010", "DP00001")
big = spawn([BIG, "--rss", "512"], ready="ready", user=worker_user())
sock = socket.create_connection(("127.0.0.1", h.port))
sock.sendall(f"GET /p/{big.pid}/dump?dumpType=2 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
sock.recv(65536)        # the first bytes: the dump is under way, and we stop reading
time.sleep(0.3)
r = h.get(f"/p/{t.pid}/dump")
is_(r.status, 503, "a dump beyond DiagProcMaxDumps is 503")
ok(r.headers.get("retry-after"), "…with Retry-After")

# ---- client gone mid-dump: the target resumes, nothing stays stopped
sock.close()
ok(settle_not_stopped(big.pid), "client disconnect mid-dump: the target is not left stopped")
time.sleep(0.5)
r = h.get(f"/p/{t.pid}/dump")
is_(r.status, 200, "the dump slot is free again")


def dump_while(action, name, pid=None, query="dumpType=2", out=None):
    """Start a dump of `pid` (default: `big`) with curl, run action() mid-stream, expect
    curl to see the truncation and the target to resume. The partial file is kept
    only when `out` names it."""
    pid = pid or big.pid
    path = out or os.path.join(work.name, "cut.core")
    p = subprocess.Popen(["curl", "-sS", "--limit-rate", "20M", "-o", path,
                          f"{h.base}/p/{pid}/dump?{query}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    action()
    rc = p.wait(timeout=120)
    ok(rc != 0, f"{name}: curl sees the truncation (exit {rc})")
    ok(settle_not_stopped(pid), f"{name}: the target is not left stopped")
    if not out and os.path.exists(path):
        os.unlink(path)


def kill_helper_child():
    for p in h.dumpers():
        os.kill(p, signal.SIGKILL)


def kill_worker():
    for p in h.workers():
        os.kill(p, signal.SIGKILL)


dump_while(kill_helper_child, "kill -9 of the helper's dumping child")
dump_while(kill_worker, "kill -9 of the worker")
time.sleep(1.5)     # httpd replaces the worker
dphttpd.kill_quietly(big)

# (a target that exits mid-dump: dump_snapshot.t, with and without the snapshot)

# ---- a target creating threads while it is dumped: threads that exit as they
# are attached must not fail the dump (the kernel answers EPERM for them)
churn = spawn([BIG, "--churn-threads", "--churn-threads", "--churn-threads", "--threads", "2"],
              ready="ready", user=worker_user())
good = answered = 0
for i in range(30):
    cc = os.path.join(work.name, f"churn{i}.core")
    r = curl(f"{h.base}/p/{churn.pid}/dump", cc)
    if r.stdout == "200":
        answered += 1
        if i % 6 == 0:
            bt = gdb_bt(BIG, cc)
            good += "idle_thread" in bt and "main" in bt
            if "idle_thread" not in bt or "main" not in bt:
                diag(f"churn dump {i}: gdb shows\n{bt[-2000:]}")
    else:
        diag(f"churn dump {i}: HTTP {r.stdout} {r.stderr.strip()} "
             f"{open(cc, errors='replace').read(300) if os.path.exists(cc) else ''}")
    os.unlink(cc) if os.path.exists(cc) else None
is_(answered, 30, "threads appearing and vanishing during the dump: 30 of 30 dumps answer 200")
is_(good, 5, "…and the 5 checked with gdb show every thread's stack")
ok(settle_not_stopped(churn.pid), "…and the target is not left stopped")
dphttpd.kill_quietly(churn)

def zip_and_unpack(pid, name):
    """format=zip of pid, unpacked: (HTTP status, directory, manifest)."""
    zp = os.path.join(work.name, name + ".zip")
    status = curl(f"{h.base}/p/{pid}/dump?format=zip", zp).stdout
    d = os.path.join(work.name, name)
    with zipfile.ZipFile(zp) as z:
        z.extractall(d)
        man = json.loads(z.read("manifest.json"))
    os.chmod(os.path.join(d, "open-gdb.sh"), 0o755)
    return status, d, man


def open_gdb_bt(d):
    """Every thread's backtrace through the bundle's own script, run elsewhere."""
    return subprocess.run([os.path.join(d, "open-gdb.sh"), "-batch", "-ex", "thread apply all bt"],
                          cwd=tempfile.mkdtemp(dir=work.name), capture_output=True, text=True,
                          timeout=120).stdout


# ---- zip of a target whose executable was deleted, over HTTP
exe_dir = tempfile.mkdtemp(prefix="dp-exe-")
os.chmod(exe_dir, 0o755)
gone_exe = os.path.join(exe_dir, "gone_target")
subprocess.run(["cp", TARGET, gone_exe], check=True)
g = spawn([gone_exe], ready="ready", user=worker_user())
os.unlink(gone_exe)
status, gdir, man = zip_and_unpack(g.pid, "gone")
is_(status, "200", "zip of a target whose binary was deleted")
ok(man["executableDeleted"], "…the manifest flags the deleted file")
out = open_gdb_bt(gdir)
is_([f for f in FUNCS if f not in out], [], "…open-gdb.sh from elsewhere still names every frame")
dphttpd.kill_quietly(g)
os.rmdir(exe_dir)

# ---- a library deleted after it was loaded, as after a package upgrade
lib_dir = tempfile.mkdtemp(prefix="dp-lib-")
os.chmod(lib_dir, 0o755)
gone_lib = os.path.join(lib_dir, "libgone.so")
with open(os.path.join(lib_dir, "gone.c"), "w") as f:
    f.write("#include <unistd.h>\n__attribute__((noinline)) void lib_wait(void) { for (;;) pause(); }\n")
subprocess.run(["gcc", "-shared", "-fPIC", "-g", "-O1", "-o", gone_lib, os.path.join(lib_dir, "gone.c")],
               check=True)
os.chmod(gone_lib, 0o755)
zl = spawn([os.path.join(BUILD, "targets", "zip_target"), "--lib", gone_lib], ready="ready",
           user=worker_user())
os.unlink(gone_lib)
status, ldir, man = zip_and_unpack(zl.pid, "gonelib")
is_(status, "200", "zip of a target whose library was deleted")
mod = {m["path"]: m for m in man["modules"]}.get(gone_lib, {})
ok(mod.get("deleted"), "…the manifest flags the deleted library")
if IS_ROOT:
    is_(mod.get("source"), "map_files", "…which the helper read from what is mapped (map_files)")
    like(open_gdb_bt(ldir), r"lib_wait \(\) at .*gone\.c", "…and gdb names the frame in it, with its source line")
else:
    is_(mod.get("source"), None, "an ordinary user's helper cannot open map_files: the library is left out")
    like(mod.get("skipped") or "", r"CAP_CHECKPOINT_RESTORE", "…and the manifest says why")
dphttpd.kill_quietly(zl)
os.unlink(os.path.join(lib_dir, "gone.c"))
os.rmdir(lib_dir)

# ---- a zip cut half-way is rejected by zip readers
big3 = spawn([BIG, "--rss-random", "256"], ready="ready", user=worker_user())
zc = os.path.join(work.name, "cut.zip")
dump_while(kill_helper_child, "zip cut mid-stream", pid=big3.pid, query="dumpType=2&format=zip", out=zc)
ok(subprocess.run(["unzip", "-tq", zc], capture_output=True).returncode != 0,
   "…and unzip -t rejects the partial zip")
dphttpd.kill_quietly(big3)

# ---- 16 GiB untouched reservation: no memory faulted in, the core stays small
res = spawn([TARGET, "--reserve"], ready="ready", user=worker_user())
before = rss_kb(res.pid)
cr = os.path.join(work.name, "reserve.core")
is_(curl(f"{h.base}/p/{res.pid}/dump?dumpType=2", cr).stdout, "200", "dump of a 16 GiB reservation")
after = rss_kb(res.pid)
ok(after - before < 8 * 1024, f"…the target's RSS did not grow ({before} -> {after} KiB)")
ok(os.path.getsize(cr) < 200 << 20, f"…the core stays near the resident size ({os.path.getsize(cr) >> 20} MiB)")

# ---- 16 TiB read-write reservations with a page in each, one MADV_DONTDUMP
# (a sanitizer's shadow): only what a dump wants is looked up, so the layout
# does not walk terabytes of page table entries (it took past the helper's
# 30 s and answered 503), and a full dump passes the empty stretches
vast = spawn([TARGET, "--vast"], ready="ready", user=worker_user())
cr = os.path.join(work.name, "vast.core")
is_(curl(f"{h.base}/p/{vast.pid}/dump?dumpType=0", cr).stdout, "200",
    "minimal dump of a target with 32 TiB reserved")
ok(os.path.getsize(cr) < 8 << 20, f"…a small core ({os.path.getsize(cr) >> 10} KiB)")
ok(b"vast-dumped-4242" not in open(cr, "rb").read(), "…without the reservations' page")
is_(curl(f"{h.base}/p/{vast.pid}/dump?dumpType=2", cr).stdout, "200", "full dump of it")
body = open(cr, "rb").read()
ok(len(body) < 64 << 20 and b"vast-dumped-4242" in body,
   f"…a core of what is resident ({len(body) >> 20} MiB), the page written in the reservation included")
ok(b"vast-dontdump-8484" not in body, "…and nothing of the MADV_DONTDUMP one")
is_(layout_problems(cr), [], "…every PT_LOAD page-aligned and inside the file")
ok(settle_not_stopped(vast.pid), "…and the target runs on")
dphttpd.kill_quietly(vast)

h.stop()

# ---- DiagProcDumpTimeout: a dump that takes too long is cut and the target resumes
h = Httpd(server_conf="DiagProcDumpTimeout 1", locations={"/p": "DiagProcAllow dump fulldump"},
          expect_log=["DP00001"]).start()      # the dump cut: it ended early
slow = spawn([BIG, "--rss-random", "256"], ready="ready", user=worker_user())
out = os.path.join(work.name, "slow.core")
t0 = time.time()
r = curl(f"{h.base}/p/{slow.pid}/dump?dumpType=2", out, "--limit-rate", "20M")
took = time.time() - t0
ok(r.returncode != 0, f"a dump beyond DiagProcDumpTimeout is cut, visibly (curl exit {r.returncode})")
ok(took < 10, f"…after about the timeout ({took:.1f} s), not the 13 s the client would need")
ok(settle_not_stopped(slow.pid), "…and the target runs on")
ok(settle(lambda: not children(slow.pid)), "…with no snapshot copy (nor zombie) left behind in it")
dphttpd.kill_quietly(slow)
h.stop()

# ---- DiagProcMaxDumpSize: a core larger than the cap is refused before any byte
h = Httpd(server_conf="DiagProcMaxDumpSize 2M", locations={"/p": "DiagProcAllow dump fulldump"}).start()
r = h.get(f"/p/{t.pid}/dump?dumpType=2")
is_(r.status, 409, "a core beyond DiagProcMaxDumpSize is 409")
like((r.json() or {}).get("Message"), "DiagProcMaxDumpSize", "…naming the directive")
ok(running(t.pid), "…and the target runs on")
is_(h.get(f"/p/{t.pid}/dump").status, 200, "a minimal dump under the cap still works")
h.stop()
done_testing()
