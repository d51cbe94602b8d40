# Raw dumps, compressed for the client whose Accept-Encoding asks for it:
# zstd (preferred) or gzip as the content's coding, chunked, with the
# core's size in a header and Vary: Accept-Encoding; curl --compressed and the zstd / gzip tools give
# back the very bytes of the raw core of the same target at rest (threads
# waiting, no rseq, after a first dump), which gdb opens; q-values,
# identity and * are honoured; a client without Accept-Encoding gets the
# raw core with its Content-Length as before; a stream cut half-way (the
# dumping process killed) is seen as cut by curl and by zstd -t / gzip -t;
# mod_deflate on the member and on a fleet front (config/fleet-front.conf)
# leaves the coded body as it is.
import os
import signal
import subprocess
import tempfile
import time

from tap import ok, is_, like, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, ROOT
from procstate import running, settle

TARGET = os.path.join(BUILD, "targets", "dump_target")
FUNCS = ["alpha_leaf", "beta_mid", "gamma_top", "main_leaf"]
P = "/diagnostics/processes"
work = tempfile.TemporaryDirectory(prefix="dp-coded-")
# the member: mod_deflate on every answer of its Location, which must leave
# a coded dump alone (and must not compress a raw one a second time)
h = Httpd(modules=("deflate",), locations={
    P: "DiagProcAllow dump fulldump\nSetOutputFilter DEFLATE"})
h.expect_log("DP00001")     # the truncated streams this test makes on purpose
h.start()
front = Httpd(addr="127.0.0.1", locations={}, modules=("proxy", "proxy_http", "headers", "deflate"),
              server_conf=f"""Define DIAGPROC_WEB1 http://{h.hostport}
Define DIAGPROC_WEB2 http://{h.hostport}
Include {ROOT}/config/fleet-front.conf
<Location /diagnostics/instances>
    SetOutputFilter DEFLATE
</Location>
""")
# both members of the front's sample configuration are this one httpd: mod_proxy
# shares their worker and says it ignores the second one's timeout
front.expect_log("AH01145", "AH01146")
front.start()
# a waiting target whose memory stays as it is between dumps: glibc's rseq
# area holds the CPU each thread last ran on, so it is left unregistered
t = spawn([TARGET, "--random", "24"], ready="ready", user=worker_user(),
          env=dict(os.environ, GLIBC_TUNABLES="glibc.pthread.rseq=0"))
URL = f"{h.base}{P}/{t.pid}/dump?dumpType=2"


def curl(url, name, *extra):
    """(curl's exit, http code, headers as a lower-cased dict, body path)"""
    out, hdr = os.path.join(work.name, name), os.path.join(work.name, name + ".hdr")
    r = subprocess.run(["curl", "-sS", "-o", out, "-D", hdr, "-w", "%{http_code}", *extra, url],
                       capture_output=True, text=True, timeout=300)
    heads = {}
    if os.path.exists(hdr):
        for line in open(hdr, errors="replace").read().splitlines():
            k, _, v = line.partition(":")
            if v:
                heads[k.strip().lower()] = v.strip()
    return r.returncode, r.stdout, heads, out


def same(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def tool(*argv, stdin, stdout=os.devnull):
    with open(stdin, "rb") as i, open(stdout, "wb") as o:
        return subprocess.run(list(argv), stdin=i, stdout=o, stderr=subprocess.PIPE).returncode


def gdb_bt(core):
    return subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", TARGET, core],
                          capture_output=True, text=True, timeout=120).stdout


curl(URL, "warm")       # the first dump leaves the target one page larger (its stack)
rc, code, hd, raw = curl(URL, "raw")
is_((rc, code), (0, "200"), "no Accept-Encoding: 200")
ok("content-encoding" not in hd, "…no Content-Encoding")
is_(hd.get("content-length"), str(os.path.getsize(raw)), "…the raw core with its Content-Length, as before")
is_(hd.get("x-diagproc-core-size"), str(os.path.getsize(raw)), "…and X-Diagproc-Core-Size")
like(hd.get("vary", ""), r"(?i)accept-encoding", "…and Vary: Accept-Encoding")
ok(os.path.getsize(raw) > 24 << 20, f"the core holds the random MiBs ({os.path.getsize(raw) >> 20} MiB)")
rc, code, hd, again = curl(URL, "again")
ok(same(raw, again), "the target is at rest: a second raw dump has the same bytes")

# ---- zstd, gzip, curl --compressed
rc, code, hd, z = curl(URL, "z", "-H", "Accept-Encoding: zstd")
is_((rc, code, hd.get("content-encoding")), (0, "200", "zstd"), "Accept-Encoding: zstd → Content-Encoding: zstd")
ok("content-length" not in hd and hd.get("transfer-encoding", "").lower() == "chunked",
   "…chunked, no Content-Length")
