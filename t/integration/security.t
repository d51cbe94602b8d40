# Attacks that must fail (issue: the helper obeys the configuration, and
# only httpd's workers): a process of the workers' user that is not a worker,
# a CGI script, a read-only scope that names root, a target with saved uid 0
# or another user's group, the environment inside a minimal dump,
# invalid UTF-8 and very long segments over HTTP, HEAD of a dump.
import os
import re
import socket
import struct
import subprocess
import time

from tap import ok, is_, like, diag, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT
from helperclient import recv_all

TARGET = os.path.join(BUILD, "targets", "proc_target")
DUMPT = os.path.join(BUILD, "targets", "dump_target")
TOKEN = "SECRET_TOKEN"
VALUE = "tok-" + os.urandom(6).hex()

# What an attacker runs as the workers' user: a well-formed request (the
# struct the workers send), for the environment of pid, with a guessed secret.
ATTACK = '''
import sys
from helperclient import ask, request
path, pid = sys.argv[1], int(sys.argv[2])
try:
    print("got", len(ask(path, request(what=3, pid=pid, allow_section=0, scope_section=0),
                         shut=False)))
except (BrokenPipeError, ConnectionResetError):
    print("got 0")          # closed on us: nothing was answered
except OSError as e:
    print("error", e.__class__.__name__)
'''

cgidir = None
h = Httpd(modules=("cgid", "alias", "env"),
          server_conf="",
          locations={"/ro": "DiagProcUsers root " + worker_user() if IS_ROOT else "",
                     "/dump": "DiagProcAllow dump kill" + (f"\nDiagProcUsers {worker_user()}" if IS_ROOT else ""),
                     "/env": "DiagProcAllow dump environment",
                     "/grp": "DiagProcAllow dump kill\nDiagProcUsers dptest2",
                     "/grp23": "DiagProcAllow dump kill\nDiagProcUsers dptest2 dptest3"})
cgidir = os.path.join(h.dir, "cgi")
os.makedirs(cgidir)
os.chmod(cgidir, 0o755)
# PassEnv: the CGI scripts import helperclient from the tests' library too
h.server_conf = (f"ScriptSock {h.dir}/cgid.sock\nScriptAlias /cgi-bin/ {cgidir}/\n"
                 f"<Directory {cgidir}>\n    Require all granted\n    PassEnv PYTHONPATH\n"
                 "</Directory>\n")
h.start()
# every attack below is refused, and the helper logs each refusal
h.expect_log("DP10002", "DP10003", "DP10004", "DP10005")     # the helper's refusals, their counts
sockpath = os.path.join(h.dir, f"diagproc.{h.parent_pid}.sock")
t = spawn([TARGET], ready="ready", user=worker_user(), env={TOKEN: VALUE, "PATH": "/usr/bin:/bin"})


def log():
    with open(os.path.join(h.dir, "error.log"), errors="replace") as f:
        return f.read()


# ---- a process of the workers' user that is not a worker gets nothing
kw = {"user": worker_user()} if IS_ROOT else {}
p = subprocess.run(["/usr/bin/python3", "-c", ATTACK, sockpath, str(t.pid)],
                   capture_output=True, text=True, timeout=30, **kw)
is_(p.stdout.strip(), "got 0", "a process of the workers' user that is not a worker: no answer")
like(log(), r"refused a connection from pid \d+ uid \d+ gid \d+: not a child of the httpd parent",
     "…and the helper logs its pid, uid and the reason")

# ---- a CGI script (mod_cgid, as the workers' user) gets nothing either
script = os.path.join(cgidir, "attack.py")
with open(script, "w") as f:
    f.write("#!/usr/bin/python3\nimport subprocess, sys\n"
            f"out = subprocess.run([sys.executable, '-c', {ATTACK!r}, {sockpath!r}, '{t.pid}'],"
            " capture_output=True, text=True).stdout\n"
            "print('Content-Type: text/plain')\nprint()\nprint(out.strip())\n")
os.chmod(script, 0o755)
r = h.get("/cgi-bin/attack.py")
is_(r.status, 200, "the CGI script ran under mod_cgid")
is_(r.body.decode().strip(), "got 0", "a CGI script of the workers' user: no answer from the helper")
# the same from the script's own process (not a child of the cgid daemon's child)
with open(script, "w") as f:
    f.write("#!/usr/bin/python3\nimport sys, io, contextlib\nbuf = io.StringIO()\n"
            f"sys.argv = ['x', {sockpath!r}, '{t.pid}']\n"
            f"with contextlib.redirect_stdout(buf):\n    exec({ATTACK!r})\n"
            "print('Content-Type: text/plain')\nprint()\nprint(buf.getvalue().strip())\n")
r = h.get("/cgi-bin/attack.py")
is_(r.body.decode().strip(), "got 0", "…nor from the CGI process itself")
is_(h.get(f"/env/{t.pid}/environments/all").status, 200,
    "the workers are still served (the environment through an allowing Location)")

