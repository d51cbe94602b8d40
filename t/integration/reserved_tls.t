# TLS (mod_ssl) and HTTP/2 (mod_http2) on the reserved listener, under each
# MPM (prefork without HTTP/2: mod_http2 does not run on it). A <VirtualHost>
# for a reserved address carries SSLEngine on: the list and a full dump with
# curl --cacert; with SSLVerifyClient require, a client without a
# certificate is refused and one with it served; keep-alive over TLS; h2
# (ALPN) and h2c (prior knowledge) get the list and a dump; and TLS clients
# that hold half a head, or half a ClientHello, do not keep a TLS client out.
import os
import re
import socket
import ssl
import subprocess
import tempfile
import time

from tap import ok, is_, diag, done_testing
from dphttpd import Httpd, free_port, spawn, worker_user, BUILD
from procstate import settle
from reserved import make_pki

TARGET = os.path.join(BUILD, "targets", "dump_target")
work = tempfile.TemporaryDirectory(prefix="dp-tls-")
os.chmod(work.name, 0o755)
pki = make_pki(work.name)
CA = ["--cacert", pki["ca.crt"]]
CERT = ["--cert", pki["client.crt"], "--key", pki["client.key"]]
target = spawn([TARGET], ready="ready", user=worker_user())


def curl(url, *extra, out=os.devnull):
    """(exit code, HTTP status, HTTP version, connections made, Content-Length, bytes)."""
    hdr = os.path.join(work.name, "headers")
    r = subprocess.run(["curl", "-sS", "--max-time", "60", "-o", out, "-D", hdr, "-w",
                        "%{http_code} %{http_version} %{num_connects} %{size_download}\\n",
                        *extra, url], capture_output=True, text=True, timeout=120)
    lines = r.stdout.split()
    length = None
    if os.path.exists(hdr):
        m = re.findall(r"(?im)^content-length: (\d+)", open(hdr).read())
        length = int(m[-1]) if m else None
        os.unlink(hdr)
    code = lambda i: lines[i] if len(lines) > i else None  # noqa: E731
    return (r.returncode, code(0), code(1), int(code(2) or 0), length,
            int(lines[-1]) if lines else 0)


def vhost(port, extra=""):
    return f"""<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1
    SSLEngine on
    SSLCertificateFile {pki['server.crt']}
    SSLCertificateKeyFile {pki['server.key']}
    SSLCACertificateFile {pki['ca.crt']}
    {extra}
</VirtualHost>
"""


