"""A Python process holding about --mib MiB of real objects, for the dump
benchmark: dicts of records with string, int, float and list fields, lists
of strings, text made of words, and some bytes, as a web application's
caches and sessions hold them. Prints "ready PID" once its resident size
has reached the goal, then waits.

  /usr/bin/python3 bench/py_objects_target.py [--mib 1024]
"""
import argparse
import os
import random
import signal

WORDS = ("request session user order item price total status created updated "
         "name email address city country payload token cache entry value key "
         "http https example api v1 v2 json true false null error message").split()


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def record(rng, i):
    return {
        "id": i,
        "user": f"user{rng.randrange(100000)}@example.com",
        "name": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 6))),
        "price": round(rng.random() * 1000, 2),
        "tags": [rng.choice(WORDS) for _ in range(rng.randrange(1, 8))],
        "status": rng.choice(("new", "paid", "shipped", "cancelled")),
        "history": [(rng.randrange(1 << 30), rng.choice(WORDS)) for _ in range(3)],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    args = ap.parse_args()
    rng = random.Random(42)
    keep = []
    i = 0
    while rss_mib() < args.mib:
        for _ in range(5000):
            keep.append(record(rng, i))
            if i % 7 == 0:
                keep.append(" ".join(rng.choice(WORDS) for _ in range(rng.randrange(20, 200))))
            if i % 50 == 0:
                keep.append(rng.randbytes(256))     # some data that does not compress
            i += 1
    print(f"ready {os.getpid()} objects {len(keep)}", flush=True)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
