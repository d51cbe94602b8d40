# The process explorer in Debian's real chromium (playwright-core drives it):
# the tree, filter, sorting and live CPU % of the list; the detail's tabs;
# the dump and kill buttons; a hostile process name; a cross-origin page's
# DELETE and POST refused; no request to another origin. Plain HTTP checks
# first: who gets the page and who keeps JSON, its headers and its size.
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import time

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, favour_cpu, BUILD, IS_ROOT, ROOT
import browser

TARGET = os.path.join(BUILD, "targets", "proc_target")
EVIL = "<img src=x onerror=alert(1)>"
# the README's budget: what a browser loads for the explorer, uncompressed
BUDGET = 56 * 1024
CHROME_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                 "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")

h = Httpd(locations={
    "/diagnostics/processes": "DiagProcAllow kill dump fulldump environment stacks",
    "/api/processes": "",
    "/all/processes": "DiagProcUsers *",
}).start()
P = "/diagnostics/processes"

# ------------------------------------------------- who gets the page (HTTP)
for accept, html, who in ((CHROME_ACCEPT, True, "Chromium's navigation Accept"),
                          ("text/html", True, "text/html alone"),
                          ("*/*", False, "*/* (curl, fetch())"),
                          (None, False, "no Accept"),
                          ("application/json", False, "application/json (Kudu's client)"),
                          ("application/json, text/html;q=0.9", False, "JSON ranked above HTML"),
                          ("text/html;q=0.5, */*", False, "HTML ranked below anything")):
    r = h.get(P, headers={"Accept": accept} if accept else {})
    like(r.headers.get("content-type", ""), r"^text/html" if html else r"^application/json",
         f"{who}: {'the page' if html else 'JSON'}")
    like(r.headers.get("vary", ""), r"(?i)\baccept\b", f"{who}: Vary: Accept")
r = h.get(f"{P}?view=html", headers={"Accept": "*/*"})
like(r.headers.get("content-type", ""), r"^text/html; charset=utf-8$", "?view=html gets the page, with its charset")
r = h.get(f"{P}/0?view=html", headers={"Accept": "*/*"})
like(r.headers.get("content-type", ""), r"^text/html", "…also on a detail URL")
r = h.get(P, headers={"Accept": CHROME_ACCEPT})
page = r.body.decode()
csp = r.headers.get("content-security-policy", "")
like(csp, r"default-src 'none'", "the page has a strict CSP")
like(csp, r"script-src 'self'(;|$)", "…scripts from this origin only")
ok("unsafe-inline" not in csp and "unsafe-eval" not in csp, "…no inline script or style, no eval")
ok(not re.search(r"<script(?![^>]*\bsrc=)", page), "the page has no inline script")
ok(not re.search(r"(src|href)=\"(https?:)?//", page), "…and loads nothing from another host")
like(page, r'data-allow="kill dump fulldump environment stacks"', "it tells the script what the Location allows")
r = h.get("/api/processes", headers={"Accept": CHROME_ACCEPT})
like(r.body.decode(), r'data-allow=""', "…nothing, on a read-only Location")

assets = {}
for name, ctype in (("explorer.js", "text/javascript"), ("explorer.css", "text/css")):
    r = h.get(f"{P}/ui/{name}")
    is_(r.status, 200, f"{name} is served below the prefix")
    like(r.headers.get("content-type", ""), rf"^{ctype}; charset=utf-8$", f"{name}: its type and charset")
    etag = r.headers.get("etag", "")
    like(etag, r'^"[0-9a-f]{16}"$', f"{name}: a strong ETag")
    r2 = h.get(f"{P}/ui/{name}", headers={"If-None-Match": etag})
    is_((r2.status, r2.body, r2.headers.get("etag")), (304, b"", etag), f"{name}: 304 with the ETag when unchanged")
    with open(os.path.join(ROOT, "ui", name), "rb") as f:
        src = f.read()
    if not ok(r.body == src, f"{name}: the bytes of ui/{name}"):
        diag(f"    served {len(r.body)} bytes, ui/{name} has {len(src)} (module not rebuilt?)")
    assets[name] = r.body
is_(h.get(f"{P}/ui/nothing.js").status, 404, "an unknown explorer file is 404")
total = len(page.encode()) + sum(len(b) for b in assets.values())
gz = len(gzip.compress(page.encode())) + sum(len(gzip.compress(b)) for b in assets.values())
diag(f"explorer size: {total} bytes ({gz} gzipped), budget {BUDGET}")
ok(total <= BUDGET, f"page + script + style within the budget: {total} <= {BUDGET} bytes")
r = h.get(P, headers={"Accept": "*/*"})
e = (r.json() or [{}])[0]
ok(isinstance(e.get("cpu_times", {}).get("user"), float) and
   re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$", e.get("time_stamp", "")),
   "list entries carry numeric cpu_times and a time_stamp (for the live CPU %)")

