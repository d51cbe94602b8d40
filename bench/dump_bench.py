#!/usr/bin/python3
"""Dump benchmark, in one run, against baselines measured in the same run.

relay   A full dump (dumpType=2) of a --mib MiB resident target over HTTP
        against the same httpd serving a static file of the same size, curl
        as the client of both, alternating rounds, medians: the time ratio
        (goal <= 1.1 on an idle machine; the load average is printed). Both
        the default Location (without `environment`: every byte goes through
        the scrubber) and one that allows `environment`. Also the target's
        longest pause (a heartbeat thread in it) and the worker's peak RSS.
compare (--compare) the same dump against gdb's gcore to tmpfs and a bare
        process_vm_readv copy (bench/vm_copy.c), with the snapshot off, and
        the minimal dump.
transfer In two network namespaces made for the run (10.200.0.1/30 and
        10.200.0.2/30 on a veth pair between them, nothing else touched;
        removed on every way out), httpd listening in one and curl in the
        other, the veth limited to each rate (tc tbf): the time to download
        and decompress (curl --compressed) a full dump with Content-Encoding
        zstd and gzip,
        against the raw core, one run each, of (a) a Python process holding
        --mib MiB of dicts, strings and lists (goal: zstd >= 3x faster at
        1 Gbit/s) and (b) --mib MiB of random bytes (goal: never slower than
        raw). The serving worker's peak RSS over all of it (VmHWM; one worker
        process; goal <= 32 MiB) and the dumping process's, which compresses.

  make bench   (or: PYTHONPATH=t/lib /usr/bin/python3 bench/dump_bench.py [--mib 1024] [--rounds 5]
                    [--rates 1gbit,100mbit] [--only relay|transfer] [--compare])
"""
import argparse
import atexit
import glob
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


HERE = os.path.dirname(os.path.abspath(__file__))
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, APACHE, httpd_env

TARGET = os.path.join(BUILD, "targets", "proc_target")
PY_TARGET = os.path.join(HERE, "py_objects_target.py")
VM_COPY = os.path.join(BUILD, "bench", "vm_copy")
P = "/diagnostics/processes"
MIB = 1 << 20


def load():
    return f"load average {os.getloadavg()[0]:.2f} (2 cores: {os.cpu_count()} CPUs)"


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def curl_time(url, *extra):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                          *extra, url], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


class Target:
    def __init__(self, argv, user=None):
        self.p = spawn(argv, ready="ready", user=user or worker_user())
        self.pid = self.p.pid

    def max_gap_ms(self):
        """Longest pause since the previous call (proc_target --heartbeat)."""
        os.kill(self.pid, signal.SIGUSR1)
        while True:
            line = self.p.stdout.readline().decode()
            if line.startswith("maxgap_us"):
                return int(line.split()[1]) / 1000.0

    def stop(self):
        dphttpd.kill_quietly(self.p)


# ------------------------------------------------------------------ relay

def static_file(mib):
    d = tempfile.mkdtemp(prefix="dpbench-static-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "static.bin")
    block = b"\x5a" * MIB
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)
    os.chmod(path, 0o644)
    with open(path, "rb") as f:          # in the page cache, as a served file is
        while f.read(16 * MIB):
            pass
    return d, path