# ---- the environment never rides in a dump the Location does not allow it for
r = h.get(f"/dump/{t.pid}/dump?dumpType=0")
is_(r.status, 200, "minimal dump without DiagProcAllow environment")
def segment_at(core, addr):
    """The PT_LOAD bytes of the core that hold addr, and their start."""
    phoff, phnum = struct.unpack_from("<Q", core, 32)[0], struct.unpack_from("<H", core, 56)[0]
    for k in range(phnum):
        ty, fl, o, va, pa, fs, ms, al = struct.unpack_from("<IIQQQQQQ", core, phoff + 56 * k)
        if ty == 1 and va <= addr < va + fs:
            return core[o:o + fs], va
    return b"", 0


fields = open(f"/proc/{t.pid}/stat").read().rsplit(")", 1)[1].split()
env_start, env_end = int(fields[47]), int(fields[48])
seg, va = segment_at(r.body, env_start)
ok(len(seg) > 0, "the minimal dump holds the stack page of the environment block")
is_(seg[env_start - va:env_end - va], b"\0" * (env_end - env_start),
    "…and the block env_start..env_end is zero-filled")
out = subprocess.run(["strings", "-a"], input=r.body, capture_output=True, check=True).stdout
ok(TOKEN.encode() not in out and VALUE.encode() not in out,
   "…and `strings` of it finds neither the name nor the value anywhere (dump_env_scrub.t for more)")
r2 = h.get(f"/env/{t.pid}/dump?dumpType=0")
ok(VALUE.encode() in segment_at(r2.body, env_start)[0], "…while a Location that allows environment dumps it (the check can fail)")
ok(len(r.body) == len(r2.body), "…and the block is zero-filled, not cut: same size")

# ---- HEAD of a dump never touches the target
def switches(pid):
    with open(f"/proc/{pid}/status") as f:
        st = f.read()
    v = [int(x) for x in re.findall(r"(?:non)?voluntary_ctxt_switches:\s+(\d+)", st)]
    tracer = int(re.search(r"TracerPid:\s+(\d+)", st).group(1))
    return sum(v), tracer, re.search(r"State:\s+(\S)", st).group(1)


d = spawn([DUMPT], ready="ready", user=worker_user())
time.sleep(0.2)
before = switches(d.pid)
r = h.request("HEAD", f"/dump/{d.pid}/dump")
is_(r.status, 200, "HEAD of a dump: 200")
is_(r.headers.get("content-type"), "application/octet-stream", "…with the dump's type")
is_(switches(d.pid), before, "…and the target was not woken, stopped or traced")
h.get(f"/dump/{d.pid}/dump")
ok(switches(d.pid)[0] > before[0], "a GET of the dump does wake it (the check can fail)")

# (idle connections: security_worker.t holds real workers' connections idle;
# a test client's is refused at once, as the first case shows)

# ---- a read-only scope that names root lets nothing kill or dump root
if IS_ROOT:
    root_t = spawn([TARGET], ready="ready")
    for m, path, name in (("DELETE", f"/ro/{root_t.pid}", "kill"),
                          ("GET", f"/ro/{root_t.pid}/dump", "dump"),
                          ("GET", f"/ro/{root_t.pid}/environments/all", "environment"),
                          ("GET", f"/ro/{root_t.pid}/stacks", "stacks")):
        r = h.request(m, path)
        is_(r.status, 403, f"read-only DiagProcUsers root: {name} of a root process is 403")
    ok(os.path.exists(f"/proc/{root_t.pid}"), "…and the root process still runs")
    r = h.get(f"/ro/{root_t.pid}")
    is_(r.status, 200, "…while its detail is readable, as configured")
    if r.status != 200:     # what the worker and the helper said, to find out why
        diag(f"detail: {r!r}")
        for line in log().splitlines()[-20:]:
            diag(line[:300])

    # ---- a target that can become root again (saved uid 0) is refused
    import pwd
    uid = pwd.getpwnam(worker_user()).pw_uid
    gid = pwd.getpwnam(worker_user()).pw_gid
    code = (f"import os,sys,time\nos.setgroups([])\nos.setresgid({gid},{gid},{gid})\n"
            f"os.setresuid({uid},{uid},0)\nprint('ready',flush=True)\ntime.sleep(600)\n")
    sv = spawn(["/usr/bin/python3", "-c", code], ready="ready")
    r = h.get(f"/dump/{sv.pid}/dump")
    is_(r.status, 403, "a process with saved uid 0 is not dumped")
    like((r.json() or {}).get("Message"), "saved uid 0", "…the Message names the saved uid")
    r = h.request("DELETE", f"/dump/{sv.pid}")
    is_(r.status, 403, "…nor killed")
    ok(os.path.exists(f"/proc/{sv.pid}"), "…and it still runs")
    dphttpd.kill_quietly(sv)
    dphttpd.kill_quietly(root_t)

    # ---- supplementary groups: a process of dptest2 that also holds group 0,
    # or another user's group, holds privileges a scope of dptest2 lacks
    u2, g3 = pwd.getpwnam("dptest2"), pwd.getpwnam("dptest3").pw_gid

    def with_groups(groups):
        code = (f"import os,time\nos.setgroups({groups!r})\n"
                f"os.setresgid({u2.pw_gid},{u2.pw_gid},{u2.pw_gid})\n"
                f"os.setresuid({u2.pw_uid},{u2.pw_uid},{u2.pw_uid})\n"
                "print('ready',flush=True)\ntime.sleep(600)\n")
        return spawn(["/usr/bin/python3", "-c", code], ready="ready")

    plain = with_groups([u2.pw_gid])
    r = h.get(f"/grp/{plain.pid}/dump?dumpType=0")
    is_(r.status, 200, "a process of dptest2 with its own group only: dumped (the check can fail)")
    for groups, what in (([u2.pw_gid, 0], "group 0"), ([u2.pw_gid, g3], "dptest3's group")):
        p2 = with_groups(groups)
        with open(f"/proc/{p2.pid}/status") as f:
            like(f.read(), rf"\nGroups:.*\b{groups[1]}\b", f"a dptest2 process with supplementary {what}")
        r = h.get(f"/grp/{p2.pid}/dump?dumpType=0")
        is_(r.status, 403, f"…is not dumped through a scope of dptest2 alone")
        like((r.json() or {}).get("Message"), rf"holds group {groups[1]}\b", "…the Message names the group")
        r = h.request("DELETE", f"/grp/{p2.pid}")
        is_(r.status, 403, "…nor killed")
        ok(p2.poll() is None, "…and it still runs")
        if groups[1] == g3:
            r = h.get(f"/grp23/{p2.pid}/dump?dumpType=0")
            is_(r.status, 200, "…while a scope that names dptest3 too (who has that group) dumps it")
        dphttpd.kill_quietly(p2)
    dphttpd.kill_quietly(plain)

