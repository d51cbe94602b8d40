# The helper's log lines in a daemonized httpd (apache2 -k start, no
# -DFOREGROUND: the helper's stderr is then the error log file): every refusal
# is a whole line in httpd's error-log format with its DP tag, in the log as
# soon as the refused client sees the connection closed, and none is lost to
# a stop right after. A flood of refused connections from processes of the
# workers' user leaves a small log whose counts add up to every connection
# made, and the workers are served meanwhile.
import os
import re
import subprocess
import time

from tap import ok, is_, note, done_testing
from dphttpd import spawn, worker_user, BUILD, IS_ROOT
import dphttpd
from procstate import settle
from dpdaemon import DaemonHttpd

LIB = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "lib"))
W = worker_user()
AS_WORKER_USER = {"user": W} if IS_ROOT else {}
TARGET = os.path.join(BUILD, "targets", "proc_target")

# A process of the workers' user that is not a worker: connects `count`
# times (or for `secs` seconds), each time until the helper closes the
# connection unanswered; prints its pid and how many were closed so.
CLIENT = '''
import os, socket, sys, time
path, count, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
closed, end = 0, time.time() + secs
while (count and closed < count) or (not count and time.time() < end):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        if s.recv(16) == b"":
            closed += 1
    except OSError:
        pass
    finally:
        s.close()
print(os.getpid(), closed, flush=True)
'''

# httpd's error-log format; the pid is the helper's
DATE = r"\[\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d{6} \d{4}\] "
HEAD = DATE + r"\[diagproc:warn\] \[pid (\d+)\] "
ANY_HEAD = DATE + r"\[diagproc:warn\] \[pid \d+\] "


def refuse(h, count=0, secs=0.0):
    """A client of the workers' user started now; .result() -> (pid, closed)."""
    p = subprocess.Popen(["/usr/bin/python3", "-c", CLIENT, h.sockpath, str(count), str(secs)],
                         stdout=subprocess.PIPE, text=True, **AS_WORKER_USER)

    def result():
        out = p.communicate(timeout=120)[0].split()
        return int(out[0]), int(out[1])
    p.result = result
    return p


SUFFIX = r" \(and (\d+) more refusals of this kind suppressed in the last \d+ s\)"


def refusal_lines(log, pid):
    """The whole refusal lines of client pid: (helper pid, count left out before it)."""
    return [(m.group(1), int(m.group(2) or 0)) for m in re.finditer(
        rf"(?m)^{HEAD}DP10003: helper: refused a connection from pid {pid} uid \d+ gid \d+: "
        rf"not a child of the httpd parent(?:{SUFFIX})?$", log)]


def start(**kw):
    h = DaemonHttpd(**kw).start()
    h.sockpath = os.path.join(h.dir, f"diagproc.{h.parent_pid}.sock")
    return h


# ---- 1. every line whole, written at once, none lost to a stop
h = start()
helper = h.helpers()[0]
N = 12
pid, closed = refuse(h, count=N).result()
log = h.error_log()                     # at once: no wait, no stop
is_(closed, N, f"{N} connections of a process of the workers' user were closed unanswered")
lines = refusal_lines(log, pid)
is_(len(lines), N, f"…and the error log holds {N} whole refusal lines at once")
ok(lines and all(x == (str(helper), 0) for x in lines), "…each tagged [diagproc:warn] [pid HELPER] "
   "DP10003 in httpd's format, with the helper's pid")
ok(log.endswith("\n") and all(line.startswith("[") for line in log.splitlines()),
   "…and the log holds only whole lines")
pid2, closed2 = refuse(h, count=5).result()
d = h.dir
h.signal("stop")
ok(settle(lambda: not h.all_processes(), 15), "-k stop right after 5 more")
with open(os.path.join(d, "error.log"), errors="replace") as f:
    log = f.read()
is_(len(refusal_lines(log, pid2)), closed2, f"…and those {closed2} refusals are in the log too")
ok("more refusals of this kind" not in log, "…none of them was left out (within the burst)")
h.stop()

# ---- 2. a flood: two processes of the workers' user for 5 s
h = start(locations={"/p": "DiagProcAllow dump"})
t = spawn([TARGET], ready="ready", user=W)
flood = [refuse(h, secs=5) for _ in range(2)]
served, slowest, t_end = 0, 0.0, time.time() + 4.5
while time.time() < t_end:
    t0 = time.time()
    r = h.get(f"/p/{t.pid}/dump?dumpType=0", timeout=30)
    slowest = max(slowest, time.time() - t0)
    served += r.status == 200 and r.body[:4] == b"\x7fELF"
    time.sleep(0.2)
results = [p.result() for p in flood]
made = sum(c for _, c in results)
note(f"flood: {made} refused connections in 5 s from 2 processes; {served} minimal dumps "
     f"(through the helper) served meanwhile, the slowest in {slowest:.2f} s")
ok(made > 1000, f"the flood made {made} refused connections")
ok(served >= 10 and slowest < 5, "the workers' requests through the helper were served "
   f"meanwhile ({served}, the slowest in {slowest:.2f} s)")
d = h.dir
h.signal("stop")                        # the helper writes its counts as it stops
ok(settle(lambda: not h.all_processes(), 15), "httpd stopped")
with open(os.path.join(d, "error.log"), errors="replace") as f:
    log = f.read()
size = len(log.encode())
nlines = log.count("\n")
note(f"flood: error.log {nlines} lines, {size} bytes")
ok(nlines < 200, f"the log stays small: {nlines} lines, {size} bytes")
# what was left out is counted on the next line of its kind or in a summary
lines = [x for pid, _ in results for x in refusal_lines(log, pid)]
logged, left = len(lines), [n for _, n in lines]
summaries = re.findall(rf"(?m)^{ANY_HEAD}DP10002: helper: (\d+) more refusals of this kind "
                       r"suppressed in the last \d+ s: refused connections from uid \d+ gid "
                       r"\d+: not a child of the httpd parent$", log)
left += [int(n) for n in summaries]
# (what was still pending at the stop comes in the summary the helper writes
# as it stops: without it the sum falls short whenever the flood's last
# refusals were left out, as they nearly always are; when the very last one
# was a logged line, nothing is pending and no summary is due)
is_(logged + sum(left), made, f"lines ({logged}), their counts and the summaries "
    f"({len(summaries)}, the last written at the stop when anything was pending) add up to "
    "every refused connection made")
dphttpd.kill_quietly(t)
h.stop()
done_testing()
