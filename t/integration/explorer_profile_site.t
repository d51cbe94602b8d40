# The whole site's profile in Debian's real chromium, from the Requests page:
# while wrk asks three URLs of known cost in turn (two served by mod_php, one
# by php-fpm: t/lib/phpsite.py), a 10 s profile is taken from the page; the
# flame graph draws each request as a frame under the root, the three
# functions' widths follow their costs, and the URL list keeps one request's
# stacks. The page's screenshot is docs/explorer-profile-site.png.
import os
import shutil
import tempfile

from tap import ok, diag, done_testing
from dphttpd import BUILD, ROOT
from phpsite import PhpSite, URLS
import browser

site = PhpSite({"/p": "DiagProcAllow profile stacks"})
shots = os.path.join(BUILD, "screenshots")
try:
    os.makedirs(shots, exist_ok=True)
    open(os.path.join(shots, ".w"), "w").close()
except OSError:     # a read-only tree (the ordinary-user run): a temp folder
    shots = tempfile.mkdtemp(prefix="dp-shots-")
res, wrk = site.under_wrk(40, lambda: browser.run_script(
    os.path.join(ROOT, "t", "browser", "profile_site.mjs"),
    {"base": site.h.base, "prefix": "/p", "out_dir": shots,
     "urls": [u.split("/")[-1] for u in URLS.values()]}))
for name, good, why in res["checks"]:
    if not ok(good, name):
        diag(f"    {why[:3000]}")
if not all(c[1] for c in res["checks"]):
    diag(res["stderr"][-3000:])
f = res["facts"]
diag(f"flame graph, the three functions' shares: {f.get('work')} ({f.get('note')})")
ok("Socket errors" not in wrk and "Non-2xx" not in wrk, "wrk saw no error meanwhile")
p = os.path.join(shots, "profile-site-desktop.png")
ok(os.path.exists(p) and os.path.getsize(p) > 10000, "screenshot profile-site-desktop.png written")
if shots.startswith(tempfile.gettempdir()):
    shutil.rmtree(shots, ignore_errors=True)
site.stop()
done_testing()
