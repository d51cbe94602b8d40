# Run by t/platform/matrix.sh as root inside a Debian release (a copy of the
# tree at /src): builds the module with that release's compiler and apxs,
# starts that release's apache2 on free ports (event + php-fpm over
# mod_proxy_fcgi, prefork + mod_php, mod_wsgi), asks the stacks of PHP
# (cli, php-fpm child, mod_php worker) and Python (cli, mod_wsgi worker)
# targets, opens minimal bundles of the PHP and Python cli targets with the
# bundle's php-bt and dp-py-bt in that release's gdb, and builds, installs,
# enables and purges the .deb. Written for the oldest python3 of the matrix
# (3.9). Prints one line per check:
#   RESULT <check> <ok|fail|native|skip> <detail>
#   VERSION <what> <version>
# and exits 0 (the matrix reads the lines; a failed check is a result).
# DP_NOT_RUN="CHECK..." (jhsdb, deb): left out, each a `skip` result.
import glob
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import zipfile

SRC = "/src"
LANG = os.path.join(SRC, "t", "fixtures", "lang")
MODDIR = "/usr/lib/apache2/modules"
WWW = pwd.getpwnam("www-data")
RUN = tempfile.mkdtemp(prefix="dpmatrix-")
os.chmod(RUN, 0o755)
STARTED = []


def result(check, status, detail=""):
    print("RESULT %s %s %s" % (check, status, " ".join(str(detail).split())[:300]), flush=True)


def version(what, value):
    print("VERSION %s %s" % (what, " ".join(str(value).split())), flush=True)


def sh(cmd, timeout=600, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True,
                          timeout=timeout, **kw)


def first_line(cmd):
    try:
        p = sh(cmd, timeout=60)
        return ((p.stdout or p.stderr).strip().splitlines() or ["?"])[0]
    except (OSError, subprocess.SubprocessError):
        return "?"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_www():
    os.setgid(WWW.pw_gid)
    os.setgroups([])
    os.setuid(WWW.pw_uid)


def spawn(argv, ready=None, user=True):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, preexec_fn=as_www if user else None,
                         start_new_session=True)
    STARTED.append(p)
    if ready:
        deadline = time.time() + 30
        while time.time() < deadline:
            line = p.stdout.readline().decode(errors="replace")
            if not line or ready in line:
                break
    return p


def stop_all():
    for p in reversed(STARTED):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.SubprocessError:
            pass


def get(port, path, timeout=60):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return 0, str(e).encode()


def in_background(port, path):
    threading.Thread(target=get, args=(port, path, 120), daemon=True).start()


class Apache:
    def __init__(self, name, mpm, conf):
        self.dir = os.path.join(RUN, name)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        with open(os.path.join(self.dir, "httpd.conf"), "w") as f:
            f.write("""ServerRoot %(d)s
ServerName 127.0.0.1
Listen 127.0.0.1:%(port)d
PidFile %(d)s/httpd.pid
DefaultRuntimeDir %(d)s
ErrorLog %(d)s/error.log
User www-data
Group www-data
LoadModule mpm_%(mpm)s_module %(m)s/mod_mpm_%(mpm)s.so
LoadModule authz_core_module %(m)s/mod_authz_core.so
LoadModule authz_host_module %(m)s/mod_authz_host.so
LoadModule diagproc_module %(src)s/build/mod_diagproc.so
StartServers 1
ServerLimit 2
MaxRequestWorkers %(max)d
DocumentRoot %(doc)s
<Directory %(doc)s>
    Require all granted
</Directory>
<Location /p>
    SetHandler diagproc
    DiagProcAllow stacks dump
    Require ip 127.0.0.0/8
</Location>
%(conf)s
""" % dict(d=self.dir, port=self.port, mpm=mpm, m=MODDIR, src=SRC, conf=conf, doc=DOC,
           max=5 if mpm == "prefork" else 25))
        self.proc = subprocess.Popen(["/usr/sbin/apache2", "-f", os.path.join(self.dir, "httpd.conf"),
                                      "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"),
                                     start_new_session=True)
        STARTED.append(self.proc)
        for _ in range(100):
            if get(self.port, "/p/")[0] or self.proc.poll() is not None:
                break
            time.sleep(0.1)

    def error(self):
        out = ""
        for f in ("stderr.log", "error.log"):
            try:
                out += open(os.path.join(self.dir, f)).read()[-400:]
            except OSError:
                pass
        return out

    def children(self):
        return children_of(self.proc.pid)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (OSError, subprocess.SubprocessError):
            pass


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return sorted(out)


