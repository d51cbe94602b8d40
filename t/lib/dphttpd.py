"""A real httpd for integration tests: generated config, 127.0.0.1, a free port.

As root the workers run as the test account DP_TEST_USER (default dptest),
as httpd does on a real server; as an ordinary user, as that user.
"""
import atexit
import datetime
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client

import procstate

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
MODULE = os.environ.get("DP_MODULE") or os.path.join(ROOT, "build", "mod_diagproc.so")
APACHE = "/usr/sbin/apache2"
MODDIR = "/usr/lib/apache2/modules"
IS_ROOT = os.geteuid() == 0
TEST_USER = os.environ.get("DP_TEST_USER", "dptest")
# the sanitizer pass (t/run-asan.sh): httpd alone gets the sanitizers' runtimes,
# and the tools that drive the cores directly are their instrumented builds
HTTPD_PRELOAD = os.environ.get("DP_HTTPD_PRELOAD")
TOOLS = os.environ.get("DP_TOOLS") or os.path.join(BUILD, "tools")


def httpd_env():
    env = dict(os.environ)
    if HTTPD_PRELOAD:
        env["LD_PRELOAD"] = HTTPD_PRELOAD
        # mod_php dlopens its shared extensions (opcache first) with
        # RTLD_DEEPBIND, which the sanitizer runtime refuses by ending the
        # process: no scan of conf.d, so PHP runs with its built-in ones alone
        env["PHP_INI_SCAN_DIR"] = ""
    return env

DEFAULT_LOCATIONS = {
    "/diagnostics/processes": "",
    "/api/processes": "",
}


def free_port(addr="127.0.0.1"):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def worker_user():
    return TEST_USER if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name


# ---- the error log check: when a server stops, these lines of its logs fail
# the test:
#   - error.log: every line at warn or worse;
#   - error.log: a child's death by a signal (AH00051/AH00052, notice: httpd
#     does not log SIGKILL or SIGTERM, so this is a crash), unless logged
#     once the harness was stopping httpd: Debian's httpd 2.4 event MPM
#     crashes in about one stop in a hundred without this module loaded too
#     (a worker's main thread, in apr_os_sock_get); the same for the event
#     MPM's AH03093 (EBADF) of a connection its ungraceful stop closed;
#   - error.log: every line not in httpd's format: what a process wrote to
#     its stderr, which httpd points at the error log;
#   - stderr.log: every non-empty line (httpd's stderr before it opens the
#     error log: the configuration's errors);
# unless the test declared it expected: by tag ("DP00012", "AH00052": the
# number before the colon of the message: the helper's are DP1nnnn), or by a
# substring or a compiled regex. Expected lines are
# declared as httpd's own test suite declares the log numbers a test
# provokes: Httpd(expect_log=[...]) or h.expect_log(...). With DP_KEEP_LOGS
# set, the folder of a server whose check failed is kept.
LOG_LEVEL = re.compile(r"^\[[^\]]*\] \[[^\]]*:(warn|error|crit|alert|emerg)\] ")
HTTPD_LINE = re.compile(r"^\[(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] \[")
CHILD_SIGNAL = re.compile(r"\b(AH00051|AH00052): child pid \d+ exit signal")
# the event MPM's ungraceful stop closes every worker thread's connection
# (close_worker_sockets in signal_threads(ST_UNGRACEFUL)) under the threads
# that are still finishing a request: the one that then parks its
# connection for keep-alive logs EBADF. httpd's, and only once it is stopping.
STOP_RACE = re.compile(r"\(9\)Bad file descriptor: AH03093: process_socket: apr_pollset_add "
                       r"failure for keep alive")
