# A dump from a Location without `DiagProcAllow environment` carries no
# variable of the target's: not the block env_start..env_end (zero-filled),
# and no copy elsewhere either -- on a thread's stack, in the vector registers
# libc's memcpy leaves pieces of the values in (NT_FPREGSET, NT_X86_XSTATE),
# in the heap of a full dump, in the core of a zip bundle; and in the issue's
# own case, a minimal dump of an httpd worker (httpd's environment).
# Checked with the real `strings` and, stronger, on the raw bytes: no run of
# 8 bytes of any entry is left (the scrubber's rule, README "Dumps"), except
# runs of what the read-only routes show anyway (mapped files' paths, the
# command line, cwd, executable, open files), which the debuggers need whole. gdb
# still opens the cores and shows every thread's backtrace; the same dump from
# a Location that allows environment does hold the values (the checks can fail).
import io
import os
import re
import secrets
import struct
import subprocess
import tempfile
import zipfile

from tap import ok, is_, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, BUILD

TARGET = os.path.join(BUILD, "targets", "env_target")
MIN = 8          # the scrubber's minimum run
PATH_TOKEN = re.compile(rb"^/(?!/)[A-Za-z0-9/._+@~-]*$")     # the scrubber's "absolute path"
ROUNDS = 6       # stack and register contents vary from one stop to the next

