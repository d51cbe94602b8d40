"""Zip throughput and size by deflate level, on a realistic core.

The core: `gcore` of a Python process holding a mix of memory, as a service
would: interpreter heap (dicts, strings, lists of objects), text, random
bytes (already-compressed data, crypto state) and touched zero pages, plus
its libraries' mapped code and data. Each level streams that core through
the zip writer (`dpzip --synthetic --add CORE --level N > /dev/null`); the
baseline is a raw copy of the same file (`cat CORE > /dev/null`), i.e. what
format=raw costs beyond reading memory.

Why level 1 is the default (DP_ZIP_DEFAULT_LEVEL in worker/zip.h), measured
here on a 260 MiB core (2 vCPU VM, zlib 1.2.13):

    what        MiB/s   zip/core
    raw copy     3849      1.000
    level 0       638      1.000   (framing + CRC-32 only)
    level 1       163      0.244
    level 3       148      0.239
    level 6        93      0.232
    level 9        13      0.232

Level 1 already removes 76% of the bytes; level 6 removes 1.2 points more
at 57% of level 1's speed, level 9 nothing more at a twelfth of it. Zero
pages and code dominate a core and random data does not compress at any
level, so higher levels mostly cost time, and a dump's stream is what keeps
the target's request busy. At 163 MiB/s level 1 is still faster than a
typical client link, so the bundle is smaller on the wire without making
the transfer slower. Run: python3 bench/zip_bench.py
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DPZIP = os.path.join(ROOT, "build", "tools", "dpzip")
LEVELS = [0, 1, 3, 6, 9]
REPEAT = 2

HOG = r"""
import os, sys, json
text = [("line %d: the quick brown fox jumps over the lazy dog\n" % i) * 3 for i in range(200000)]
objs = [{"id": i, "name": "obj%d" % i, "tags": ["a", "b", str(i % 97)]} for i in range(200000)]
noise = os.urandom(48 * 1024 * 1024)
zeros = bytearray(64 * 1024 * 1024)
for i in range(0, len(zeros), 4096):
    zeros[i] = 0          # touched, still zero
blob = json.dumps(objs[:50000]).encode()
print("ready", flush=True)
sys.stdin.read()
"""


def best_time(argv, out):
    best = None
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        with open(out, "wb") as f:
            subprocess.run(argv, stdout=f, check=True)
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return best


def main():
    if not os.access(DPZIP, os.X_OK) or not shutil.which("gcore"):
        print("zip_bench: needs build/tools/dpzip (make) and gcore (gdb)")
        return 1
    tmp = tempfile.mkdtemp(prefix="dp-zipbench-")
    hog = subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, start_new_session=True)
    try:
        hog.stdout.readline()
        prefix = os.path.join(tmp, "core")
        subprocess.run(["gcore", "-o", prefix, str(hog.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        core = f"{prefix}.{hog.pid}"
        size = os.path.getsize(core)
        out = os.path.join(tmp, "out.zip")
        raw = best_time(["cat", core], out)
        print(f"core: gcore of a Python process, {size / 2**20:.0f} MiB; best of {REPEAT}")
        print(f"{'what':<10} {'seconds':>8} {'MiB/s':>8} {'x raw time':>11} {'zip/core':>9}")
        print(f"{'raw copy':<10} {raw:8.3f} {size / 2**20 / raw:8.0f} {1.0:11.2f} {1.0:9.3f}")
        for lv in LEVELS:
            dt = best_time([DPZIP, "--synthetic", "--add", core, "--level", str(lv)], out)
            zsize = os.path.getsize(out)
            print(f"{'level ' + str(lv):<10} {dt:8.3f} {size / 2**20 / dt:8.0f} "
                  f"{dt / raw:11.2f} {zsize / size:9.3f}")
    finally:
        os.killpg(hog.pid, signal.SIGKILL)
        hog.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