TAG = re.compile(r"^[A-Z]{2}\d{5}$")
# expected of every server the harness runs: its MPM configurations keep
# MinSpareThreads (default 75) and MinSpareServers (default 5) above what
# MaxRequestWorkers allows, so that the MPM always runs every process it may;
# it says so once, at error level: event and worker "server is within
# MinSpareThreads of MaxRequestWorkers", prefork "server reached
# MaxRequestWorkers setting" (for a busy event or worker, this last one is a
# test's own to declare)
HARNESS_EXPECTED = {"event": ["AH10159"], "worker": ["AH00287"], "prefork": ["AH00161"]}
LOG_CHECK_NAME = "error log: no unexpected warn/error lines"
# the helper's refusals of a worker's reads of root's processes and of those
# holding capabilities: a scope of DiagProcUsers * holds them, the helper's
# ceiling does not (root only if named); the detail shows -1 and null there
# (DP10004), and the counts of those its rate limit left out (DP10002)
HELPER_ROOT_READS = re.compile(
    r"DP10004: helper: refused a request from pid \d+ uid \d+ gid \d+: read of pid \d+ "
    r"through sections \d+/\d+: Process \d+ (\(real uid 0\) is outside the helper's ceiling"
    r"|holds capabilities)|DP10002: helper: \d+ more refusals of this kind suppressed in the last "
    r"\d+ s: refused requests \(read\)")


def log_expected(line, expected):
    """Whether line is one the declarations expect (tags, substrings, regexes)."""
    for e in expected:
        if isinstance(e, re.Pattern):
            if e.search(line):
                return True
        elif TAG.match(e):
            if re.search(rf"\b{e}: ", line):
                return True
        elif e in line:
            return True
    return False


def _logged_at(line):
    """The time of an httpd log line (seconds since the epoch), or None."""
    m = HTTPD_LINE.match(line)
    try:
        return datetime.datetime.strptime(m.group(1).split(".")[0] + " " + m.group(1)[-4:],
                                          "%a %b %d %H:%M:%S %Y").timestamp() if m else None
    except ValueError:
        return None


def _error_log_problem(line, stopping_at=None):
    if not line.strip():
        return False
    if STOP_RACE.search(line):
        at = _logged_at(line)
        return stopping_at is None or at is None or at < int(stopping_at)
    if not HTTPD_LINE.match(line) or LOG_LEVEL.match(line):
        return True
    if CHILD_SIGNAL.search(line):
        at = _logged_at(line)
        return stopping_at is None or at is None or at < int(stopping_at)
    return False


def log_problems(error_log=None, stderr_log=None, expected=(), stopping_at=None):
    """The unexpected lines of an error log and a stderr log (paths; a missing
    file has none), each prefixed with its file's name. stopping_at: when
    httpd was told to stop (time.time())."""
    out = []
    for path, pick in ((error_log, lambda l: _error_log_problem(l, stopping_at)),
                       (stderr_log, lambda l: l.strip())):
        if not path or not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if pick(line) and not log_expected(line, expected):
                    out.append(f"{os.path.basename(path)}: {line}")
    return out


def report_log_check(problems, what="", max_lines=40):
    """One TAP assertion when the script is a TAP test (it imported tap),
    else (a benchmark) a warning on stderr when there are problems."""
    tap = sys.modules.get("tap")
    lines = problems[:max_lines] + ([f"... and {len(problems) - max_lines} more"]
                                    if len(problems) > max_lines else [])
    if tap is None:
        if problems:
            print(f"warning: {what}: unexpected lines in its logs:", file=sys.stderr)
            for l in lines:
                print(f"  {l}", file=sys.stderr)
        return not problems
    good = tap.ok(not problems, LOG_CHECK_NAME)
    if not good:
        tap.diag(f"  {what}: {len(problems)} unexpected line(s) (declare the expected "
                 "ones with expect_log):")
        for l in lines:
            tap.diag(f"    {l}")
    return good


_live = []


def _stop_all():
    """Before the plan (tap.at_end): the servers a test left running are
    stopped, so that their logs are checked too."""
    for h in list(_live):
        h.stop()


