"""What the reserved-listener tests and benchmark share: a backend that
accepts and never answers, clients left waiting on it, one-shot requests,
and the configuration of a site whose every worker thread can be held on
that backend (an event httpd of 2 processes x 8 threads)."""
import http.client
import json
import socket
import time
import threading

from dphttpd import MODDIR

SITE_THREADS = 16


class BlackHole:
    """A backend that accepts connections and never answers (they stay open)."""

    def __init__(self, backlog=64):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return


def send_stuck(port, path):
    """A client that sends a request and waits (its socket is kept open)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return s


def saturate(port, paths, in_flight, secs_each=10):
    """Stuck clients for paths, one at a time, each sent once the previous
    one is in flight (in_flight() returns the URIs being served). Sent all at
    once, the event MPM may queue a connection behind one process's busy
    threads while the other process still has an idle one: that request is
    never served, and the site never saturates. Returns the clients and the
    paths that did not get in flight."""
    clients, missing = [], []
    for path in paths:
        clients.append(send_stuck(port, path))
        deadline = time.monotonic() + secs_each
        while path not in in_flight() and time.monotonic() < deadline:
            time.sleep(0.05)
        if path not in in_flight():
            missing.append(path)
    return clients, missing


def get(port, path, headers=None, method="GET", timeout=10):
    """(status, body) of one request on its own connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def get_json(port, path, timeout=10):
    """(status, parsed body), the body None when it is not JSON."""
    st, body = get(port, path, timeout=timeout)
    try:
        return st, json.loads(body)
    except ValueError:
        return st, None


def proxy_conf(backend_port):
    """/stuck/ proxied to the backend."""
    return f"""LoadModule proxy_module {MODDIR}/mod_proxy.so
LoadModule proxy_http_module {MODDIR}/mod_proxy_http.so
ProxyPass /stuck/ http://127.0.0.1:{backend_port}/
"""


def saturable_site_conf(backend_port):
    """SITE_THREADS worker threads in all, each held up to 600 s by a request
    to /stuck/ (proxied to the backend)."""
    return proxy_conf(backend_port) + f"""StartServers 2
ServerLimit 2
ThreadsPerChild 8
ThreadLimit 8
MinSpareThreads 1
MaxSpareThreads 16
MaxRequestWorkers {SITE_THREADS}
Timeout 600
ProxyTimeout 600
"""