def stacks(h, pid):
    code, body = get(h.port, "/p/%d/stacks" % pid)
    try:
        return json.loads(body) if code == 200 else {}
    except ValueError:
        return {}


def frames_of(d):
    """[(class, function, basename, line)] per thread with language frames"""
    return [[(f.get("class"), f.get("function"), os.path.basename(f.get("file") or ""),
              f.get("line")) for f in t.get("languageFrames") or []]
            for t in d.get("threads", []) if t.get("languageFrames")]


def same_name(got, want):
    """(class, function) pairs alike; CPython before 3.11 keeps no qualified
    name in its code objects, so `Worker.wait_for_lock` shows there as
    `wait_for_lock`"""
    return got == want or (got[0] == want[0] and "." in (want[1] or "")
                           and got[1] == want[1].rsplit(".", 1)[1])


def find_frames(h, pids, want, tries=60):
    """the first pid (and its answer) one of whose threads starts with `want`
    (a list of (class, function) pairs) after any internal frames"""
    last = {}
    for _ in range(tries):
        for pid in pids() if callable(pids) else pids:
            d = stacks(h, pid)
            last = d or last
            for fr in frames_of(d):
                named = [(c, f) for c, f, _, _ in fr if f not in ("sleep",)]
                if len(named) >= len(want) and all(same_name(n, w) for n, w in zip(named, want)):
                    return pid, d, fr
        time.sleep(0.25)
    return None, last, []


def lang_result(check, h, pids, want, lang):
    """the pid whose stacks have `want`, or None"""
    pid, d, fr = find_frames(h, pids, want)
    rt = d.get("runtime") or {}
    if pid:
        top = next(f for f in fr if same_name((f[0], f[1]), want[0]))
        result(check, "ok", "%s %s: %s%s at %s:%s" % (rt.get("name"), rt.get("version"),
               (top[0] + "::") if top[0] and lang == "php" else (top[0] + ".") if top[0] else "",
               top[1], top[2], top[3]))
    elif rt and not rt.get("supported"):
        result(check, "native", "%s %s: %s" % (rt.get("name"), rt.get("version"),
                                               rt.get("unsupported")))
    else:
        result(check, "fail", "no language frames: %s" % json.dumps(d)[:200])
    return pid


DOC = os.path.join(RUN, "doc")


def php_bin():
    return (sorted(glob.glob("/usr/bin/php[0-9]*.[0-9]*")) or ["/usr/bin/php"])[-1]


def php_minor():
    m = re.search(r"php(\d+\.\d+)$", php_bin())
    return m.group(1) if m else "?"


def check_versions():
    version("debian", open("/etc/debian_version").read().strip())
    version("apache2", first_line("/usr/sbin/apache2 -v").split("/")[-1])
    version("php", first_line([php_bin(), "-r", "echo PHP_VERSION;"]))
    version("python", first_line("python3 -V").split()[-1])
    version("java", first_line("java -version 2>&1"))
    version("gdb", first_line("gdb --version"))
    version("gcc", first_line("gcc -dumpfullversion"))
    # the suites apt takes packages from (a main-suite-only system: just one)
    suites = []
    for f in ["/etc/apt/sources.list"] + glob.glob("/etc/apt/sources.list.d/*.list"):
        try:
            for line in open(f):
                w = line.split()
                if len(w) >= 3 and w[0] == "deb":
                    suites.append(w[2])
        except OSError:
            pass
    version("apt-suites", " ".join(suites) or "?")
    # what apt offers for the release's PHP (a main suite alone: its first
    # version) and what is installed
    version("php-package", "php%s %s, php%s-cli %s" % (
        php_minor(), first_line("apt-cache policy php%s | grep Candidate" % php_minor()).lower(),
        php_minor(), first_line("dpkg-query -W -f '${Version}' php%s-cli" % php_minor())))


