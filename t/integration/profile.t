# Sampled profiles of one process (POST P/{id}/profile/start, GET
# P/{id}/profile/stop, GET P/{id}/profile?seconds=N): the shares of two known
# functions of a PHP and a CPython target, Kudu's sequence and texts, the
# formats read by their own readers (pprof through protoc's classes of the
# published schema, speedscope against the schema its npm package ships),
# the policy and the parameters, that no profile leaves a target stopped
# (the helper killed, the target exiting, the client going away), and that a
# process of the workers' user that binds every abstract name it can keeps
# no profile from starting, stopping or being reported as it runs.
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, favour_cpu, ROOT, BUILD
import procstate
import pprof

LANG = os.path.join(ROOT, "t", "fixtures", "lang")
KUDU_NOT_RUNNING = "Profiling for process '{}' is not running."

h = Httpd(locations={"/p": "DiagProcAllow profile", "/ro": "",
                     "/other": "DiagProcAllow profile\nDiagProcUsers nobody"}).start()
# the stops of sessions that are not running, and the 400s, are answered, not logged as faults;
# the helper killed on purpose is a line of the parent's
h.expect_log(re.compile(r"DP00010: .*(is not running|not valid|is unknown|Process \d+ is a zombie"
                        r"|12 profiles are already running|was outside this location's scope)"),
             re.compile(r"DP10004: helper: refused a request .*: profile of pid \d+ .*was outside "
                        r"this location's scope"), "DP00006")


def folded_shares(body, names):
    """The share (percent) of the samples whose stack holds each name."""
    total, got = 0, {n: 0 for n in names}
    for line in body.decode().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = [f.split(" (")[0] for f in stack.split(";")]
        total += int(count)
        for n in names:
            if n in frames:
                got[n] += int(count)
    return total, {n: 100.0 * got[n] / total if total else 0 for n in names}


def samplers():
    """This httpd's live profile samplers: they name themselves, and keep
    the command line of the httpd they were forked from (its configuration
    file is this server's). Both are readable for a process that is not
    dumpable, as the ordinary user too; a zombie's command line is empty."""
    conf = os.path.join(h.dir, "httpd.conf").encode()
    out = []
    for p in os.listdir("/proc"):
        try:
            if not p.isdigit() or open(f"/proc/{p}/comm", "rb").read().strip() != b"diagproc-prof":
                continue
            if conf in open(f"/proc/{p}/cmdline", "rb").read().split(b"\0"):
                out.append(int(p))
        except OSError:
            pass
    return out


def detail(pid):
    return h.get(f"/p/{pid}").json() or {}


def check_shares(what, r):
    is_(r.status, 200, f"{what}: 200")
    total, sh = folded_shares(r.body, ["seventy", "thirty"])
    diag(f"{what}: {total} samples, seventy {sh['seventy']:.1f} %, thirty {sh['thirty']:.1f} % "
         f"({r.headers.get('x-diagproc-profile')})")
    ok(total >= 100, f"{what}: at least 100 samples ({total})")
    ok(abs(sh["seventy"] - 70) <= 10, f"{what}: seventy() has 70 % ± 10 ({sh['seventy']:.1f})")
    ok(abs(sh["thirty"] - 30) <= 10, f"{what}: thirty() has 30 % ± 10 ({sh['thirty']:.1f})")
    # busy.php calls hrtime() all the time: a walk often meets a frame being
    # pushed or popped (it is read again at once)
    m = re.search(r"samples=(\d+); lost=(\d+)", r.headers.get("x-diagproc-profile", ""))
    samples, lost = (int(m.group(1)), int(m.group(2))) if m else (0, 1)
    ok(lost <= 0.01 * (samples + lost), f"{what}: at most 1 % of the samples lost ({lost} of "
       f"{samples + lost})")


