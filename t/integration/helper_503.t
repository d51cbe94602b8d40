# When the helper cannot serve: its dump capacity full (DiagProcMaxDumps), a
# second dump of a target it is already dumping, and the helper restarting
# (killed; httpd's parent starts a new one): each answers 503 JSON with
# Retry-After through a real httpd. The detail route of a process whose
# private files only the helper may read (a non-dumpable one) waits for a
# restarting helper instead of leaving those fields null, and answers 503
# after one wait (not one per field) when the helper stays away.
import os
import signal
import socket
import time

from tap import ok, is_, like, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT
from procstate import running, settle

TARGET = os.path.join(BUILD, "targets", "proc_target")
NONDUMPABLE = ("import ctypes, time\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE\n"
               "print('ready', flush=True)\ntime.sleep(600)\n")
HELPER_FIELDS = ("open_file_handles", "file_name", "cwd", "modules")

# the 503s below are logged, as every 5xx is; the helper is killed on purpose
h = Httpd(expect_log=["DP00010", "DP00006"],
          server_conf="DiagProcMaxDumps 2",
          locations={"/p": "DiagProcAllow dump fulldump"}).start()
W = worker_user()
a = spawn([TARGET, "--rss", "64"], ready="ready", user=W)
b = spawn([TARGET, "--rss", "64"], ready="ready", user=W)
c = spawn([TARGET], ready="ready", user=W)
nd = spawn(["/usr/bin/python3", "-c", NONDUMPABLE], ready="ready", user=W)


def stalled_dump(pid):
    """A full dump whose client reads the headers and then nothing: the
    helper's child holds its dump slot until the client goes."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.connect(("127.0.0.1", h.port))
    s.sendall(f"GET /p/{pid}/dump?dumpType=2 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = s.recv(4096)
    ok(head.startswith(b"HTTP/1.1 200"), f"a full dump of {pid} is under way, its client stalled")
    return s


def dump_once_free(pid, pause):
    """A minimal dump of pid, asked again (bounded) while it is 503."""
    r = None
    for _ in range(50):
        r = h.get(f"/p/{pid}/dump?dumpType=0")
        if r.status != 503:
            break
        time.sleep(pause)
    return r


def is_503(r, pattern, name):
    is_(r.status, 503, f"{name}: 503")
    ok(r.headers.get("content-type", "").startswith("application/json"), "…as JSON")
    like((r.json() or {}).get("Message"), pattern, "…whose Message says why")
    like(r.headers.get("retry-after", ""), r"^\d+$", "…with Retry-After")


# ---- a second dump of a target being dumped
sa = stalled_dump(a.pid)
is_503(h.get(f"/p/{a.pid}/dump?dumpType=0"), r"already being dumped",
       "a second dump of a target being dumped")
# ---- the helper's dump capacity full
sb = stalled_dump(b.pid)
is_503(h.get(f"/p/{c.pid}/dump?dumpType=0"),
       r"2 dumps are already running \(DiagProcMaxDumps 2; the capture rules' take 0 of them\)",
       "a third dump with DiagProcMaxDumps 2")
sa.close()
sb.close()
ok(settle(lambda: running(a.pid) and running(b.pid), 10),
   "the stalled dumps' clients gone: neither target is left stopped")
is_(dump_once_free(c.pid, 0.2).status, 200,
    "…and the slots are free again: a dump is 200 (the checks above can fail)")


def helper_gone(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" in f.read()
    except OSError:
        return True


def kill_helper():
    hp = h.helpers()[0]
    os.kill(hp, signal.SIGKILL)
    ok(settle(lambda: helper_gone(hp), 10), f"the helper {hp} is killed")
    return hp


def timed_get(path):
    t0 = time.time()
    r = h.get(path)
    return r, time.time() - t0


# an httpd started by an ordinary user has a helper without privileges: it
# cannot read a non-dumpable process's files either (they stay null there)
normal = h.get(f"/p/{nd.pid}").json() or {}
if IS_ROOT:
    ok(all(normal.get(k) for k in HELPER_FIELDS),
       "a non-dumpable process's detail has the fields only the helper reads: "
       + ", ".join(HELPER_FIELDS))

# ---- the helper restarting: httpd's parent is held (SIGSTOP) so that the new
# helper cannot come before the worker gives up
os.kill(h.parent_pid, signal.SIGSTOP)
try:
    kill_helper()
    r, dump_wait = timed_get(f"/p/{c.pid}/dump?dumpType=0")
    is_503(r, r"helper is not available", "a dump while the helper is being restarted")
    ok(dump_wait >= 2.0, f"…after the worker waited for it ({dump_wait:.2f} s)")
    r, detail_wait = timed_get(f"/p/{nd.pid}")
    is_503(r, r"helper is not available",
           "the detail of a non-dumpable process while the helper stays away")
    ok(detail_wait < 1.8 * dump_wait,
       f"…after one wait, not one per field ({detail_wait:.2f} s vs {dump_wait:.2f} s for a dump)")
    r = h.get(f"/p/{c.pid}")
    is_(r.status, 200, "…while the detail of a process the worker reads itself is still 200")
finally:
    os.kill(h.parent_pid, signal.SIGCONT)
h._await_helper(10)
ok(h.helpers(), "the parent, running again, starts a new helper")
is_(dump_once_free(c.pid, 0.1).status, 200, "…and dumps are 200 again")

# ---- the detail during an ordinary restart waits for the new helper: the
# helper is killed at three moments of the parent's once-a-second look at
# its children
for k, pause in enumerate((0.0, 0.35, 0.7) if IS_ROOT else ()):
    time.sleep(pause)
    kill_helper()
    r = h.get(f"/p/{nd.pid}")
    d = r.json() or {}
    is_(r.status, 200, f"detail right after the helper was killed ({k + 1}/3): 200")
    is_([f for f in HELPER_FIELDS if not d.get(f)], [],
        "…with every field only the helper reads, none null")
    is_(d.get("open_file_handles"), normal.get("open_file_handles"), "…the same open files")
    h._await_helper(10)

for p in (a, b, c, nd):
    dphttpd.kill_quietly(p)
h.stop()
done_testing()
