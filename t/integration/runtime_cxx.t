# C++ as its developers debug it, from a bundle this module makes: a program
# waits with a std::vector<std::string> and a std::string in main's frame;
# the zip (dumpType=0x200: the strings are on the heap), unpacked in one
# place and opened from another, gives libstdc++'s pretty-printers through
# the auto-load script the bundle carries next to libstdc++ in its sysroot
# (the system's auto-load directory is switched off; without the bundle's
# script the same gdb prints the raw structures). And the zip's own links
# (lib -> usr/lib, ...) let a plain `gdb -iex "set sysroot …"` take every
# library from the sysroot before any script has run.
import json
import os
import shutil
import subprocess
import tempfile

from tap import ok, is_, like, diag, done_testing
from dphttpd import Httpd, spawn, worker_user

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "runtimes"))
work = tempfile.mkdtemp(prefix="dp-cxx-")
os.chmod(work, 0o755)
NO_SYSTEM_SCRIPTS = ["-batch", "-nx", "-iex", "set auto-load scripts-directory /nonexistent"]
SHOW = ["-ex", "frame function main", "-ex", "print names", "-ex", "print label"]
PRETTY_NAMES = ('std::vector of length 3, capacity 3 = {"alpha-name-kept-long-for-the-heap", '
                '"beta", "gamma"}')


def run(argv, cwd=None):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


exe = os.path.join(work, "printers")
code, out = run(["g++", "-O0", "-g", os.path.join(FIXTURES, "printers.cc"), "-o", exe])
is_(code, 0, "g++ builds the target")
h = Httpd(locations={"/p": "DiagProcAllow dump fulldump"}).start()
t = spawn([exe], ready="ready", user=worker_user(), cwd=work)

z = os.path.join(work, "cxx.zip")
r = subprocess.run(["curl", "-sS", "-o", z, "-w", "%{http_code}",
                    f"{h.base}/p/{t.pid}/dump?format=zip&dumpType=0x200"],
                   capture_output=True, text=True, timeout=300)
is_(r.stdout, "200", "format=zip&dumpType=0x200")
dest = os.path.join(work, "unpacked")
code, _ = run(["unzip", "-q", z, "-d", dest])
is_(code, 0, "…unzip extracts it")
with open(os.path.join(dest, "manifest.json")) as f:
    m = json.load(f)
cxx = [x for x in m["modules"] if "/libstdc++.so" in x["path"]]
script = cxx[0].get("autoLoadScript") if cxx else None
ok(script and os.path.isfile(os.path.join(dest, script)),
   f"the manifest names libstdc++'s auto-load script, and the bundle has it ({script})")

elsewhere = os.path.join(work, "elsewhere")
os.mkdir(elsewhere)
code, out = run([os.path.join(dest, "open-gdb.sh")] + NO_SYSTEM_SCRIPTS + SHOW, cwd=elsewhere)
ok(PRETTY_NAMES in out, "open-gdb.sh: libstdc++'s printer shows the vector of strings")
ok('= "printers-check-label-on-the-heap"' in out, "…and the string")
if PRETTY_NAMES not in out:
    diag(out[-3000:])

# the control: the same core and sysroot without the bundle's script
sysroot = os.path.join(dest, "sysroot")
bundled_exe = sysroot + exe
code, out = run(["gdb"] + NO_SYSTEM_SCRIPTS + ["-iex", "set auto-load python-scripts off",
                "-iex", f"set sysroot {sysroot}"] + SHOW + [bundled_exe, os.path.join(dest, "core")],
                cwd=elsewhere)
ok("_M_impl" in out and PRETTY_NAMES not in out,
   "without the bundle's script the same gdb prints the raw structures")
like(out, r'_M_p = 0x[0-9a-f]+ "printers-check-label-on-the-heap"', "…the memory is the same")

# a plain gdb, no script of the bundle's run: the zip's links resolve every library
code, out = run(["gdb", "-batch", "-nx", "-iex", f"set sysroot {sysroot}",
                 "-ex", "info sharedlibrary", "-ex", "bt", bundled_exe, os.path.join(dest, "core")],
                cwd=elsewhere)
libs = [line for line in out.splitlines() if line.startswith("0x") and ".so" in line]
ok(libs and all(sysroot in line for line in libs),
   "plain gdb with set sysroot: every shared library comes from the bundle's sysroot")
like(out, r"in hold_values \(", "…and the backtrace names the waiting function")
if not libs or not all(sysroot in line for line in libs):
    diag(out[-3000:])
ok(os.path.islink(os.path.join(sysroot, "lib")), "…through the zip's own lib link")

t.kill()
h.stop()
shutil.rmtree(work, ignore_errors=True)
done_testing()
