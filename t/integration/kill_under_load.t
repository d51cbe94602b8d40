# DELETE of busy httpd workers while wrk keeps the server serving: each kill
# answers 204, the worker is gone,
# httpd replaces it, the server goes on answering, and no child crashed.
import os
import re
import subprocess
import time

from tap import ok, is_, diag, done_testing
from dphttpd import Httpd
from procstate import settle

h = Httpd(allow="kill",
          server_conf="StartServers 3\nServerLimit 6\nThreadsPerChild 10\nMaxRequestWorkers 60").start()


ok(settle(lambda: len(h.workers()) >= 3), "three worker processes")
wrk = subprocess.Popen(["wrk", "-t2", "-c8", "-d8s", f"{h.base}/diagnostics/processes"],
                       stdout=subprocess.PIPE, text=True)
time.sleep(1)
killed, answers = [], []
for _ in range(5):
    target = h.workers()[0]
    r = subprocess.run(["curl", "-sS", "-m", "30", "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}",
                        f"{h.base}/diagnostics/processes/{target}"], capture_output=True, text=True)
    answers.append(r.stdout)
    killed.append(target)
    time.sleep(0.7)
out = wrk.communicate(timeout=60)[0]
# 404 / 409: a worker that httpd retired on its own between the pick and the DELETE
ok(set(answers) <= {"204", "404", "409"} and answers.count("204") >= 3,
   f"DELETE of busy workers answers 204 ({answers})")
ok(settle(lambda: not [p for p in killed if os.path.exists(f"/proc/{p}")]), "…and every one is gone")
ok(settle(lambda: len(h.workers()) >= 1 and not set(h.workers()) & set(killed)), "httpd runs new workers")
is_(h.get("/diagnostics/processes").status, 200, "…which serve the next request")
m = re.search(r"(\d+) requests in", out)
ok(m and int(m.group(1)) > 1000, f"wrk was served meanwhile ({m.group(1) if m else '?'} requests)")
diag("wrk: " + " ".join(out.split()[-6:]))
log = open(os.path.join(h.dir, "error.log")).read()
is_(re.findall(r".*exit signal Segmentation.*", log), [], "no child crashed")
done_testing()