def check_build():
    t0 = time.time()
    p = sh("cd %s && make module" % SRC, timeout=1200)
    if p.returncode:
        err = [x for x in (p.stdout + p.stderr).splitlines()
               if re.search(r"error:|Error [0-9]|undefined reference", x)][:3]
        result("build", "fail", "make module: %s" % " | ".join(err))
        return False
    result("build", "ok", "make module (-Werror) with gcc %s in %d s"
           % (first_line("gcc -dumpfullversion"), time.time() - t0))
    return True


def check_php_cli(h):
    p = spawn([php_bin(), os.path.join(LANG, "stuck.php")], ready="ready")
    lang_result("php-cli", h, [p.pid], [("Lock", "wait_for_lock"), (None, "handle")], "php")
    return p


def gdb_frames(text):
    """{tid: [(class, function, file, line)]} from the output of php-bt or
    dp-py-bt (helper/gdb/diagproc-lang.py), as t/integration/dump_lang.t
    reads it"""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^Thread LWP (\d+):$", line)
        if m:
            cur = out.setdefault(int(m.group(1)), [])
            continue
        m = re.match(r"^#\d+\s+(?:(\S+)::)?(\S+) at (.*):(\d+|\?)$", line)
        if m and cur is not None:
            cur.append((m.group(1), m.group(2), None if m.group(3) == "??" else m.group(3),
                        None if m.group(4) == "?" else int(m.group(4))))
    return {t: f for t, f in out.items() if f}


def bundle_bt(h, pid, cmd):
    """a minimal bundle (dumpType 0 zip) of pid, unzipped and opened with its
    open-gdb.sh running its gdb command `cmd`: (error or None, gdb's output)"""
    code, body = get(h.port, "/p/%d/dump?dumpType=0&format=zip" % pid, timeout=120)
    if code != 200:
        return "dump answered %d" % code, ""
    d = tempfile.mkdtemp(prefix="dpzip-", dir=RUN)
    zipfile.ZipFile(io.BytesIO(body)).extractall(d)
    os.chmod(os.path.join(d, "open-gdb.sh"), 0o755)
    out = sh([os.path.join(d, "open-gdb.sh"), "-batch", "-ex", cmd], timeout=180, cwd=RUN)
    shutil.rmtree(d, ignore_errors=True)
    return None, out.stdout + out.stderr


def check_php_dump(h, target):
    """a minimal bundle of the cli target, opened with the bundle's php-bt"""
    err, out = bundle_bt(h, target.pid, "php-bt")
    if err:
        result("php-bundle", "fail", err)
        return
    got = re.findall(r"^#\d+\s+(\S+) at (\S+)$", out, re.M)
    if any(f == "Lock::wait_for_lock" for f, _ in got):
        result("php-bundle", "ok", "gdb php-bt: " + ", ".join(f for f, _ in got))
    else:
        result("php-bundle", "fail", out[-250:])


def check_py_dump(h, pid):
    """a minimal bundle of the Python cli target, opened with the bundle's
    dp-py-bt: the frames of each thread (qualified name, file, line) are those
    the /stacks answer gives"""
    if not pid:
        result("python-bundle", "fail", "no Python cli target with language frames")
        return
    err, out = bundle_bt(h, pid, "dp-py-bt")
    if err:
        result("python-bundle", "fail", err)
        return
    live = {t.get("id"): [(f.get("class"), f.get("function"), f.get("file"), f.get("line"))
                          for f in t["languageFrames"]]
            for t in stacks(h, pid).get("threads", []) if t.get("languageFrames")}
    got = gdb_frames(out)
    stuck = [f for fr in got.values() for f in fr if f[1].endswith("wait_for_lock")]
    if got and got == live and stuck:
        result("python-bundle", "ok", "gdb dp-py-bt: %d threads as /stacks, %s" % (
            len(got), "; ".join(", ".join("%s at %s:%s" % (f[1], os.path.basename(f[2] or "??"),
                                                         f[3]) for f in fr)
                                for _, fr in sorted(got.items()))))
    else:
        result("python-bundle", "fail", "dp-py-bt %s / stacks %s: %s" % (
            sorted(got.items()), sorted(live.items()), out[-150:]))