# --- PHP cli: Kudu's sequence
php = spawn(["/usr/bin/php8.2", os.path.join(LANG, "busy.php")], ready="ready", user=worker_user())
favour_cpu(php.pid)
ok("is_profile_running" not in detail(php.pid), "before: the detail omits is_profile_running")
r = h.request("POST", f"/p/{php.pid}/profile/start")
is_((r.status, r.body), (200, b""), "start: 200 with an empty body (Kudu)")
is_(detail(php.pid).get("is_profile_running"), True, "…the detail says is_profile_running: true")
r = h.request("POST", f"/p/{php.pid}/profile/start?hz=50")
is_((r.status, r.body), (200, b""), "start again while it runs: 200, the running profile goes on "
    "(Kudu's answer)")
time.sleep(4)
r = h.get(f"/p/{php.pid}/profile/stop?format=folded")
check_shares("php8.2 (start, stop)", r)
is_(r.headers.get("content-type"), "application/octet-stream", "…application/octet-stream")
is_(r.headers.get("content-disposition"),
    f'attachment; filename="profile_{h.get("/p/0").json()["machineName"]}_php8.2_{php.pid}.folded"',
    "…as the attachment profile_{instance}_{name}_{pid}.{ext}")
like(r.headers.get("x-diagproc-profile", ""), r"hz=99; samples=\d+; lost=\d+; .*ended=stopped",
     "…X-DiagProc-Profile: at 99 Hz (the second start changed nothing), the counts")
ok("is_profile_running" not in detail(php.pid), "after the stop: is_profile_running omitted")
r = h.get(f"/p/{php.pid}/profile/stop")
is_((r.status, (r.json() or {}).get("Message")), (404, KUDU_NOT_RUNNING.format(php.pid)),
    "stop again: 404 with Kudu's text")
ok(procstate.running(php.pid), "the target runs, no thread stopped")

# --- CPython: one call, every format
py = spawn(["/usr/bin/python3", os.path.join(LANG, "busy.py"), "3"], ready="ready",
           user=worker_user())
favour_cpu(py.pid)
check_shares("python3 (one call, 3 sleeping threads)",
             h.get(f"/p/{py.pid}/profile?seconds=4&format=folded"))

r = h.get(f"/p/{py.pid}/profile?seconds=4")
is_(r.status, 200, "the default format: 200")
like(r.headers.get("content-disposition", ""), r'\.pb\.gz"$', "…pprof (.pb.gz)")
try:
    prof, st, samples = pprof.parse(r.body)
except Exception as e:
    prof, st, samples = None, [], []
    diag(f"pprof: {e}")
ok(prof is not None, "pprof: parsed by protoc's classes of the published schema")
if prof is not None:
    is_(st[0] if st else None, "", "pprof: string_table[0] is ''")
    is_([(st[v.type], st[v.unit]) for v in prof.sample_type],
        [("samples", "count"), ("cpu", "nanoseconds")], "pprof: sample types")
    # the share among the samples of the two functions (a sample between them,
    # in main's loop, has main as its leaf)
    hot = sum(s.count for s in samples if s.leaf == "seventy")
    cold = sum(s.count for s in samples if s.leaf == "thirty")
    ok(hot + cold > 100 and abs(100.0 * hot / (hot + cold) - 70) <= 10,
       f"pprof: seventy() is the leaf of 70 % ± 10 of the two functions' samples "
       f"({hot}/{hot + cold})")
    labels = {(k, v) for s in samples for k, v in s.labels.items()}
    ok(("runtime", "CPython") in labels and ("thread", py.pid) in labels
       and ("pid", py.pid) in labels, "pprof: labels runtime=CPython, pid and thread=<tid>")
    is_(prof.period, 1000000000 // 99, "pprof: period 1/99 s in nanoseconds")

r = h.get(f"/p/{py.pid}/profile?seconds=2&format=speedscope")
is_(r.status, 200, "speedscope: 200")
doc = json.loads(r.body)
schema_path = os.path.join(BUILD, "node", "node_modules", "speedscope", "dist", "release",
                           "file-format-schema.json")
if not os.path.exists(schema_path):
    subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix",
                    os.path.join(BUILD, "node"), "speedscope"], capture_output=True)
import jsonschema   # noqa: E402  (python3-jsonschema)
try:
    with open(schema_path) as f:
        jsonschema.validate(doc, json.load(f))
    ok(True, "speedscope: valid against the schema the speedscope npm package ships")
except Exception as e:
    ok(False, f"speedscope: valid against the schema of the npm package ({e})")
