"""A PHP site whose URLs cost known amounts of CPU, for the site's profile
tests: httpd prefork with mod_php serving two URLs of cost 1 and 3, and a
php-fpm pool behind mod_proxy_fcgi serving one of cost 2; wrk asks the
three in turn, one request at a time (t/fixtures/lang/site_work.php)."""
import os
import subprocess
import tempfile
import time

from dphttpd import Httpd, MODDIR
from phpfpm import PhpFpm
from langfix import place

URLS = {"cheap": "/site_work.php?fn=cheap&n=1", "costly": "/site_work.php?fn=costly&n=3",
        "fpm": "/fpm/site_work.php?fn=fpm&n=2"}
COST = {"cheap": 1, "costly": 3, "fpm": 2}


class PhpSite:
    def __init__(self, locations):
        self.run = tempfile.mkdtemp(prefix="dpsite-")
        os.chmod(self.run, 0o755)
        place("site_work.php", self.run)
        sock = os.path.join(self.run, "fpm.sock")
        self.fpm = PhpFpm(self.run, [("www", sock, 2)]).start()
        self.fpm_children = [int(k) for k in self.fpm.children()]
        self.h = Httpd(mpm="prefork", modules=("proxy", "proxy_fcgi"), locations=locations,
                       server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\n"
                       f"DocumentRoot {self.run}\n"
                       "ServerLimit 6\nMaxRequestWorkers 6\nStartServers 5\n"
                       "MinSpareServers 5\nMaxSpareServers 6\n"
                       f'ProxyPassMatch "^/fpm/(.*\\.php)$" "unix:{sock}|fcgi://localhost{self.run}/$1"\n'
                       "<FilesMatch \\.php$>\n    SetHandler application/x-httpd-php\n</FilesMatch>\n"
                       ).start()
        # php-fpm resets the connection of a request wrk leaves behind at
        # its end (mod_proxy_fcgi says so)
        self.h.expect_log("AH01067", "AH01075")
        self.script = os.path.join(self.run, "rotate.lua")
        with open(self.script, "w") as f:
            f.write("local paths = {" + ", ".join(f'"{u}"' for u in URLS.values()) + "}\n"
                    "local i = 0\n"
                    "request = function()\n  i = i % #paths + 1\n"
                    "  return wrk.format(\"GET\", paths[i])\nend\n")

    def under_wrk(self, seconds, fn):
        """(fn(), wrk's output): fn called while wrk asks the three URLs in
        turn, one at a time -- on two cores the CPU is then not saturated,
        so that the sampler runs when its period says (on a saturated
        machine it runs when a CPU frees, that is when a request ends,
        which undercounts short requests)."""
        w = subprocess.Popen(["wrk", "-t1", "-c1", f"-d{seconds}s", "-s", self.script,
                              self.h.base], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        time.sleep(1)
        try:
            res = fn()
        finally:
            out = w.communicate(timeout=seconds + 30)[0]
        return res, out

    def stop(self):
        self.fpm.stop()
        self.h.stop()
