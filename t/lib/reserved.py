"""What the reserved-listener tests and benchmark share: a backend that
accepts and never answers, clients left waiting on it, one-shot requests,
and the configuration of a site whose every worker thread can be held on
that backend (an event httpd of one process x 16 threads); clients that try
to close the reserved listener (Attackers), the connections a process holds
by client address (peers_of), and test certificates (make_pki)."""
import http.client
import json
import os
import socket
import time
import threading

from dphttpd import MODDIR
from procstate import socket_inodes

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
    one is in flight (in_flight() returns the URIs being served): sent all at
    once, the event MPM may queue a connection behind a busy thread while
    another is still idle. Returns the clients and the paths that did not get
    in flight."""
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
    to /stuck/ (proxied to the backend). One process: with two, both
    listeners wake for each connection, and the one that loses the accept
    keeps the idle thread it reserved for it; the event MPM then counts no
    idle thread in that process and stops accepting there, so the last
    request of a saturating run waits in the backlog with a thread idle."""
    return proxy_conf(backend_port) + f"""StartServers 1
ServerLimit 1
ThreadsPerChild {SITE_THREADS}
ThreadLimit {SITE_THREADS}
MinSpareThreads 1
MaxSpareThreads 64
MaxRequestWorkers {SITE_THREADS}
Timeout 600
ProxyTimeout 600
"""


class Attackers:
    """Clients that try to close the way in, from chosen source addresses,
    in one thread: idle connections that never send a byte, and slow-header
    clients that send one byte of an endless head per second. Each one the
    server closes (or refuses) connects again after `again` seconds, as an
    attacker would. counts: connects made, closed by the server."""

    HEAD = b"GET /p HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000

    def __init__(self, port, idle=(), slow=(), again=0.2):
        import selectors
        self.port, self.again = port, again
        self.sel = selectors.DefaultSelector()
        self.want = [(addr, "idle") for addr, n in idle for _ in range(n)]
        self.want += [(addr, "slow") for addr, n in slow for _ in range(n)]
        self.socks = {}                 # socket -> [addr, kind, bytes sent, since, answered]
        self.retry = []                 # (when, addr, kind)
        self.connects = self.closed = 0
        self.ended = []                 # (addr, kind, seconds it lived, what it was answered)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _connect(self, addr, kind):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((addr, 0))
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.retry.append((time.monotonic() + self.again, addr, kind))
            return
        import selectors
        self.sel.register(s, selectors.EVENT_READ)
        self.socks[s] = [addr, kind, 0, time.monotonic(), b""]
        self.connects += 1

    def _lost(self, s):
        addr, kind, _, since, answered = self.socks.pop(s)
        self.sel.unregister(s)
        s.close()
        self.closed += 1
        self.ended.append((addr, kind, time.monotonic() - since, answered))
        self.retry.append((time.monotonic() + self.again, addr, kind))

    def _run(self):
        for addr, kind in self.want:
            self._connect(addr, kind)
        tick = time.monotonic()
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._lost(key.fileobj)
                else:
                    self.socks[key.fileobj][4] += data
            now = time.monotonic()
            due = [r for r in self.retry if r[0] <= now]
            self.retry = [r for r in self.retry if r[0] > now]
            for _, addr, kind in due:
                self._connect(addr, kind)
            if now - tick >= 1.0:
                tick = now
                for s, st in list(self.socks.items()):
                    if st[1] == "slow":
                        try:
                            s.send(self.HEAD[st[2]:st[2] + 1])
                            st[2] += 1
                        except OSError:
                            self._lost(s)

    def open_now(self, addr_prefix=""):
        return sum(1 for st in list(self.socks.values()) if st[0].startswith(addr_prefix))

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for s in list(self.socks):
            s.close()
        self.socks.clear()


def peers_of(pid, port):
    """{client IPv4 address: connections} of the TCP connections process
    pid holds on its local port `port` (what it accepted, not its backlog).
    The socket table is read before the process's descriptors, so that a
    connection closed meanwhile is not counted beside the one that replaced
    it."""
    sockets = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state != "0A" and int(local.split(":")[1], 16) == port:
                sockets.append((inode, socket.inet_ntoa(bytes.fromhex(remote.split(":")[0])[::-1])))
    inodes = socket_inodes(pid)
    out = {}
    for inode, addr in sockets:
        if inode in inodes:
            out[addr] = out.get(addr, 0) + 1
    return out


def holder_of(client, port):
    """The pid holding the server side of client socket `client` (its
    connection to local port `port`), or None while it is only in the
    listener's backlog (accepted by no process yet)."""
    cport = client.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (int(fields[1].split(":")[1], 16) == port
                    and int(fields[2].split(":")[1], 16) == cport):
                inode = fields[9]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
        except OSError:
            continue
    return None


def make_pki(where):
    """A CA, a server certificate for 127.0.0.1 and a client certificate
    ("operator"), made with openssl in `where`: {name: path}."""
    import subprocess

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=where)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=diagproc test CA")
    for name, subject, ext in (("server", "/CN=127.0.0.1",
                                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                               ("client", "/CN=operator", "extendedKeyUsage=clientAuth\n")):
        with open(os.path.join(where, f"{name}.ext"), "w") as f:
            f.write(ext)
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", subject)
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    for name in os.listdir(where):
        os.chmod(os.path.join(where, name), 0o644)     # read by httpd as root, nothing secret
    return {n: os.path.join(where, n) for n in ("ca.crt", "server.crt", "server.key",
                                                "client.crt", "client.key")}
