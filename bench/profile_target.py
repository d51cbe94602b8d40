# A CPython target for bench/profile_bench.py: N threads (default 16) that
# each count in a CPU loop; the main thread prints "COUNT NANOSECONDS" (all
# threads' counts so far, CLOCK_MONOTONIC) every 0.25 s; "ready" first.
import sys
import threading
import time

counts = [0] * (int(sys.argv[1]) if len(sys.argv) > 1 else 16)


def work(x):
    return sum(range(x))


def spin(k):
    while True:
        work(100)
        counts[k] += 1


for k in range(len(counts)):
    threading.Thread(target=spin, args=(k,), daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(0.25)
    print(sum(counts), time.monotonic_ns(), flush=True)
