# The reserved listener is the way in on the worst day: anyone who can
# reach its address must not be able to close it with a handful of sockets.
# Under 50 idle connections and 50 slow-header clients (one byte a second)
# from 127.0.0.10 and 200 idle ones spread over 127.0.0.2-127.0.0.9, all
# connecting again whenever they are closed, a client from 127.0.0.1 gets
# the list within 1 s (median of 20) and a full dump to its end; the caps
# hold (8 connections per client address); a head not whole within 5 s gets
# 408; the reserved process killed -9 in the middle of a dump serves again
# within 1.5 s; a client that asks for dumps and reads none holds 4 of the
# 8 serving threads at most; and with more idle connections than the overall
# cap (256), from 40 addresses, the oldest idle ones make room for the client.
import http.client
import os
import signal
import socket
import statistics
import time

from tap import ok, is_, diag, note, done_testing
from dphttpd import Httpd, free_port, spawn, worker_user, kill_quietly, BUILD
from procstate import settle, running
from reserved import Attackers, get, peers_of

TARGET = os.path.join(BUILD, "targets", "dump_target")
PER_CLIENT, ALL, HEAD_SECONDS, THREADS_PER_CLIENT = 8, 256, 5, 4


def timed_list(port, path="/p"):
    t0 = time.monotonic()
    try:
        st = get(port, path, timeout=20)[0]
    except OSError as e:
        st = str(e)
    return st, time.monotonic() - t0


def held(pid, port, seconds=2.0):
    """Samples, over `seconds`, of the most connections of one client address
    and of all of them that the reserved process holds (127.0.0.1 left out).
    A sample is not one instant: the attackers connect again as fast as they
    are closed, and a connection just closed may be counted beside the one
    that replaced it, so the median tells what is held."""
    per, total, t0 = [], [], time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            peers = peers_of(pid, port)
        except OSError:
            peers = {}
        peers.pop("127.0.0.1", None)
        per.append(max(list(peers.values()) or [0]))
        total.append(sum(peers.values()))
        time.sleep(0.1)
    return per, total