def check_php_fpm():
    fpm = (glob.glob("/usr/sbin/php-fpm*") or [None])[0]
    if not fpm:
        result("php-fpm", "fail", "no php-fpm binary")
        return
    sock = os.path.join(RUN, "www.sock")
    conf = os.path.join(RUN, "php-fpm.conf")
    with open(conf, "w") as f:
        f.write("[global]\npid = %s/fpm.pid\nerror_log = %s/fpm.log\ndaemonize = no\n"
                "[www]\nuser = www-data\ngroup = www-data\nlisten = %s\n"
                "listen.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\n"
                "pm = static\npm.max_children = 2\n" % (RUN, RUN, sock))
    master = spawn([fpm, "--nodaemonize", "--fpm-config", conf], user=False)
    for _ in range(100):
        if os.path.exists(sock) and len(children_of(master.pid)) == 2:
            break
        time.sleep(0.1)
    h = Apache("event-fpm", "event",
               "LoadModule proxy_module %s/mod_proxy.so\n"
               "LoadModule proxy_fcgi_module %s/mod_proxy_fcgi.so\n"
               "<FilesMatch \\.php$>\n    SetHandler \"proxy:unix:%s|fcgi://localhost\"\n"
               "</FilesMatch>\n" % (MODDIR, MODDIR, sock))
    in_background(h.port, "/fpm_page.php")
    pid = lang_result("php-fpm", h, children_of(master.pid),
                      [("Checkout", "charge"), (None, "handle_order")], "php")
    if pid:
        code, body = get(h.port, "/p/%d" % pid)
        d = json.loads(body) if code == 200 else {}
        pool = (d.get("php_fpm_role"), d.get("php_fpm_pool"))
        result("php-fpm-pool", "ok" if pool == ("worker", "www") else "fail",
               "detail: php_fpm_role %s, php_fpm_pool %s" % pool)
    h.stop()


def check_mod_php():
    so = (glob.glob(MODDIR + "/libphp*.so") or [None])[0]
    if not so:
        result("mod_php", "fail", "no libphp*.so")
        return
    name = "php7_module" if "libphp7" in so else "php_module"
    h = Apache("prefork-php", "prefork", "LoadModule %s %s\n<FilesMatch \\.php$>\n"
               "    SetHandler application/x-httpd-php\n</FilesMatch>\n" % (name, so))
    in_background(h.port, "/page.php")
    lang_result("mod_php", h, h.children, [("Report", "build"), (None, "render_page")], "php")
    h.stop()


def check_python(h):
    p = spawn(["python3", os.path.join(LANG, "stuck.py")], ready="ready")
    pid = lang_result("python-cli", h, [p.pid],
                      [(None, "Worker.wait_for_lock"), (None, "outer_call")], "py")
    try:
        check_py_dump(h, pid)
    except Exception as e:     # the wsgi check still runs
        result("python-bundle", "fail", "%s: %s" % (type(e).__name__, e))
    h2 = Apache("event-wsgi", "event", "LoadModule wsgi_module %s/mod_wsgi.so\n"
                "WSGIScriptAlias /app %s/app.wsgi\n" % (MODDIR, DOC))
    in_background(h2.port, "/app")
    lang_result("mod_wsgi", h2, h2.children, [(None, "Report.build"), (None, "render_page")], "py")
    h2.stop()