frames = [f["name"] for f in doc["shared"]["frames"]]
ok("seventy" in frames and doc["profiles"][0]["type"] == "sampled",
   "…a sampled profile naming seventy")

# --- a session's maximum duration: it stops on its own, the samples stay
r = h.request("POST", f"/p/{py.pid}/profile/start?seconds=2")
is_(r.status, 200, "start?seconds=2: 200")
is_(h.request("HEAD", f"/p/{py.pid}/profile/stop").status, 200, "HEAD of stop: 200…")
ok(detail(py.pid).get("is_profile_running") is True, "…and the profile still runs")
ok(procstate.settle(lambda: "is_profile_running" not in detail(py.pid), secs=5),
   "…it stops on its own after its maximum duration")
r = h.get(f"/p/{py.pid}/profile/stop?format=folded")
is_(r.status, 200, "…its samples are kept until the stop fetches them")
like(r.headers.get("x-diagproc-profile", ""), r"ended=expired", "…ended=expired")
ok(b"seventy" in r.body, "…naming seventy")

# --- the policy and the parameters
for method, path in (("POST", "profile/start"), ("GET", "profile/stop"),
                     ("GET", "profile?seconds=1")):
    r = h.request(method, f"/ro/{py.pid}/{path}")
    like(f"{r.status} {(r.json() or {}).get('Message')}", r"^403 .*DiagProcAllow profile",
         f"{method} {path} without DiagProcAllow profile: 403 naming it")
for q in ("hz=0", "hz=1001", "hz=ten", "seconds=0", "seconds=301", "seconds=", "format=xml"):
    r = h.get(f"/p/{py.pid}/profile?{q}")
    is_((r.status, r.headers.get("content-type")), (400, "application/json; charset=utf-8"),
        f"profile?{q}: 400 JSON")
for q in ("hz=5000", "seconds=901", "seconds=0"):
    is_(h.request("POST", f"/p/{py.pid}/profile/start?{q}").status, 400, f"start?{q}: 400")
is_(h.request("GET", f"/p/{py.pid}/profile/start").status, 405, "GET of start: 405")

