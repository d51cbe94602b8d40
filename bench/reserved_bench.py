#!/usr/bin/python3
"""Reserved-listener benchmark, one run, ratios against baselines of the same run:

  list    GET P (the process list) on the reserved listener (DiagProcListen) while
          every worker thread of the site (event, 1 x 16) is stuck behind a backend
          that never answers, against the same GET on the site's listener when
          it is healthy
  dump    the site's requests/s under wrk (a small static file) while full dumps
          (dumpType=2) of a 1 GiB process stream back to back on the reserved
          listener, against the same wrk run without a dump; with the default
          dump priority (nice 10, I/O best-effort 7) and with
          DiagProcDumpNice 0 + DiagProcDumpIOPriority unchanged

  PYTHONPATH=t/lib /usr/bin/python3 bench/reserved_bench.py [--mib 1024] [--seconds 5] [--n 200]
"""
import argparse
import http.client
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time

from dphttpd import Httpd, spawn, worker_user, free_port, kill_quietly, BUILD
import procstate
from reserved import BlackHole, saturable_site_conf, send_stuck, SITE_THREADS

TARGET = os.path.join(BUILD, "targets", "proc_target")


def latencies(port, path, n):
    out = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        out.append(time.perf_counter() - t0)
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status}")
    c.close()
    return out


def httpd(rport, backend, docroot, extra=""):
    return Httpd(locations={"/p": "DiagProcAllow dump fulldump"},
                 server_conf=saturable_site_conf(backend) + f"""
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
DiagProcListen 127.0.0.1:{rport}
{extra}
""").start()


def bench_list(n):
    backend, rport = BlackHole(), free_port()
    docroot = tempfile.mkdtemp(prefix="dpbench-")
    os.chmod(docroot, 0o755)
    h = httpd(rport, backend.port, docroot)
    procstate.settle(lambda: h.reserved(), 10)
    latencies(h.port, "/p", 20)                 # warm both
    latencies(rport, "/p", 20)
    healthy = statistics.median(latencies(h.port, "/p", n))
    stuck = []
    for i in range(SITE_THREADS):
        stuck.append(send_stuck(h.port, f"/stuck/{i}"))
    time.sleep(1.0)
    try:
        latencies(h.port, "/p", 1)
        saturated_ok = False
    except OSError:
        saturated_ok = True                     # the site gives no answer: saturated
    reserved = statistics.median(latencies(rport, "/p", n))
    for s in stuck:
        s.close()
    h.stop()
    print(f"list: site saturated (no answer on its listener: {saturated_ok}); "
          f"median of {n}: reserved listener {reserved * 1000:.2f} ms, healthy site listener "
          f"{healthy * 1000:.2f} ms; ratio {reserved / healthy:.2f}")


def wrk(port, seconds):
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", f"http://127.0.0.1:{port}/small.txt"],
                         capture_output=True, text=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def dump_loop(rport, pid, stop, counts):
    while not stop.is_set():
        c = http.client.HTTPConnection("127.0.0.1", rport, timeout=120)
        c.request("GET", f"/p/{pid}/dump?dumpType=2")
        r = c.getresponse()
        while not stop.is_set():
            b = r.read(1 << 20)
            if not b:
                counts[0] += 1
                break
            counts[1] += len(b)
        c.close()


def bench_dump(mib, seconds):
    backend = BlackHole()
    docroot = tempfile.mkdtemp(prefix="dpbench-")
    os.chmod(docroot, 0o755)
    with open(os.path.join(docroot, "small.txt"), "w") as f:
        f.write("x" * 512)
    target = spawn([TARGET, "--rss", str(mib)], ready="ready", user=worker_user())
    for label, extra in (("default priority (nice 10, I/O best-effort 7)", ""),
                         ("DiagProcDumpNice 0, DiagProcDumpIOPriority unchanged",
                          "DiagProcDumpNice 0\nDiagProcDumpIOPriority unchanged")):
        rport = free_port()
        h = httpd(rport, backend.port, docroot, extra)
        procstate.settle(lambda: h.reserved(), 10)
        wrk(h.port, 1)                          # warm up
        base = wrk(h.port, seconds)
        stop, counts = threading.Event(), [0, 0]
        t = threading.Thread(target=dump_loop, args=(rport, target.pid, stop, counts))
        t.start()
        time.sleep(0.5)
        during = wrk(h.port, seconds)
        stop.set()
        t.join()
        h.stop()
        print(f"dump ({label}): site {during:.0f} req/s while dumps stream "
              f"({counts[1] / (1 << 20) / (seconds + 0.5):.0f} MiB/s, {counts[0]} whole dumps of "
              f"{mib} MiB), {base:.0f} req/s without; ratio {during / base:.2f}")
    kill_quietly(target)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    bench_list(a.n)
    bench_dump(a.mib, a.seconds)
