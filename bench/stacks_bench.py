#!/usr/bin/python3
"""Stacks benchmark: a 50-thread CPython target (bench/stacks_target.py), one run each of

  ours      GET P/{pid}/stacks through a real httpd (libdwfl + the CPython walk in the helper)
  eu-stack  eu-stack -p PID (native frames only)
  gdb       gdb -p PID -batch -ex "thread apply all py-bt" (Debian's python3.11-gdb.py)

and prints wall time and how long the target was paused (its heartbeat thread's longest gap
between 1 ms ticks) as ratios ours / baseline. Language frames: ours and gdb only.

  make bench            (or: PYTHONPATH=t/lib /usr/bin/python3 bench/stacks_bench.py [--threads 50])
"""
import argparse
import os
import signal
import subprocess
import time

from dphttpd import Httpd, spawn, worker_user

HERE = os.path.dirname(os.path.abspath(__file__))


def gap_ms(t):
    os.kill(t.pid, signal.SIGUSR1)
    return int(t.stdout.readline().split()[1]) / 1000.0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=50)
    a = ap.parse_args()
    h = Httpd(locations={"/p": "DiagProcAllow stacks"}).start()
    t = spawn(["/usr/bin/python3", os.path.join(HERE, "stacks_target.py"), str(a.threads)],
              ready="ready", user=worker_user())
    pid = t.pid
    time.sleep(0.5)
    runs = {
        "ours": lambda: h.get(f"/p/{pid}/stacks", timeout=120).json(),
        "eu-stack": lambda: subprocess.run(["eu-stack", "-p", str(pid)], capture_output=True,
                                           text=True, timeout=300).stdout,
        "gdb": lambda: subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex",
                                       "thread apply all py-bt"], capture_output=True,
                                      text=True, timeout=300).stdout,
    }
    res = {}
    for name, fn in runs.items():
        gap_ms(t)                       # start the gap count here
        sec, out = timed(fn)
        time.sleep(0.05)                # a few ticks after it, so the gap is closed
        res[name] = (sec, gap_ms(t), out)
    ours = res["ours"][2] or {}
    nlang = sum(len(x["languageFrames"]) for x in ours.get("threads", []))
    ngdb = res["gdb"][2].count("File \"")
    print(f"# {a.threads + 2} threads; ours: {len(ours.get('threads', []))} threads, "
          f"{nlang} Python frames, pausedMicroseconds {ours.get('pausedMicroseconds')}; "
          f"gdb py-bt: {ngdb} Python frames")
    for name in ("ours", "eu-stack", "gdb"):
        sec, gap, _ = res[name]
        print(f"{name:9s} time {sec * 1000:9.1f} ms   target paused {gap:9.1f} ms")
    for base in ("eu-stack", "gdb"):
        print(f"ours/{base}: time x{res['ours'][0] / res[base][0]:.3f}, "
              f"pause x{res['ours'][1] / max(res[base][1], 0.001):.3f}")
    t.kill()
    h.stop()


main()
