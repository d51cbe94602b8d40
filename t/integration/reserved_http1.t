# HTTP/1 on the reserved listener's connection loop, under event and
# prefork: kept-alive connections served request after request without a
# thread between them (more idle kept-alive connections than threads do not
# keep a new client out), pipelined requests (the last one served once its
# head is whole), blank lines before a request line, a head over 16 KiB
# answered 431, a request with a body answered and its connection closed
# without the body being waited for, a client that closes at once, the
# per-address cap for IPv6 (::1); and no other child of the parent (mod_cgid's
# daemon included) holds the reserved listeners.
import http.client
import socket
import time

from tap import ok, is_, done_testing
from dphttpd import Httpd, free_port
import procstate
from procstate import settle
from reserved import get, get_json


def exchange(port, data, wait=0.5, family=socket.AF_INET, host="127.0.0.1", source=None):
    """Sends data, returns what came back within `wait` s, and whether the
    server closed the connection by then."""
    s = socket.socket(family)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    s.sendall(data)
    s.settimeout(0.1)
    got, closed, t0 = b"", False, time.monotonic()
    while time.monotonic() - t0 < wait:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        if not b:
            closed = True
            break
        got += b
    s.close()
    return got, closed


REQ = b"GET /p/0 HTTP/1.1\r\nHost: x\r\n\r\n"

for mpm in ("event", "prefork"):
    rport, rport6 = free_port(), free_port()
    h = Httpd(mpm=mpm, locations={"/p": ""}, modules=("cgid",), server_conf=f"""KeepAliveTimeout 30
DiagProcListen 127.0.0.1:{rport}
DiagProcListen [::1]:{rport6}
""").start()
    ok(settle(lambda: len(h.reserved()) == 1, 10), f"{mpm}: one reserved process")
    # every child of the parent: workers, the helper, mod_cgid's daemon (forked
    # in post_config, when the reserved listeners are open already)
    # (a child just forked holds them until its drop_privileges: let it get there)
    seen, rsv = {}, (get_json(rport, "/p/0")[1] or {}).get("id")

    def only_reserved():
        kids = [int(k) for k in procstate.children(h.parent_pid)]
        seen["kids"], seen["holders"] = kids, [k for k in kids if {rport, rport6} & procstate.listen_ports(k)]
        return seen["holders"] == [rsv]
    ok(settle(only_reserved, 5), f"{mpm}: of the parent's {len(seen['kids'])} children (mod_cgid's "
       f"daemon among them), the reserved process alone holds its listeners ({seen['holders']})")

    # more kept-alive connections, idle after one request, than serving threads
    kept = []
    for i in range(12):
        c = http.client.HTTPConnection("127.0.0.1", rport, timeout=10,
                                       source_address=(f"127.0.5.{i % 3 + 1}", 0))
        c.request("GET", "/p/0")
        c.getresponse().read()
        kept.append(c)
    t0 = time.monotonic()
    st = get(rport, "/p/0")[0]
    dt = time.monotonic() - t0
    ok(st == 200 and dt < 1.0, f"{mpm}: 12 idle kept-alive connections hold no thread: "
       f"a new client served in {dt * 1000:.0f} ms")
    statuses = []
    for c in kept:
        c.request("GET", "/p/0")
        statuses.append(c.getresponse().status)
        c.close()
    is_(statuses, [200] * 12, f"{mpm}: …and each serves its next request")

    got, _ = exchange(rport, REQ + REQ + b"GET /p/0 HTTP/1.1\r\nHo")
    is_(got.count(b"HTTP/1.1 200 "), 2, f"{mpm}: two pipelined requests are answered at once…")
    s = socket.create_connection(("127.0.0.1", rport))
    s.sendall(REQ + b"GET /p/0 HTTP/1.1\r\nHo")
    time.sleep(0.3)
    s.sendall(b"st: x\r\n\r\n")
    s.settimeout(5)
    got = b""
    while got.count(b"HTTP/1.1 200 ") < 2:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    is_(got.count(b"HTTP/1.1 200 "), 2, f"{mpm}: …and one whose head came in two parts, once whole")

    got, _ = exchange(rport, b"\r\n\r\n" + REQ)
    ok(got.startswith(b"HTTP/1.1 200 "), f"{mpm}: blank lines before the request line are skipped")

    got, closed = exchange(rport, b"GET /p HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17000)
    ok(got.startswith(b"HTTP/1.1 431 ") and closed, f"{mpm}: a head over 16 KiB: 431, and closed")

    t0 = time.monotonic()
    got, closed = exchange(rport, b"POST /p/0/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                           b"\r\n" + b"x" * 10, wait=5)
    dt = time.monotonic() - t0
    ok(got.startswith(b"HTTP/1.1 ") and b"Connection: close" in got and closed and dt < 2,
       f"{mpm}: a request with a body that never comes is answered ({got[9:12].decode()}) "
       f"and closed in {dt * 1000:.0f} ms")

    s = socket.create_connection(("127.0.0.1", rport))
    s.sendall(REQ)
    s.close()
    ok(get(rport, "/p/0")[0] == 200, f"{mpm}: a client that closes at once leaves no harm")

    six = []
    for i in range(10):
        s = socket.socket(socket.AF_INET6)
        s.connect(("::1", rport6))
        six.append(s)
    time.sleep(0.5)
    closed = 0
    for s in six:
        s.setblocking(False)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        s.close()
    is_(closed, 2, f"{mpm}: 10 idle connections from ::1: the 2 oldest closed for the 8 per address")
    h.stop()
done_testing()
