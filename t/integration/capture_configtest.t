# Every capture rule that cannot work stops httpd at configtest (apache2 -t)
# with a message naming the directive and the argument; good rules pass.
import os
import subprocess
import tempfile

from tap import ok, done_testing
from dphttpd import Httpd, APACHE, httpd_env

good = ("DiagProcSpool {spool} 2G 500\n"
        "DiagProcCapture stuck  when=request-age>5s  path=/shop/*  do=stacks         limit=3/10m\n"
        "DiagProcCapture errors when=status:500-599>=20/1m           do=stacks\n"
        "DiagProcCapture fat    when=rss>512M/30s                    do=dump:0x2,zip  limit=1/1h\n"
        "DiagProcCapture hot    when=cpu>90%/10s                     do=profile:10s\n"
        "DiagProcCapture warm   when=cpu>50%/10s users=root cooldown=5m\n"
        "DiagProcCapture shop   when=request-age>500ms vhost=*.example.org\n")
BAD = [
    ("DiagProcCapture x when=disk>5", "DiagProcCapture x: unknown trigger 'when=disk>5'"),
    ("DiagProcCapture x when=request-age>5y", "DiagProcCapture x: bad duration in 'when=request-age>5y'"),
    ("DiagProcCapture x when=status:5xx-599>=20/1m", "DiagProcCapture x: bad number in 'when=status:5xx-599>=20/1m'"),
    ("DiagProcCapture x when=status:599-500>=20/1m", "DiagProcCapture x: the status range in 'when=status:599-500>=20/1m'"),
    ("DiagProcCapture x when=status:500-599>=20/2h", "DiagProcCapture x: bad window in 'when=status:500-599>=20/2h'"),
    ("DiagProcCapture x when=rss>lots/30s", "DiagProcCapture x: bad size in 'when=rss>lots/30s'"),
    ("DiagProcCapture x when=rss>512M", "DiagProcCapture x: 'when=rss>512M' needs a duration"),
    ("DiagProcCapture x when=cpu>90/10s", "DiagProcCapture x: bad percentage in 'when=cpu>90/10s'"),
    ("DiagProcCapture x when=request-age>5s path=/shop/[ab", "DiagProcCapture x: bad glob in 'path=/shop/[ab': an unclosed '['"),
    ("DiagProcCapture x when=request-age>5s path=shop/*", "DiagProcCapture x: bad glob in 'path=shop/*'"),
    ("DiagProcCapture x when=request-age>5s vhost=", "DiagProcCapture x: bad glob in 'vhost=': an empty pattern"),
    ("DiagProcCapture x when=request-age>5s do=trace", "DiagProcCapture x: unknown action 'do=trace'"),
    ("DiagProcCapture x when=request-age>5s do=dump:banana", "DiagProcCapture x: bad dump type in 'do=dump:banana'"),
    ("DiagProcCapture x when=request-age>5s do=dump:0x2,tar", "DiagProcCapture x: 'do=dump:0x2,tar'"),
    ("DiagProcCapture x when=cpu>90%/10s do=profile:1h", "DiagProcCapture x: bad duration in 'do=profile:1h'"),
    ("DiagProcCapture x when=request-age>5s limit=3", "DiagProcCapture x: bad number in 'limit=3'"),
    ("DiagProcCapture x when=request-age>5s limit=0/1m", "DiagProcCapture x: bad number in 'limit=0/1m'"),
    ("DiagProcCapture x when=request-age>5s cooldown=soon", "DiagProcCapture x: bad duration in 'cooldown=soon'"),
    ("DiagProcCapture x when=rss>1G/1s users=nosuchuser-dp", "DiagProcCapture x: unknown user 'nosuchuser-dp'"),
    ("DiagProcCapture x when=request-age>5s users=root", "DiagProcCapture x: users= applies to rss and cpu rules only"),
    ("DiagProcCapture x when=status:500-599>=1/1m path=/x", "DiagProcCapture x: path= and vhost= apply to request-age rules only"),
    ("DiagProcCapture x when=request-age>5s colour=red", "DiagProcCapture x: unknown argument 'colour=red'"),
    ("DiagProcCapture x do=stacks", "DiagProcCapture x: needs when="),
    ("DiagProcCapture x/y when=request-age>5s", "DiagProcCapture: the name 'x/y'"),
    ("DiagProcCapture x when=request-age>5s\nDiagProcCapture x when=request-age>9s",
     "DiagProcCapture x: a rule of that name is already defined"),
    ("DiagProcSpool relative/dir 1G 10", "DiagProcSpool: the directory 'relative/dir' must be an absolute path"),
    ("DiagProcSpool /tmp/x 1Q 10", "DiagProcSpool: bad size '1Q'"),
    ("DiagProcSpool /tmp/x 1G many", "DiagProcSpool: bad number of files 'many'"),
    ("DiagProcSpool /etc/passwd/spool 1G 10\nDiagProcCapture x when=request-age>5s",
     "DiagProcSpool /etc/passwd/spool: cannot create it"),
]

tmp = tempfile.mkdtemp(prefix="dpcapt-")
os.chmod(tmp, 0o755)


def configtest(extra):
    h = Httpd(locations={"/p": "DiagProcAllow captures"}, server_conf=extra)
    h.write_config()
    p = subprocess.run([APACHE, "-t", "-f", os.path.join(h.dir, "httpd.conf")], env=httpd_env(),
                       capture_output=True, text=True)
    h.started = False
    return p.returncode, p.stdout + p.stderr


rc, out = configtest(good.format(spool=os.path.join(tmp, "spool")))
ok(rc == 0 and "Syntax OK" in out, "the issue's example rules pass configtest")
if rc:
    print("# " + out.replace("\n", "\n# "))
for conf, msg in BAD:
    rc, out = configtest(conf)
    ok(rc != 0 and msg in out, f"refused at configtest: {msg}")
    if rc == 0 or msg not in out:
        print("# " + out.replace("\n", "\n# "))
done_testing()
