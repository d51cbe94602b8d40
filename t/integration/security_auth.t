# SECURITY.md's AuthType Basic example, as written there: 401 without or
# with wrong credentials (nothing killed), 204 with the right ones, and the
# audit line names the authenticated user.
import base64
import os
import subprocess
import time

from tap import ok, is_, like, done_testing
from dphttpd import Httpd, spawn, worker_user, BUILD

TARGET = os.path.join(BUILD, "targets", "proc_target")
h = Httpd(modules=("auth_basic", "authn_core", "authn_file", "authz_user"), locations={})
pw = os.path.join(h.dir, "diagproc.htpasswd")
subprocess.run(["htpasswd", "-c", "-B", "-b", pw, "alice", "s3cret"], check=True,
               capture_output=True)
os.chmod(pw, 0o644)
h.locations = {}
h.server_conf = f"""<Location /diagnostics/processes>
    SetHandler diagproc
    DiagProcAllow dump kill
    AuthType Basic
    AuthName "diagnostics"
    AuthBasicProvider file
    AuthUserFile {pw}
    Require valid-user
</Location>
"""
h.expect_log("AH01617")     # the wrong password below
h.start()
P = "/diagnostics/processes"
t = spawn([TARGET], ready="ready", user=worker_user())


def auth(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


is_(h.request("DELETE", f"{P}/{t.pid}").status, 401, "no credentials: 401")
is_(h.request("DELETE", f"{P}/{t.pid}", headers=auth("alice", "wrong")).status, 401,
    "wrong password: 401")
ok(os.path.exists(f"/proc/{t.pid}"), "…and nothing was killed")
is_(h.get(P, headers=auth("alice", "s3cret")).status, 200, "the right credentials: the list")
is_(h.request("DELETE", f"{P}/{t.pid}", headers=auth("alice", "s3cret")).status, 204,
    "…and the kill")
deadline = time.time() + 5
while time.time() < deadline and t.poll() is None:
    time.sleep(0.05)
ok(t.poll() is not None, "the target is gone")
with open(os.path.join(h.dir, "error.log"), errors="replace") as f:
    log = f.read()
like(log, rf"diagproc audit: client 127\.0\.0\.1 user alice action kill pid {t.pid} .* outcome 204",
     "the audit line names the authenticated user, the target and the outcome")
h.stop()
done_testing()
