# The explorer's Profile tab in Debian's real chromium: a PHP cli target that
# spends about 70 % and 30 % of its time in seventy() and thirty()
# (t/fixtures/lang/busy.php) is profiled for 10 seconds from the page; the
# flame graph shows both functions with widths in about that ratio, the filter
# keeps only the stacks that hold its text, and a script whose path is markup
# shows as text. The page's screenshot is docs/explorer-profile.png.
import os
import shutil
import tempfile

from tap import ok, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, favour_cpu, ROOT
import browser

EVIL = "<img src=x onerror=alert(1)>"

# the target's script under a name made of markup: its frames carry that path
d = tempfile.mkdtemp(prefix="dpflame-")
os.chmod(d, 0o755)
script = os.path.join(d, EVIL + ".php")
shutil.copy(os.path.join(ROOT, "t", "fixtures", "lang", "busy.php"), script)
os.chmod(script, 0o644)

h = Httpd(locations={"/p": "DiagProcAllow profile stacks", "/ro": "DiagProcAllow stacks"}).start()
php = spawn(["/usr/bin/php8.2", script], ready="ready", user=worker_user())
favour_cpu(php.pid)

shots = browser.shots_dir()
res = browser.run_script(os.path.join(ROOT, "t", "browser", "profile.mjs"), {
    "base": h.base, "prefix": "/p", "ro_prefix": "/ro", "pid": php.pid, "evil": EVIL,
    "out_dir": shots,
})
for name, good, why in res["checks"]:
    if not ok(good, name):
        diag(f"    {why[:3000]}")
if not all(c[1] for c in res["checks"]):
    diag(res["stderr"][-3000:])
f = res["facts"]
diag(f"flame graph: seventy {f.get('seventy')} %, thirty {f.get('thirty')} % ({f.get('note')})")
p = os.path.join(shots, "profile-desktop.png")
ok(os.path.exists(p) and os.path.getsize(p) > 10000, "screenshot profile-desktop.png written")
if shots.startswith(tempfile.gettempdir()):
    shutil.rmtree(shots, ignore_errors=True)
h.stop()
shutil.rmtree(d, ignore_errors=True)
done_testing()
