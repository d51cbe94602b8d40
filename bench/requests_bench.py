#!/usr/bin/python3
"""Request attribution benchmark, one run: 64 requests in flight on a prefork httpd,
32 served in-process by mod_php and 32 proxied by mod_proxy_fcgi to a php-fpm pool of
32 children (a unix socket), each stuck in a PHP function. Then

  ours      one GET P/requests?stacks=1: every request joined with its serving
            process's PHP frames (each process paused once)
  baseline  64 separate GET P/{pid}/stacks calls, one per serving process (what an
            operator does by hand without the join)

and prints the wall time of each, their ratio, and each target's pause (the helper's
pausedMicroseconds: median and max).

  PYTHONPATH=t/lib /usr/bin/python3 bench/requests_bench.py [--each 32]
"""
import argparse
import os
import shutil
import socket
import statistics
import tempfile
import time

from dphttpd import Httpd, MODDIR
from phpfpm import PhpFpm
import procstate

PAGE = """<?php
function hold_%s() {
    sleep(600);
}
hold_%s();
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--each", type=int, default=32)
    a = ap.parse_args()
    n = a.each
    run = tempfile.mkdtemp(prefix="dpreqbench-")
    os.chmod(run, 0o755)
    for name in ("inproc", "fpm"):
        with open(os.path.join(run, f"{name}.php"), "w") as f:
            f.write(PAGE % (name, name))
        os.chmod(os.path.join(run, f"{name}.php"), 0o644)
    sock = os.path.join(run, "fpm.sock")
    fpm = PhpFpm(run, [("bench", sock, n)]).start()
    workers = 2 * n + 8
    h = Httpd(mpm="prefork", locations={"/p": "DiagProcAllow stacks"},
              modules=("proxy", "proxy_fcgi"),
              server_conf=f"LoadModule php_module {MODDIR}/libphp8.2.so\n"
                          f"ServerLimit {workers}\nMaxRequestWorkers {workers}\n"
                          f"StartServers {workers}\nMinSpareServers {workers}\n"
                          f"MaxSpareServers {workers}\nTimeout 600\nProxyTimeout 600\n"
                          f"DocumentRoot {run}\n"
                          "<Files inproc.php>\n    SetHandler application/x-httpd-php\n</Files>\n"
                          f"<Files fpm.php>\n    SetHandler \"proxy:unix:{sock}|fcgi://localhost\"\n"
                          "</Files>\n")
    h.expect_log("AH00045", "AH00046", "AH01067", "AH01075")
    h.start()
    procstate.settle(lambda: len(h.workers()) >= workers, 30)
    held = []
    for i in range(n):
        for page in ("inproc.php", "fpm.php"):
            s = socket.create_connection(("127.0.0.1", h.port))
            s.sendall(f"GET /{page}?i={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            held.append(s)

    def in_flight():
        d = h.get("/p/requests").json() or {}
        return [x for x in d.get("requests", []) if "/inproc.php" in x.get("uri", "")
                or "/fpm.php" in x.get("uri", "")]
    procstate.settle(lambda: len(in_flight()) == 2 * n, 60)
    time.sleep(1)

    t0 = time.perf_counter()
    r = h.get("/p/requests?stacks=1", timeout=120)
    ours = time.perf_counter() - t0
    reqs = [x for x in (r.json() or {}).get("requests", []) if x.get("where")]
    served = {x["where"]["pid"]: x["where"] for x in reqs
              if x["where"].get("pid") and not x["where"].get("error")}
    framed = [x for x in reqs if x["where"].get("function", "").startswith("hold_")]
    pauses = [w.get("pausedMicroseconds") or 0 for w in served.values()]

    t0 = time.perf_counter()
    base_pauses = []
    for pid in served:
        d = h.get(f"/p/{pid}/stacks", timeout=60).json() or {}
        base_pauses.append(d.get("pausedMicroseconds") or 0)
    base = time.perf_counter() - t0

    print(f"requests in flight: {len(in_flight())} ({n} in-process, {n} in php-fpm)")
    print(f"P/requests?stacks=1: {ours * 1000:.0f} ms for {len(reqs)} requests, "
          f"{len(served)} processes read, {len(framed)} with the PHP function they wait in")
    print(f"{len(served)} separate /stacks calls: {base * 1000:.0f} ms")
    print(f"ratio (one call / separate calls): {ours / base:.2f}x")
    if pauses:
        print(f"each target's pause in the one call: median {statistics.median(pauses) / 1000:.2f} ms, "
              f"max {max(pauses) / 1000:.2f} ms (separate calls: median "
              f"{statistics.median(base_pauses) / 1000:.2f} ms, max {max(base_pauses) / 1000:.2f} ms)")
    for s in held:
        s.close()
    fpm.stop()
    h.stop()
    shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
