# P/requests names the backend process at the other end of each proxied
# request's connection, found through the kernel's socket tables (the
# helper's DP_READ_WHERE): a process that accepts and never answers behind
# mod_proxy_http (TCP), php-fpm behind mod_proxy_fcgi over a unix socket and
# over loopback TCP (the child serving it, never the master), and, as root,
# backends on "another host" (a network namespace behind a veth pair): one
# that accepts and never answers, one whose SYN is never answered (the
# worker waits in its connect's poll): remote, no pid. The request asking
# has no backend.
import glob
import os
import shutil
import socket
import tempfile
import threading
import time

from tap import ok, is_, like, diag, note, done_testing, bail_out
from dphttpd import Httpd, worker_user, free_port, kill_quietly, IS_ROOT
from phpfpm import PhpFpm, FPM
from backends import OtherHost, hole
from procstate import socket_inodes
from langfix import place

if not os.path.exists(FPM):
    bail_out(f"{FPM} is not installed (php8.2-fpm: make test-deps)")


user = worker_user()
run = tempfile.mkdtemp(prefix="dpwhere-")
os.chmod(run, 0o755)
QUEUED = ("full1.php", "full2.php", "fullt1.php", "fullt2.php")
for name in ("fpm_page.php", "fpm_tcp.php") + QUEUED:
    place("fpm_page.php", run, name)
sock, fsock = os.path.join(run, "fpm.sock"), os.path.join(run, "full.sock")
fport, hport, qport = free_port(), free_port(), free_port()
fpm = PhpFpm(run, [("unixpool", sock, 2), ("tcppool", f"127.0.0.1:{fport}", 2),
                   ("fullpool", fsock, 1), ("fulltcp", f"127.0.0.1:{qport}", 1)]).start()
# (a) a separate process that accepts and never answers
hole_proc = hole("127.0.0.1", hport, user=user)
unix_kids, tcp_kids = fpm.children("unixpool"), fpm.children("tcppool")
is_((len(unix_kids), len(tcp_kids)), (2, 2), "php-fpm: a master and two pools of 2 children")

# (d) as root: "another host", a network namespace behind a veth pair; in it
# a process that accepts and never answers on :8080, and nothing that ever
# answers a SYN on :8081 (its way back is a blackhole route)
other, far = None, None
server_conf = ""
if IS_ROOT:
    other = OtherHost(f"dpw{os.getpid() % 100000}", "198.18.78")
    far = hole(other.addr, 8080, netns=other.netns)
    server_conf = (f"ProxyPass /far/ http://{other.addr}:8080/\n"
                   f"ProxyPass /syn/ http://{other.addr}:8081/ connectiontimeout=300\n")

h = Httpd(locations={"/p": f"DiagProcUsers {user} root"},
          modules=("proxy", "proxy_http", "proxy_fcgi", "proxy_connect"),
          server_conf=f"ExtendedStatus On\nDocumentRoot {run}\nTimeout 600\nProxyTimeout 600\n"
                      "<Files fpm_page.php>\n"
                      f"    SetHandler \"proxy:unix:{sock}|fcgi://localhost\"\n</Files>\n"
                      "<FilesMatch ^full[12]\\.php$>\n"
                      f"    SetHandler \"proxy:unix:{fsock}|fcgi://localhost\"\n</FilesMatch>\n"
                      "<FilesMatch ^fullt[12]\\.php$>\n"
                      f"    SetHandler \"proxy:fcgi://127.0.0.1:{qport}\"\n</FilesMatch>\n"
                      "<Files fpm_tcp.php>\n"
                      f"    SetHandler \"proxy:fcgi://127.0.0.1:{fport}\"\n</Files>\n"
                      f"ProxyPass /hole/ http://127.0.0.1:{hport}/\n"
                      f"ProxyRequests On\nAllowCONNECT {hport}\n"
                      "<Proxy *>\n    Require ip 127.0.0.1\n</Proxy>\n" + server_conf).start()
if other:
    # the SYN's answer from the namespace goes nowhere: the worker's connect waits
    other.run("ip", "route", "add", "blackhole", "198.18.78.1/32")


def request(path):
    def go():
        try:
            h.get(path, timeout=600)
        except OSError:
            pass        # cut when the test stops the backends
    threading.Thread(target=go, daemon=True).start()


