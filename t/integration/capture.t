# Capture rules (DiagProcCapture) into the spool (DiagProcSpool): a request-age
# rule on a PHP request stuck in mod_php gives a capture within the threshold
# + 2 s that holds the request's URI and its PHP frames; P/captures lists it
# newest first with an href per artifact, the artifacts download, DELETE
# removes it (204); the spool is mode 0700 and a process of the workers' user
# cannot read it; without DiagProcAllow captures the routes are 403; bad ids
# are 404; every access leaves an audit line.
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time

import procstate
from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, MODDIR, IS_ROOT, worker_user
from langfix import line_of, place


docroot = tempfile.mkdtemp(prefix="dpcap-")
os.chmod(docroot, 0o755)
page = place("page.php", docroot)
spool = os.path.join(tempfile.mkdtemp(prefix="dpspool-"), "spool")
h = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow captures", "/ro": ""},
          server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\nDocumentRoot {docroot}\n"
                      "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n</FilesMatch>\n"
                      f"DiagProcSpool {spool} 64M 50\n"
                      "DiagProcCapture stuck when=request-age>2s path=/page* limit=3/10m\n"
                      "DiagProcCapture never when=request-age>1s path=/elsewhere/*\n").start()

st = os.stat(spool)
is_(stat.S_IMODE(st.st_mode), 0o700, "the spool is made at start, mode 0700")
is_(st.st_uid, os.geteuid(), "…owned by httpd's starting user (root on a server)")
r = h.get("/p/captures")
is_((r.status, r.json()), (200, []), "P/captures: an empty array while nothing fired")

uri = "/page.php?order=" + "7" * 90


def run():
    try:
        h.get(uri, timeout=60)
    except OSError:
        pass


t0 = time.time()
threading.Thread(target=run, daemon=True).start()
caps, took = procstate.first_capture(lambda: h.get("/p/captures").json(),
                                     lambda c: all(a["size"] > 0 for a in c["artifacts"]), t0)
ok(caps, "a request stuck in mod_php past request-age>2s is captured")
ok(took <= 2 + 2, f"…taken within the threshold + 2 s ({took:.1f} s)")
c = caps[0] if caps else {}
is_(c.get("rule"), "stuck", "…by its rule")
is_(c.get("trigger"), "request-age>2s", "…naming the trigger")
is_((c.get("request") or {}).get("uri"), uri, "…with the request's whole URI")
ok(c.get("pid") in h.workers(), "…and the worker serving it as the process")
like(c.get("id") or "", r"^\d{8}T\d{6}\.\d{3}Z-stuck-\d+$", "the id: the time, the rule")
like(c.get("time") or "", r"^\d{4}-\d\d-\d\dT", "…and an ISO time")
names = sorted(a["name"] for a in c.get("artifacts", []))
is_(names, ["requests.json", "stacks.json"], "do=stacks: the stacks and the in-flight requests")
hrefs = {a["name"]: a["href"] for a in c.get("artifacts", [])}
ok(all(v.startswith(h.base + "/p/captures/" + c.get("id", "") + "/") for v in hrefs.values()),
   "each artifact has an href below P/captures/{id}/")

stacks = {}
if "stacks.json" in hrefs:
    r = h.get(hrefs["stacks.json"][len(h.base):])
    is_(r.status, 200, "the stacks download")
    stacks = r.json() or {}
frames = [(f["class"], f["function"], os.path.basename(f["file"] or ""), f["line"])
          for t in stacks.get("threads", []) for f in t.get("lang", [])]
ok(("Report", "build", "page.php", line_of(page, "build")) in frames
   and (None, "render_page", "page.php", line_of(page, "render_page")) in frames,
   "…hold the PHP frames of the stuck request (Report::build, render_page)")
if not frames:
    diag(json.dumps(stacks)[:1500])
is_((stacks.get("php_request") or {}).get("uri"), "/page.php", "…and PHP's own record of the request")
reqs = h.get(hrefs.get("requests.json", "")[len(h.base):]).json() or []
ok(any(q.get("uri") == uri for q in reqs), "requests.json: every in-flight request, with its URI")

time.sleep(1.5)
is_(len(h.get("/p/captures").json() or []), 1, "the same request is captured once")
is_(h.get("/ro/captures").status, 403, "without DiagProcAllow captures: 403")
is_(h.get(f"/ro/captures/{c.get('id')}/stacks.json").status, 403, "…for an artifact too")
is_(h.request("DELETE", f"/ro/captures/{c.get('id')}").status, 403, "…and to remove one")
is_(h.get(f"/p/captures/{c.get('id')}/nosuch.json").status, 404, "an unknown artifact: 404")
is_(h.get("/p/captures/..%2f..%2fetc/passwd").status, 404, "a path in the id: 404")
is_(h.get("/p/captures/.windows/x").status, 404, "a dot name: 404")
is_(h.request("DELETE", "/p/captures/nosuch").status, 404, "removing an unknown capture: 404")

# root-only checks: the ordinary-user pass leaves them out (they are not
# skips, which fail under CI=true: t/lib/tap.py)
if IS_ROOT:
    user = worker_user()
    cid = c.get("id", "x")
    for what, argv in (("list the spool", ["ls", spool]),
                       ("read a capture", ["cat", f"{spool}/{cid}/meta.json"]),
                       ("read an artifact", ["cat", f"{spool}/{cid}/stacks.json"])):
        p = subprocess.run(["runuser", "-u", user, "--"] + argv, capture_output=True)
        ok(p.returncode != 0 and not p.stdout, f"a process of the workers' user cannot {what}")

if IS_ROOT:
    m = re.search(r"DP00063: diagproc: capture watcher (\d+) started", h.error_log())
    status_text = open(f"/proc/{m.group(1)}/status").read() if m else ""
    eff = int(re.search(r"CapEff:\s+([0-9a-f]+)", status_text).group(1), 16) if status_text else -1
    is_(eff, (1 << 19) | (1 << 2) | (1 << 40) | (1 << 5),
        "the watcher keeps CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_CHECKPOINT_RESTORE, CAP_KILL only")
    ok("NoNewPrivs:\t1" in status_text, "…with no_new_privs")

r = h.request("DELETE", f"/p/captures/{c.get('id')}")
is_(r.status, 204, "DELETE P/captures/{id}: 204")
is_(h.get("/p/captures").json(), [], "…and it is gone")
ok(not os.path.exists(os.path.join(spool, c.get("id", "x"))), "…from the spool too")
audits = [l for l in h.error_log().splitlines() if "diagproc audit" in l and "action captures" in l]
ok(any('name "list"' in l for l in audits) and any(f'name "{c.get("id")}"' in l and "outcome 204" in l
                                                   for l in audits), "audit lines: list, remove")
ok(any("outcome 403" in l for l in audits), "…and the refused ones")
h.expect_log("AH00161")     # prefork's 2 workers: one stuck, one for the API
h.stop()
shutil.rmtree(docroot, ignore_errors=True)
shutil.rmtree(os.path.dirname(spool), ignore_errors=True)
done_testing()
