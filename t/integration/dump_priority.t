# A dump must not starve the site it is taken from: the helper's dumping
# process runs at a low CPU and I/O priority (DiagProcDumpNice,
# DiagProcDumpIOPriority), while the helper itself and the workers keep
# theirs. Bad values are refused when the configuration is read.
import os
import subprocess

from tap import ok, is_, like, done_testing
from dphttpd import Httpd, spawn, worker_user, BUILD, kill_quietly
import procstate

BIG = os.path.join(BUILD, "targets", "proc_target")
LOC = {"/p": "DiagProcAllow dump fulldump"}


def nice(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def ionice(pid):
    return subprocess.run(["ionice", "-p", str(pid)], capture_output=True, text=True).stdout.strip()


def priorities_while_dumping(h, pid):
    """(nice, ionice) of the dumping process, and of the helper, mid-dump:
    read once bytes flow (the child sets its priorities after its fork)."""
    out = os.path.join(h.dir, "dump.part")
    curl = subprocess.Popen(["curl", "-sS", "--limit-rate", "4M", "-o", out,
                             f"{h.base}/p/{pid}/dump?dumpType=2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        procstate.settle(lambda: h.dumpers() and os.path.exists(out) and os.path.getsize(out) > 0, 10)
        d = h.dumpers()
        helper = h.helpers()[0]
        return ((nice(d[0]), ionice(d[0])) if d else (None, None)), (nice(helper), ionice(helper))
    finally:
        curl.kill()
        curl.wait()


target = spawn([BIG, "--rss", "64"], ready="ready", user=worker_user())

h = Httpd(locations=LOC).start()
dumper, helper = priorities_while_dumping(h, target.pid)
is_(dumper, (10, "best-effort: prio 7"), "by default the dumping process runs at nice 10, I/O best-effort 7")
is_(helper[0], 0, "…the helper itself keeps nice 0")
ok(all(nice(w) == 0 for w in h.workers()), "…and so do the workers")
h.stop()

h = Httpd(locations=LOC, server_conf="DiagProcDumpNice 19\nDiagProcDumpIOPriority idle\n").start()
dumper, _ = priorities_while_dumping(h, target.pid)
is_(dumper, (19, "idle"), "DiagProcDumpNice 19 + DiagProcDumpIOPriority idle")
h.stop()

h = Httpd(locations=LOC, server_conf="DiagProcDumpNice 0\nDiagProcDumpIOPriority unchanged\n").start()
dumper, helper = priorities_while_dumping(h, target.pid)
is_(dumper, (0, helper[1]), "DiagProcDumpNice 0 + unchanged: the helper's own priorities")
h.stop()

for conf, word in (("DiagProcDumpNice 20", "DiagProcDumpNice"),
                   ("DiagProcDumpNice -1", "DiagProcDumpNice"),
                   ("DiagProcDumpIOPriority best-effort:8", "DiagProcDumpIOPriority"),
                   ("DiagProcDumpIOPriority realtime", "DiagProcDumpIOPriority")):
    # refused on purpose: httpd's syntax error and the directive's own words
    h = Httpd(locations=LOC, server_conf=conf + "\n", expect_log=["AH00526", word + " takes"])
    try:
        h.start()
        started = True
    except RuntimeError:
        started = False
    out = h.logs()
    ok(not started, f"'{conf}' is refused")
    like(out, word + " takes", "…with a message that says what it takes")
    h.stop()
kill_quietly(target)
done_testing()
