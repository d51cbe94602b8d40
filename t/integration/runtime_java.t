# A JVM as its developers debug it: a Java program with threads asleep in
# named methods (one holding a lock) is dumped through httpd, once per memory
# class of the dumpType table (the four that add little in one core); jhsdb
# jstack attaches to every core and lists the Java threads by name (libjvm's
# data and the thread list are in every core of a JVM), with their frames
# from 0x201 and in the raw full core (its reader accepts read-only library
# segments only whole, as their first page, or absent: every core obeys);
# gdb, lldb and eu-stack still open them. Minimal cores of a G1 JVM and of
# one without the archive and compressed references list the threads too.
# Then open-jhsdb.sh, run from another directory, reads the bundle with the
# JVM's libraries and class-data archive taken from the bundle's sysroot, and
# the minimal bundle lists the threads.
import json
import os
import re
import shutil
import subprocess
import tempfile

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, spawn, worker_user, kill_quietly
from elfcore import layout_problems

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "runtimes"))
JAVA = os.path.realpath(shutil.which("java"))
work = tempfile.mkdtemp(prefix="dp-java-")
os.chmod(work, 0o755)
METHODS = ["Sleepers.innerWait()", "Sleepers.outerWait()", "Sleepers.holdLock()"]


def curl(url, out):
    return subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", url],
                          capture_output=True, text=True, timeout=300).stdout


def run(argv, cwd=None, env=None):
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def thread_of(out, name):
    """jstack's block for the thread called name."""
    m = re.search(rf'^"{re.escape(name)}".*?(?=^"|\Z)', out, re.M | re.S)
    return m.group(0) if m else ""


def check_jstack(out, what):
    one, holder = thread_of(out, "sleeper-one"), thread_of(out, "lock-holder")
    ok(re.search(r"Sleepers\.innerWait\(\) @bci=\d+, line=7", one)
       and "Sleepers.outerWait()" in one,
       f"{what}: sleeper-one is in innerWait (line 7) called from outerWait")
    ok("Sleepers.holdLock()" in holder, f"{what}: lock-holder is in holdLock")
    if not (one and holder):
        diag(out[-3000:])


shutil.copy(os.path.join(FIXTURES, "Sleepers.java"), work)
code, out = run(["javac", "-d", work, os.path.join(work, "Sleepers.java")])
is_(code, 0, "javac builds the target")
h = Httpd(locations={"/p": "DiagProcAllow dump fulldump"}).start()
t = spawn([JAVA, "-Xmx64m", "-Xss512k", "-XX:-UsePerfData", "-XX:+UseSerialGC",
           "-cp", work, "Sleepers"], ready="ready", user=worker_user(), cwd=work)


def names_in(out):
    """The thread names jstack lists."""
    return set(re.findall(r'^"([^"]+)" #\d+', out, re.M))


# Each memory class of the dumpType table (README). jhsdb needs libjvm's data
# and the thread list (added to every dumpType for a JVM); frames need the
# JVM's anonymous memory and the class-data archive (0x201, 0x2).
WANT = {"main", "sleeper-one", "lock-holder", "Reference Handler", "Finalizer"}
sizes = {}
# (0x12140: the other classes, 0x40 | 0x100 | 0x2000 | 0x10000, in one core
# to keep the run short)
for dt in ("0", "0x1", "0x200", "0x12140", "0x201", "0x2"):
    core = os.path.join(work, f"java-{dt}.core")
    is_(curl(f"{h.base}/p/{t.pid}/dump?dumpType={dt}", core), "200", f"dumpType={dt}")
    sizes[dt] = os.path.getsize(core)
    is_(layout_problems(core), [], "…read-only file mappings whole, first page or absent")
    code, out = run(["jhsdb", "jstack", "--exe", JAVA, "--core", core])
    ok(code == 0 and WANT <= names_in(out),
       f"…jhsdb jstack attaches and lists the Java threads by name ({sorted(names_in(out))})")
    if not WANT <= names_in(out):
        diag(out[-2000:])
    if dt in ("0x201", "0x2"):      # 0x2: the raw full core, as a developer on the server reads it
        check_jstack(out, f"dumpType={dt}")
    # the native debuggers still open it: both sleeping threads are in JVM_Sleep
    # (gdb and lldb, the slower two, on the minimal, the combined and the full core)
    for tool, argv in (("gdb", ["gdb", "-batch", "-nx", "-ex", "thread apply all bt", JAVA, core]),
                       ("lldb", ["lldb", "-b", "-o", "thread backtrace all", "-c", core, JAVA]),
                       ("eu-stack", ["eu-stack", f"--core={core}", "-e", JAVA])):
        if tool != "eu-stack" and dt not in ("0", "0x12140", "0x2"):
            continue
        _, bt = run(argv)
        is_(bt.count("JVM_Sleep"), 2, f"…{tool} shows both sleeping threads in JVM_Sleep")
    os.unlink(core)
diag("core sizes (KiB): " + ", ".join(f"{k}: {v >> 10}" for k, v in sizes.items()))
ok(sizes["0"] < 12 << 20 and sizes["0"] < sizes["0x201"] // 2,
   f"the minimal core stays small ({sizes['0'] >> 10} KiB, 0x201: {sizes['0x201'] >> 10} KiB)")

