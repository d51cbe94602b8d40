# The harness checks itself: the error-log check fails on a planted [error]
# line and accepts one whose tag the test declared; a server a test forgot to
# stop is checked before the plan; an exception that escapes a test, a skip
# under CI and a settle() that times out each end as a failed assertion, with
# the plan printed all the same. Each case runs as a small test script of its
# own, whose TAP output is read here.
import datetime
import os
import re
import subprocess
import sys
import tempfile

from tap import ok, is_, like, done_testing
from dphttpd import log_problems, LOG_CHECK_NAME

work = tempfile.TemporaryDirectory(prefix="dp-selftest-")
STAMP = "[Mon Dec 07 10:00:00.000000 2026]"
PID = "[pid 100:tid 100]"


def planted(name, lines):
    path = os.path.join(work.name, name)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def run(script, env=None):
    """(exit status, stdout, stderr) of a test script."""
    path = os.path.join(work.name, "case.t")
    with open(path, "w") as f:
        f.write(script)
    p = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **(env or {})), cwd=work.name)
    return p.returncode, p.stdout, p.stderr


# ---- the checker on planted logs
err = planted("error.log", [
    f"{STAMP} [mpm_event:notice] {PID} AH00489: Apache/2.4 configured -- resuming normal operations",
    f"{STAMP} [diagproc:info] {PID} DP00005: diagproc: helper 101 serving /x.sock",
    f"{STAMP} [diagproc:error] {PID} DP00099: planted error",
    f"{STAMP} [diagproc:warn] {PID} [client 127.0.0.1:5] DP00012: planted warning",
    f"{STAMP} [core:crit] {PID} AH00098: planted crit",
    f"{STAMP} [core:alert] {PID} planted alert without a tag",
    f"{STAMP} [core:emerg] {PID} AH00099: planted emerg",
    f"{STAMP} [core:notice] {PID} AH00052: child pid 102 exit signal Segmentation fault (11)",
    "[diagproc:helper] refused a request from pid 6: planted",
    "",
])
errs = planted("stderr.log", ["", "AH00526: Syntax error on line 3 of httpd.conf:", "   "])
got = log_problems(err, errs)
is_(len(got), 8, "planted logs: every warn-or-worse line, the child's crash, the lines of "
    "another format (a process's stderr) and the stderr.log line")
ok(all("planted" in g or "exit signal" in g or "Syntax" in g for g in got),
   "…and nothing at notice or info, nor an empty line")
ok(any(g.startswith("stderr.log: AH00526: Syntax error") for g in got)
   and any(g.startswith("error.log: [diagproc:helper] refused") for g in got),
   "…each named by its file")
is_(log_problems(err, errs, ["DP00099", "DP00012", "AH00098", "AH00099", "AH00052", "AH00526",
                             "planted alert", re.compile(r"refused a request from pid \d+")]), [],
    "declared tags, a substring and a regex accept them all")
stop = planted("stop.log", [
    "[Mon Dec 07 10:00:00.000000 2026] [core:notice] [pid 1] AH00052: child pid 2 exit signal Segmentation fault (11)",
    "[Mon Dec 07 10:00:09.000000 2026] [core:notice] [pid 1] AH00052: child pid 3 exit signal Segmentation fault (11)"])
at = datetime.datetime(2026, 12, 7, 10, 0, 5).timestamp()
is_([g.split("] ")[-1] for g in log_problems(stop, None, stopping_at=at)],
    ["AH00052: child pid 2 exit signal Segmentation fault (11)"],
    "a child's crash counts before httpd was told to stop, not after (httpd's own)")
race = planted("race.log", [
    "[Mon Dec 07 10:00:00.000000 2026] [mpm_event:error] [pid 2:tid 3] (9)Bad file descriptor: AH03093: process_socket: apr_pollset_add failure for keep alive",
    "[Mon Dec 07 10:00:09.000000 2026] [mpm_event:error] [pid 2:tid 4] (9)Bad file descriptor: AH03093: process_socket: apr_pollset_add failure for keep alive"])
