#!/usr/bin/python3
"""Profile benchmark: what a sampled profile costs the process it samples, by the target's own
throughput (calls counted by the target itself, reported every 0.25 s):

  php       a single-threaded PHP cli loop (bench/profile_target.php)
  python16  a CPython process of 16 threads, each counting in a CPU loop (bench/profile_target.py)

Each target runs windows of --seconds: unprofiled (the baseline), profiled at --hz through
GET P/{pid}/profile?seconds=N (the one-call route of a real httpd), and, where `perf` works,
under `perf record -g -F HZ -p PID` as a reference, alternated for --rounds rounds so that the
machine's drift falls on all alike. Prints each window's rate, the medians' ratios to the
baseline, and the samples that could not be read (X-DiagProc-Profile's lost) as a share.
Ratios only: nothing passes or fails.

  make bench            (or: PYTHONPATH=t/lib /usr/bin/python3 bench/profile_bench.py
                         [--rounds 3] [--seconds 5] [--hz 99] [--only php|python16])
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

from dphttpd import Httpd, spawn, worker_user, favour_cpu

HERE = os.path.dirname(os.path.abspath(__file__))


class Counter:
    """The target's "COUNT NANOSECONDS" lines, read as they come."""

    def __init__(self, proc):
        self.proc, self.points = proc, []
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            n, t = line.decode().split()
            self.points.append((int(t) / 1e9, int(n)))

    def rate(self, t0, t1):
        """Calls per second between the first and last points within [t0, t1]."""
        pts = [p for p in self.points if t0 <= p[0] <= t1]
        if len(pts) < 2:
            return float("nan")
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def perf_works():
    if not shutil.which("perf"):
        return False
    with tempfile.NamedTemporaryFile() as f:
        r = subprocess.run(["perf", "record", "-q", "-g", "-F", "99", "-o", f.name, "--", "true"],
                           capture_output=True)
    return r.returncode == 0


def window(c, secs, during):
    """The target's rate over the middle of a window of secs seconds while during() runs."""
    t0 = time.monotonic()
    out = during()
    t1 = time.monotonic()
    # a quarter second off each end: the sampler's set-up and the last report's wait
    return c.rate(t0 + 0.25, t1 - 0.25), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--hz", type=int, default=99)
    ap.add_argument("--only", choices=("php", "python16"))
    a = ap.parse_args()
    perf = perf_works()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"# {a.rounds} rounds of {a.seconds} s windows at {a.hz} Hz; load average {load}; "
          f"perf record: {'yes' if perf else 'not here (absent or not allowed)'}")
    h = Httpd(locations={"/p": "DiagProcAllow profile"}).start()
    targets = {"php": ["/usr/bin/php8.2", os.path.join(HERE, "profile_target.php")],
               "python16": ["/usr/bin/python3", os.path.join(HERE, "profile_target.py"), "16"]}
    for name, argv in targets.items():
        if a.only and a.only != name:
            continue
        t = spawn(argv, ready="ready", user=worker_user())
        favour_cpu(t.pid)
        c = Counter(t)
        time.sleep(1)                   # past the start-up
        rates = {"baseline": [], "profiled": [], "perf": []}
        samples = lost = 0
        for _ in range(a.rounds):
            r, _ = window(c, a.seconds, lambda: time.sleep(a.seconds))
            rates["baseline"].append(r)
            r, resp = window(c, a.seconds, lambda: h.get(
                f"/p/{t.pid}/profile?seconds={a.seconds}&hz={a.hz}&format=folded",
                timeout=a.seconds + 60))
            rates["profiled"].append(r)
            hdr = resp.headers.get("x-diagproc-profile", "")
            m = re.search(r"samples=(\d+); lost=(\d+)", hdr)
            if resp.status != 200 or not m:
                print(f"# {name}: the profile answered {resp.status} {hdr!r}")
            else:
                samples += int(m.group(1))
                lost += int(m.group(2))
            if perf:
                with tempfile.NamedTemporaryFile(suffix=".perf") as f:
                    r, _ = window(c, a.seconds, lambda: subprocess.run(
                        ["perf", "record", "-q", "-g", "-F", str(a.hz), "-p", str(t.pid),
                         "-o", f.name, "--", "sleep", str(a.seconds)], capture_output=True))
                rates["perf"].append(r)
        base = statistics.median(rates["baseline"])
        for k, v in rates.items():
            if v:
                print(f"{name:9s} {k:9s} " + " ".join(f"{x:12.0f}/s" for x in v)
                      + f"   median {statistics.median(v):12.0f}/s"
                      + (f"  x{statistics.median(v) / base:.3f}" if k != "baseline" else ""))
        print(f"{name:9s} lost samples: {lost} of {samples + lost} "
              f"({100.0 * lost / max(samples + lost, 1):.2f} %)")
        t.kill()
    if not a.only:
        # lost samples of a PHP loop that calls an internal function (hrtime) all the time,
        # t/fixtures/lang/busy.php: the chain changes under the walk more often
        t = spawn(["/usr/bin/php8.2", os.path.join(HERE, "..", "t", "fixtures", "lang", "busy.php")],
                  ready="ready", user=worker_user())
        favour_cpu(t.pid)
        samples = lost = 0
        for _ in range(a.rounds):
            hdr = h.get(f"/p/{t.pid}/profile?seconds={a.seconds}&hz={a.hz}&format=folded",
                        timeout=a.seconds + 60).headers.get("x-diagproc-profile", "")
            m = re.search(r"samples=(\d+); lost=(\d+)", hdr)
            if m:
                samples += int(m.group(1))
                lost += int(m.group(2))
        print(f"busy.php  lost samples: {lost} of {samples + lost} "
              f"({100.0 * lost / max(samples + lost, 1):.2f} %)")
        t.kill()
    h.stop()


main()