# minimal cores of JVMs laid out otherwise: the default collector (G1, whose
# heap maps the archive's interned strings from classes.jsa), and one without
# the archive and without compressed references
for what, flags in (("G1", []),
                    ("no archive, no compressed oops or class pointers",
                     ["-Xshare:off", "-XX:-UseCompressedOops", "-XX:-UseCompressedClassPointers"])):
    other = spawn([JAVA, "-Xmx64m", "-Xss512k", "-XX:-UsePerfData"] + flags + ["-cp", work, "Sleepers"],
                  ready="ready", user=worker_user(), cwd=work)
    core = os.path.join(work, "other.core")
    is_(curl(f"{h.base}/p/{other.pid}/dump?dumpType=0", core), "200", f"{what}: dumpType=0")
    code, out = run(["jhsdb", "jstack", "--exe", JAVA, "--core", core])
    ok(code == 0 and WANT <= names_in(out),
       f"{what}: …jhsdb jstack lists the Java threads by name ({sorted(names_in(out))})")
    kill_quietly(other)
    os.unlink(core)

# the bundle, unpacked in one place and read from another
z = os.path.join(work, "java.zip")
is_(curl(f"{h.base}/p/{t.pid}/dump?format=zip&dumpType=2", z), "200", "format=zip&dumpType=2")
dest = os.path.join(work, "unpacked")
code, _ = run(["unzip", "-q", z, "-d", dest])
is_(code, 0, "…unzip extracts it")
os.unlink(z)
with open(os.path.join(dest, "manifest.json")) as f:
    m = json.load(f)
jvm = [x for x in m.get("runtimes", []) if x["name"].startswith("Java")]
release = open(os.path.join(os.path.dirname(os.path.dirname(JAVA)), "release")).read()
want = re.search(r'JAVA_VERSION="([^"]+)"', release).group(1)
ok(jvm and jvm[0]["version"] == want, f"the manifest names the JVM and its version ({jvm})")
ok(jvm and jvm[0]["install"] == [f"openjdk-{want.split('.')[0]}-jdk-headless"],
   "…and the package that brings jhsdb")
mods = {x["path"]: x for x in m["modules"]}
jsa = [p for p in mods if p.endswith("/lib/server/classes.jsa")]
ok(jsa and mods[jsa[0]]["bundlePath"] and os.path.isfile(os.path.join(dest, "sysroot" + jsa[0])),
   "classes.jsa (mapped, not ELF) is in the sysroot")
big = [x for x in m["modules"] if x["path"].endswith("/lib/modules")]
like(big[0].get("skipped") if big else "", r"larger than the 64 MiB",
     "…lib/modules (larger than the cap) is listed as skipped, with why")
ok(os.path.islink(os.path.join(dest, "sysroot", "lib64")), "sysroot/lib64 is a link from the zip")

elsewhere = os.path.join(work, "elsewhere")
os.mkdir(elsewhere)
env = dict(os.environ, LIBSAPROC_DEBUG="1")
code, out = run([os.path.join(dest, "open-jhsdb.sh")], cwd=elsewhere, env=env)
is_(code, 0, "open-jhsdb.sh from another directory")
check_jstack(out, "bundle")
ok(re.search(r"path \S*/unpacked/sysroot/\S*/libjvm\.so substituted", out),
   "…with libjvm.so taken from the bundle's sysroot")
code, out = run([os.path.join(dest, "open-jhsdb.sh"), "jstack", "--locks"], cwd=elsewhere)
ok(code == 0 and re.search(r"Locked ownable synchronizers|- locked <0x[0-9a-f]+> \(a java\.lang\.Object\)", out),
   "open-jhsdb.sh passes a jhsdb command and its options on (jstack --locks)")
# no script of the bundle's run: plain jhsdb with SA_ALTROOT at the unpacked
# sysroot (the zip's own lib and lib64 links make the JVM's paths resolve)
sysroot = os.path.join(dest, "sysroot")
code, out = run(["jhsdb", "jstack", "--exe", sysroot + JAVA, "--core", os.path.join(dest, "core")],
                cwd=elsewhere, env=dict(os.environ, SA_ALTROOT=sysroot, LIBSAPROC_DEBUG="1"))
is_(code, 0, "plain jhsdb with SA_ALTROOT at the unpacked sysroot")
check_jstack(out, "plain jhsdb")
ok(re.search(rf"path {re.escape(sysroot)}\S*/libjvm\.so substituted", out),
   "…with libjvm.so taken from the sysroot")

# the minimal bundle (DiagProcAllow dump alone suffices): the threads by name
z = os.path.join(work, "min.zip")
is_(curl(f"{h.base}/p/{t.pid}/dump?format=zip&dumpType=0", z), "200", "format=zip&dumpType=0")
small = os.path.join(work, "min")
code, _ = run(["unzip", "-q", z, "-d", small])
code, out = run([os.path.join(small, "open-jhsdb.sh")], cwd=elsewhere)
ok(code == 0 and WANT <= names_in(out),
   f"open-jhsdb.sh on the minimal bundle lists the Java threads by name ({sorted(names_in(out))})")
h.stop()
shutil.rmtree(work, ignore_errors=True)
done_testing()
