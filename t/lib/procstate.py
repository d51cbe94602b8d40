"""What /proc says of a test target: is any thread stopped, what children it
has. The dump and kill tests use these to show that
nothing is left stopped or behind."""
import glob
import os
import time


def thread_states(pid):
    out = []
    for st in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            with open(st, errors="replace") as f:
                out.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            pass
    return out


def stopped(pid):
    """Some thread is in T (stopped) or t (tracing stop)."""
    return any(s in ("T", "t") for s in thread_states(pid))


def running(pid):
    """Alive, and no thread stopped."""
    states = thread_states(pid)
    return bool(states) and not any(s in ("T", "t") for s in states)


class Unsettled:
    """settle()'s answer when cond() never held: false, with why (which
    tap.ok prints when it fails)."""

    def __init__(self, why):
        self.why = why

    def __bool__(self):
        return False

    def __repr__(self):
        return f"<Unsettled: {self.why}>"


def settle(cond, secs=5):
    """Waits up to secs for cond() to hold: True, or a false Unsettled that
    says why. An exception of cond() (a request that timed out, a process
    that ended) counts as "not yet", and the last one is the why."""
    deadline = time.time() + secs
    why = None
    while True:
        last = time.time() >= deadline
        try:
            if cond():
                return True
            why = None
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
        if last:
            return Unsettled(f"not settled in {secs} s" +
                             (f"; the last try raised {why}" if why else ""))
        time.sleep(0.05)


def children(pid):
    """Pids of pid's children, zombies included."""
    kids = []
    for f in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(f) as fh:
                kids += fh.read().split()
        except OSError:
            pass
    return kids


def _listening_inodes():
    """{socket inode: port} of every TCP socket in LISTEN (IPv4 and IPv6)."""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":
                        out[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
        except OSError:
            pass
    return out


def socket_inodes(pid):
    """The inodes (as /proc/net/* writes them) of the sockets pid holds."""
    out = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def listen_ports(pid):
    """The TCP ports pid holds a listening socket of."""
    inodes = _listening_inodes()
    return {inodes[i] for i in socket_inodes(pid) if i in inodes}


def capture_time(cid):
    """The Unix time a capture was taken, from its id (yyyymmddThhmmss.mmmZ-…)."""
    import calendar
    import re
    m = re.match(r"^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)\.(\d{3})Z-", cid or "")
    if not m:
        return None
    v = [int(x) for x in m.groups()]
    return calendar.timegm((v[0], v[1], v[2], v[3], v[4], v[5], 0, 0, 0)) + v[6] / 1000.0


def first_capture(listing, complete, t0, secs=12):
    """Polls listing() (captures, newest first) until its first capture is
    complete(c), for up to secs after t0: the list (empty when none came)
    and the seconds from t0 to when the rule fired (the capture's id)."""
    caps = []
    while time.time() - t0 < secs:
        caps = listing() or []
        if caps and complete(caps[0]):
            break
        time.sleep(0.2)
    return caps, (capture_time(caps[0]["id"]) if caps else time.time()) - t0
