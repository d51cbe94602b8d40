# dumpType bits through a real httpd, read back by gdb: 0x40 brings the
# object a stuck thread points at (and stays within its bound even when a
# stack is full of pointers), 0x1 brings .bss beyond the file's last page,
# every bit of MiniDumpValidTypeFlags is accepted and gives a core gdb opens,
# a bit outside it is 400; format is parsed as Kudu parses it.
import os
import subprocess
import tempfile

from tap import ok, is_, like, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD
from procstate import running
from elfcore import layout_problems

TARGET = os.path.join(BUILD, "targets", "ref_target")
OBJECT = "DIAGPROC-REFERENCED-OBJECT-7d1c"
BSS_MARKER = 0x6273735f76616c75
INDIRECT_MAX = 4 << 20              # DP_INDIRECT_MAX in dump/core.h
VALID = 0x01ffffff                  # MiniDumpValidTypeFlags
work = tempfile.TemporaryDirectory(prefix="dp-types-")


def fetch(path, out):
    r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", f"{h.base}{path}"],
                       capture_output=True, text=True, timeout=300)
    return r.stdout


def gdb(core, *cmds):
    argv = ["gdb", "-batch", "-nx"]
    for c in cmds:
        argv += ["-ex", c]
    return subprocess.run(argv + [TARGET, core], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120).stdout


h = Httpd(locations={"/p": "DiagProcAllow dump fulldump", "/min": "DiagProcAllow dump"}).start()
t = spawn([TARGET], ready="ready", user=worker_user())
held = [l.split()[1] for l in t.ready_lines if l.startswith("held ")][0]
bss = [l.split()[1] for l in t.ready_lines if l.startswith("bss ")][0]
cores = {}
for q in ("0", "0x40", "0x1"):
    cores[q] = os.path.join(work.name, f"{q}.core")
    is_(fetch(f"/p/{t.pid}/dump?dumpType={q}", cores[q]), "200", f"dumpType={q} answers 200")

# ---- 0x40: the object the stuck frame holds, through its pointer
x = gdb(cores["0"], f"x/s {held}")
like(x, "Cannot access memory", "dumpType=0: the held object is not in the minimal core")
x = gdb(cores["0x40"], f"x/s {held}", "thread apply all bt")
like(x, f'{held}:\\s+"{OBJECT}"', "dumpType=0x40: gdb reads the object through the pointer")
like(x, f'stuck_holding \\(obj=[^)]*"{OBJECT}"', "…and shows it in the stuck frame's arguments")
like(x, "stuck_flooded", "…with every thread's backtrace")
grown = os.path.getsize(cores["0x40"]) - os.path.getsize(cores["0"])
ok(grown <= INDIRECT_MAX + (64 << 10),
   f"dumpType=0x40 adds at most 4 MiB (+headers) to the minimal core: {grown} bytes")
ok(grown >= INDIRECT_MAX // 2,
   f"…and a stack full of pointers does fill the budget (so the bound is what holds it): {grown}")

is_(layout_problems(cores["0x40"]), [], "…its PT_LOADs keep the layout rules (read-only files whole or absent)")

# ---- 0x1: .bss beyond the object's last file page
x = gdb(cores["0x1"], f"x/gx {bss}", "print/x dp_bss_area.marker")
like(x, f"= 0x{BSS_MARKER:x}", "dumpType=0x1: gdb reads the value in .bss")
x = gdb(cores["0"], "print/x dp_bss_area.marker")
like(x, "Cannot access memory", "dumpType=0: .bss is not in the minimal core")

# ---- every valid bit, one by one; one core per bit is opened by gdb
bad = []
for bit in range(25):
    v = 1 << bit
    out = os.path.join(work.name, "bit.core")
    st = fetch(f"/p/{t.pid}/dump?dumpType=0x{v:x}", out)
    if st != "200":
        bad.append((hex(v), st))
        continue
    if "stuck_holding" not in gdb(out, "thread apply all bt"):
        bad.append((hex(v), "gdb shows no backtrace"))
    if layout_problems(out):
        bad.append((hex(v), layout_problems(out)[:3]))
    os.unlink(out)
is_(bad, [], "every bit of MiniDumpValidTypeFlags answers a core with backtraces")
out = os.path.join(work.name, "all.core")
is_(fetch(f"/p/{t.pid}/dump?dumpType=0x{VALID:x}", out), "200", "all valid bits at once: 200")
like(gdb(out, f"x/s {held}"), OBJECT, "…and that core holds the referenced object")
os.unlink(out)
for q in ("0x2000000", "0x80000000", str(1 << 40)):
    r = h.get(f"/p/{t.pid}/dump?dumpType={q}")
    is_(r.status, 400, f"dumpType={q} (outside MiniDumpValidTypeFlags) is 400")
    like((r.json() or {}).get("Message"), "MiniDumpValidTypeFlags", "…naming the valid set")
r = h.get(f"/min/{t.pid}/dump?dumpType=0x40")
is_(r.status, 403, "0x40 adds memory: it needs DiagProcAllow fulldump")
for q in ("0x8", "0x10", "0x20000"):
    out = os.path.join(work.name, "nop.core")
    is_(fetch(f"/min/{t.pid}/dump?dumpType={q}", out), "200",
        f"dumpType={q} adds nothing: allowed with dump alone")
    os.unlink(out)

# ---- format as Kudu parses it
for fmt, magic in (("Zip", b"PK\x03\x04"), ("ZIP", b"PK\x03\x04"), ("RAW", b"\x7fELF"),
                   ("Raw", b"\x7fELF"), ("", b"\x7fELF")):
    out = os.path.join(work.name, "fmt")
    st = fetch(f"/p/{t.pid}/dump?format={fmt}", out)
    with open(out, "rb") as f:
        head = f.read(4)
    ok(st == "200" and head == magic, f"format={fmt!r}: 200 and a {'zip' if magic[0] == 0x50 else 'core'}")
    os.unlink(out)
r = h.get(f"/p/{t.pid}/dump?format=tar")
is_(r.status, 400, "format=tar is 400")
like((r.json() or {}).get("Message"), "raw.*zip", "…naming the accepted values")
ok(running(t.pid), "the target runs on after every dump")

dphttpd.kill_quietly(t)
h.stop()
done_testing()