# (f) a CONNECT tunnel (mod_proxy_connect): the worker waits in epoll_wait on
# the client's connection and the backend's
tunnel = socket.create_connection(("127.0.0.1", h.port))
tunnel.sendall(f"CONNECT 127.0.0.1:{hport} HTTP/1.1\r\nHost: 127.0.0.1:{hport}\r\n\r\n".encode())
tunnel.settimeout(10)
tunnel_head = tunnel.recv(200)
paths = ["/hole/x", "/fpm_page.php", "/fpm_tcp.php"] + [f"/{q}" for q in QUEUED] + (["/far/x", "/syn/x"] if other else [])
for p in paths:
    request(p)
reqs, d = {}, {}
for _ in range(120):
    d = h.get("/p/requests", timeout=60).json() or {}
    reqs = {x.get("uri"): x for x in d.get("requests", [])}
    if all(p in reqs and "backend" in reqs[p] for p in paths) and \
            any("backend" in x for x in d.get("requests", []) if x.get("method") == "CONNECT"):
        break
    time.sleep(0.25)
if not ok(all(p in reqs for p in paths), f"all {len(paths)} proxied requests are listed"):
    diag(repr(d)[:3000])

# (a) mod_proxy_http to a process of this host
be = reqs.get("/hole/x", {}).get("backend") or {}
if not is_((be.get("transport"), be.get("address"), be.get("pid"), be.get("remote")),
           ("tcp", f"127.0.0.1:{hport}", hole_proc.pid, False),
           "/hole/x: tcp to 127.0.0.1, the pid of the process that accepted it"):
    diag(repr(reqs.get("/hole/x"))[:2000])
is_(be.get("user"), user, "…its user")
like(be.get("process") or "", rf"/p/{hole_proc.pid}$", "…and its href")
like(be.get("local") or "", r"^127\.0\.0\.1:\d+$", "…and the worker's own end")

# (f) the tunnel: the backend through the epoll set (the client's side left out)
like(tunnel_head.decode(errors="replace"), r"^HTTP/1\.\d 200 ", "CONNECT: the tunnel is open")
x = ([x for x in d.get("requests", []) if x.get("method") == "CONNECT"] or [{}])[0]
be = x.get("backend") or {}
if not is_((be.get("transport"), be.get("address"), be.get("pid")),
           ("tcp", f"127.0.0.1:{hport}", hole_proc.pid),
           "CONNECT tunnel (epoll_wait on both ends): the backend process, not the client"):
    diag(repr(x)[:2000])
try:
    with open(f"/proc/{x.get('pid')}/task/{x.get('tid')}/syscall") as f:
        note(f"CONNECT's thread waits in system call {f.read().split()[0]}")
except (OSError, IndexError):
    pass

# (b), (c) php-fpm over a unix socket and over TCP: the child, not the master
for path, transport, addr, kids in (("/fpm_page.php", "unix", sock, unix_kids),
                                    ("/fpm_tcp.php", "tcp", f"127.0.0.1:{fport}", tcp_kids)):
    be = reqs.get(path, {}).get("backend") or {}
    if not is_((be.get("transport"), be.get("address"), be.get("remote")),
               (transport, addr, False), f"{path}: {transport} to {addr}, a local backend"):
        diag(repr(reqs.get(path))[:2000])
    ok(be.get("pid") in kids, f"…served by a child of its pool ({be.get('pid')} of {kids})")
    ok(be.get("pid") != fpm.pid, "…not the master (which holds only the listening socket)")
    is_(be.get("user"), user if IS_ROOT else be.get("user"), "…the pool's user")
# the child named holds the accepted connection (its open fds: a connected
# socket on the pool's path or port); its sibling holds none
def connected_inodes(table, match):
    out = set()
    with open(f"/proc/{h.parent_pid}/net/{table}") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            if table == "unix" and len(x) >= 8 and x[5] == "03" and x[7] == match:
                out.add(x[6])
            elif table == "tcp" and x[3] == "01" and x[1].endswith(f":{match:04X}"):
                out.add(x[9])
    return out