for mpm in ("event", "worker", "prefork"):
    h2 = mpm != "prefork"
    tport, mport, cport = free_port(), free_port(), free_port()
    h = Httpd(mpm=mpm, locations={"/p": "DiagProcAllow dump fulldump"},
              modules=("socache_shmcb", "ssl") + (("http2",) if h2 else ()))
    h.server_conf = f"""DiagProcListen 127.0.0.1:{tport}
DiagProcListen 127.0.0.1:{mport}
DiagProcListen 127.0.0.1:{cport}
SSLSessionCache shmcb:{h.dir}/ssl_scache(512000)
{vhost(tport, "Protocols h2 http/1.1" if h2 else "")}
{vhost(mport, "SSLVerifyClient require")}
<VirtualHost 127.0.0.1:{cport}>
    {"Protocols h2c http/1.1" if h2 else ""}
    {"H2Upgrade off" if h2 else ""}
</VirtualHost>
"""
    # Debian 12's mod_ssl says, at every start, that it was built against a
    # newer OpenSSL than the one installed: a fact of the machine's packages
    h.expect_log("AH01882")
    h.start()
    ok(settle(lambda: len(h.reserved()) == 1, 10), f"{mpm}: one reserved process")
    tls = f"https://127.0.0.1:{tport}"

    rc, st, ver, _, _, _ = curl(f"{tls}/p", *CA, "--http1.1")
    is_((rc, st, ver), (0, "200", "1.1"), f"{mpm}: the list over TLS (curl --cacert)")
    rc, st, _, _, _, _ = curl(f"{tls}/p", "--http1.1")
    ok(rc != 0 and st == "000", f"{mpm}: …which is TLS indeed: without the CA curl refuses it ({rc})")
    core = os.path.join(work.name, "core")
    rc, st, _, _, length, n = curl(f"{tls}/p/{target.pid}/dump?dumpType=2", *CA, "--http1.1", out=core)
    ok(st == "200" and length and n == length and open(core, "rb").read(4) == b"\x7fELF",
       f"{mpm}: a full dump over TLS, to its end ({n} of {length} bytes)")
    rc, st, _, conns, _, _ = curl(f"{tls}/p/0", *CA, "--http1.1", "-o", os.devnull, f"{tls}/p")
    ok(rc == 0 and conns == 1, f"{mpm}: two requests on one kept-alive TLS connection ({conns})")
    rc, st, _, _, _, _ = curl(f"http://127.0.0.1:{tport}/p")
    is_(st, "400", f"{mpm}: plain HTTP to the TLS listener: mod_ssl's 400")

    mtls = f"https://127.0.0.1:{mport}/p"
    rc, st, _, _, _, _ = curl(mtls, *CA, "--http1.1")
    ok(rc != 0 and st == "000", f"{mpm}: SSLVerifyClient require: refused without a client certificate ({rc})")
    rc, st, _, _, _, _ = curl(mtls, *CA, *CERT, "--http1.1")
    is_((rc, st), (0, "200"), f"{mpm}: …served with one")

    if h2:
        rc, st, ver, _, _, _ = curl(f"{tls}/p", *CA, "--http2")
        is_((rc, st, ver), (0, "200", "2"), f"{mpm}: HTTP/2 over TLS (ALPN): the list")
        rc, st, ver, _, length, n = curl(f"{tls}/p/{target.pid}/dump?dumpType=2", *CA, "--http2",
                                         out=core)
        ok(st == "200" and ver == "2" and n == length,
           f"{mpm}: …and a full dump to its end ({n} of {length} bytes)")
        rc, st, ver, _, _, _ = curl(f"http://127.0.0.1:{cport}/p", "--http2-prior-knowledge")
        is_((rc, st, ver), (0, "200", "2"), f"{mpm}: h2c with prior knowledge: the list")
        rc, st, ver, _, _, _ = curl(f"http://127.0.0.1:{cport}/p", "--http2")
        is_((rc, st, ver), (0, "200", "1.1"), f"{mpm}: an Upgrade to h2c is answered in HTTP/1.1")

    # TLS clients that hold the way half-open: a handshake done and half a
    # head, from 3 addresses, 4 each; and half a ClientHello, 12 more
    ctx = ssl.create_default_context(cafile=pki["ca.crt"])
    held = []
    for i in range(12):
        s = socket.socket()
        s.bind((f"127.0.2.{i % 3 + 1}", 0))
        s.connect(("127.0.0.1", tport))
        t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        t.sendall(b"GET /p HTTP/1.1\r\nHo")
        held.append(t)
        s = socket.socket()
        s.bind((f"127.0.3.{i % 3 + 1}", 0))
        s.connect(("127.0.0.1", tport))
        s.sendall(b"\x16\x03\x01\x02\x00\x01")
        held.append(s)
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        rc, st, _, _, _, _ = curl(f"{tls}/p", *CA, "--http1.1")
        times.append((st, time.monotonic() - t0))
    ok(all(st == "200" and dt < 1.0 for st, dt in times),
       f"{mpm}: 24 TLS clients holding half a head or half a ClientHello: a TLS list within 1 s "
       f"({', '.join(f'{dt * 1000:.0f} ms' for _, dt in times)})")
    for s in held:
        s.close()

    logs = h.logs()
    if not ok("exit signal" not in logs and "long lost child" not in logs,
              f"{mpm}: nothing crashed, nothing unreaped"):
        diag(logs)
    h.stop()
done_testing()
