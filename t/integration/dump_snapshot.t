# Large dumps read a copy-on-write snapshot (DiagProcDumpSnapshot, on by
# default): the target runs on while its memory streams to a slow client, the
# core is whole and right, and nothing is left behind in the target -- no
# child, no zombie -- even when the dumping process is killed half-way. With
# the directive off, or for a process under a seccomp filter, the dump stops
# the target for the whole stream instead.
import os
import re
import select
import signal
import struct
import subprocess
import tempfile
import time

from tap import ok, is_, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT
from procstate import stopped, settle, children
from elfcore import Memory, layout_problems

BIG = os.path.join(BUILD, "targets", "proc_target")
work = tempfile.TemporaryDirectory(prefix="dp-snap-")
LOC = {"/p": "DiagProcAllow dump fulldump"}
h_on = Httpd(locations=dict(LOC, **{"/o": "DiagProcAllow dump fulldump\nDiagProcUsers dptest dptest2"})).start()
h_off = Httpd(server_conf="DiagProcDumpSnapshot Off", locations=LOC).start()


def max_gap_ms(p):
    """The target's longest pause since the previous call."""
    os.kill(p.pid, signal.SIGUSR1)
    while True:
        line = p.stdout.readline().decode()
        if line.startswith("maxgap_us"):
            return int(line.split()[1]) / 1000.0


