# Full dumps of busy httpd workers while wrk keeps them serving: every dump
# is whole, no worker crashes or is left stopped, nothing is left in them,
# and wrk sees no error. (This found a wait for a traced thread cut short by
# SIGCHLD, which let a worker run on with injected registers and crash.)
import os
import re
import subprocess
import tempfile
import time

from tap import ok, is_, diag, done_testing
from dphttpd import Httpd
from procstate import running, settle, children
from elfcore import layout_problems

work = tempfile.TemporaryDirectory(prefix="dp-load-")
h = Httpd(allow="dump fulldump",
          server_conf="StartServers 3\nServerLimit 4\nThreadsPerChild 10\nMaxRequestWorkers 40").start()


ok(settle(lambda: len(h.workers()) >= 3), "three worker processes")
before = h.workers()
wrk = subprocess.Popen(["wrk", "-t2", "-c8", "-d12s", f"{h.base}/diagnostics/processes"],
                       stdout=subprocess.PIPE, text=True)
time.sleep(1)
answers, whole, kept = [], 0, None
deadline = time.time() + 9
while time.time() < deadline:
    for pid in before:
        core = os.path.join(work.name, f"{pid}.core")
        r = subprocess.run(["curl", "-sS", "-m", "60", "-o", core, "-D", core + ".hdr", "-w",
                            "%{http_code}", f"{h.base}/diagnostics/processes/{pid}/dump?dumpType=2"],
                           capture_output=True, text=True)
        answers.append(r.stdout)
        m = re.search(r"(?i)content-length: (\d+)", open(core + ".hdr").read())
        if r.stdout == "200" and m and int(m.group(1)) == os.path.getsize(core):
            whole += 1
            if kept is None:
                kept = core + ".kept"
                os.rename(core, kept)
out = wrk.communicate(timeout=60)[0]
is_(sorted(set(answers)), ["200"], f"{len(answers)} full dumps of busy workers all answer 200")
is_(whole, len(answers), "…each with exactly Content-Length bytes")
ok(kept and not layout_problems(kept), "…laid out by the ELF rules")
bt = subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", "/usr/sbin/apache2", kept],
                    capture_output=True, text=True, timeout=120).stdout
ok(bt.count("\nThread ") >= 10, "…and gdb shows a worker's threads")
ok("Socket errors" not in out and "Non-2xx" not in out, "wrk saw no error meanwhile")
if "Socket errors" in out or "Non-2xx" in out:
    diag(out)
m = re.search(r"Requests/sec:\s+([\d.]+)", out)
diag(f"wrk: {m.group(1) if m else '?'} req/s while dumping")
is_([p for p in before if p not in h.workers()], [], "no worker died (httpd may have added one)")
log = open(os.path.join(h.dir, "error.log")).read()
is_(re.findall(r".*exit signal.*", log), [], "httpd logged no crashed child")
ok(all(settle(lambda: running(p)) for p in before), "no worker is left stopped")
ok(all(settle(lambda: not children(p)) for p in before), "no snapshot copy is left in any worker")
done_testing()
