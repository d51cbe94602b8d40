#!/usr/bin/python3
"""Cost of scrubbing the environment out of a dump (a Location without
`DiagProcAllow environment`), against the same dump from a Location that
allows environment, in one run, through one real httpd:

  minimal   dumpType=0 of a target with a 2 KiB environment (40 variables)
  full      dumpType=2 of the same target holding MIB MiB resident, filled
            with 'Z' while one value holds "ZZZZ" (no 4-byte piece lets the
            scan skip: the scrubber's worst case), and again filled with
            random bytes (most of it skipped five bytes at a time)

Prints the median seconds of each and the ratio scrubbed/plain. The dumping
process runs at the site's own priority here (DiagProcDumpNice 0): at the
default nice 10 on a busy machine the scrubber's CPU time stretches by the
machine's load, which is the point of that default, not the scrubber's cost.

  PYTHONPATH=t/lib /usr/bin/python3 bench/scrub_bench.py [--mib 1024] [--runs 5]
"""
import argparse
import http.client
import os
import secrets
import statistics
import string
import time

import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD

TARGET = os.path.join(BUILD, "targets", "proc_target")
ALPHABET = string.ascii_letters + string.digits + "_-/.:="


def environment():
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for i in range(40):
        env[f"BENCH_VAR_{i:02d}_ZETA"] = "".join(secrets.choice(ALPHABET) for _ in range(32))
    env["BENCH_VAR_00_ZETA"] = "ZZZZ" + env["BENCH_VAR_00_ZETA"][4:]
    return env


def dump(h, prefix, pid, dump_type):
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=900)
    t0 = time.perf_counter()
    conn.request("GET", f"/{prefix}/{pid}/dump?dumpType={dump_type}")
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"{prefix}: dump answered {resp.status}: {resp.read()[:300]!r}")
    want, n = int(resp.getheader("Content-Length", "-1")), 0
    while True:
        chunk = resp.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
    secs = time.perf_counter() - t0
    conn.close()
    if n != want:
        raise RuntimeError(f"short dump: {n} of {want}")
    return secs, n


def compare(h, pid, dump_type, runs):
    """Median seconds (plain, scrubbed) and the size; the two alternate."""
    plain, scrubbed, size = [], [], 0
    for _ in range(runs):
        s, size = dump(h, "plain", pid, dump_type)
        plain.append(s)
        scrubbed.append(dump(h, "scrub", pid, dump_type)[0])
    return statistics.median(plain), statistics.median(scrubbed), size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    h = Httpd(locations={"/plain": "DiagProcAllow dump fulldump environment",
                         "/scrub": "DiagProcAllow dump fulldump"},
              server_conf="DiagProcDumpNice 0\n").start()
    env = environment()
    rows = []
    try:
        for fill, flag in (("'Z' bytes, worst", "--rss"), ("random bytes", "--rss-random")):
            t = spawn([TARGET, flag, str(args.mib)], ready="ready", user=worker_user(), env=env)
            try:
                if not rows:
                    rows.append(("minimal (dumpType=0)",) + compare(h, t.pid, 0, args.runs))
                rows.append((f"full, {fill} (dumpType=2)",) + compare(h, t.pid, 2, args.runs))
            finally:
                dphttpd.kill_quietly(t)
    finally:
        h.stop()
    envlen = sum(len(k) + len(v) + 2 for k, v in env.items())
    print(f"environment: {len(env)} variables, {envlen} bytes; {args.mib} MiB resident; "
          f"median of {args.runs} runs each, alternating; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':34}{'size MiB':>10}{'plain s':>10}{'scrubbed s':>12}{'ratio':>8}")
    for name, plain, scrubbed, size in rows:
        print(f"{name:34}{size / (1 << 20):10.1f}{plain:10.3f}{scrubbed:12.3f}"
              f"{scrubbed / plain:7.2f}x")


if __name__ == "__main__":
    main()