def relay(args):
    d, path = static_file(args.mib)
    h = Httpd(locations={P: "DiagProcAllow dump fulldump",
                         "/env": "DiagProcAllow dump fulldump environment"},
              server_conf=f"DocumentRoot {d}\n<Directory {d}>\n    Require all granted\n"
                          "</Directory>\n" + args.conf.replace("\\n", "\n")).start()
    t = Target([TARGET, "--rss", str(args.mib), "--threads", "4", "--heartbeat"])
    runs = {"static": [], "dump": [], "env": []}
    pauses = []
    try:
        worker = h.workers()[0]
        curl_time(f"{h.base}{P}/{t.pid}/dump?dumpType=2")       # warm
        for _ in range(args.rounds):
            runs["static"].append(curl_time(f"{h.base}/static.bin"))
            t.max_gap_ms()
            runs["dump"].append(curl_time(f"{h.base}{P}/{t.pid}/dump?dumpType=2"))
            pauses.append(t.max_gap_ms())
            runs["env"].append(curl_time(f"{h.base}/env/{t.pid}/dump?dumpType=2"))
        hwm = status_kb(worker, "VmHWM")
    finally:
        t.stop()
        h.stop()
        os.unlink(path)
        os.rmdir(d)
    med = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
    size = runs["dump"][0][1]
    print(f"relay: {args.mib} MiB target (a {size / MIB:.0f} MiB core) and a {args.mib} MiB static "
          f"file through one httpd, curl, {args.rounds} alternating rounds, medians; {load()}")
    print(f"  static file                          {med['static']:7.3f} s")
    print(f"  full dump                            {med['dump']:7.3f} s  {med['dump'] / med['static']:.2f}x"
          f"   (goal <= 1.1 on an idle machine)")
    print(f"  full dump, environment allowed       {med['env']:7.3f} s  {med['env'] / med['static']:.2f}x"
          f"   (no scrubber)")
    print("  per round dump/static: " + " ".join(f"{a[0] / b[0]:.2f}" for a, b in
                                                   zip(runs["dump"], runs["static"])))
    print(f"  target's longest pause per dump: median {statistics.median(pauses):.0f} ms; "
          f"worker's peak RSS {hwm / 1024:.1f} MiB after {3 * args.rounds + 1} GiB")


# ---------------------------------------------------------------- compare

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
        target.max_gap_ms()
        t0 = time.perf_counter()
        size = fn()
        results.append((time.perf_counter() - t0, size, target.max_gap_ms()))
    return min(results)


