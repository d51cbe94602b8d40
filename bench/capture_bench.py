#!/usr/bin/python3
"""Capture rules benchmark, one run: the site's requests/s under wrk (a 512-byte static
file, 2 threads, 8 connections) on an event httpd with three capture rules active and idle
(a request-age rule on a path, a 5xx burst counted in the log hook of every request, a
memory rule on the workers: nothing triggers them) against the same httpd without rules.
Rounds alternate so that the machine's drift cancels; prints each round and the ratio of
the medians (goal >= 0.98x).

  PYTHONPATH=t/lib /usr/bin/python3 bench/capture_bench.py [--seconds 5] [--rounds 3]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile

from dphttpd import Httpd

RULES = ("DiagProcCapture stuck when=request-age>60s path=/shop/* do=stacks limit=3/10m\n"
         "DiagProcCapture errors when=status:500-599>=1000/1m do=stacks\n"
         "DiagProcCapture fat when=rss>64G/30s do=stacks limit=1/1h\n")


def wrk(url, secs):
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{secs}s", url], capture_output=True,
                         text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    return float(m.group(1))


def site(docroot, spool, rules):
    return Httpd(locations={"/p": ""}, server_conf=f"""DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
DiagProcSpool {spool} 64M 50
{rules}""").start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    docroot = tempfile.mkdtemp(prefix="dpcapbench-")
    os.chmod(docroot, 0o755)
    with open(os.path.join(docroot, "f.txt"), "w") as f:
        f.write("x" * 512)
    os.chmod(os.path.join(docroot, "f.txt"), 0o644)
    rates = {"none": [], "rules": []}
    for rnd in range(a.rounds):
        for kind in ("none", "rules") if rnd % 2 == 0 else ("rules", "none"):
            spool = tempfile.mkdtemp(prefix="dpcapspool-")
            h = site(docroot, spool, RULES if kind == "rules" else "")
            wrk(f"{h.base}/f.txt", 1)       # warm up
            rates[kind].append(wrk(f"{h.base}/f.txt", a.seconds))
            captures = len([d for d in os.listdir(spool) if not d.startswith(".")])
            h.stop()
            shutil.rmtree(spool, ignore_errors=True)
            print(f"round {rnd + 1}: {kind:5s} {rates[kind][-1]:9.0f} req/s"
                  + (f" ({captures} captures taken)" if kind == "rules" else ""))
    none, rules = statistics.median(rates["none"]), statistics.median(rates["rules"])
    print(f"median: no rules {none:.0f} req/s, three idle rules {rules:.0f} req/s: "
          f"{rules / none:.3f}x (goal >= 0.98x)")
    shutil.rmtree(docroot, ignore_errors=True)


if __name__ == "__main__":
    main()