libdir = os.path.dirname(os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6"))
VARS = {
    "DP_SECRET_LONG": secrets.token_urlsafe(30),          # 40 bytes
    "DP_DB_PASSWORD": secrets.token_hex(6),               # 12 bytes
    "DP_API_KEY": "k" + secrets.token_hex(4)[:7],        # 8 bytes: the minimum
    "DP_VERY_DISTINCTIVE_NAME_" + secrets.token_hex(4).upper(): "1",    # a name alone
    "DPK": secrets.token_hex(2),                          # "DPK=abcd": an 8-byte entry
    "Q": "x" + secrets.token_hex(2)[:3],                  # "Q=xabc": a short entry
    "DP_LIBDIR": libdir,                                  # a value that is a mapped path
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
}
# the issue's own case too: an httpd worker, whose environment is httpd's
WORKER_SECRET = "wk-" + secrets.token_urlsafe(24)
os.environ["DP_WORKER_SECRET"] = WORKER_SECRET
h = Httpd(locations={"/noenv": "DiagProcAllow dump fulldump",
                     "/env": "DiagProcAllow dump fulldump environment"})
h.start()
t = spawn([TARGET], ready="ready", user=worker_user(), env=VARS)


def windows(s):
    return {s[i:i + MIN] for i in range(len(s) - MIN + 1)}


def secrets_of(pid):
    """What the scrubber must find in pid's dump: every 8-byte run of an entry
    of its block, and its short entries; but what the read-only routes show
    anyway stays (mapped paths, the command line, cwd, executable, open files)."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        entries = [e for e in f.read().split(b"\0") if e]
    public = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            path = line.split(None, 5)[5].strip() if len(line.split(None, 5)) > 5 else ""
            if path.startswith("/"):
                public |= windows(path.encode())
    # values' tokens (split at ':', ' ', '=', ',' and ';') that are absolute paths: PATH's,
    # PWD's, LD_PRELOAD's (the loader's names of the preloaded libraries,
    # through a symlink too)
    for e in entries:
        for tok in re.split(rb"[: =,;]", e.partition(b"=")[2]):
            if len(tok) >= MIN and PATH_TOKEN.match(tok):
                public |= windows(tok)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        for arg in f.read().split(b"\0"):
            public |= windows(arg)
    for link in ["cwd", "exe"] + [f"fd/{n}" for n in os.listdir(f"/proc/{pid}/fd")]:
        try:
            public |= windows(os.readlink(f"/proc/{pid}/{link}").encode())
        except OSError:
            pass
    return (set().union(*(windows(e) for e in entries)) - public,
            [e for e in entries if 4 <= len(e) < MIN])


secret_runs, short_entries = secrets_of(t.pid)
ok(len(secret_runs) > 100 and short_entries, f"{len(secret_runs)} runs of the environment to look for, "
   f"and short entries {short_entries}")


def leaks(core, runs=None, shorts=None):
    """The runs of the environment that the core holds, and the short entries."""
    runs, shorts = (secret_runs, short_entries) if runs is None else (runs, shorts)
    return ({core[i:i + MIN] for i in range(len(core) - MIN + 1)} & runs,
            [e for e in shorts if e in core])


def strings_of(core):
    with tempfile.NamedTemporaryFile(prefix="dpenv-", suffix=".core") as f:
        f.write(core)
        f.flush()
        return subprocess.run(["strings", "-a", "-n", "4", f.name], capture_output=True,
                              check=True).stdout


def found_by_strings(out):
    """Which values (of 8 bytes or more), names (the same) and entries `strings` shows."""
    hits = []
    for name, value in VARS.items():
        for what in (value, name) if value != libdir else (name,):
            if len(what) >= MIN and what.encode() in out:
                hits.append(what)
        if len(name) + 1 + len(value) >= 4 and f"{name}={value}".encode() in out:
            hits.append(f"{name}={value}")
    return hits


def notes(core):
    """(type, desc) of every note of the core."""
    phoff, phnum = struct.unpack_from("<Q", core, 32)[0], struct.unpack_from("<H", core, 56)[0]
    out = []
    for k in range(phnum):
        ty, _fl, off, _va, _pa, fs, _ms, _al = struct.unpack_from("<IIQQQQQQ", core, phoff + 56 * k)
        if ty != 4:
            continue
        pos = off
        while pos < off + fs:
            nsz, dsz, nty = struct.unpack_from("<III", core, pos)
            d = pos + 12 + (nsz + 3 & ~3)
            out.append((nty, core[d:d + dsz]))
            pos = d + (dsz + 3 & ~3)
    return out


def register_notes(core):
    return b"".join(d for ty, d in notes(core) if ty in (2, 0x202))    # FPREGSET, X86_XSTATE


def backtraces(core, exe=TARGET):
    with tempfile.NamedTemporaryFile(prefix="dpenv-", suffix=".core") as f:
        f.write(core)
        f.flush()
        return subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt",
                               "-ex", "info sharedlibrary", exe, f.name],
                              capture_output=True, text=True, timeout=120).stdout


def get_dump(prefix, dump_type, fmt="raw", pid=None):
    r = h.get(f"/{prefix}/{pid or t.pid}/dump?dumpType={dump_type}&format={fmt}", timeout=120)
    if r.status != 200:
        diag(f"{prefix} dumpType={dump_type}: {r.status} {r.body[:200]!r}")
        return b""
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(r.body)) as z:
            core = [n for n in z.namelist() if n == "core"]
            return z.read(core[0]) if core else b""
    return r.body


# ---- the control: with environment allowed, the dump holds the variables,
# copies outside the block included, and the registers hold pieces of it
allowed = get_dump("env", 0)
ok(len(allowed) > 0, "a minimal dump through a Location that allows environment")
hits = found_by_strings(strings_of(allowed))
ok(VARS["DP_SECRET_LONG"] in hits and VARS["DP_DB_PASSWORD"] in hits,
   "…strings finds the values in it (the check can fail)")
value = VARS["DP_SECRET_LONG"].encode()
ok(allowed.count(value) >= 2, f"…{allowed.count(value)} copies of the long value: the block and "
   "the thread's stack")
reg_runs = set()
for _ in range(3):      # the registers change with every stop: a few chances
    reg_runs |= leaks(register_notes(allowed))[0]
    if reg_runs:
        break
    allowed = get_dump("env", 0)
ok(reg_runs, f"…and the vector registers hold pieces of the block ({len(reg_runs)} runs)")

# ---- without environment: nothing, in every round
worst_runs, worst_strings, traces_ok, sizes = set(), [], 0, set()
for i in range(ROUNDS):
    core = get_dump("noenv", 0)
    sizes.add(len(core) > 0)
    runs, shorts = leaks(core)
    worst_runs |= runs
    worst_strings += [s for s in found_by_strings(strings_of(core)) if s not in worst_strings]
    worst_strings += [s.decode() for s in shorts if s.decode() not in worst_strings]
    bt = backtraces(core) if i in (0, ROUNDS - 1) else ""
    if i in (0, ROUNDS - 1):
        traces_ok += all(fn in bt for fn in ("env_reader_loop", "stack_copy_hold", "main ("))
        traces_ok += "libc.so.6" in bt and libdir in bt
ok(sizes == {True}, f"{ROUNDS} minimal dumps through a Location without environment")
is_(worst_strings, [], "…strings finds no value, name or NAME=VALUE of the target's in any")
is_(sorted(worst_runs), [], "…and no run of 8 bytes of any entry is left anywhere in them")
is_(traces_ok, 4, "…gdb shows every thread's backtrace, and libc by its path (mapped paths stay)")
is_(len(core), len(allowed), "…the scrubbed dump has the size of the one that allows environment")

# ---- full memory (heap copy) and the zip bundle
full = get_dump("noenv", 2)
ok(len(full) > len(core), "a full dump without environment")
is_(sorted(leaks(full)[0]) + found_by_strings(strings_of(full)), [],
    "…holds no run of the environment (the heap's copies included)")
full_env = get_dump("env", 2)
ok(full_env.count(value) >= 3, "…while the full dump that allows environment holds the heap copy too")
zcore = get_dump("noenv", 0, "zip")
ok(len(zcore) > 0, "a zip bundle without environment")
is_(sorted(leaks(zcore)[0]) + found_by_strings(strings_of(zcore)), [],
    "…its core holds no run of the environment")

# ---- an httpd worker (the issue's case): its minimal dump holds none of
# httpd's environment, the secret the test put there included
wpid = h.workers()[0]
w_runs, w_shorts = secrets_of(wpid)
wcore = get_dump("noenv", 0, pid=wpid)
ok(len(wcore) > 0 and len(w_runs) > 100, f"a minimal dump of worker {wpid} without environment "
   f"({len(w_runs)} runs of its environment to look for)")
wl = leaks(wcore, w_runs, w_shorts)
is_(sorted(wl[0]) + wl[1], [], "…holds no run of its environment")
ok(WORKER_SECRET.encode() not in strings_of(wcore), "…strings does not find the secret")
wbt = backtraces(wcore, "/usr/sbin/apache2")
ok("ap_queue_pop_something" in wbt and "mod_mpm_event.so" in wbt,
   "…gdb shows its worker threads waiting in the MPM's queue")
ok(WORKER_SECRET.encode() in strings_of(get_dump("env", 0, pid=wpid)),
   "…while the same dump through the Location that allows environment has it (the check can fail)")

# ---- a library preloaded through a symlink (LD_PRELOAD spelled differently
# from the path /proc/PID/maps shows): the loader's name of it is what gdb
# looks for, so the scrubber leaves it, while the rest of the entry goes
pre_dir = tempfile.mkdtemp(prefix="dp-preload-")
os.chmod(pre_dir, 0o755)
pre = os.path.join(pre_dir, "libdp-preloaded.so")
os.symlink(os.path.realpath("/lib/x86_64-linux-gnu/libz.so.1"), pre)
pt = spawn([TARGET], ready="ready", user=worker_user(),
           env=dict(VARS, LD_PRELOAD=pre, DP_PRELOAD_SECRET=secrets.token_urlsafe(24)))
p_runs, p_shorts = secrets_of(pt.pid)
pcore = get_dump("noenv", 0, pid=pt.pid)
pbt = backtraces(pcore)
ok(pre in pbt and "env_reader_loop" in pbt,
   "LD_PRELOAD through a symlink: gdb lists the library by the loader's name and shows the backtraces")
pl = leaks(pcore, p_runs, p_shorts)
is_(sorted(pl[0]) + pl[1], [], "…and nothing else of the environment is left")
pt.kill()
os.unlink(pre)
os.rmdir(pre_dir)

t.kill()
done_testing()