def dump_to_end(port, pid):
    """(status, bytes read, Content-Length, the first 4 bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("GET", f"/p/{pid}/dump?dumpType=2")
        r = c.getresponse()
        head, n = r.read(4), 4
        while True:
            b = r.read(1 << 16)
            if not b:
                break
            n += len(b)
        return r.status, n, int(r.getheader("Content-Length") or -1), head
    finally:
        c.close()


rport = free_port()
h = Httpd(locations={"/p": "DiagProcAllow dump fulldump"},
          server_conf=f"Timeout 30\nDiagProcMaxDumps 8\nDiagProcListen 127.0.0.1:{rport}\n")
h.expect_log("DP00017")     # the reserved process killed -9 on purpose, started again
h.start()
ok(settle(lambda: len(h.reserved()) == 1, 10), "one reserved process")
target = spawn([TARGET], ready="ready", user=worker_user())
st, dt = timed_list(rport)
is_(st, 200, f"the list, before any attack ({dt * 1000:.1f} ms)")

# --- the attack -------------------------------------------------------------
attack = Attackers(rport, idle=[("127.0.0.10", 50)] + [(f"127.0.0.{i}", 25) for i in range(2, 10)],
                   slow=[("127.0.0.10", 50)])
# a few slow clients alone on their address: no cap closes them, the deadline does
lone = Attackers(rport, slow=[("127.0.0.11", 4)], again=30)
ok(settle(lambda: attack.connects >= 300, 10), f"300 attacking connections made ({attack.connects})")
time.sleep(1)
rsv = h.reserved()[0]
per, total = held(rsv, rport)
ok(statistics.median(per) <= PER_CLIENT,
   f"at most {PER_CLIENT} connections of one client address held (median {statistics.median(per)}, "
   f"most {max(per)})")
ok(statistics.median(total) <= 9 * PER_CLIENT + 4,
   f"…{statistics.median(total)} in all, of the 304: 9 addresses, {PER_CLIENT} each at most, "
   f"and the 4 alone on theirs (most {max(total)})")
ok(attack.closed > 100, f"the caps closed attacking connections ({attack.closed} so far)")

runs = [timed_list(rport) for _ in range(20)]
lat = sorted(d for _, d in runs)
is_([s for s, _ in runs], [200] * 20, "20 list requests from 127.0.0.1 under the attack: each 200")
med = statistics.median(lat)
ok(med < 1.0, f"…median {med * 1000:.1f} ms (under 1 s; slowest {lat[-1] * 1000:.1f} ms)")
note(f"list under attack: median {med * 1000:.1f} ms, slowest {lat[-1] * 1000:.1f} ms, "
     f"attackers connected {attack.connects} times, closed {attack.closed}")

st, n, length, magic = dump_to_end(rport, target.pid)
ok(st == 200 and n == length and magic == b"\x7fELF",
   f"a full dump (dumpType=2) streams to its end under the attack ({n} of {length} bytes)")

ok(settle(lambda: len(lone.ended) >= 4, HEAD_SECONDS + 5),
   "slow clients alone on their address are closed…")
lives = [e[2] for e in lone.ended]
ok(lives and min(lives) >= HEAD_SECONDS - 0.5 and max(lives) < HEAD_SECONDS + 3,
   f"…{HEAD_SECONDS} s after they connected, plus the lingering close "
   f"({', '.join(f'{x:.1f}' for x in lives)} s)")
ok(all(e[3].startswith(b"HTTP/1.1 408 ") for e in lone.ended), "…with a 408")
lone.stop()

# --- kill -9 in the middle of a dump, under the attack ------------------------
restarts = []
for k in range(3):
    rsv = h.reserved()[0]
    c = http.client.HTTPConnection("127.0.0.1", rport, timeout=60)
    c.request("GET", f"/p/{target.pid}/dump?dumpType=2")
    r = c.getresponse()
    length = int(r.getheader("Content-Length") or -1)
    got = len(r.read(1 << 20))
    os.kill(rsv, signal.SIGKILL)
    t0 = time.monotonic()
    st, _ = timed_list(rport)
    restarts.append(time.monotonic() - t0)
    ok(st == 200 and restarts[-1] < 1.5,
       f"kill -9 of the reserved process in a dump: the list served again in "
       f"{restarts[-1] * 1000:.0f} ms (under 1.5 s)")
    try:
        while True:
            b = r.read(1 << 16)
            if not b:
                break
            got += len(b)
    except (http.client.IncompleteRead, OSError):
        pass
    c.close()
    ok(got < length, f"…the dump it streamed ends short ({got} of {length} bytes)")
    ok(settle(lambda: h.reserved() and h.reserved()[0] != rsv, 5), "…by a new reserved process")
note("kill -9 to the list served: " + ", ".join(f"{x * 1000:.0f} ms" for x in restarts))
ok(settle(lambda: running(target.pid), 5), "the dumped target is never left stopped")
st, n, length, magic = dump_to_end(rport, target.pid)
ok(st == 200 and n == length, f"a full dump to its end after the restarts ({n} of {length} bytes)")
attack.stop()

# --- a client that reads no answer holds at most half the serving threads ---
# (one target each: the helper dumps a process once at a time)
others = [spawn([TARGET], ready="ready", user=worker_user()) for _ in range(6)]
stalled = []
for i in range(6):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind(("127.0.0.12", 0))
    s.connect(("127.0.0.1", rport))
    s.sendall(f"GET /p/{others[i].pid}/dump?dumpType=2 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    stalled.append(s)
time.sleep(1)
runs = [timed_list(rport) for _ in range(5)]
ok(all(st == 200 for st, _ in runs) and statistics.median(d for _, d in runs) < 1.0,
   "6 dumps asked from 127.0.0.12 and never read: the list from 127.0.0.1 is served "
   f"(median {statistics.median(d for _, d in runs) * 1000:.1f} ms)")
st, n, length, _ = dump_to_end(rport, target.pid)
ok(st == 200 and n == length, f"…and a full dump to its end ({n} of {length} bytes)")
answered = 0
for s in stalled:
    s.setblocking(False)
    try:
        answered += bool(s.recv(1))
    except BlockingIOError:
        pass
is_(answered, THREADS_PER_CLIENT, f"…while {THREADS_PER_CLIENT} of the 6 hold a serving thread, "
    "the others wait for one")
for s in stalled:
    s.close()
# the dumps end with their clients; a target is killed only then, never while
# its dump may still be seizing it
ok(settle(lambda: not h.dumpers(), 30), "…and every one of those dumps ends with its client")
for t in others:
    kill_quietly(t)

# --- more idle connections than the overall cap -----------------------------
crowd = Attackers(rport, idle=[(f"127.0.1.{i}", PER_CLIENT) for i in range(1, 41)])
ok(settle(lambda: crowd.connects >= 40 * PER_CLIENT, 10),
   f"{40 * PER_CLIENT} idle connections from 40 addresses")
time.sleep(1)
per, total = held(h.reserved()[0], rport)
ok(statistics.median(total) <= ALL,
   f"at most {ALL} connections held in all (median {statistics.median(total)}, most {max(total)})")
runs = [timed_list(rport) for _ in range(5)]
ok(all(s == 200 for s, _ in runs) and statistics.median(d for _, d in runs) < 1.0,
   "the list from 127.0.0.1 is served: the oldest idle connection makes room "
   f"(median {statistics.median(d for _, d in runs) * 1000:.1f} ms)")
ok(crowd.closed > 0, f"…closing idle ones ({crowd.closed})")
crowd.stop()

logs = h.logs()
if not ok("exit signal" not in logs and "long lost child" not in logs,
          "nothing crashed, nothing unreaped"):
    diag(logs)
h.stop()
done_testing()
