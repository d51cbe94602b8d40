# The reserved process under each MPM (event keeps private per-connection
# state that connections made outside it must provide; worker and prefork
# do not): it serves, enforces Require, refuses other handlers, lists the
# requests in flight (escaped in HTML, valid UTF-8 in JSON, states only
# without ExtendedStatus), comes back after kill -9 and after a graceful
# restart.
import http.client
import json
import os
import signal
import socket
import time

from tap import ok, is_, diag, done_testing
from dphttpd import Httpd, free_port
import procstate
from reserved import BlackHole, get, get_json, proxy_conf

backend = BlackHole()
MPMS = (("event", True), ("worker", True), ("prefork", False))
if os.environ.get("DP_TEST_MPM"):
    MPMS = [m for m in MPMS if m[0] == os.environ["DP_TEST_MPM"]]
for mpm, extended in MPMS:
    rport, rport6 = free_port(), free_port()
    h = Httpd(mpm=mpm, server_conf=proxy_conf(backend.port) + f"""
ExtendedStatus {"On" if extended else "Off"}
DiagProcListen 127.0.0.1:{rport}
DiagProcListen [::1]:{rport6}
<Location /denied>
    SetHandler diagproc
    Require ip 192.0.2.1
</Location>
<VirtualHost 127.0.0.1:{rport}>
    KeepAliveTimeout 1
    <Location /mgmt>
        SetHandler diagproc
        Require ip 127.0.0.1
    </Location>
</VirtualHost>
""").start()
    # Require's refusal below; the reserved process killed below; the request
    # left stuck on the backend keeps its worker (event, worker) past the
    # SIGTERMs of -k restart, until httpd kills it
    h.expect_log("AH01630", "DP00017", "AH00045", "AH00046")
    ok(procstate.settle(lambda: len(h.reserved()) == 1, 10), f"{mpm}: one reserved process")
    rsv = h.reserved()[0]
    st, d = get_json(rport, "/diagnostics/processes/0")
    is_((st, (d or {}).get("id"), (d or {}).get("httpd_role")), (200, rsv, "reserved"),
        f"{mpm}: the reserved listener serves the detail of its own process")
    is_(get(rport, "/denied")[0], 403, f"{mpm}: Require is enforced there")
    c6 = http.client.HTTPConnection("::1", rport6, timeout=10)
    c6.request("GET", "/diagnostics/processes/0")
    r6 = c6.getresponse()
    is_((r6.status, json.loads(r6.read()).get("id")), (200, rsv),
        f"{mpm}: a second DiagProcListen, on IPv6, is served by the same process")
    c6.close()
    is_(procstate.listen_ports(rsv), {rport, rport6}, f"{mpm}: it holds both listeners, no other")
    is_(get(rport, "/stuck/x")[0], 404, f"{mpm}: another handler there is 404")
    is_((get(rport, "/mgmt")[0], get(h.port, "/mgmt")[0]), (200, 404),
        f"{mpm}: a <VirtualHost> for the reserved address applies there, and only there")

    def listed():
        st, d = get_json(rport, "/diagnostics/processes/requests")
        return [x for x in (d or {}).get("requests", []) if x["state"] == "writing"]

    # the site's earlier requests are over once logged: none is left in flight
    ok(procstate.settle(lambda: not listed(), 10), f"{mpm}: nothing in flight on an idle site")
    # one request stuck on the site, with markup and a byte that is not UTF-8
    stuck = socket.create_connection(("127.0.0.1", h.port))
    stuck.sendall(b"GET /stuck/<b>\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    seen = []

    def one_listed():
        seen[:] = listed()
        return len(seen) == 1
    ok(procstate.settle(one_listed, 10), f"{mpm}: the stuck request is listed")
    x = (seen or [{}])[0]
    if extended:
        is_(x.get("uri"), "/stuck/<b>\ufffd", f"{mpm}: its URI, as valid UTF-8")
        st, page = get(rport, "/diagnostics/processes/requests", headers={"Accept": "text/html"})
        # the explorer renders it from the JSON as text (explorer.t shows it in a browser)
        ok(st == 200 and b"explorer.js" in page and b"<b>" not in page,
           f"{mpm}: the HTML view is the explorer's page, with nothing of the request in it")
    else:
        if not ok("uri" not in x and x.get("tid"), f"{mpm}: without ExtendedStatus, the thread and its state only"):
            diag(seen)
    st, d = get_json(rport, f"/diagnostics/processes/{x.get('pid')}")
    threads = (d or {}).get("httpd_threads", [])
    ok(any(t["state"] == "writing" and t.get("tid") == x.get("tid") for t in threads),
       f"{mpm}: the worker's detail shows that thread")
    stuck.close()

    os.kill(rsv, signal.SIGKILL)
    t0 = time.monotonic()
    st = get(rport, "/diagnostics/processes/0")[0]
    dt = time.monotonic() - t0
    ok(st == 200 and dt < 1.0, f"{mpm}: after kill -9, served again within 1 s ({dt * 1000:.0f} ms)")
    ok(procstate.settle(lambda: h.reserved() and h.reserved()[0] != rsv, 5), f"{mpm}: by a new process")
    rsv = h.reserved()[0]
    h.signal("graceful")
    ok(procstate.settle(lambda: h.reserved() and rsv not in h.reserved(), 15),
       f"{mpm}: after -k graceful, another one")
    is_(get(rport, "/diagnostics/processes/0")[0], 200, f"{mpm}: serving")
    rsv = h.reserved()[0]
    h.signal("restart")
    ok(procstate.settle(lambda: h.reserved() and rsv not in h.reserved(), 15),
       f"{mpm}: after -k restart, another one")
    ok(procstate.settle(lambda: get(rport, "/diagnostics/processes/0")[0] == 200, 5),
       f"{mpm}: serving")
    ok(all(not {rport, rport6} & procstate.listen_ports(w) for w in h.workers()),
       f"{mpm}: workers hold none of its listener")
    if not ok("exit signal" not in h.logs() and "long lost child" not in h.logs(),
              f"{mpm}: nothing crashed, nothing unreaped"):
        diag(h.logs())
    h.stop()

# an address that cannot be opened (here: the site's own) is logged; httpd still serves
h = Httpd(expect_log=["DP00014"])
h.server_conf = f"DiagProcListen 127.0.0.1:{h.port}\n"
h.start()
is_(h.get("/diagnostics/processes/0").status, 200, "DiagProcListen on a Listen address: the site still serves")
ok(not h.reserved() and "DiagProcListen 127.0.0.1:%d: cannot listen" % h.port in h.logs(),
   "…with no reserved process, and the error log says why")
h.stop()
done_testing()
