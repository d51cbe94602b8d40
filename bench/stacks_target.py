# A 50-thread CPython target for bench/stacks_bench.py: every thread waits in
# three nested functions; a heartbeat thread ticks every millisecond and, on
# each SIGUSR1, the longest gap since the previous one is printed
# ("maxgap_us N"): how long the process was paused.
import signal
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
stop = threading.Event()
gap = [0]


def leaf():
    stop.wait()


def mid():
    leaf()


def top():
    mid()


def heartbeat():
    last = time.monotonic()
    while True:
        time.sleep(0.001)
        now = time.monotonic()
        gap[0] = max(gap[0], now - last)
        last = now


for _ in range(N):
    threading.Thread(target=top, daemon=True).start()
threading.Thread(target=heartbeat, daemon=True).start()


def report(signum, frame):
    print("maxgap_us %d" % (gap[0] * 1e6), flush=True)
    gap[0] = 0


signal.signal(signal.SIGUSR1, report)
print("ready", flush=True)
while True:
    signal.pause()
