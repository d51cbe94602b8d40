# The explorer's Captures page in Debian's real chromium: a capture of a
# mod_php request stuck past its rule's threshold is listed with its rule,
# trigger, process, request and artifact downloads; Remove removes it. The
# page's screenshot goes to build/screenshots/captures-desktop.png.
import os
import shutil
import tempfile
import threading

import procstate
from tap import ok, done_testing
from dphttpd import Httpd, MODDIR, ROOT
from langfix import place
import browser

docroot = tempfile.mkdtemp(prefix="dpcapx-")
os.chmod(docroot, 0o755)
place("page.php", docroot)
h = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow captures stacks"},
          server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\nDocumentRoot {docroot}\n"
                      "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n</FilesMatch>\n"
                      f"DiagProcSpool {docroot}/spool 16M 10\n"
                      "DiagProcCapture stuck when=request-age>2s path=/page.php\n").start()
URI = "/page.php?cart=<b>7</b>"


def run():
    try:
        h.get(URI.replace("<", "%3C").replace(">", "%3E"), timeout=60)
    except OSError:
        pass


threading.Thread(target=run, daemon=True).start()
ok(procstate.settle(lambda: h.get("/p/captures").json(), 15), "the stuck request is captured")
c = (h.get("/p/captures").json() or [{}])[0]
r = h.get("/p/captures", headers={"Accept": "text/html"})
ok(r.status == 200 and b"explorer.js" in r.body, "P/captures in a browser: the explorer's page")
shots = browser.screenshots_dir()
res = browser.run_script(os.path.join(ROOT, "t", "browser", "captures.mjs"), {
    "base": h.base, "prefix": "/p", "id": c.get("id"), "pid": c.get("pid"),
    "uri": (c.get("request") or {}).get("uri") or "?", "out_dir": shots,
})
browser.report(res)
ok(h.get("/p/captures").json() == [], "…removed on the server too")
browser.drop_screenshots(shots)
h.expect_log("AH00161")
h.stop()
shutil.rmtree(docroot, ignore_errors=True)
done_testing()