# ---- every 4xx is JSON whatever the bytes
def raw(method, target, headers=b""):
    s = socket.create_connection(("127.0.0.1", h.port), timeout=30)
    s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
              + headers + b"\r\n")
    data = recv_all(s)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, head.decode("latin-1"), body


bad = b"%ff%fe"
P = b"/dump"
pid = str(t.pid).encode()
for name, method, target, hdr in (
        ("id", b"GET", P + b"/" + bad, b""),
        ("route", b"GET", P + b"/" + pid + b"/" + bad, b""),
        ("tid", b"GET", P + b"/" + pid + b"/threads/" + bad, b""),
        ("module address", b"GET", P + b"/" + pid + b"/modules/" + bad, b""),
        ("format", b"GET", P + b"/" + pid + b"/dump?format=" + bad, b""),
        ("dumpType", b"GET", P + b"/" + pid + b"/dump?dumpType=" + bad, b""),
        ("sample_ms", b"GET", P + b"/" + pid + b"?sample_ms=" + bad, b""),
        ("allUsers", b"GET", P + b"?allUsers=" + bad, b""),
        ("Origin", b"DELETE", P + b"/" + pid, b"Origin: http://\xff\xfe.example\r\n")):
    lines_before = log().count("\n")
    status, head, body = raw(method, target, hdr)
    ok(400 <= status < 500, f"invalid UTF-8 in {name}: a 4xx ({status})")
    ok("application/json" in head, f"…as JSON")
    try:
        import json
        ok("Message" in json.loads(body.decode("utf-8")), "…a valid JSON Message")
    except Exception as e:
        ok(False, f"…a valid JSON Message ({e})")
ok(os.path.exists(f"/proc/{t.pid}"), "the cross-origin DELETE killed nothing")

lines_before = log().splitlines()
status, head, body = raw(b"GET", P + b"/" + b"a" * 6000)
is_(status, 400, "a 6000-byte segment: our own 400")
ok("application/json" in head, "…as JSON")
status, head, body = raw(b"GET", P + b"/" + pid + b"/" + b"b" * 6000)
is_(status, 404, "a 6000-byte route segment: our own 404")
time.sleep(0.3)
like(h.config(), r"\nLogLevel info\n", "the server logs at LogLevel info")
# (AH10159 is the event MPM's parent about its spare threads, no request's)
is_([l[:300] for l in log().splitlines()[len(lines_before):] if "AH10159" not in l], [],
    "…and the long segments left no error-log line at all, not even core's info-level "
    "AH00030 'Module bug?' (httpd did not walk the filesystem)")

# ---- the audit trail
like(log(), rf"diagproc audit: client 127\.0\.0\.1 user - action dump pid {t.pid} uid \d+ "
     rf"name \"proc_target\" outcome 200", "a dump leaves an audit line: client, user, target, outcome")
like(log(), r"diagproc audit: .* action environment .* outcome 200", "…and so does an environment read")

dphttpd.kill_quietly(t)
dphttpd.kill_quietly(d)
h.stop()
done_testing()