def check_jhsdb():
    """jhsdb jstack on a dumpType 0 core of a JVM lists its threads by name"""
    java = os.path.realpath(shutil.which("java") or "java")
    work = os.path.join(RUN, "java")
    os.makedirs(work)
    os.chmod(work, 0o755)
    shutil.copy(os.path.join(SRC, "t", "fixtures", "runtimes", "Sleepers.java"), work)
    if sh(["javac", "-d", work, os.path.join(work, "Sleepers.java")], timeout=300).returncode:
        result("jhsdb", "fail", "javac failed")
        return
    p = spawn([java, "-Xmx64m", "-Xss512k", "-XX:-UsePerfData", "-XX:+UseSerialGC", "-cp", work,
               "Sleepers"], ready="ready")
    h = Apache("event-java", "event", "")
    code, body = get(h.port, "/p/%d/dump?dumpType=0" % p.pid, timeout=300)
    h.stop()
    if code != 200:
        result("jhsdb", "fail", "dump answered %d" % code)
        return
    core = os.path.join(work, "core")
    with open(core, "wb") as f:
        f.write(body)
    out = sh(["jhsdb", "jstack", "--exe", java, "--core", core], timeout=300)
    names = set(re.findall(r'^"([^"]+)" #\d+', out.stdout, re.M))
    want = {"main", "sleeper-one", "lock-holder"}
    jdk = first_line("java -version 2>&1")
    if want <= names:
        result("jhsdb", "ok", "%s: jhsdb jstack lists %d threads of a dumpType 0 core (%d KiB)"
               % (jdk, len(names), len(body) // 1024))
    else:
        err = re.findall(r"\w+Exception[^\n]*", out.stdout + out.stderr)
        result("jhsdb", "fail", "%s: threads %s; %s" % (jdk, sorted(names), err[:1]))


def check_deb():
    t0 = time.time()
    p = sh("cd %s && make deb" % SRC, timeout=1200)
    # the package alone (not its -dbgsym, which would depend on it at purge)
    debs = glob.glob(os.path.join(SRC, "build", "deb", "libapache2-mod-diagproc_*.deb"))
    if p.returncode or not debs:
        result("deb", "fail", "make deb: %s" % (p.stdout + p.stderr)[-200:])
        return
    steps = [("dpkg -i", "dpkg -i %s" % " ".join(debs)),
             ("a2enmod", "a2enmod diagproc && test -e /etc/apache2/mods-enabled/diagproc.load"),
             ("apache2ctl -t", "apache2ctl -t"),
             ("purge", "dpkg --purge libapache2-mod-diagproc && "
                       "test ! -e /etc/apache2/mods-enabled/diagproc.load && "
                       "test ! -e /etc/apache2/mods-available/diagproc.load")]
    for name, cmd in steps:
        q = sh(cmd, timeout=300)
        if q.returncode:
            result("deb", "fail", "%s: %s" % (name, (q.stdout + q.stderr)[-200:]))
            return
    result("deb", "ok", "built, installed, enabled (a2enmod, apache2ctl -t) and purged in %d s"
           % (time.time() - t0))


def main():
    os.makedirs(DOC)
    for f in ("page.php", "fpm_page.php", "app.wsgi"):
        shutil.copy(os.path.join(LANG, f), DOC)
    os.chmod(DOC, 0o755)
    check_versions()
    if not check_build():
        return
    h = Apache("event", "event", "")
    if not get(h.port, "/p/")[0]:
        result("httpd", "fail", h.error())
        return
    result("httpd", "ok", "apache2 serves the module (event)")
    checks = [
        ("php-cli", lambda: check_php_dump(h, check_php_cli(h))),
        ("php-fpm", check_php_fpm),
        ("mod_php", check_mod_php),
        ("python", lambda: check_python(h)),
        ("jhsdb", check_jhsdb),
        ("deb", check_deb),
    ]
    not_run = os.environ.get("DP_NOT_RUN", "").split()
    for name, fn in checks:
        if name in not_run:
            result(name, "skip", "not run: the host's own (Debian 12) check, "
                                 "this release's system is made without what it needs")
            continue
        try:
            fn()
        except Exception as e:     # one failed check must not hide the others
            result(name, "fail", "%s: %s" % (type(e).__name__, e))
    h.stop()


try:
    main()
finally:
    stop_all()
    shutil.rmtree(RUN, ignore_errors=True)
