# `make run`'s httpd (config/run-local.sh), in a directory and on a port of
# its own: it serves the list, and a client that promises a body or a header
# and sends nothing is answered 408 after mod_reqtimeout's 20 s instead of
# holding a worker for the whole Timeout. The two slow clients wait side by
# side, in the root run only (the limits are the config's, the same for both
# users); the ordinary user's run checks that the config starts and serves.
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import http.client

from tap import ok, is_, like, diag, note, done_testing
from dphttpd import ROOT, IS_ROOT, free_port

SCRIPT = os.path.join(ROOT, "config", "run-local.sh")
run_dir = tempfile.mkdtemp(prefix="dprun-")
port = free_port()
env = dict(os.environ, DP_RUN_DIR=run_dir, PORT=str(port))


def script(verb):
    return subprocess.run(["sh", SCRIPT, verb], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def httpd_pid():
    try:
        with open(os.path.join(run_dir, "httpd.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def error_log_tail():
    try:
        with open(os.path.join(run_dir, "error.log"), errors="replace") as f:
            return "".join(f.readlines()[-10:])
    except OSError:
        return ""


def silent_client(request, out, key):
    """Sends the request's start and then nothing; what came back and when."""
    t0 = time.time()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        out[key] = (time.time() - t0, data.split(b"\r\n", 1)[0].decode(errors="replace"))
    except OSError as e:
        out[key] = (time.time() - t0, f"error: {e}")


try:
    p = script("start")
    is_(p.returncode, 0, "run-local.sh start")
    if p.returncode != 0:
        diag(p.stdout + error_log_tail())
    like(p.stdout, rf"http://127\.0\.0\.1:{port}/diagnostics/processes", "it prints the URL")
    conf = open(os.path.join(run_dir, "httpd.conf")).read()
    like(conf, r"(?m)^LoadModule reqtimeout_module ", "mod_reqtimeout is loaded")
    like(conf, r"(?m)^RequestReadTimeout header=20-40,MinRate=500 body=20,MinRate=500$",
         "with httpd's usual limits")
    like(conf, r"(?m)^Timeout 30$", "and a Timeout of 30 s")

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/processes", headers={"Accept": "application/json"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    is_(r.status, 200, "the list answers")
    ok(isinstance(json.loads(body), list) if r.status == 200 else False, "as JSON")

    if IS_ROOT:
        got = {}
        clients = [
            threading.Thread(target=silent_client, args=(
                b"POST /api/processes/1/stop HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n", got, "body")),
            threading.Thread(target=silent_client, args=(
                b"GET /api/processes HTTP/1.1\r\n", got, "header")),
        ]
        for c in clients:
            c.start()
        for c in clients:
            c.join(90)
        for key in ("body", "header"):
            secs, status = got.get(key, (None, "no answer"))
            note(f"silent {key}: {status} after {secs if secs is None else round(secs, 1)} s")
            is_(status, "HTTP/1.1 408 Request Timeout", f"a promised {key} never sent: 408")
            ok(secs is not None and 15 <= secs < 28,
               f"after mod_reqtimeout's 20 s, not the Timeout's 30 ({secs and round(secs, 1)} s)")
finally:
    pid = httpd_pid()
    p = script("stop")
    is_(p.returncode, 0, "run-local.sh stop")
    deadline = time.time() + 20
    while pid and os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.1)
    ok(not pid or not os.path.exists(f"/proc/{pid}"), "its httpd is gone")
    shutil.rmtree(run_dir, ignore_errors=True)

done_testing()