def slow_dump(h, pid, name, rate="48M", action=None):
    """A full dump to a client reading at `rate`; 1 s in, note whether the
    target is stopped and run action(). (curl exit, stopped mid-dump, seconds,
    body size, Content-Length)."""
    out = os.path.join(work.name, name + ".core")
    hdr = os.path.join(work.name, name + ".hdr")
    t0 = time.time()
    p = subprocess.Popen(["curl", "-sS", "--limit-rate", rate, "-D", hdr, "-o", out,
                          f"{h.base}/p/{pid}/dump?dumpType=2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    mid = stopped(pid)
    if action:
        action()
    rc = p.wait(timeout=120)
    secs = time.time() - t0
    m = re.search(r"(?i)content-length: (\d+)", open(hdr).read()) if os.path.exists(hdr) else None
    size = os.path.getsize(out) if os.path.exists(out) else -1
    return rc, mid, secs, size, int(m.group(1)) if m else -2, out


def gdb(core, *cmds):
    args = ["gdb", "-batch", "-nx"]
    for c in cmds:
        args += ["-ex", c]
    return subprocess.run(args + [BIG, core], capture_output=True, text=True, timeout=120).stdout


t = spawn([BIG, "--rss", "192", "--threads", "3", "--heartbeat"], ready="ready", user=worker_user())
rss_at = int([l.split()[1] for l in t.ready_lines if l.startswith("rss_at ")][0], 16)

# ---- with the snapshot: the target runs while the dump streams
max_gap_ms(t)
rc, mid, secs, size, clen, core = slow_dump(h_on, t.pid, "on")
gap = max_gap_ms(t)
is_(rc, 0, "snapshot: the slow dump completes")
is_(size, clen, "…with exactly Content-Length bytes")
is_(layout_problems(core), [], "…and every PT_LOAD page-aligned and inside the file")
ok(not mid, "snapshot: the target is not stopped while its dump streams")
ok(gap < secs * 1000 / 4, f"snapshot: the longest pause ({gap:.0f} ms) is a small part of the "
   f"dump ({secs * 1000:.0f} ms)")
bt = gdb(core, "thread apply all bt")
is_(bt.count("idle_thread"), 3, "gdb: the three idle threads' stacks are in the snapshot's core")
ok("heartbeat_thread" in bt and re.search(r"\bmain\b", bt), "gdb: heartbeat and main threads too")
x = gdb(core, f"x/2gx {rss_at + (96 << 20)}")
ok(x.count("0x5a5a5a5a5a5a5a5a") == 2, "gdb reads the target's memory from the snapshot's core")
os.unlink(core)
ok(settle(lambda: not children(t.pid)), "no child (nor zombie) is left in the target")
ok(not stopped(t.pid), "…and the target runs")

# ---- the core is the memory of one instant, though the target writes on
wr = spawn([BIG, "--writer", "64", "--heartbeat"], ready="ready", user=worker_user())
wat = int([l.split()[1] for l in wr.ready_lines if l.startswith("writer_at ")][0], 16)
max_gap_ms(wr)
rc, mid, secs, size, clen, core = slow_dump(h_on, wr.pid, "writer", rate="24M")
gap = max_gap_ms(wr)
is_(rc, 0, "a target rewriting 64 MiB without pause: the slow dump completes")
mem = Memory(core)
passes = [struct.unpack("<q", mem.read(wat + k * 4096, 8) or b"\xff" * 8)[0] for k in range(64 * 256)]
changes = sum(1 for a, b in zip(passes, passes[1:]) if a != b)
ok(min(passes) > 0 and changes <= 1 and max(passes) - min(passes) <= 1,
   f"…every page from the same instant (passes {min(passes)}..{max(passes)}, {changes} change)")
ok(gap < secs * 1000 / 4, f"…while the target ran on (longest pause {gap:.0f} ms of {secs * 1000:.0f})")
dphttpd.kill_quietly(wr)
os.unlink(core)

# ---- another user's process, through the root-started helper's dropped privileges
if IS_ROOT:
    o = spawn([BIG, "--rss", "64", "--threads", "2"], ready="ready", user="dptest2")
    oc = os.path.join(work.name, "other.core")
    r = subprocess.run(["curl", "-sS", "-o", oc, "-w", "%{http_code}", f"{h_on.base}/o/{o.pid}/dump?dumpType=2"],
                       capture_output=True, text=True, timeout=120)
    is_(r.stdout, "200", "a snapshot dump of another user's (dptest2) process")
    is_(gdb(oc, "thread apply all bt").count("idle_thread"), 2, "…with its threads' stacks")
    ok(settle(lambda: not children(o.pid)) and not stopped(o.pid), "…and nothing left in it")
    dphttpd.kill_quietly(o)
    os.unlink(oc)

# ---- without it: stopped for the whole stream (what the snapshot saves)
max_gap_ms(t)
rc, mid, secs, size, clen, core = slow_dump(h_off, t.pid, "off")
gap = max_gap_ms(t)
is_(rc, 0, "DiagProcDumpSnapshot Off: the slow dump completes")
ok(mid, "…the target is stopped while its dump streams")
ok(gap > secs * 1000 / 2, f"…for most of it ({gap:.0f} of {secs * 1000:.0f} ms)")
os.unlink(core)

# ---- a target under a seccomp filter never has a call injected
sc = spawn([BIG, "--seccomp", "--rss", "64", "--threads", "2"], ready="ready", user=worker_user())
rc, mid, secs, size, clen, core = slow_dump(h_on, sc.pid, "seccomp", rate="16M")
is_(rc, 0, "seccomp-filtered target: the dump completes")
ok(mid, "…by stopping the target, not with a snapshot")
ok(not children(sc.pid) and settle(lambda: not stopped(sc.pid)), "…and nothing is left behind")
os.unlink(core)
dphttpd.kill_quietly(sc)


# ---- faults half-way: the dumps cut log that they ended early
h_on.expect_log("DP00001")
h_off.expect_log("DP00001")
def kill_dumper():
    for p in h_on.dumpers():
        os.kill(p, signal.SIGKILL)


rc, mid, secs, size, clen, core = slow_dump(h_on, t.pid, "killed", action=kill_dumper)
ok(rc != 0, f"kill -9 of the dumping process: curl sees the truncation (exit {rc})")
ok(settle(lambda: not stopped(t.pid)), "…the target runs")
ok(settle(lambda: not children(t.pid)), "…and its snapshot's copy is gone, not left a zombie")

files_closed = []


def kill_target():
    """Kill the target, then see whether its files closed with it: the test
    holds the read end of its stdout, so EOF means nobody holds the write end
    any more (the copy must not keep the target's files open)."""
    os.kill(t.pid, signal.SIGKILL)
    fd, deadline = t.stdout.fileno(), time.time() + 3
    while time.time() < deadline:
        if select.select([fd], [], [], 0.1)[0] and os.read(fd, 65536) == b"":
            files_closed.append(True)
            return


rc, mid, secs, size, clen, core = slow_dump(h_on, t.pid, "exits", rate="32M", action=kill_target)
ok(files_closed, "target killed mid-dump: its files close with it, though its snapshot lives on")
is_(rc, 0, "…and the dump of its snapshot still completes")
is_(size, clen, "…whole")
ok("idle_thread" in gdb(core, "thread apply all bt"), "…and gdb opens it")
ok(settle(lambda: not [p for p in h_on.dumpers()]), "…and the dumping process ends")

big = spawn([BIG, "--rss", "192"], ready="ready", user=worker_user())
rc, mid, secs, size, clen, core = slow_dump(h_off, big.pid, "exits-off",
                                            action=lambda: os.kill(big.pid, signal.SIGKILL))
ok(rc != 0, f"without the snapshot, a target killed mid-dump is a visible truncation (exit {rc})")
done_testing()
