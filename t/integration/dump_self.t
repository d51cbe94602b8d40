# id 0 -- the httpd process serving the request dumps itself -- on each of
# httpd's three MPMs, minimal and full, raw and zip: the thread carrying the
# stream is never stopped, the core shows the handler's own frames, and the
# worker serves the next request with nothing left behind in it.
import os
import re
import subprocess
import tempfile
import zipfile

from tap import ok, is_, like, done_testing
from dphttpd import Httpd
from procstate import running, settle, children
from elfcore import layout_problems

work = tempfile.TemporaryDirectory(prefix="dp-self-")


def curl(url, out, hdr):
    return subprocess.run(["curl", "-sS", "-o", out, "-D", hdr, "-w", "%{http_code}", url],
                          capture_output=True, text=True, timeout=300).stdout


def served_by(hdr):
    m = re.search(r'filename="[^"]*-(\d+)-\d{8}', open(hdr).read())
    return int(m.group(1)) if m else 0


for mpm in ("event", "worker", "prefork"):
    h = Httpd(mpm=mpm, locations={"/p": "DiagProcAllow dump fulldump"}).start()
    for dump_type in (0, 2):
        core = os.path.join(work.name, f"{mpm}-{dump_type}.core")
        hdr = core + ".hdr"
        status = curl(f"{h.base}/p/0/dump?dumpType={dump_type}", core, hdr)
        is_(status, "200", f"{mpm}: id 0, dumpType={dump_type} answers 200")
        m = re.search(r"(?i)content-length: (\d+)", open(hdr).read())
        ok(m and int(m.group(1)) == os.path.getsize(core), f"{mpm}: …all of it")
        is_(layout_problems(core), [], f"{mpm}: …every PT_LOAD page-aligned and inside the file")
        bt = subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt",
                             "/usr/sbin/apache2", core], capture_output=True, text=True,
                            timeout=120).stdout
        # the streaming thread's stack as it was when its registers were taken:
        # waiting for the helper's answer, or (the helper read the request on
        # the other CPU before the worker's write returned) still in the call
        like(bt, r"in (dp_helper_read_answer|dp_helper_call) \(.*\n#\d+\s+0x[0-9a-f]+ in handle_dump \(",
             f"{mpm}: …gdb unwinds the streaming thread through the helper call to handle_dump")
        pid = served_by(hdr)
        ok(pid and settle(lambda: running(pid)), f"{mpm}: …the worker runs on")
        ok(settle(lambda: not children(pid)), f"{mpm}: …with no child (nor zombie) left in it")
        os.unlink(core)
    zp = os.path.join(work.name, f"{mpm}.zip")
    is_(curl(f"{h.base}/p/0/dump?format=zip", zp, zp + ".hdr"), "200", f"{mpm}: id 0 as zip")
    with zipfile.ZipFile(zp) as z:
        is_(z.testzip(), None, f"{mpm}: …a whole zip")
        ok("core" in z.namelist() and any(n.endswith("/apache2") for n in z.namelist()),
           f"{mpm}: …with the core and httpd's own binary")
    is_(h.get("/p/0").status, 200, f"{mpm}: the next request is served")
    h.stop()

done_testing()
