# Capture rules on resources: rss>SIZE/FOR on a worker whose memory grows,
# cpu>P%/FOR on a worker that spins (httpd's workers by default), each
# capturing that worker's stacks with the PHP frames it runs; users= watches
# the processes of the users named instead.
import os
import re
import shutil
import tempfile
import threading
import time

import procstate
from tap import ok, is_, diag, done_testing
from dphttpd import Httpd, MODDIR, ROOT, spawn, worker_user, kill_quietly, favour_cpu, cpu_share

docroot = tempfile.mkdtemp(prefix="dpcapres-")
os.chmod(docroot, 0o755)
for name in ("grow.php", "spin.php"):
    shutil.copy(os.path.join(ROOT, "t", "fixtures", "capture", name), docroot)
    os.chmod(os.path.join(docroot, name), 0o644)
user = worker_user()
PHP = (f"LoadModule php_module {MODDIR}/libphp8.2.so\nDocumentRoot {docroot}\n"
       "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n</FilesMatch>\n"
       "php_admin_value memory_limit 1G\nMaxRequestWorkers 3\nServerLimit 3\n")
h = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow captures"},
          server_conf=PHP + "DiagProcCapture fat when=rss>200M/2s limit=1/10m\n"
                      f"DiagProcCapture mine when=rss>150M/1s users={user} limit=1/10m\n").start()


def of(rule, hh=None):
    return [c for c in ((hh or h).get("/p/captures").json() or []) if c.get("rule") == rule]


def fetch(path, hh=None):
    def go():
        try:
            (hh or h).get(path, timeout=60)
        except OSError:
            pass
    threading.Thread(target=go, daemon=True).start()


def php_frames(c, hh=None):
    hh = hh or h
    href = next((a["href"] for a in c.get("artifacts", []) if a["name"] == "stacks.json"), None)
    st = hh.get(href[len(hh.base):]).json() if href else {}
    return [f for t in (st or {}).get("threads", []) for f in t.get("lang", [])]


def php_functions(c):
    return [f["function"] for f in php_frames(c)]


def slowly(cond, secs):
    """settle at two looks a second: the worker serving the looks is one of
    those the CPU rules watch, and must stay far below their bound"""
    deadline = time.time() + secs
    while not cond():
        if time.time() >= deadline:
            return False
        time.sleep(0.5)
    return True


# users=: a process of that user outside httpd
grower = spawn(["/usr/bin/python3", "-c",
                "import time,sys\nb=[]\nfor i in range(10):\n b.append(b'x' * (20<<20))\n"
                " time.sleep(0.1)\nprint('ready',flush=True)\ntime.sleep(60)\n"],
               ready="ready", user=user)
ok(procstate.settle(lambda: any(x.get("pid") == grower.pid for x in of("mine")), 15),
   "users=: a process of that user outside httpd is watched too")
kill_quietly(grower)
t0 = time.time()
fetch("/grow.php")
ok(procstate.settle(lambda: of("fat"), 20), "rss>200M/2s: the growing worker is captured")
c = (of("fat") or [{}])[0]
ok(c.get("pid") in h.workers(), "…that worker is the capture's process")
ok("str_repeat" in php_functions(c) or "usleep" in php_functions(c) or "sleep" in php_functions(c),
   "…its stacks hold its PHP frames")
ok((c.get("detail") or "").startswith("resident memory"), f"…the detail says what was seen ({c.get('detail')})")
ok(c.get("request") is None, "…a process rule names no request")

h.stop()

# cpu rules, on an httpd of their own (the growing worker above spends a
# part of a core too): a spinner's share of a core is what the machine gives
# it, not what it asks (on this 2-core machine, beside a session favoured at
# nice -10, an ordinary user's spinner got 10-16 %); the bound is half of
# what a spinner got just before, so that the rule is tested, not the load.
share = cpu_share(user)
HOT = max(2, min(60, int(share / 2)))
diag(f"a spinner of {user} gets {share:.0f}% of a core now: the CPU rules' bound is {HOT}%")
h2 = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow captures"},
           server_conf=PHP + f"DiagProcCapture hot when=cpu>{HOT}%/2s limit=1/10m\n"
                       f"DiagProcCapture prof when=cpu>{HOT}%/2s do=profile:2s limit=1/10m\n").start()
favour_cpu(h2.parent_pid)   # httpd's session, the spin worker's: its share of a core
fetch("/spin.php", h2)
if not ok(slowly(lambda: of("hot", h2), 20), f"cpu>{HOT}%/2s: the spinning worker is captured"):
    diag("\n".join(l for l in h2.logs().splitlines() if "DP1" in l)[-2000:])
c2 = (of("hot", h2) or [{}])[0]
ok(c2.get("pid") in h2.workers()
   and any((f.get("file") or "").endswith("/spin.php") for f in php_frames(c2, h2)),
   "…that worker, running spin.php")
ok((c2.get("detail") or "").startswith("CPU"), f"…the detail says what was seen ({c2.get('detail')})")

# do=profile: the spinner's profile, downloaded as folded stacks, speedscope, pprof
ok(slowly(lambda: of("prof", h2), 25), "do=profile:2s: the spinning worker is profiled")
pc = (of("prof", h2) or [{}])[0]
href = next((a["href"] for a in pc.get("artifacts", []) if a["name"] == "profile.dpprof"), None)
ok(href and pc.get("pid") == c2.get("pid"), "…the same worker, as profile.dpprof")
folded = h2.get(href[len(h2.base):]).body.decode(errors="replace") if href else ""
ok(re.search(r"(?m)spin\.php[^\n]* \d+$", folded),
   "…downloaded as folded stacks, with the PHP frames of spin.php")
if not re.search(r"spin\.php", folded):
    diag(folded[:1500])
r = h2.get(href[len(h2.base):] + "?format=speedscope") if href else None
ok(r is not None and (r.json() or {}).get("$schema", "").startswith("https://www.speedscope.app"),
   "…or as speedscope")
r = h2.get(href[len(h2.base):] + "?format=pprof") if href else None
ok(r is not None and r.body[:2] == b"\x1f\x8b", "…or as pprof (gzip)")
is_(h2.get(href[len(h2.base):] + "?format=svg").status if href else 0, 400, "…another format: 400")

h2.stop()
shutil.rmtree(docroot, ignore_errors=True)
done_testing()
