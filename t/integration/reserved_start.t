# The reserved listener is open as soon as httpd's own listeners are: a
# request sent the moment `apache2 -k start` returns (daemonized, not
# -DFOREGROUND) is queued, never refused, and answered once the reserved
# process runs. Five starts, each MPM.
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok, diag, done_testing  # noqa: E402
from dphttpd import Httpd, free_port, APACHE, httpd_env  # noqa: E402
from procstate import settle  # noqa: E402


def first_request(port):
    """(status line, ms) of a request sent at once; an error's text if refused."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /p/0 HTTP/1.0\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                b = s.recv(4096)
                if not b:
                    break
                data += b
    except OSError as e:
        return str(e), 0
    return data.split(b"\r\n")[0].decode(errors="replace"), (time.monotonic() - t0) * 1000


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


for mpm in ("event", "worker", "prefork"):
    for k in range(5):
        rport = free_port()
        h = Httpd(mpm=mpm, locations={"/p": ""}, server_conf=f"DiagProcListen 127.0.0.1:{rport}\n")
        h.write_config()
        conf = os.path.join(h.dir, "httpd.conf")
        start = subprocess.run([APACHE, "-f", conf, "-k", "start"], env=httpd_env(),
                               capture_output=True, text=True)
        line, ms = first_request(rport)
        if not ok(start.returncode == 0 and line == "HTTP/1.1 200 OK",
                  f"{mpm}, start {k + 1}: a request right after -k start returns: {line} ({ms:.0f} ms)"):
            diag(start.stderr + h.logs())
        pidfile = os.path.join(h.dir, "httpd.pid")
        settle(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 10)
        pid = int(open(pidfile).read()) if os.path.exists(pidfile) else None
        subprocess.run([APACHE, "-f", conf, "-k", "stop"], env=httpd_env(), capture_output=True)
        if not ok(pid and settle(lambda: not alive(pid), 15), f"{mpm}, start {k + 1}: -k stop ends it"):
            if pid:
                os.kill(pid, signal.SIGKILL)
        h.stop()
done_testing()