for path, kids, table, match in (("/fpm_page.php", unix_kids, "unix", sock),
                                 ("/fpm_tcp.php", tcp_kids, "tcp", fport)):
    pid = (reqs.get(path, {}).get("backend") or {}).get("pid")
    accepted = connected_inodes(table, match)
    holding = [k for k in kids if socket_inodes(k) & accepted]
    is_(holding, [pid], f"{path}: of the pool's children, the one named holds the accepted "
                        f"connection (its fds), the other none")

# (g) a pool of one child, busy: the request after it waits in the pool's
# listening queue (no process accepted it): the master that holds the
# listener is named, over unix and TCP alike; never remote
for pool, transport, addr, pair in (("fullpool", "unix", fsock, ("/full1.php", "/full2.php")),
                                    ("fulltcp", "tcp", f"127.0.0.1:{qport}",
                                     ("/fullt1.php", "/fullt2.php"))):
    kid = fpm.children(pool)
    bes = [reqs.get(p, {}).get("backend") or {} for p in pair]
    if not is_(sorted((b.get("transport"), b.get("address"), b.get("remote"), b.get("pid"))
                      for b in bes),
               sorted([(transport, addr, False, kid[0] if kid else None),
                       (transport, addr, False, fpm.pid)]),
               f"{pool} (1 child, 2 requests): one served by its child, one queued at the "
               f"master's listening socket ({transport})"):
        diag(repr([reqs.get(p) for p in pair])[:2000])

# (d) another host: remote, no pid, never a wrong one
if other:
    for path, port, state in (("/far/x", 8080, "accepted"), ("/syn/x", 8081, "SYN never answered")):
        x = reqs.get(path, {})
        be = x.get("backend") or {}
        if not is_((be.get("transport"), be.get("address"), be.get("remote"), be.get("pid")),
                   ("tcp", f"198.18.78.2:{port}", True, None),
                   f"{path}: another host ({state}): remote, no pid"):
            diag(repr(x)[:2000])
        ok("process" not in be and be.get("user") is None, "…no process, no user")

# every backend named is a process of the kind we expect; none is httpd's or the helper's
own = {h.parent_pid} | set(h.workers()) | set(h.helpers())
named = [(x.get("uri"), (x.get("backend") or {}).get("pid")) for x in reqs.values()]
ok(all(pid not in own for _, pid in named), f"no backend is httpd's own process ({named})")

# (e) the request asking (served in-process) has no backend
mine = [x for u, x in reqs.items() if (u or "").startswith("/p/requests")]
ok(mine and all("backend" not in x for x in mine), "the P/requests request itself: no backend")
d = h.get("/p/requests?format=text", timeout=60)
like(d.body.decode(), rf"backend: tcp 127\.0\.0\.1:{hport} -> pid {hole_proc.pid}",
     "format=text names the backend")

# (h) without the helper (its socket out of the way: the worker waits for it,
# then lists the requests without backends): still a 200 list, no Retry-After
socks = glob.glob(os.path.join(h.dir, "diagproc.*.sock"))
if ok(len(socks) == 1, f"the helper's socket in the runtime directory ({socks})"):
    os.rename(socks[0], socks[0] + ".away")
    try:
        r = h.get("/p/requests", timeout=60)
    finally:
        os.rename(socks[0] + ".away", socks[0])
    xs = (r.json() or {}).get("requests", [])
    is_((r.status, r.headers.get("retry-after")), (200, None),
        "helper unavailable: the list is still a 200, without Retry-After")
    ok("/hole/x" in [x.get("uri") for x in xs] and not any("backend" in x for x in xs),
       "…listing the requests, none with a backend")
    r = h.get("/p/requests", timeout=60)
    x = {x.get("uri"): x for x in (r.json() or {}).get("requests", [])}.get("/hole/x", {})
    is_((x.get("backend") or {}).get("pid"), hole_proc.pid, "…and with the helper back, the backend again")

tunnel.close()
fpm.stop()
for s in (hole_proc,) + ((far,) if far else ()):
    kill_quietly(s)
if other:
    other.delete()
# the backends went away mid-request (mod_proxy says so); the stuck ones are cut at stop
h.expect_log("AH01067", "AH01075", "AH01102", "AH00898", "AH01097", "AH00957", "AH00959",
             "AH01114", "AH00045", "AH00046")
h.stop()
shutil.rmtree(run, ignore_errors=True)
done_testing()