class Httpd:
    """Start with Httpd(...).start(); stop() (also at exit)."""

    def __init__(self, locations=None, server_conf="", mpm="event", allow="",
                 users=None, addr="127.0.0.1", modules=(), expect_log=()):
        """addr: the loopback address it listens on (a fleet's members get
        their own); modules: extra httpd modules to load, by name (proxy…);
        expect_log: the log lines this test provokes on purpose (see
        log_problems: tags, substrings, compiled regexes)."""
        self.locations = locations if locations is not None else {
            p: (f"DiagProcAllow {allow}\n" if allow else "") +
               (f"DiagProcUsers {users}\n" if users else "")
            for p in DEFAULT_LOCATIONS}
        self.server_conf = server_conf
        self.mpm = mpm
        self.addr = addr
        self.port = free_port(addr)
        self.modules = modules
        self.dir = tempfile.mkdtemp(prefix="dphttpd-")
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.user = worker_user()
        self.expected_log = list(expect_log)
        self.started = False
        self.stopping_at = None
        atexit.register(self.stop)

    @property
    def base(self):
        return f"http://{self.addr}:{self.port}"

    @property
    def hostport(self):
        return f"{self.addr}:{self.port}"

    def config(self):
        loc = ""
        for path, extra in self.locations.items():
            loc += (f"<Location {path}>\n    SetHandler diagproc\n"
                    f"    {extra.strip()}\n    Require ip 127.0.0.0/8 ::1\n</Location>\n")
        user = ""
        if IS_ROOT:
            user = f"User {self.user}\nGroup {self.user}\n"
        return f"""ServerRoot {self.dir}
ServerName {self.addr}
Listen {self.addr}:{self.port}
PidFile {self.dir}/httpd.pid
DefaultRuntimeDir {self.dir}
ErrorLog {self.dir}/error.log
LogLevel info
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog {self.dir}/access.log common
{user}LoadModule mpm_{self.mpm}_module {MODDIR}/mod_mpm_{self.mpm}.so
LoadModule authz_core_module {MODDIR}/mod_authz_core.so
LoadModule authz_host_module {MODDIR}/mod_authz_host.so
LoadModule status_module {MODDIR}/mod_status.so
{"".join(f"LoadModule {m}_module {MODDIR}/mod_{m}.so" + chr(10) for m in self.modules)}LoadModule diagproc_module {MODULE}
StartServers 1
ServerLimit 2
{"MaxRequestWorkers 25" if self.mpm != "prefork" else "MaxRequestWorkers 2"}
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
{self.server_conf}
{loc}
"""

    def write_config(self):
        with open(os.path.join(self.dir, "httpd.conf"), "w") as f:
            f.write(self.config())

    def expect_log(self, *expected):
        """Declares lines of the logs as expected (tags, substrings, regexes)."""
        self.expected_log += expected
        return self

    def log_problems(self):
        """The unexpected lines of its logs so far."""
        return log_problems(os.path.join(self.dir, "error.log"),
                            os.path.join(self.dir, "stderr.log"),
                            HARNESS_EXPECTED.get(self.mpm, []) + self.expected_log,
                            self.stopping_at)

    def start(self):
        self.write_config()
        self.started = True
        if self not in _live:
            _live.append(self)
        tap = sys.modules.get("tap")
        if tap is not None:
            tap.at_end(_stop_all)
        self.proc = subprocess.Popen(
            [APACHE, "-f", os.path.join(self.dir, "httpd.conf"), "-DFOREGROUND"],
            env=httpd_env(), stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr.log"), "w"),
            start_new_session=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("httpd did not start:\n" + self.logs())
            try:
                with socket.create_connection((self.addr, self.port), timeout=0.5):
                    pass
                self._await_helper()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("httpd did not listen:\n" + self.logs())

    def _await_helper(self, secs=5):
        """The helper counts as a worker until it has dropped privileges
        (no_new_privs): wait for that, so helpers() and workers() are right
        from the start."""
        deadline = time.time() + secs
        while not self.helpers() and time.time() < deadline:
            time.sleep(0.02)

    def logs(self):
        out = ""
        for name in ("stderr.log", "error.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f.read()[-6000:]
        return out

    def error_log(self):
        """The whole error log so far (logs() keeps the last 6000 characters:
        a busy test's early lines are gone from it)."""
        p = os.path.join(self.dir, "error.log")
        if not os.path.exists(p):
            return ""
        with open(p, errors="replace") as f:
            return f.read()

    def signal(self, cmd):
        """apache2 -k graceful / stop, as an operator would."""
        if cmd in ("stop", "graceful-stop"):
            self.stopping_at = time.time()
        subprocess.run([APACHE, "-f", os.path.join(self.dir, "httpd.conf"), "-k", cmd],
                       env=httpd_env(), check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def parent_pid(self):
        return self.proc.pid if self.proc else None

    def _children(self, helper):
        """Live children of the parent: the helper (the one that set
        no_new_privs) or the others; killed ones not yet reaped are left out."""
        out = []
        for k in procstate.children(self.parent_pid):
            try:
                with open(f"/proc/{k}/status") as f:
                    st = f.read()
            except OSError:
                continue
            if ("NoNewPrivs:\t1" in st) == helper and "State:\tZ" not in st:
                out.append(int(k))
        return out

    def workers(self):
        """The MPM's worker processes (not the helper, not a reserved process)."""
        return [k for k in self._children(helper=False) if not self._is_reserved(k)]

    def reserved(self):
        """Reserved diagnostics processes (DiagProcListen): the children that
        listen on a port other than the site's."""
        return [k for k in self._children(helper=False) if self._is_reserved(k)]

    def _is_reserved(self, pid):
        return bool(procstate.listen_ports(pid) - {self.port})

    def helpers(self):
        return self._children(helper=True)

    def dumpers(self):
        """The helper's children: one per request it is serving."""
        return [int(k) for hp in self.helpers() for k in procstate.children(hp)]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.stopping_at = time.time()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self in _live:
            _live.remove(self)
        if self.started and self.dir and os.path.isdir(self.dir):
            self.started = False
            if not report_log_check(self.log_problems(), f"httpd on {self.hostport} (mpm {self.mpm})") \
                    and os.environ.get("DP_KEEP_LOGS"):
                print(f"# DP_KEEP_LOGS: its logs stay in {self.dir}", file=sys.stderr, flush=True)
                self.dir = None
        if self.dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # --- HTTP ---
    def request(self, method, path, headers=None, body=None, timeout=60, source=None):
        """source: the client's own loopback address (default: the kernel's)."""
        conn = http.client.HTTPConnection(self.addr, self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception:
            return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def spawn(argv, ready=None, user=None, **kw):
    """Start a test target; wait for its `ready` line on stdout if given."""
    preexec = None
    if user is not None and IS_ROOT:
        pw = pwd.getpwnam(user)

        def preexec():
            os.setgid(pw.pw_gid)
            os.setgroups([])
            os.setuid(pw.pw_uid)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         preexec_fn=preexec, start_new_session=True, **kw)
    lines = []
    if ready:
        while True:
            line = p.stdout.readline().decode(errors="replace")
            if not line:
                raise RuntimeError(f"{argv[0]} exited before ready: {lines}")
            lines.append(line)
            if ready in line:
                break
    p.ready_lines = lines
    atexit.register(kill_quietly, p)
    return p


def favour_cpu(pid):
    """The scheduler shares CPU between sessions (autogroups), not threads:
    on a machine busy with other work a spinning target gets a fraction of
    a core. As root, give its session the share a busy process has on an
    otherwise quiet server (no-op for an ordinary user, who may not)."""
    if IS_ROOT:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write("-10")


def cpu_share(user=None, secs=3):
    """The share of a core (percent) a spinning process of user gets now, in
    a session of its own as httpd's is (favoured as favour_cpu favours a
    test's): the least of secs one-second looks. A rule on CPU is tested
    against what this machine gives a spinner at the moment, which other
    work decides (another session at autogroup nice -10 leaves an ordinary
    one about 16 % of a core here), not against a fixed share."""
    p = spawn([os.path.join(BUILD, "targets", "proc_target"), "--spin"], ready="ready",
              user=user or worker_user())
    favour_cpu(p.pid)

    def ticks():
        with open(f"/proc/{p.pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        return int(v[11]) + int(v[12])
    hz = os.sysconf("SC_CLK_TCK")
    least = None
    try:
        time.sleep(0.5)
        for _ in range(secs):
            t0, c0 = time.monotonic(), ticks()
            time.sleep(1)
            share = (ticks() - c0) * 100.0 / hz / (time.monotonic() - t0)
            least = share if least is None else min(least, share)
    finally:
        kill_quietly(p)
    return least


def kill_quietly(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        p.wait(timeout=5)
    except Exception:
        pass