is_([g.split("] ")[-1] for g in log_problems(race, None, stopping_at=at)],
    ["(9)Bad file descriptor: AH03093: process_socket: apr_pollset_add failure for keep alive"],
    "the event MPM's EBADF on a connection counts before the stop, not after (its ungraceful stop closed it)")
is_([g for g in log_problems(err, None, ["DP00098", "DP00990", "DP00012"]) if "DP000" in g],
    [f"error.log: {STAMP} [diagproc:error] {PID} DP00099: planted error"],
    "a declared tag accepts the lines of that tag alone")
is_(log_problems(os.path.join(work.name, "none.log"), None), [], "a missing log has no lines")

# ---- through a real server: stop() checks its logs
PLANT = f"""
import os
from tap import done_testing
from dphttpd import Httpd
h = Httpd().start()
{{declare}}
with open(os.path.join(h.dir, "error.log"), "a") as f:
    f.write("{STAMP} [diagproc:error] {PID} DP09999: planted by the self-test\\n")
{{stop}}
done_testing()
"""
rc, out, errout = run(PLANT.format(declare="", stop="h.stop()"))
like(out, rf"(?m)^not ok 1 - {LOG_CHECK_NAME}$", "a planted [error] line fails the server's check")
like(errout, r"error\.log: .*DP09999: planted by the self-test", "…which lists the line")
like(out, r"(?m)^1\.\.1$", "…then the plan")
is_(rc, 1, "…and the script fails")

rc, out, errout = run(PLANT.format(declare='h.expect_log("DP09999")', stop="h.stop()"))
like(out, rf"(?m)^(not )?ok 1 - {LOG_CHECK_NAME}$", "a declared tag: the check runs")
ok("DP09999" not in errout, "…and does not list the line declared expected")

rc, out, errout = run(PLANT.format(declare="", stop="# (no stop)"))
like(out, rf"(?m)^not ok 1 - {LOG_CHECK_NAME}\n(.*\n)*1\.\.1$",
     "a server left running is stopped and checked before the plan")
like(errout, r"DP09999", "…listing the planted line")

# ---- an exception that escapes a test
rc, out, errout = run("from tap import ok, done_testing\nok(1, 'first')\n"
                      "raise TimeoutError('timed out')\ndone_testing()\n")
like(out, r"(?m)^ok 1 - first\nnot ok 2 - the test ran to its end \(it died of TimeoutError: "
     r"timed out\)\n1\.\.2$", "an escaping exception: a failed assertion, then the plan")
like(errout, r"Traceback[\s\S]*TimeoutError: timed out", "…with the traceback as diagnostics")
ok(rc != 0, "…and the script fails")

# ---- skip: an ok with a reason, a failure under CI
SKIP = "from tap import ok, skip, done_testing\nok(1, 'first')\nskip('no frobnicator', 2)\ndone_testing()\n"
rc, out, _ = run(SKIP, {"CI": ""})
like(out, r"(?m)^ok 2 # skip no frobnicator\nok 3 # skip no frobnicator\n1\.\.3$",
     "skip(reason, 2): two skips that give the reason")
is_(rc, 0, "…and the script passes")
rc, out, _ = run(SKIP, {"CI": "true"})
like(out, r"(?m)^not ok 2 - skipped under CI: no frobnicator$", "under CI=true a skip fails")
is_(rc, 1, "…and so does the script")

# ---- settle(): a condition that keeps timing out is a failed assertion, not an escape
rc, out, errout = run("import socket\nfrom tap import ok, done_testing\nfrom procstate import settle\n"
                      "def cond():\n    raise socket.timeout('timed out')\n"
                      "ok(settle(cond, 0.3), 'settled')\nok(1, 'after')\ndone_testing()\n")
like(out, r"(?m)^not ok 1 - settled\nok 2 - after\n1\.\.2$",
     "settle() whose condition times out: one failed assertion, and the test goes on")
like(errout, r"not settled in 0\.3 s; the last try raised TimeoutError: timed out", "…saying why")

done_testing()
