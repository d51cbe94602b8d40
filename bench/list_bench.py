#!/usr/bin/python3
"""Process-list benchmark: GET list and GET detail through a real httpd with
N extra sleeping processes of the workers' user (N = 0, 1000, 5000), against
baselines measured in the same run:

  (a) bench/proc_baseline.c: getdents /proc + fstatat owner + one read of stat
  (b) psutil.process_iter(['pid', 'name', 'username'])
  (c) ps -e -o pid,user,comm
  (d) mod_status ?auto: the cost of an almost empty httpd handler

and then the list of every user's processes (?allUsers=true, DiagProcUsers *)
on a machine of about --all processes (as root: sleepers of three users
added to what runs; otherwise the machine as it is), the case in which the
list's fixed cost shows: alternating rounds of list, (a) and (d), medians.

  make bench   (or: PYTHONPATH=t/lib /usr/bin/python3 bench/list_bench.py [--n 0,1000,5000] [--secs 3]
                    [--all 400] [--rounds 7])
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import time

import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT

HERE = os.path.dirname(os.path.abspath(__file__))

SLEEPERS = os.path.join(BUILD, "targets", "sleepers")
BASELINE = os.path.join(BUILD, "bench", "proc_baseline")


def wrk(url, secs):
    out = subprocess.run(["wrk", "-t1", "-c1", f"-d{secs}s", url], capture_output=True,
                         text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def rate(fn, secs):
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < secs:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def psutil_iter():
    import psutil
    for _ in psutil.process_iter(["pid", "name", "username"]):
        pass


def ps():
    subprocess.run(["ps", "-e", "-o", "pid,user,comm"], stdout=subprocess.DEVNULL, check=True)


def count_procs():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def all_users(rounds, want):
    """The list of every user's processes at about `want` processes: per
    round, 1 s of each of list, (a) and (d); medians in microseconds."""
    users = ("dptest", "dptest2", "dptest3")
    kids = []
    h = Httpd(users="*").start()
    try:
        extra = max(0, want - count_procs()) if IS_ROOT else 0
        for u in users if extra else ():
            kids.append(spawn([SLEEPERS, str(max(0, extra // len(users) - 1))], ready="ready", user=u))
        time.sleep(0.5)
        url = f"{h.base}/diagnostics/processes?allUsers=true"
        listed = len(json.loads(h.get("/diagnostics/processes?allUsers=true").body))
        times = {"list": [], "bare": [], "status": []}
        for _ in range(rounds):
            times["list"].append(1e6 / wrk(url, 1))
            times["bare"].append(1e6 / float(subprocess.run([BASELINE, "1"], capture_output=True,
                                                            text=True).stdout.split()[0]))
            times["status"].append(1e6 / wrk(f"{h.base}/server-status?auto", 1))
        times["load"] = [os.getloadavg()[0]]
        return listed, count_procs(), {k: statistics.median(v) for k, v in times.items()}, times
    finally:
        h.stop()
        for k in kids:
            dphttpd.kill_quietly(k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="0,1000,5000")
    ap.add_argument("--secs", type=float, default=3)
    ap.add_argument("--all", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    os.makedirs(os.path.dirname(BASELINE), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", BASELINE, os.path.join(HERE, "proc_baseline.c")],
                   check=True)
    all_listed, all_procs, med, times = all_users(args.rounds, args.all)
    h = Httpd().start()
    rows = []
    try:
        for n in [int(x) for x in args.n.split(",")]:
            s = spawn([SLEEPERS, str(n)], ready="ready", user=worker_user())
            try:
                time.sleep(0.5)
                lst = json.loads(h.get("/diagnostics/processes").body)
                listed = len(lst)
                size = len(h.get("/diagnostics/processes").body)
                secs = max(1, int(args.secs))
                list_rps = wrk(f"{h.base}/diagnostics/processes", secs)
                detail_rps = wrk(f"{h.base}/diagnostics/processes/{s.pid}", secs)
                status_rps = wrk(f"{h.base}/server-status?auto", secs)
                base = subprocess.run([BASELINE, str(args.secs)], capture_output=True,
                                      text=True).stdout.split()
                psu = rate(psutil_iter, args.secs)
                psr = rate(ps, args.secs)
                nprocs = int(base[1])
                rows.append((n, nprocs, listed, size, list_rps, detail_rps, float(base[0]), psu, psr,
                             status_rps))
            finally:
                dphttpd.kill_quietly(s)
    finally:
        h.stop()

    print("N extra sleepers; rates per second; the list holds the workers' user's processes,")
    print("the baselines (a) (b) (c) walk every process of the machine")
    print(f"{'N':>5} {'procs':>6} {'listed':>6} {'bytes':>8} {'list':>8} {'detail':>8}"
          f" {'(a)C':>8} {'(b)psutil':>9} {'(c)ps':>7} {'(d)status':>9}"
          f" {'list/(a)':>8} {'psutil/list':>11}")
    for n, procs, listed, size, lr, dr, a, b, c, d in rows:
        print(f"{n:>5} {procs:>6} {listed:>6} {size:>8} {lr:>8.1f} {dr:>8.1f} {a:>8.1f} {b:>9.2f}"
              f" {c:>7.1f} {d:>9.1f} {a / lr if lr else 0:>8.2f}x {lr / b if b else 0:>10.1f}x")
    if len(rows) >= 2:
        (n0, p0, *_r0), (n1, p1, *_r1) = rows[0], rows[-1]
        l0, l1 = rows[0][4], rows[-1][4]
        a0, a1 = rows[0][6], rows[-1][6]
        per_list = (1 / l1 - 1 / l0) / (n1 - n0) * 1e6
        per_base = (1 / a1 - 1 / a0) / (p1 - p0) * 1e6 if p1 != p0 else 0
        print(f"growth: list {per_list:.2f} us per extra process, baseline (a) {per_base:.2f} us")
    print("list/(a): time per list request over the bare-reads loop (goal <= 1.5);"
          " psutil/list: how many times faster than psutil (goal >= 3)")
    print(f"allUsers=true: {all_listed} listed of {all_procs} processes, median of {args.rounds} "
          f"alternating rounds (load average {times['load'][0]:.1f} as they ended):")
    print(f"  list {med['list']:.0f} us, (a) bare reads {med['bare']:.0f} us, "
          f"(d) status {med['status']:.0f} us")
    print(f"  list/(a) {med['list'] / med['bare']:.2f}x (goal <= 1.5), "
          f"list/((a)+(d)) {med['list'] / (med['bare'] + med['status']):.2f}x; "
          f"per round list/(a): " + " ".join(f"{l / b:.2f}" for l, b in
                                             zip(times["list"], times["bare"])))


if __name__ == "__main__":
    main()