# --- the client goes away in the middle of a one-call profile
s = socket.create_connection((h.addr, h.port))
s.sendall(f"GET /p/{py.pid}/profile?seconds=20 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
time.sleep(1)
ok(detail(py.pid).get("is_profile_running") is True, "client gone: the profile was running")
s.close()
ok(procstate.settle(lambda: "is_profile_running" not in detail(py.pid), secs=5),
   "…it ends within seconds of the client's going")
ok(procstate.running(py.pid), "…and the target runs")
r = h.request("POST", f"/p/{py.pid}/profile/start")
is_(r.status, 200, "…a new profile can start")

# --- the target exits in the middle of a session: its samples are kept
time.sleep(1)
py.kill()
py.wait()
ok(procstate.settle(lambda: h.get(f"/p/{py.pid}").status == 404), "target exited")
r = h.get(f"/other/{py.pid}/profile/stop")
like(f"{r.status} {(r.json() or {}).get('Message')}", r"^403 .*outside this location's scope",
     "stop after the target exited, through a Location whose DiagProcUsers it was not in: 403")
r = h.get(f"/p/{py.pid}/profile/stop?format=folded")
is_(r.status, 200, "stop after the target exited: 200 with the samples kept")
like(r.headers.get("x-diagproc-profile", ""), r"ended=exited", "…ended=exited")
ok(b"seventy" in r.body, "…naming seventy")

# --- native frames (no interpreter walked): one thread stopped at a time;
# the sampler killed over and over in the middle never leaves it stopped
perl = spawn(["/usr/bin/perl", "-e", "$|=1; print qq(ready\\n); 1 while 1"], ready="ready",
             user=worker_user())
r = h.get(f"/p/{perl.pid}/profile?seconds=2&format=folded")
is_(r.status, 200, "perl (native frames): 200")
if not like(r.body.decode(), r"(?m)^_start \(perl\);[^\n]*;main \(perl\);[^\n]*;Perl_runops_standard \(",
            "…native frames root first: _start (perl) … main (perl) … Perl_runops_standard"):
    diag(r.body.decode()[:2000] + repr(r.headers))
left_stopped = killed = 0
for k in range(10):
    h.request("POST", f"/p/{perl.pid}/profile/start?hz=1000")
    time.sleep(0.05 + 0.013 * k)
    for sp in samplers():
        try:
            os.kill(sp, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    if not procstate.settle(lambda: procstate.running(perl.pid) and not samplers(), secs=2):
        left_stopped += 1
is_(killed, 10, "ten samplers SIGKILLed")
is_(left_stopped, 0, "the sampler SIGKILLed mid-profile (native samples at 1000 Hz), 10 times: "
    "the target is never left stopped")
time.sleep(0.3)
ok(procstate.running(perl.pid), "…and stays running")
r = h.get(f"/p/{perl.pid}/profile/stop")
is_(r.status, 404, "…its session is gone: stop is 404")

# --- the helper SIGKILLed in the middle of a session
r = h.request("POST", f"/p/{php.pid}/profile/start?hz=1000")
is_(r.status, 200, "start on the PHP target")
helper = h.helpers()[0]
os.kill(helper, signal.SIGKILL)
ok(procstate.settle(lambda: h.helpers() and h.helpers()[0] != helper, secs=10),
   "the helper killed: a new one starts")
ok(procstate.settle(lambda: "is_profile_running" not in detail(php.pid), secs=5),
   "…the session's sampler ends with the helper that made it")
ok(procstate.running(php.pid), "…the target runs, no thread stopped")
r = h.get(f"/p/{php.pid}/profile/stop")
is_(r.status, 404, "…stop: 404 (the samples went with it)")

# --- squatting: a process of the workers' user (a script of the site) binds
# every abstract name sessions were once found by (the 12 slots, the target's
# own, its "-running"), the name a stopped session listened on, and keeps
# binding every name of this httpd's it sees free; it listens on all of them
# and counts who connects. Sessions are in the helper's table now: none of
# it decides whether a profile starts, stops or is reported running.
SQUATTER = r"""
import json, os, select, socket, sys
status, prefix, names = sys.argv[1], sys.argv[2], sys.argv[3:]
held, seen, caught = {}, set(), 0
def take(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind("\0" + n)
        s.listen(8)
        s.setblocking(False)
        held[n] = s
    except OSError:
        s.close()
def report():
    with open(status + ".tmp", "w") as f:
        json.dump({"held": sorted(held), "caught": caught}, f)
    os.replace(status + ".tmp", status)
for n in names:
    take(n)
report()
print("ready", flush=True)
while True:
    with open("/proc/net/unix") as f:
        for p in (line.split() for line in f):
            if len(p) > 7 and p[7].startswith("@" + prefix):
                seen.add(p[7][1:])
    for n in seen - set(held):
        take(n)
    for s in select.select(list(held.values()), [], [], 0.02)[0]:
        try:
            s.accept()[0].close()
            caught += 1
        except OSError:
            pass
    report()
"""


def unix_names(prefix):
    with open("/proc/net/unix") as f:
        return {p[7][1:] for p in (line.split() for line in f)
                if len(p) > 7 and p[7].startswith("@" + prefix)}


prefix = f"diagproc-profile-{h.parent_pid}-"
victim = spawn(["/usr/bin/perl", "-e", "$|=1; print qq(ready\\n); 1 while 1"], ready="ready",
               user=worker_user())
is_(h.request("POST", f"/p/{victim.pid}/profile/start").status, 200, "squatting: a first session")
exposed = unix_names(prefix)
is_(len(exposed), 1, "…a session exposes one name: its sampler's socket")
like(next(iter(exposed), ""), r"^%s%d-[0-9a-f]{32}$" % (prefix, victim.pid),
     "…which ends in a random nonce of 32 hex digits")
is_(h.get(f"/p/{victim.pid}/profile/stop").status, 200, "…stopped")
old_names = [f"{prefix}0-slot{k}" for k in range(12)] + [f"{prefix}{victim.pid}",
                                                         f"{prefix}{victim.pid}-running"]
squat_dir = tempfile.mkdtemp()
os.chmod(squat_dir, 0o777)
squat_status = os.path.join(squat_dir, "status")
squatter = spawn(["/usr/bin/python3", "-c", SQUATTER, squat_status, prefix] + old_names
                 + sorted(exposed), ready="ready", user=worker_user())


def squatted():
    with open(squat_status) as f:
        return json.load(f)


is_(squatted()["held"], sorted(old_names + list(exposed)),
    "a process of the workers' user holds the 12 slot names, the target's name, its -running "
    "name and the stopped session's name")
ok("is_profile_running" not in detail(victim.pid),
   "…the detail of the target omits is_profile_running (its -running name is bound)")
r = h.request("POST", f"/p/{victim.pid}/profile/start")
is_((r.status, r.body), (200, b""), "…a start: 200")
ok(len(samplers()) == 1, "…and a sampler runs")
is_(detail(victim.pid).get("is_profile_running"), True, "…is_profile_running: true")
ok(procstate.settle(lambda: len(unix_names(prefix)) > len(old_names) + len(exposed), secs=2)
   and set(squatted()["held"]) == set(old_names) | exposed,
   "…its new name was bound by the sampler before anyone else could take it")
time.sleep(1)
r = h.get(f"/p/{victim.pid}/profile/stop?format=folded")
is_(r.status, 200, "…stop: 200")
like(r.headers.get("x-diagproc-profile", ""), r"samples=[1-9]\d*; .*ended=stopped",
     "…with the profile's samples")
like(r.body.decode(errors="replace"), r"Perl_runops_standard", "…of the target")
ok("is_profile_running" not in detail(victim.pid), "…after the stop: is_profile_running omitted")
is_(h.get(f"/p/{victim.pid}/profile/stop").status, 404, "…stop again: 404")
is_(h.get(f"/p/{victim.pid}/profile?seconds=1&format=folded").status, 200,
    "…the one-call profile: 200")
is_(h.request("POST", f"/p/{victim.pid}/profile/start").status, 200, "…a start again: 200")
ok(detail(victim.pid).get("is_profile_running") is True, "…running")
for sp in samplers():
    os.kill(sp, signal.SIGKILL)
ok(procstate.settle(lambda: "is_profile_running" not in detail(victim.pid), secs=5),
   "…its sampler SIGKILLed: is_profile_running omitted")
is_(h.request("POST", f"/p/{victim.pid}/profile/start").status, 200,
    "…a new start: 200 (the dead sampler's entry is free)")
ok(detail(victim.pid).get("is_profile_running") is True, "…running")
is_(h.get(f"/p/{victim.pid}/profile/stop").status, 200, "…stop: 200")

# --- at most 12 sessions server-wide (the squatter still holds the slot names)
sleepers = [spawn(["/bin/sleep", "300"], user=worker_user()) for _ in range(13)]
codes = [h.request("POST", f"/p/{s.pid}/profile/start").status for s in sleepers]
is_(codes, [200] * 12 + [503], "12 sessions start, the 13th is 503")
codes = [h.get(f"/p/{s.pid}/profile/stop").status for s in sleepers]
is_(codes, [200] * 12 + [404], "…each stops (the 13th never ran)")
for s in sleepers:
    s.kill()
ok(procstate.settle(lambda: len(squatted()["held"]) >= len(old_names) + len(exposed) + 12, secs=3),
   f"the squatter took the names of the sessions once they had ended "
   f"({len(squatted()['held'])} names)…")
is_(squatted()["caught"], 0, "…and no stop ever connected to any name it held")
squatter.kill()
victim.kill()
shutil.rmtree(squat_dir, ignore_errors=True)

with open(os.path.join(h.dir, "error.log")) as f:
    log = f.read()
like(log, r"DP00012: diagproc audit: .*action profile pid %d .*outcome 200" % php.pid,
     "audit lines of the worker for start and stop")
like(log, r"DP10009: helper: profile of pid %d .*started at 99 Hz" % php.pid,
     "the helper's own line for a start")
like(log, r"DP10010: helper: profile of pid %d stopped and fetched" % php.pid,
     "…and for a stop")
php.kill()
perl.kill()
h.stop()
done_testing()
