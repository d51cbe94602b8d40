# The explorer's Requests page in Debian's real chromium: a mod_php request
# stuck in a method is listed oldest first with its URI, client and where its
# code is (Class::method file:line, the runtime), and links to the stacks of
# the process serving it; a request proxied to php-fpm names the child at the
# other end and its PHP frame and request; a URI made of markup stays text.
# The page's screenshot is docs/explorer-requests.png.
import os
import shutil
import socket
import tempfile
import time

from tap import ok, like, diag, done_testing
from dphttpd import Httpd, MODDIR, ROOT
from phpfpm import PhpFpm
import browser
from langfix import line_of, place


docroot = tempfile.mkdtemp(prefix="dpreqx-")
os.chmod(docroot, 0o755)
page = place("page.php", docroot)
fpm_page = place("fpm_page.php", docroot)
sock = os.path.join(docroot, "fpm.sock")
fpm = PhpFpm(docroot, [("shop", sock, 1)]).start()
ok(fpm.children(), "php-fpm is up")
h = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow stacks"}, modules=("proxy", "proxy_fcgi"),
          server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\n"
                      "MaxRequestWorkers 5\nServerLimit 5\nStartServers 5\n"
                      f"DocumentRoot {docroot}\n"
                      "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n</FilesMatch>\n"
                      f"<Files fpm_page.php>\n    SetHandler \"proxy:unix:{sock}|fcgi://localhost\"\n"
                      "</Files>\n").start()

PHP_URI = "/page.php?order=42"
EVIL_URI = "/page.php?<img/src=x/onerror=alert(1)>"
held = []
FPM_URI = "/fpm_page.php?cart=7"
for uri in (PHP_URI, EVIL_URI, FPM_URI):
    s = socket.create_connection(("127.0.0.1", h.port))
    s.sendall(f"GET {uri} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    held.append(s)
    time.sleep(0.5)     # the first is the older

pid = None
for _ in range(60):
    d = h.get("/p/requests").json() or {}
    pid = next((x["pid"] for x in d.get("requests", []) if x.get("uri") == PHP_URI), None)
    if pid:
        break
    time.sleep(0.25)
ok(pid, "the PHP request is in flight")

shots = browser.shots_dir()
res = browser.run_script(os.path.join(ROOT, "t", "browser", "requests.mjs"), {
    "base": h.base, "prefix": "/p", "php_uri": PHP_URI, "evil_uri": EVIL_URI,
    "php_pid": pid, "php_file": page, "php_line": line_of(page, "build"), "out_dir": shots,
    "fpm_uri": FPM_URI, "fpm_file": fpm_page, "fpm_line": line_of(fpm_page, "charge"),
    "fpm_child": fpm.children()[0], "fpm_sock": sock,
})
for name, good, why in res["checks"]:
    if not ok(good, name):
        diag(f"    {why[:3000]}")
if not all(c[1] for c in res["checks"]):
    diag(res["stderr"][-3000:])
like(res["facts"].get("detail_url", ""), rf"/p/{pid}#stacks$", "the stacks link is the serving process's detail")
p = os.path.join(shots, "requests-desktop.png")
ok(os.path.exists(p) and os.path.getsize(p) > 10000, "screenshot requests-desktop.png written")
if shots.startswith(tempfile.gettempdir()):
    shutil.rmtree(shots, ignore_errors=True)
for s in held:
    s.close()
fpm.stop()
# php-fpm went away under its request (mod_proxy_fcgi says so)
h.expect_log("AH01067", "AH01075")
h.stop()
shutil.rmtree(docroot, ignore_errors=True)
done_testing()