def compare(args):
    os.makedirs(os.path.dirname(VM_COPY), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", VM_COPY, os.path.join(HERE, "vm_copy.c")], check=True)
    h = Httpd(allow="dump fulldump").start()
    h_off = Httpd(allow="dump fulldump", server_conf="DiagProcDumpSnapshot Off").start()
    t = Target([TARGET, "--rss", str(args.mib), "--threads", "4", "--heartbeat"])
    try:
        def ours(hh, dt):
            return lambda: curl_time(f"{hh.base}{P}/{t.pid}/dump?dumpType={dt}")[1]
        o = best_of(args.rounds, t, ours(h, 2))
        off = best_of(args.rounds, t, ours(h_off, 2))
        o0 = best_of(args.rounds, t, ours(h, 0))
        g = best_of(args.rounds, t, lambda: gcore(t.pid))
        c = best_of(args.rounds, t, lambda: vm_copy(t.pid))
    finally:
        t.stop()
        h.stop()
        h_off.stop()
    print(f"compare: best of {args.rounds}; {load()}")
    print(f"  {'':28}{'seconds':>9}{'MiB/s':>9}{'size MiB':>10}{'pause ms':>10}")
    for name, (secs, size, pause) in (("ours dumpType=2 (HTTP)", o), ("  same, snapshot off", off),
                                      ("ours dumpType=0 (HTTP)", o0),
                                      ("gcore to tmpfs", g), ("process_vm_readv copy", c)):
        print(f"  {name:28}{secs:9.3f}{size / MIB / secs:9.0f}{size / MIB:10.1f}{pause:10.1f}")
    print(f"  time ours/gcore {o[0] / g[0]:.2f}x, ours/copy {o[0] / c[0]:.2f}x; pause ours/gcore "
          f"{o[2] / max(g[2], 0.001):.2f}x, snapshot/off {o[2] / max(off[2], 0.001):.2f}x")


# --------------------------------------------------------------- transfer

class Netns:
    """Two namespaces joined by a veth pair: the server's end 10.200.0.1/30,
    the client's 10.200.0.2/30. Only what this makes is touched, and it is
    removed however the run ends."""
    SERVER, CLIENT = "10.200.0.1", "10.200.0.2"

    def __init__(self):
        tag = os.getpid() % 100000
        self.srv, self.cli = f"dpbench-s{tag}", f"dpbench-c{tag}"
        self.vsrv, self.vcli = f"dpbs{tag}", f"dpbc{tag}"
        self.made = False

    @staticmethod
    def ip(*argv):
        subprocess.run(["ip", *argv], check=True)

    def up(self):
        self.made = True
        atexit.register(self.down)
        self.ip("netns", "add", self.srv)
        self.ip("netns", "add", self.cli)
        self.ip("link", "add", self.vsrv, "type", "veth", "peer", "name", self.vcli)
        self.ip("link", "set", self.vsrv, "netns", self.srv)
        self.ip("link", "set", self.vcli, "netns", self.cli)
        for ns, dev, addr in ((self.srv, self.vsrv, self.SERVER), (self.cli, self.vcli, self.CLIENT)):
            self.ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            self.ip("-n", ns, "link", "set", dev, "up")
            self.ip("-n", ns, "link", "set", "lo", "up")
        return self

    def rate(self, rate):
        """The server's egress (the dump's direction) limited by a token
        bucket holding 10 ms of the rate."""
        bits = int(rate[:-4]) * {"g": 10 ** 9, "m": 10 ** 6}[rate[-4].lower()]
        burst = max(bits // 8 // 100, 64 * 1024)
        subprocess.run(["ip", "netns", "exec", self.srv, "tc", "qdisc", "replace", "dev", self.vsrv,
                        "root", "tbf", "rate", rate, "burst", str(burst), "latency", "50ms"],
                       check=True)

    def client(self, cmd):
        return ["ip", "netns", "exec", self.cli, "bash", "-o", "pipefail", "-c", cmd]

    def down(self):
        if not self.made:
            return
        self.made = False
        for ns in (self.srv, self.cli):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


class NsHttpd(Httpd):
    """The test harness's httpd, listening in the server's namespace."""
    PORT = 8080

    def __init__(self, net, **kw):
        super().__init__(**kw)
        self.net, self.addr, self.port = net, net.SERVER, self.PORT

    def start(self):
        self.write_config()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.net.srv, APACHE, "-f", os.path.join(self.dir, "httpd.conf"),
             "-DFOREGROUND"], env=httpd_env(), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "stderr.log"), "w"), start_new_session=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            r = subprocess.run(["ip", "netns", "exec", self.net.srv, "curl", "-s", "-o", "/dev/null",
                                f"http://{self.addr}:{self.port}/"], stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                self._await_helper()
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("httpd did not start in the namespace:\n" + self.logs())

    @property
    def parent_pid(self):
        """The real parent: `ip netns exec` execs httpd in place."""
        return self.proc.pid if self.proc else None


class PeakRss(threading.Thread):
    """The largest VmHWM seen among the helper's dumping processes."""
    def __init__(self, h):
        super().__init__(daemon=True)
        self.h, self.peak, self.stop = h, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            for p in self.h.dumpers():
                self.peak = max(self.peak, status_kb(p, "VmHWM"))


def fetch(net, url, coding):
    """Seconds to download and decompress (curl --compressed decodes as it
    reads, with zlib or libzstd), bytes on the wire, bytes decoded."""
    cmd = (f"curl -sS --compressed -H 'Accept-Encoding: {coding}' "
           f"-w '%{{stderr}}%{{size_download}} ' '{url}' | wc -c")
    t0 = time.perf_counter()
    r = subprocess.run(net.client(cmd), capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{coding}: {r.stderr.strip()}")
    return secs, int(r.stderr.split()[0]), int(r.stdout.split()[-1])


def ratio(a, b):
    """Time of a over time of b, each (seconds, wire bytes, decoded bytes);
    nan when either was not fetched (--codings)."""
    return a[0] / b[0] if a[1] and b[1] else float("nan")


def last_levels(h):
    """The levels the helper's last compressed dump went through (its
    DP10068 line: the level follows the pace of the link)."""
    with open(os.path.join(h.dir, "error.log"), errors="replace") as f:
        found = re.findall(r"DP10068: .*levels (-?\d+) to (-?\d+)", f.read())
    return f" (levels {found[-1][0]}..{found[-1][1]})" if found else ""


def transfer(args):
    net = Netns()
    h = t_py = t_rnd = None
    rows = []
    try:
        net.up()
        h = NsHttpd(net, locations={P: "DiagProcAllow dump fulldump\nRequire ip 10.200.0.0/30"},
                    server_conf=args.conf.replace("\\n", "\n")).start()
        worker = h.workers()[0]
        t_py = Target(["/usr/bin/python3", PY_TARGET, "--mib", str(args.mib)])
        t_rnd = Target([TARGET, "--rss-random", str(args.mib)])
        peak = PeakRss(h)
        peak.start()
        for rate in args.rates.split(","):
            net.rate(rate)
            for name, t in (("python objects", t_py), ("random bytes", t_rnd)):
                if name.split()[0] not in args.targets.split(","):
                    continue
                url = f"http://{net.SERVER}:{NsHttpd.PORT}{P}/{t.pid}/dump?dumpType=2"
                # the first dump leaves the target a page larger: once more
                # before the runs, on the server's side, which no rate limits
                subprocess.run(["ip", "netns", "exec", net.srv, "curl", "-s", "-o", "/dev/null", url],
                               check=True)
                got, levels = {}, {}
                for c in ("identity", "zstd", "gzip"):
                    got[c] = fetch(net, url, c) if c in args.codings.split(",") else (0.0, 0, 0)
                    levels[c] = last_levels(h) if c != "identity" and got[c][1] else ""
                rows.append((rate, name, got))
                print(f"  {rate:>8} {name:15} " + "  ".join(
                    f"{c} {s:6.2f} s {w / MIB:6.0f} MiB{levels[c]}"
                    for c, (s, w, _d) in got.items()), flush=True)
        peak.stop.set()
        hwm = status_kb(worker, "VmHWM")
    finally:
        for t in (t_py, t_rnd):
            if t:
                t.stop()
        if h:
            h.stop()
        net.down()
    print(f"transfer: --mib {args.mib}, one run each, time to download and decompress "
          f"(curl --compressed) in the client's namespace; {load()}")
    print(f"  {'rate':>8} {'target':15} {'raw s':>7} {'zstd s':>7} {'gzip s':>7} {'raw/zstd':>9}"
          f" {'raw/gzip':>9} {'zstd MiB':>9} {'gzip MiB':>9}")
    for rate, name, got in rows:
        raw, zs, gz = got["identity"], got["zstd"], got["gzip"]
        if len({x[2] for x in (raw, zs, gz) if x[1]}) > 1:
            print(f"  !! decoded sizes differ: raw {raw[2]}, zstd {zs[2]}, gzip {gz[2]}")
        print(f"  {rate:>8} {name:15} {raw[0]:7.2f} {zs[0]:7.2f} {gz[0]:7.2f} {ratio(raw, zs):8.2f}x"
              f" {ratio(raw, gz):8.2f}x {zs[1] / MIB:9.0f} {gz[1] / MIB:9.0f}")
    print("  goals: python objects raw/zstd >= 3 at 1gbit; random bytes raw/zstd and raw/gzip >= 1 "
          "(within noise)")
    print(f"  serving worker's peak RSS (VmHWM) {hwm / 1024:.1f} MiB (goal <= 32); the dumping "
          f"process's (it compresses) {peak.peak / 1024:.1f} MiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rates", default="1gbit,100mbit")
    ap.add_argument("--only", choices=("relay", "transfer"))
    ap.add_argument("--targets", default="python,random", help="the transfer's targets")
    ap.add_argument("--codings", default="identity,zstd,gzip", help="the transfer's codings")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--conf", default="", help="more server configuration for the "
                    "httpd, lines separated by \\n (e.g. 'DiagProcDumpNice 0')")
    ap.add_argument("--module", help="another build of mod_diagproc.so to measure")
    args = ap.parse_args()
    if args.module:
        dphttpd.MODULE = os.path.abspath(args.module)
    # a signal ends the run through the finally clauses, which clean up
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    if args.only in (None, "relay"):
        relay(args)
    if args.compare:
        compare(args)
    if args.only in (None, "transfer"):
        transfer(args)


if __name__ == "__main__":
    main()
