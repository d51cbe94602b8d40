# The API's module list of a process and its bundle's manifest describe the
# same files: for a target whose library was replaced on disk after it was
# loaded (as a package upgrade does: a new file renamed over the old one), both
# name the same paths, and where they give a build id it is the mapped file's,
# never the replacement's.
import io
import json
import os
import subprocess
import tempfile
import zipfile

from tap import ok, is_, done_testing
import dphttpd
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT


def build_id(path):
    """The GNU build id of an ELF file, as readelf prints it."""
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    return None


work = tempfile.mkdtemp(prefix="dp-agree-")
os.chmod(work, 0o755)
lib = os.path.join(work, "libagree.so")
versions = {}
for v in ("1", "2"):
    src = os.path.join(work, f"agree{v}.c")
    with open(src, "w") as f:
        f.write("#include <unistd.h>\n"
                f"int agree_version = {v};\n"
                "__attribute__((noinline)) void lib_wait(void) { for (;;) pause(); }\n")
    out = os.path.join(work, f"libagree{v}.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-g", "-O1", "-Wl,--build-id", "-o", out, src], check=True)
    os.chmod(out, 0o755)
    versions[v] = (out, build_id(out))
ok(versions["1"][1] and versions["1"][1] != versions["2"][1], "the two versions have different build ids")

subprocess.run(["cp", versions["1"][0], lib], check=True)
h = Httpd(locations={"/p": "DiagProcAllow dump"}).start()
t = spawn([os.path.join(BUILD, "targets", "zip_target"), "--lib", lib], ready="ready", user=worker_user())
# the upgrade: the new version renamed over the loaded one
tmp = lib + ".new"
subprocess.run(["cp", versions["2"][0], tmp], check=True)
os.rename(tmp, lib)

try:
    r = h.get(f"/p/{t.pid}/modules")
    is_(r.status, 200, "module list answers")
    api = {}
    for m in r.json() or []:
        d = h.get(m["href"].split(h.hostport, 1)[-1]).json() or {}
        api[d.get("file_path")] = d
    ok(lib in api, "the API lists the replaced library")
    ok(api.get(lib, {}).get("deleted"), "…as deleted")

    z = h.get(f"/p/{t.pid}/dump?format=zip", timeout=120)
    is_(z.status, 200, "the bundle answers")
    man = json.loads(zipfile.ZipFile(io.BytesIO(z.body)).read("manifest.json"))
    bundle = {m["path"]: m for m in man["modules"] if m["path"].startswith("/")}

    is_(sorted(api), sorted(bundle), "the API and the manifest name the same module paths")
    differ = {p: (api[p].get("build_id"), bundle[p].get("buildId"))
              for p in api if p in bundle and api[p].get("build_id") != bundle[p].get("buildId")}
    is_(differ, {}, "…and give each the same build id")
    got = api.get(lib, {}).get("build_id")
    ok(got != versions["2"][1], "the replaced library's build id is never the replacement's")
    if IS_ROOT:
        # the helper reads what is mapped through /proc/PID/map_files
        is_(got, versions["1"][1], "…it is the mapped file's, read through the helper")
        is_(bundle.get(lib, {}).get("buildId"), versions["1"][1], "…in the manifest too")
    else:
        # an ordinary user's helper has no CAP_CHECKPOINT_RESTORE: the mapped
        # file cannot be opened, so neither side claims a build id for it
        is_(got, None, "without map_files the API gives no build id for it")
        is_(bundle.get(lib, {}).get("buildId"), None, "…nor does the manifest")
finally:
    dphttpd.kill_quietly(t)
    h.stop()
    for f in os.listdir(work):
        os.unlink(os.path.join(work, f))
    os.rmdir(work)
done_testing()
