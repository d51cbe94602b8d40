#!/usr/bin/python3
"""Dump benchmark: a ~1 GiB resident target dumped, in one run, by

  ours    GET P/{pid}/dump?dumpType=2 through a real httpd, streamed to a local client,
          with the copy-on-write snapshot (the default) and with DiagProcDumpSnapshot Off
  gcore   gdb's gcore writing to tmpfs (/dev/shm)
  copy    a raw process_vm_readv copy loop (bench/vm_copy.c), the floor for reading memory

and prints time ratios, how long the target was paused (a heartbeat thread in
the target measures its longest gap between 1 ms ticks), the core sizes, and
the httpd worker's peak RSS growth (the stream must not be buffered).

  make bench            (or: PYTHONPATH=t/lib /usr/bin/python3 bench/dump_bench.py [--mib 1024] [--runs 3])
"""
import argparse
import glob
import http.client
import os
import signal
import subprocess
import time

import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD

HERE = os.path.dirname(os.path.abspath(__file__))

TARGET = os.path.join(BUILD, "targets", "proc_target")
VM_COPY = os.path.join(BUILD, "bench", "vm_copy")


def build_tools():
    os.makedirs(os.path.dirname(VM_COPY), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", VM_COPY, os.path.join(HERE, "vm_copy.c")], check=True)


class Target:
    def __init__(self, mib):
        self.p = spawn([TARGET, "--rss", str(mib), "--threads", "4", "--heartbeat"],
                       ready="ready", user=worker_user())
        self.pid = self.p.pid

    def max_gap_ms(self):
        """Longest pause since the previous call, in ms."""
        os.kill(self.pid, signal.SIGUSR1)
        line = self.p.stdout.readline().decode()
        return int(line.split()[1]) / 1000.0

    def state(self):
        with open(f"/proc/{self.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]


def worker_hwm_kb(parent):
    """Largest VmHWM among the httpd parent's children (the workers)."""
    best = 0
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != parent:
                continue
            with open(st[:-4] + "status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def ours(h, pid, dump_type):
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=600)
    conn.request("GET", f"/diagnostics/processes/{pid}/dump?dumpType={dump_type}")
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"dump answered {resp.status}: {resp.read()[:300]!r}")
    want = int(resp.getheader("Content-Length", "-1"))
    n = 0
    while True:
        chunk = resp.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
    conn.close()
    if want >= 0 and n != want:
        raise RuntimeError(f"short dump: {n} of {want}")
    return n


def gcore(pid):
    prefix = f"/dev/shm/dpbench-{os.getpid()}"
    try:
        subprocess.run(["gcore", "-o", prefix, str(pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return os.path.getsize(f"{prefix}.{pid}")
    finally:
        for f in glob.glob(prefix + "*"):
            os.unlink(f)


def vm_copy(pid):
    out = subprocess.run([VM_COPY, str(pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, check=True)
    return int(out.stderr.decode().strip() or 0)


def best_of(runs, target, fn):
    """(seconds, bytes, pause ms) of the fastest run."""
    results = []
    for _ in range(runs):
        target.max_gap_ms()                 # start the pause window afresh
        secs, size = timed(fn)
        results.append((secs, size, target.max_gap_ms()))
        if target.state() in ("T", "t"):
            raise RuntimeError("target left stopped")
    return min(results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    build_tools()
    h = Httpd(allow="dump fulldump").start()
    h_off = Httpd(allow="dump fulldump", server_conf="DiagProcDumpSnapshot Off").start()
    target = Target(args.mib)
    try:
        hwm_before = worker_hwm_kb(h.parent_pid)
        o = best_of(args.runs, target, lambda: ours(h, target.pid, 2))
        hwm_after = worker_hwm_kb(h.parent_pid)
        off = best_of(args.runs, target, lambda: ours(h_off, target.pid, 2))
        o0 = best_of(args.runs, target, lambda: ours(h, target.pid, 0))
        g = best_of(args.runs, target, lambda: gcore(target.pid))
        c = best_of(args.runs, target, lambda: vm_copy(target.pid))
    finally:
        dphttpd.kill_quietly(target.p)
        h.stop()
        h_off.stop()

    mib = 1 << 20
    print(f"target: {args.mib} MiB resident, 5 threads; best of {args.runs} runs each")
    print(f"{'':28}{'seconds':>9}{'MiB/s':>9}{'size MiB':>10}{'pause ms':>10}")
    for name, (secs, size, pause) in (("ours dumpType=2 (HTTP)", o), ("  same, snapshot off", off),
                                      ("ours dumpType=0 (HTTP)", o0),
                                      ("gcore to tmpfs", g), ("process_vm_readv copy", c)):
        print(f"{name:28}{secs:9.3f}{size / mib / secs:9.0f}{size / mib:10.1f}{pause:10.1f}")
    print(f"time  ours/gcore   {o[0] / g[0]:.2f}x   (below 1 = faster than gcore)")
    print(f"time  ours/copy    {o[0] / c[0]:.2f}x   (the cost over a bare memory copy)")
    print(f"pause ours/gcore   {o[2] / max(g[2], 0.001):.2f}x   ({o[2]:.0f} ms vs {g[2]:.0f} ms)")
    print(f"pause snapshot/off {o[2] / max(off[2], 0.001):.2f}x   ({o[2]:.0f} ms vs {off[2]:.0f} ms)")
    print(f"minimal dump: {o0[1] / 1024:.0f} KiB vs full {o[1] / mib:.0f} MiB")
    print(f"httpd worker peak RSS: {hwm_before / 1024:.1f} MiB before, "
          f"{hwm_after / 1024:.1f} MiB after streaming {o[1] / mib:.0f} MiB x {args.runs}")


if __name__ == "__main__":
    main()
