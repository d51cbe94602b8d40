"""php-fpm (Debian's php8.2-fpm) for the tests and benchmarks: a master of its
own with its pools in a temporary folder, each listening on a unix socket
(reachable by the workers' user) or a loopback TCP port, its children running
as the workers' user (as root; else as whoever runs the test)."""
import os

from dphttpd import spawn, worker_user, kill_quietly, IS_ROOT
import procstate

FPM = "/usr/sbin/php-fpm8.2"


class PhpFpm:
    def __init__(self, run, pools, user=None):
        """run: the folder for its configuration, pid file and log; pools:
        [(name, listen, children)], listen a socket path or "127.0.0.1:PORT"."""
        self.run, self.pools = run, pools
        self.user = user or worker_user()
        self.proc = None

    def config(self):
        out = (f"[global]\npid = {self.run}/php-fpm.pid\nerror_log = {self.run}/php-fpm.log\n"
               "daemonize = no\n")
        for name, listen, children in self.pools:
            out += f"\n[{name}]\n"
            if IS_ROOT:
                out += f"user = {self.user}\ngroup = {self.user}\n"
            out += f"listen = {listen}\n"
            if listen.startswith("/"):
                out += (f"listen.owner = {self.user}\nlisten.group = {self.user}\n"
                        "listen.mode = 0660\n")
            out += f"pm = static\npm.max_children = {children}\n"
        return out

    def start(self, wait=30):
        """Starts it and waits for every pool's children and sockets."""
        conf = os.path.join(self.run, "php-fpm.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        self.proc = spawn([FPM, "--nodaemonize", "--fpm-config", conf])
        want = sum(n for _, _, n in self.pools)
        socks = [listen for _, listen, _ in self.pools if listen.startswith("/")]
        procstate.settle(lambda: len(self.children()) == want
                         and all(os.path.exists(s) for s in socks), wait)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def children(self, pool=None):
        """The children's pids, of one pool (by their title) or all."""
        kids = sorted(int(c) for c in procstate.children(self.proc.pid))
        if pool is None:
            return kids
        return [k for k in kids if _title(k) == f"php-fpm: pool {pool}"]

    def stop(self):
        if self.proc:
            kill_quietly(self.proc)


def _title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace").strip()
    except OSError:
        return ""
