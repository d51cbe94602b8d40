# A bundle of a live process opens on "another machine": the target's binary
# is deleted after it started, the bundle is unpacked elsewhere and its
# open-gdb.sh / open-lldb.sh, run from a third directory, show the target's
# named frames with every module taken from the bundle's sysroot. A bundle
# cut half-way is rejected. Bundles come from dpzip (the bundle code and the
# zip writer outside httpd); the core comes from gcore.
import json
import os
import shutil
import subprocess
import tempfile
import zipfile

from tap import ok, is_, like, diag, done_testing
from dphttpd import spawn, kill_quietly, BUILD, TOOLS

DPZIP = os.path.join(TOOLS, "dpzip")
TARGET = os.path.join(BUILD, "targets", "zip_target")
tmp = tempfile.mkdtemp(prefix="dp-zipb-")
target = None


def run(argv, cwd=None, timeout=120):
    r = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace")


try:
    # the binary runs from a path that is gone by the time we bundle
    exe_dir = os.path.join(tmp, "gone")
    os.mkdir(exe_dir)
    exe = os.path.join(exe_dir, "zip_target")
    shutil.copy(TARGET, exe)
    target = spawn([exe], ready="ready")
    os.unlink(exe)
    os.rmdir(exe_dir)

    bundle = os.path.join(tmp, "bundle.zip")
    with open(bundle, "wb") as f:
        r = subprocess.run([DPZIP, "--gcore", "--instance", "test-instance", str(target.pid)],
                           stdout=f, stderr=subprocess.PIPE, timeout=120)
    is_(r.returncode, 0, "dpzip wrote a bundle")
    if r.returncode:
        diag(r.stderr.decode(errors="replace"))

    code, out = run(["unzip", "-t", bundle])
    is_(code, 0, "unzip -t accepts the bundle")
    with zipfile.ZipFile(bundle) as z:
        is_(z.testzip(), None, "zipfile testzip accepts the bundle")
        names = z.namelist()
        is_(names[0], "core", "the core comes first")
        sys_exe = "sysroot" + exe
        ok(sys_exe in names, "the deleted executable is in the sysroot")
        ok(any("/libc.so" in n for n in names), "libc is in the sysroot")
        ok(any("ld-linux" in n for n in names), "the dynamic linker is in the sysroot")
        with open(TARGET, "rb") as f:
            ok(z.read(sys_exe) == f.read(), "the executable's bytes are the ones that ran")
        for s in ("open-gdb.sh", "open-lldb.sh"):
            is_(z.getinfo(s).external_attr >> 16 & 0o777, 0o755, f"{s} is executable")
        m = json.loads(z.read("manifest.json"))
        is_(m["pid"], target.pid, "manifest: pid")
        is_(m["instanceName"], "test-instance", "manifest: instance name")
        is_(m["dumpType"], 0, "manifest: dumpType")
        like(m["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", "manifest: UTC time")
        is_(m["executable"], exe, "manifest: executable path")
        ok(m["executableDeleted"], "manifest: executable flagged deleted")
        mods = {x["path"]: x for x in m["modules"]}
        ok(mods.get(exe, {}).get("deleted"), "manifest: deleted module flagged")
        ok(mods.get(exe, {}).get("buildId"), "manifest: build id of the executable")
        ok(any(line.endswith(exe + " (deleted)") for line in m["maps"]), "manifest: maps lines")
        ok(all(x["source"] for x in m["modules"]), "manifest: every module was readable")

    # unpack in one place, run the scripts from another
    unpacked = os.path.join(tmp, "elsewhere", "unpacked")
    os.makedirs(unpacked)
    code, out = run(["unzip", "-q", bundle, "-d", unpacked])
    is_(code, 0, "unzip extracts the bundle")
    cwd = os.path.join(tmp, "elsewhere")

    code, out = run([os.path.join(unpacked, "open-gdb.sh"), "-batch",
                     "-ex", "info sharedlibrary", "-ex", "thread apply all bt"], cwd=cwd)
    is_(code, 0, "open-gdb.sh ran gdb")
    like(out, r"in zt_worker_wait \(\)", "gdb: worker thread frame named")
    like(out, r"in zt_main_wait \(", "gdb: main thread frame named")
    like(out, r"in main \(", "gdb: main named")
    libs = [line for line in out.splitlines() if line.startswith("0x") and ".so" in line]
    ok(libs and all(unpacked in line for line in libs),
       "gdb: every shared library comes from the bundle's sysroot")
    if not libs or not all(unpacked in line for line in libs):
        diag(out)

    code, out = run([os.path.join(unpacked, "open-lldb.sh"), "-b",
                     "-o", "image list", "-o", "thread backtrace all"], cwd=cwd)
    like(out, r"zip_target`zt_worker_wait", "lldb: worker thread frame named")
    like(out, r"zip_target`zt_main_wait", "lldb: main thread frame named")
    imgs = [line for line in out.splitlines() if line.startswith("[") and ".so" in line
            and "vdso" not in line]
    ok(imgs and all(unpacked in line for line in imgs),
       "lldb: every shared library comes from the bundle's sysroot")
    if not imgs or not all(unpacked in line for line in imgs):
        diag(out)

    # a bundle whose stream is cut after 200 kB has no directory
    cut = os.path.join(tmp, "cut.zip")
    with open(cut, "wb") as f:
        r = subprocess.run([DPZIP, "--fail-after", "200000", str(target.pid)],
                           stdout=f, stderr=subprocess.PIPE, timeout=120)
    is_(r.returncode, 1, "cut bundle: dpzip reports failure")
    code, out = run(["unzip", "-t", cut])
    ok(code != 0, "cut bundle: unzip -t rejects it")
    try:
        zipfile.ZipFile(cut)
        ok(False, "cut bundle: zipfile rejects it")
    except zipfile.BadZipFile:
        ok(True, "cut bundle: zipfile rejects it")

    # a process that is not running is a 404-style failure, not a bundle
    dead = subprocess.Popen(["true"])
    dead.wait()
    r = subprocess.run([DPZIP, str(dead.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    is_(r.returncode, 1, "gone process: dpzip fails")
    like(r.stderr.decode(), r"not running|[Nn]o process", "gone process: says so")
finally:
    if target:
        kill_quietly(target)
    shutil.rmtree(tmp, ignore_errors=True)

done_testing()
