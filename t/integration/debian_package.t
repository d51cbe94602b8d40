# The Debian package: `make deb` builds libapache2-mod-diagproc with
# debhelper and dh_apache2; as root it is installed on the system's apache2
# with `apt-get install ./…deb`, enabled with `a2enmod diagproc` and
# `apache2ctl graceful` (the system httpd is started for the test when it was
# not running, and stopped again), serves the list read-only on localhost,
# and `apt-get purge` leaves /etc/apache2 and /var/lib/apache2 exactly as
# they were. As an ordinary user the package is built and its contents and
# maintainer scripts are checked; installing it needs root.
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok, is_, like, diag, note, done_testing  # noqa: E402
from dphttpd import ROOT, IS_ROOT  # noqa: E402

PKG = "libapache2-mod-diagproc"
SO = "/usr/lib/apache2/modules/mod_diagproc.so"
ETC = "/etc/apache2"
STATE = "/var/lib/apache2"
PIDFILE = "/var/run/apache2/apache2.pid"
LOCATION = "/diagnostics/processes"


def run(argv, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, **kw)
    if p.returncode != 0:
        diag(f"{' '.join(argv)} -> {p.returncode}\n{p.stdout[-3000:]}")
    return p


def tree(top):
    """Every entry under top: kind, mode, owner, and content or link."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if os.path.islink(p):
                what = "-> " + os.readlink(p)
            elif os.path.isdir(p):
                what = "dir"
            else:
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, top)] = (what, st.st_mode, st.st_uid, st.st_gid)
    return out


def dpkg_status():
    p = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p.stdout.strip() if p.returncode == 0 else "not known"


def not_installed(status):
    """Unknown to dpkg, or known without files or conffiles (un/pn)."""
    return status == "not known" or status[:2] in ("un", "pn")


def system_httpd_pid():
    try:
        with open(PIDFILE) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def system_port():
    port = 80
    with open(os.path.join(ETC, "ports.conf")) as f:
        m = re.search(r"^\s*Listen\s+(?:[\d.]+:)?(\d+)\s*$", f.read(), re.M)
        if m:
            port = int(m.group(1))
    return port


def get(port, path, method="GET", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def wait_for(cond, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def serves(port, want):
    """After a graceful restart old children may still answer for a moment."""
    def check():
        try:
            return get(port, LOCATION, headers={"Accept": "application/json"})[0] == want
        except OSError:
            return False
    return wait_for(check)


# --- build (both modes) ---
out = tempfile.mkdtemp(prefix="dpdeb-")
os.chmod(out, 0o755)             # apt reads local .debs as its own user
t0 = time.time()
p = run(["make", "--no-print-directory", "-C", ROOT, "deb", f"DEB_DIR={out}"])
note(f"make deb: {time.time() - t0:.1f} s")
debs = [f for f in os.listdir(out) if re.match(rf"{PKG}_[^_]+_\w+\.deb$", f)]
is_(p.returncode, 0, "make deb builds")
is_(len(debs), 1, f"one {PKG} package")
deb = os.path.join(out, debs[0]) if debs else None

if deb:
    files = run(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/lib/apache2/modules/mod_diagproc.so",
                 "./etc/apache2/mods-available/diagproc.load",
                 "./etc/apache2/mods-available/diagproc.conf"):
        like(files, rf"\s{re.escape(path)}\n", f"package holds {path}")
    like(files, r"\s\./usr/share/doc/libapache2-mod-diagproc/examples/fleet-front\.conf\n",
         "the fleet front's config is shipped as an example")
    ok("mods-enabled" not in files, "package enables nothing by itself")
    info = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    like(info, r"apache2-api-\d+", "depends on the httpd module API (dh_apache2)")
    like(info, r"libjansson4", "depends on jansson (shlibs)")
    ctl = tempfile.mkdtemp(prefix="dpctl-")
    run(["dpkg-deb", "-e", deb, ctl])
    ok(not os.path.exists(os.path.join(ctl, "postinst"))
       or "enmod" not in open(os.path.join(ctl, "postinst")).read(),
       "postinst does not enable the module (the administrator does)")
    with open(os.path.join(ctl, "prerm")) as f:
        like(f.read(), r"apache2_invoke dismod", "prerm disables the module")
    with open(os.path.join(ctl, "postrm")) as f:
        like(f.read(), r"purge[\s\S]*apache2_invoke dismod", "postrm disables it on purge")
    with open(os.path.join(ctl, "conffiles")) as f:
        like(f.read(), r"/etc/apache2/mods-available/diagproc.conf", "the conf is a conffile")
    shutil.rmtree(ctl)

    # dpkg-buildflags' hardening reaches every compile and link of the module,
    # and warnings do not fail the package's build (no plain -Werror)
    with open(os.path.join(out, "dpkg-buildpackage.log"), errors="replace") as f:
        blog = f.read()
    compiles = [ln for ln in blog.splitlines()
                if re.match(r"^\S*(cc|gcc)(-\d+)? .* -c \S+\.c -o build/\S+\.o$", ln)]
    links = [ln for ln in blog.splitlines()
             if re.match(r"^\S*(cc|gcc)(-\d+)? -shared .* -o build/mod_diagproc\.so ", ln)]
    ok(len(compiles) > 10 and len(links) == 1,
       f"the build log shows the compiles ({len(compiles)}) and the module's link ({len(links)})")
    bf_env = dict(os.environ, DEB_BUILD_MAINT_OPTIONS="hardening=+all")
    want = {}
    for var in ("CFLAGS", "CPPFLAGS", "LDFLAGS"):
        got = subprocess.run(["dpkg-buildflags", "--get", var], env=bf_env,
                             stdout=subprocess.PIPE, text=True).stdout.split()
        # the path map names the build directory, which differs
        want[var] = [w for w in got if not w.startswith("-ffile-prefix-map=")]
    for var, lines in (("CFLAGS", compiles), ("CPPFLAGS", compiles), ("LDFLAGS", links)):
        missing = sorted({w for ln in lines for w in want[var] if w not in ln.split()})
        is_(missing, [], f"dpkg-buildflags' {var} ({' '.join(want[var])}) on each of them")
    like(" ".join(want["LDFLAGS"]), r"-Wl,-z,now", "hardening=+all asks for bindnow")
    werror = [ln for ln in compiles + links if "-Werror" in ln.split()]
    is_(werror, [], "no -Werror in the package's build")
    so = os.path.join(out, "x")
    run(["dpkg-deb", "-x", deb, so])
    so = os.path.join(so, SO.lstrip("/"))
    dyn = run(["readelf", "-dW", so]).stdout
    like(dyn, r"\(FLAGS\)\s+BIND_NOW", "the module is linked with -z now")
    like(run(["readelf", "-lW", so]).stdout, r"GNU_RELRO", "and with relro")
    syms = run(["readelf", "--dyn-syms", "-W", so]).stdout
    like(syms, r"__stack_chk_fail", "stack protector in the module")
    like(syms, r"__(?!stack_)\w+_chk\b", "fortified calls in the module")
    shutil.rmtree(os.path.join(out, "x"))

if not IS_ROOT or not deb:
    if not IS_ROOT:
        note("installing on the system httpd needs root: done in the root run")
    shutil.rmtree(out, ignore_errors=True)
    done_testing()

# --- install on the system httpd (root) ---
# One run at a time on this machine: the lock is on /etc/apache2 itself, so
# nothing is left behind.
lock = os.open(ETC, os.O_RDONLY)
fcntl.flock(lock, fcntl.LOCK_EX)

ok(not_installed(dpkg_status()), f"{PKG} is not installed before the test "
   f"({dpkg_status()})")
etc_before, state_before = tree(ETC), tree(STATE)
was_running = system_httpd_pid() is not None
note(f"system httpd {'running' if was_running else 'not running'} before the test")
port = system_port()
apt = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120"]
env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
started = False
try:
    p = run(apt + ["install", deb], env=env)
    is_(p.returncode, 0, f"apt-get install {os.path.basename(deb)}")
    like(dpkg_status(), r"^ii", "installed")
    ok(os.path.isfile(SO), "module installed in the httpd module directory")
    ok(not os.path.lexists(os.path.join(ETC, "mods-enabled", "diagproc.load")),
       "not enabled by the installation")

    is_(run(["a2enmod", "diagproc"]).returncode, 0, "a2enmod diagproc")
    ok(os.path.islink(os.path.join(ETC, "mods-enabled", "diagproc.load")) and
       os.path.islink(os.path.join(ETC, "mods-enabled", "diagproc.conf")),
       "a2enmod links diagproc.load and diagproc.conf")
    is_(run(["apache2ctl", "configtest"]).returncode, 0, "apache2ctl configtest")
    if was_running:
        is_(run(["apache2ctl", "graceful"]).returncode, 0, "apache2ctl graceful")
    else:
        started = True
        is_(run(["apache2ctl", "start"]).returncode, 0, "apache2ctl start (not running before)")
    ok(wait_for(lambda: listening(port)), f"system httpd listens on port {port}")
    ok(serves(port, 200), "the list answers on localhost")

    st, hdr, body = get(port, LOCATION, headers={"Accept": "application/json"})
    is_(st, 200, f"GET {LOCATION}")
    like(hdr.get("content-type", ""), r"^application/json", "JSON")
    lst = json.loads(body) if st == 200 else []
    ok(isinstance(lst, list) and len(lst) > 0, f"a process list ({len(lst)} entries)")
    names = {e.get("name") for e in lst}
    ok("apache2" in names, "the system httpd's own workers are listed")
    is_({e.get("user_name") for e in lst}, {"www-data"},
        "only the workers' user's processes (the package's default scope)")
    host = socket.gethostname()
    ok(all(e.get("machineName") == host for e in lst), f"machineName is the host name ({host})")
    href = lst[0]["href"] if lst else ""
    like(href, rf"^http://127\.0\.0\.1(:{port})?{LOCATION}/\d+$", "hrefs point at this server")
    worker = next((e for e in lst if e.get("name") == "apache2"), None)
    if worker:
        st, _, body = get(port, f"{LOCATION}/{worker['id']}",
                          headers={"Accept": "application/json"})
        is_(st, 200, "process detail answers")
        # read-only: every action is refused, nothing is touched
        for method, path in (("DELETE", f"/{worker['id']}"),
                             ("POST", f"/{worker['id']}/stop"),
                             ("GET", f"/{worker['id']}/dump"),
                             ("GET", f"/{worker['id']}/stacks"),
                             ("GET", f"/{worker['id']}/environments/all")):
            st, _, body = get(port, LOCATION + path, method=method,
                              headers={"Accept": "application/json"})
            is_(st, 403, f"{method} {path.split('/', 2)[-1] or path} refused (read-only)")
        ok(os.path.exists(f"/proc/{worker['id']}"), "the worker is still alive")
finally:
    p = run(apt + ["purge", PKG], env=env)
    is_(p.returncode, 0, f"apt-get purge {PKG}")
    if was_running:
        is_(run(["apache2ctl", "graceful"]).returncode, 0, "apache2ctl graceful after purge")
        ok(serves(port, 404), "the endpoint is gone after purge + graceful")
    elif started or system_httpd_pid():
        pid = system_httpd_pid()
        run(["apache2ctl", "stop"])
        ok(wait_for(lambda: pid is None or not os.path.exists(f"/proc/{pid}")),
           "system httpd stopped again, as it was before the test")
    ok(not_installed(dpkg_status()), f"purged: dpkg keeps nothing of it ({dpkg_status()})")
    ok(not os.path.exists(SO), "module file removed")
    etc_after, state_after = tree(ETC), tree(STATE)
    changed = sorted(k for k in set(etc_before) | set(etc_after)
                     if etc_before.get(k) != etc_after.get(k))
    is_(changed, [], "/etc/apache2 exactly as before")
    # a2enmod/a2dismod keep the administrator's choices in directories they
    # create on first use; purge empties ours, the test removes what its own
    # a2enmod created
    made = sorted(k for k in set(state_after) - set(state_before)
                  if state_after[k][0] == "dir" and not os.listdir(os.path.join(STATE, k)))
    for k in made:
        os.rmdir(os.path.join(STATE, k))
    if made:
        note(f"removed the empty bookkeeping directories a2enmod created: {made}")
    state_after = tree(STATE)
    ok(not any("diagproc" in k for k in state_after), "no a2enmod state of diagproc left")
    changed = sorted(k for k in set(state_before) | set(state_after)
                     if state_before.get(k) != state_after.get(k))
    is_(changed, [], "/var/lib/apache2 (a2enmod's state) exactly as before")
    is_(system_httpd_pid() is not None, was_running, "system httpd running state restored")
    shutil.rmtree(out, ignore_errors=True)
    os.close(lock)

done_testing()