# ---------------------------------------------------------------- targets
user = worker_user()
tree = spawn(["/usr/bin/python3", "-c", f"""
import ctypes, subprocess, sys
ctypes.CDLL(None).prctl(15, b"dpx-tree", 0, 0, 0)   # PR_SET_NAME
kids = [subprocess.Popen([{TARGET!r}, "--comm", name.encode().hex(), "--rss", mib],
                         stdout=subprocess.PIPE) for name, mib in
        (("dpx-small", "4"), ("dpx-mid", "24"), ("dpx-big", "64"))]
for k in kids:
    k.stdout.readline()
print("ready", *[k.pid for k in kids], flush=True)
for k in kids:
    k.wait()
"""], ready="ready", user=user)
small, mid, big = (int(x) for x in tree.ready_lines[-1].split()[1:4])
busy = spawn([TARGET, "--comm", b"dpx-busy".hex(), "--spinners", "3"], ready="ready", user=user)
favour_cpu(busy.pid)
idle = spawn([TARGET, "--comm", b"dpx-idle".hex(), "--threads", "2"], ready="ready", user=user,
             env=dict(os.environ, DP_EXPLORER_MARK="<b>mark</b>"))
victim = spawn([TARGET, "--comm", b"dpx-victim".hex()], ready="ready", user=user)
# comm keeps 15 bytes; the name is argv[0] then (psutil's rule)
evil = spawn([EVIL, "--comm", EVIL.encode()[:15].hex()], executable=TARGET, ready="ready", user=user)
is_(h.get(f"{P}/{evil.pid}").json().get("name"), EVIL, "the hostile target's name is the markup")
php = spawn(["/usr/bin/php8.2", os.path.join(ROOT, "t", "fixtures", "lang", "stuck.php")],
            ready="ready", user=user)
worker = h.workers()[0]

shots = browser.screenshots_dir()
tmp = tempfile.mkdtemp(prefix="dp-explorer-")
os.chmod(tmp, 0o777)

t0 = time.time()
res = browser.run_script(os.path.join(ROOT, "t", "browser", "explorer.mjs"), {
    "base": h.base, "prefix": P, "ro_prefix": "/api/processes", "all_prefix": "/all/processes",
    "pids": {"tree": tree.pid, "small": small, "mid": mid, "big": big, "busy": busy.pid,
             "idle": idle.pid, "victim": victim.pid, "evil": evil.pid, "php": php.pid,
             "worker": worker},
    "hidden_parent": os.getpid() if IS_ROOT else None,
    "evil_name": EVIL, "idle_threads": 3, "target_exe": TARGET,
    "out_dir": shots, "tmp_dir": tmp,
})
diag(f"browser run: {time.time() - t0:.1f} s; CPU % seen: {res['facts'].get('cpu')}")
browser.report(res)
facts = res["facts"]

# the facts the browser saw, against the real processes
like(facts.get("title", ""), r"^Processes — \S+$", "the instance name is in the title")
like(facts.get("kill_url", ""), rf"{P}/{tree.pid}$", "the kill was a DELETE of the tree's root")
is_(facts.get("kill_status"), 204, "…answered 204")
for name, p in (("root", tree.pid), ("small", small), ("mid", mid), ("big", big)):
    ok(not os.path.exists(f"/proc/{p}") or "State:\tZ" in open(f"/proc/{p}/status").read(),
       f"the tree's {name} is dead")
ok(os.path.exists(f"/proc/{idle.pid}") and os.path.exists(f"/proc/{busy.pid}"),
   "…and the other targets live")
core = facts.get("dump_path")
if ok(core and os.path.exists(core), "the downloaded core is on disk"):
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", "thread apply all bt", TARGET, core],
                         capture_output=True, text=True, timeout=120).stdout
    like(out, r"in (main|idle_thread) ", "gdb opens the downloaded core and shows the target's frames")
    ok(str(idle.pid) in out or "LWP" in out, "…of the target's threads")
is_(facts.get("dump_buttons"), ["0-raw", "0-zip", "1-raw", "1-zip", "2-raw", "2-zip"],
    "dump buttons: minimal, with data, full; raw or zip")

cross = facts.get("cross", {})
like(cross.get("delete", ""), r"^refused", "a cross-origin page's fetch() DELETE is refused by the browser (no CORS)")
like(cross.get("delete_cred", ""), r"^refused", "…with credentials too")
with open(os.path.join(h.dir, "access.log")) as f:
    log = "".join(x for x in f if f"/{victim.pid}" in x)
ok(not re.search(rf'"DELETE {P}/{victim.pid} ', log), "…and never reaches the server")
like(log, rf'"POST {P}/{victim.pid}/stop HTTP/1.1" 403 ',
     "its no-cors POST reaches the server, which answers 403 (another origin)")
ok(os.path.exists(f"/proc/{victim.pid}") and "State:\tZ" not in open(f"/proc/{victim.pid}/status").read(),
   "the target of the cross-origin page lives")

for f in ("list-desktop.png", "list-phone.png", "detail-desktop.png", "detail-phone.png"):
    p = os.path.join(shots, f)
    ok(os.path.exists(p) and os.path.getsize(p) > 10000, f"screenshot {f} written")
diag(f"screenshots in {shots}")
browser.drop_screenshots(shots)
shutil.rmtree(tmp, ignore_errors=True)
h.stop()
done_testing()
