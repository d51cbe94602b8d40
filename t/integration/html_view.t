# The page a person reads: a real headless Chromium renders the list and a
# detail; a process named like markup shows as text and runs nothing.
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok, is_, like, diag, done_testing  # noqa: E402
from dphttpd import Httpd, spawn, worker_user, BUILD  # noqa: E402

TARGET = os.path.join(BUILD, "targets", "proc_target")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def render(url, extra=()):
    profile = tempfile.mkdtemp(prefix="dp-chromium-")
    try:
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", *extra, url],
            capture_output=True, timeout=90)
        return out.stdout.decode("utf-8", errors="replace")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


h = Httpd().start()
P = f"{h.base}/diagnostics/processes"
name = "<script>x()"
t = spawn([TARGET, "--comm", name.encode().hex()], ready="ready", user=worker_user())

r = h.get("/diagnostics/processes", headers={"Accept": "text/html,application/xhtml+xml"})
is_(r.status, 200, "a browser's Accept gets the page")
like(r.headers.get("content-type", ""), r"^text/html; charset=utf-8$", "HTML with a charset")
like(r.headers.get("content-security-policy", ""), r"default-src 'none'", "a CSP forbids scripts")
ok(b"<script>x()" not in r.body, "the hostile name is escaped in the markup")
ok(b"&lt;script&gt;x()" in r.body, "…and present as text")
r = h.get("/diagnostics/processes", headers={"Accept": "*/*"})
like(r.headers.get("content-type", ""), r"^application/json", "other clients still get JSON")

dom = render(P, ["--dump-dom"])
page = Page()
page.feed(dom)
ok("table" in page.tags, "Chromium renders the process table")
is_(page.tags.count("script"), 0, "no script element in the rendered DOM")
ok(name in "".join(page.text), "the hostile name is shown as text")
ok(str(t.pid) in "".join(page.text), "the target's pid is shown")

dom = render(f"{P}/{t.pid}?view=html", ["--dump-dom"])
page = Page()
page.feed(dom)
ok(f"Process {t.pid}" in "".join(page.text), "the detail page renders with its title")
ok("open_file_handles" in "".join(page.text), "the detail page shows the fields")
is_(page.tags.count("script"), 0, "no script element in the detail DOM")

shot = os.path.join(h.dir, "list.png")
render(P, [f"--screenshot={shot}", "--window-size=1200,800"])
ok(os.path.exists(shot) and os.path.getsize(shot) > 5000, "a screenshot of the list is produced")
if os.environ.get("DP_KEEP_SCREENSHOT"):
    shutil.copy(shot, os.environ["DP_KEEP_SCREENSHOT"])

h.stop()
done_testing()
