# The reserved listener is open as soon as httpd's own listeners are: a
# request sent the moment `apache2 -k start` returns (daemonized, not
# -DFOREGROUND) is queued, never refused, and answered once the reserved
# process runs. Five starts, each MPM.
import os
import socket
import time

from tap import ok, diag, done_testing
from dphttpd import free_port
from dpdaemon import DaemonHttpd
from procstate import settle


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


for mpm in ("event", "worker", "prefork"):
    for k in range(5):
        rport = free_port()
        h = DaemonHttpd(mpm=mpm, locations={"/p": ""}, server_conf=f"DiagProcListen 127.0.0.1:{rport}\n")
        h.write_config()
        rc = h.signal("start")
        line, ms = first_request(rport)
        if not ok(rc == 0 and line == "HTTP/1.1 200 OK",
                  f"{mpm}, start {k + 1}: a request right after -k start returns: {line} ({ms:.0f} ms)"):
            diag(h.logs())
        pidfile = os.path.join(h.dir, "httpd.pid")
        settle(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 10)
        h._pid = int(open(pidfile).read()) if os.path.exists(pidfile) else None
        h.stop()                        # -k stop, and whatever is left killed
done_testing()
