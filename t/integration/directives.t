# Directives httpd reads: those only the main server can honour (the helper
# is one per httpd) are refused inside <VirtualHost> with a message saying
# so; DiagProcMaxDumpSize refuses sizes beyond any file instead of wrapping
# them; a large valid cap really applies; DiagProcProfileLimits takes its
# four keys within their ranges and names any other word.
import os
import subprocess

from tap import ok, is_, like, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, httpd_env, APACHE, BUILD


def configtest(server_conf):
    h = Httpd(server_conf=server_conf, locations={"/p": "DiagProcAllow dump"})
    h.write_config()
    r = subprocess.run([APACHE, "-t", "-f", os.path.join(h.dir, "httpd.conf")],
                       env=httpd_env(), capture_output=True, text=True, timeout=60)
    h.stop()
    return r.returncode, r.stdout + r.stderr


for d in ("DiagProcMaxDumps 3", "DiagProcDumpSnapshot Off", "DiagProcHelperUsers *",
          "DiagProcDumpNice 5", "DiagProcDumpIOPriority idle", "DiagProcProfileLimits sessions=3"):
    rc, out = configtest(f"<VirtualHost 127.0.0.1:1>\n    {d}\n</VirtualHost>")
    name = d.split()[0]
    ok(rc != 0, f"{name} inside <VirtualHost>: httpd refuses the configuration")
    like(out, f"{name} cannot occur within <VirtualHost>", f"…saying {name} cannot be there")
    rc, out = configtest(d)
    is_(rc, 0, f"{name} in the main server is accepted")

for v in ("1", "512K", "4m", "2G", "8388607T", "0"):
    rc, out = configtest(f"DiagProcMaxDumpSize {v}")
    is_(rc, 0, f"DiagProcMaxDumpSize {v} is accepted")
for v, why in (("8388608T", "2^63 bytes"), ("16777216T", "2^64 bytes, which wraps to 0"),
               ("99999999999999999999", "beyond 64 bits"), ("18446744073709551615", "2^64-1"),
               ("9223372036854775808", "2^63")):
    rc, out = configtest(f"DiagProcMaxDumpSize {v}")
    ok(rc != 0, f"DiagProcMaxDumpSize {v} ({why}) is refused")
    like(out, "larger than any file", "…as larger than any file can be")
for v in ("-1", "1X", "K", "1.5G", " 1", "0x10"):
    rc, out = configtest(f"DiagProcMaxDumpSize '{v}'")
    ok(rc != 0, f"DiagProcMaxDumpSize '{v}' is refused")
    like(out, "takes a size in bytes", "…with the usage")

# DiagProcProfileLimits: each key within its range; anything else names the
# directive and the word
for v in ("sessions=1 seconds=1 hz=1 memory=64K", "sessions=64 seconds=3600 hz=1000 memory=1G",
          "memory=65536", "hz=250", "seconds=60 memory=8m"):
    rc, out = configtest(f"DiagProcProfileLimits {v}")
    is_(rc, 0, f"DiagProcProfileLimits {v} is accepted")
for v, why in (("sessions=0", "is out of range"), ("sessions=65", "is out of range"),
               ("seconds=3601", "is out of range"), ("hz=0", "is out of range"), ("hz=1001", "is out of range"),
               ("memory=63K", "is out of range"), ("memory=2G", "is out of range"), ("memory=1T", "is out of range"),
               ("hz=1x", "is out of range"), ("hz=", "is out of range"), ("rate=5", "is not one of"),
               ("sessions", "is not one of"), ("hz=-5", "is out of range")):
    rc, out = configtest(f"DiagProcProfileLimits {v}")
    ok(rc != 0, f"DiagProcProfileLimits {v} is refused")
    like(out, rf"DiagProcProfileLimits: '{v}' {why}", f"…naming the directive and '{v}' ({why})")

# the largest cap applies as a cap, not as a wrapped small number
h = Httpd(server_conf="DiagProcMaxDumpSize 8388607T", locations={"/p": "DiagProcAllow dump"}).start()
t = spawn([os.path.join(BUILD, "targets", "dump_target")], ready="ready", user=worker_user())
r = h.get(f"/p/{t.pid}/dump")
is_(r.status, 200, "a dump under DiagProcMaxDumpSize 8388607T answers 200")
h.stop()
h = Httpd(server_conf="DiagProcMaxDumpSize 4K", locations={"/p": "DiagProcAllow dump"}).start()
r = h.get(f"/p/{t.pid}/dump")
is_(r.status, 409, "…and one under DiagProcMaxDumpSize 4K is 409 (the cap is read)")
dphttpd.kill_quietly(t)
h.stop()
done_testing()
