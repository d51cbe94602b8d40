# The helper reaps its children at once, whatever it is doing when they end:
# after a fault run (clients that start full dumps and go away mid-stream, a
# dumping child killed with SIGKILL, a dump that completes, while refused
# connections keep the helper busy, so that children end while it is not
# waiting) no child of the helper stays a zombie for a second, with no
# further connection to wake it;
# and the snapshot copy of the killed dump (a clone inside the target) is
# killed and reaped in the target.
import os
import signal
import socket
import threading
import time

from tap import ok, is_, note, done_testing
from dphttpd import Httpd, spawn, worker_user, BUILD
import dphttpd
from procstate import children, settle

TARGET = os.path.join(BUILD, "targets", "proc_target")
W = worker_user()


def stat(pid):
    """(state, exit_signal) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[35])


def zombies(parent):
    return [int(k) for k in children(parent) if (stat(k) or ("",))[0] == "Z"]


def copies(target):
    """Children of target without an exit signal: snapshot copies (alive or zombies)."""
    return [int(k) for k in children(target) if (stat(k) or ("", 17))[1] == 0]


def start_dump(pid, keep_reading=0):
    """A full dump of pid whose client reads its headers and keep_reading
    bytes more, then nothing."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.connect(("127.0.0.1", h.port))
    s.sendall(f"GET /p/{pid}/dump?dumpType=2 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = b""
    while len(got) < 4096 + keep_reading:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    ok(got.startswith(b"HTTP/1.1 200"), f"a full dump of {pid} is under way")
    return s


h = Httpd(server_conf="DiagProcMaxDumps 4", locations={"/p": "DiagProcAllow dump fulldump"}).start()
# the fault run's own lines: this process's refused connections (and their
# counts), the dumps cut by clients that went away or by a killed child
h.expect_log("DP10002", "DP10003", "DP00001")
helper = h.helpers()[0]
# 64 MiB: over the 4 MiB from which a dump reads a copy-on-write snapshot
big = [spawn([TARGET, "--rss", "64"], ready="ready", user=W) for _ in range(3)]

# ---- the fault run, with refused connections all along (this test process
# is not a worker)
sockpath = os.path.join(h.dir, f"diagproc.{h.parent_pid}.sock")
busy = threading.Event()


def refused():
    while not busy.is_set():
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sockpath)
            s.recv(1)
        except OSError:
            pass
        s.close()


flood = threading.Thread(target=refused)
flood.start()
# clients that go away mid-stream
for t in big[:2]:
    start_dump(t.pid, keep_reading=256 * 1024).close()
# a dumping child killed: the one dumping big[2], its client stalled
stalled = start_dump(big[2].pid)
dumper = []
ok(settle(lambda: bool(dumper.extend(d for d in h.dumpers() if (stat(d) or ("Z",))[0] != "Z")
                       or dumper), 5), "its dumping child runs")
ok(settle(lambda: bool(copies(big[2].pid)), 5), "…reading a snapshot copy inside the target")
os.kill(dumper[-1], signal.SIGKILL)
stalled.close()
# and a dump that completes
r = h.get(f"/p/{big[0].pid}/dump?dumpType=0")
is_(r.status, 200, "a minimal dump completes")
busy.set()
flood.join()

# ---- then nobody talks to the helper: its children must be reaped anyway
first, last, end = {}, {}, time.time() + 4
while time.time() < end:
    now = time.time()
    for z in zombies(helper):
        first.setdefault(z, now)
        last[z] = now
    time.sleep(0.02)
ages = {z: last[z] - first[z] for z in first}
note(f"zombie children of the helper seen: {len(ages)}, the oldest for "
     f"{max(ages.values() or [0]):.2f} s")
ok(all(a < 1 for a in ages.values()), "no child of the helper stayed a zombie for 1 s "
   f"({', '.join(f'{a:.2f}' for a in ages.values()) or 'none seen'})")
is_(zombies(helper), [], "…and none is left")
is_([c for t in big for c in copies(t.pid)], [], "no snapshot copy is left in the targets, "
    "the killed dump's included (killed with its tracer, reaped in the target)")
ok(all((stat(t.pid) or ("",))[0] in ("S", "R") for t in big), "…and the targets run on")
for t in big:
    dphttpd.kill_quietly(t)
h.stop()
done_testing()