is_(hd.get("x-uncompressed-length"), str(os.path.getsize(raw)), "…X-Uncompressed-Length is the core's size")
is_(hd.get("x-diagproc-core-size"), str(os.path.getsize(raw)), "…so is X-Diagproc-Core-Size")
like(hd.get("vary", ""), r"(?i)accept-encoding", "…Vary: Accept-Encoding")
is_(hd.get("content-type"), "application/octet-stream", "…the type is the core's")
is_(tool("zstd", "-t", "-q", stdin=z), 0, "zstd -t: a whole zstd stream")
is_(tool("zstd", "-dc", stdin=z, stdout=z + ".core"), 0, "zstd -d decodes it")
ok(same(z + ".core", raw), "…to the raw core's bytes")
ok(os.path.getsize(z) < os.path.getsize(raw) * 0.8,
   f"…in fewer bytes ({os.path.getsize(z) >> 20} of {os.path.getsize(raw) >> 20} MiB)")
ok(os.path.getsize(z) > 24 << 20, "…the random MiBs passed through as they are")
bt = gdb_bt(z + ".core")
is_([f for f in FUNCS if f not in bt], [], "gdb: the decoded core's backtraces have the target's functions")

rc, code, hd, g = curl(URL, "g", "-H", "Accept-Encoding: gzip")
is_((rc, code, hd.get("content-encoding")), (0, "200", "gzip"), "Accept-Encoding: gzip → gzip")
ok("content-length" not in hd, "…no Content-Length")
is_(tool("gzip", "-t", stdin=g), 0, "gzip -t: a whole gzip stream")
is_(tool("gzip", "-dc", stdin=g, stdout=g + ".core"), 0, "gzip -d decodes it")
ok(same(g + ".core", raw), "…to the raw core's bytes (decoded once: mod_deflate left it alone)")

rc, code, hd, c = curl(URL, "c", "--compressed")
is_((rc, code, hd.get("content-encoding")), (0, "200", "zstd"), "curl --compressed: zstd")
ok(same(c, raw), "…and curl's decoding gives the raw core's bytes")

# ---- the choice
for field, want in (("gzip;q=1, zstd;q=0.5", "gzip"), ("gzip, zstd", "zstd"), ("*", "zstd"),
                    ("x-gzip", "gzip"), ("identity", None), ("zstd;q=0", None),
                    ("br, deflate", None), ("identity;q=0, gzip;q=0.1", "gzip"), ("", None)):
    rc, code, hd, out = curl(URL, "q", "-H", f"Accept-Encoding: {field}")
    is_((code, hd.get("content-encoding")), ("200", want), f"Accept-Encoding: {field!r} → {want or 'identity'}")
    if want is None:
        ok(same(out, raw) and hd.get("content-length") == str(os.path.getsize(raw)),
           "…the raw core, with Content-Length")
r = h.request("HEAD", f"{P}/{t.pid}/dump?dumpType=2", headers={"Accept-Encoding": "gzip"})
is_((r.status, r.headers.get("content-encoding"), r.body), (200, "gzip", b""),
    "HEAD answers with the coding it would use, no body")
rc, code, hd, zp = curl(f"{h.base}{P}/{t.pid}/dump?format=zip", "zip", "-H", "Accept-Encoding: zstd")
is_((code, hd.get("content-type"), hd.get("content-encoding")), ("200", "application/zip", None),
    "a zip bundle has no Content-Encoding (it is deflated inside)")

# ---- through a fleet front with mod_deflate
via = f"{front.base}/diagnostics/instances/web1/processes/{t.pid}/dump?dumpType=2"
for field, want in (("zstd", "zstd"), ("gzip", "gzip")):
    rc, code, hd, f = curl(via, "front-" + want, "-H", f"Accept-Encoding: {field}")
    is_((code, hd.get("content-encoding")), ("200", want), f"through the front: {want} arrives as it left")
    dec = ["zstd", "-dc"] if want == "zstd" else ["gzip", "-dc"]
    is_(tool(*dec, stdin=f, stdout=f + ".core"), 0, "…decoded once")
    ok(same(f + ".core", raw), "…to the raw core's bytes")
rc, code, hd, f = curl(via, "front-raw")
ok(code == "200" and "content-encoding" not in hd and same(f, raw),
   "through the front without Accept-Encoding: the raw core")


# ---- a stream cut half-way
def cut_dump(name, *extra):
    """A slow client; 1.5 s in, the dumping process is killed."""
    out = os.path.join(work.name, name)
    p = subprocess.Popen(["curl", "-sS", "--limit-rate", "2M", "-o", out, *extra, URL],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    got = os.path.getsize(out) if os.path.exists(out) else 0
    for d in h.dumpers():
        os.kill(d, signal.SIGKILL)
    return p.wait(timeout=120), got, out


for field, test in (("zstd", ["zstd", "-t", "-q"]), ("gzip", ["gzip", "-t"])):
    rc, got, out = cut_dump("cut-" + field, "-H", f"Accept-Encoding: {field}")
    ok(got > 0, f"{field}, cut: bytes had arrived before the cut ({got})")
    ok(rc != 0, f"…curl sees the truncation (exit {rc})")
    ok(tool(*test, stdin=out) != 0, f"…and {test[0]} -t finds the stream incomplete")
    ok(settle(lambda: running(t.pid)), "…the target runs")
rc, got, out = cut_dump("cut-compressed", "--compressed")
ok(rc != 0, f"curl --compressed, cut: curl sees the truncation (exit {rc})")

dphttpd.kill_quietly(t)
done_testing()
