# docs/platforms.md from the logs of t/platform/matrix.sh: one row per
# release, what it ships and what worked there.
#   table.py LOG_DIR SUITE...
import os
import re
import sys

NAMES = {"bullseye": "11 bullseye", "bookworm": "12 bookworm",
         "bookworm-main": "12 bookworm main suite, no updates", "trixie": "13 trixie",
         "testing": "testing", "forky": "14 forky"}
CHECKS = [("build", "build"), ("httpd", "httpd"), ("php-cli", "PHP cli"),
          ("php-fpm", "php-fpm child"), ("php-fpm-pool", "pool in detail"),
          ("mod_php", "mod_php"), ("php-bundle", "bundle php-bt"),
          ("python-cli", "Python cli (threads)"), ("python-bundle", "bundle dp-py-bt"),
          ("mod_wsgi", "mod_wsgi"), ("jhsdb", "jhsdb (dumpType 0)"),
          ("deb", ".deb")]
MARK = {"ok": "yes", "native": "native frames only", "fail": "**fails**",
        "skip": "not run: same as the host"}


def read(path):
    res, ver, times = {}, {}, {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        kind, _, rest = line.partition(" ")
        key, _, val = rest.partition(" ")
        if kind == "RESULT":
            status, _, detail = val.partition(" ")
            res[key] = (status, detail)
        elif kind == "VERSION":
            ver[key] = val
        elif kind == "TIME":
            times[key] = val
    return res, ver, times


def main():
    logdir, suites = sys.argv[1], sys.argv[2:]
    print("<!-- Written by `make platforms` (t/platform/matrix.sh, t/platform/table.py): "
          "do not edit. -->")
    print("# Platforms\n")
    print("Each row: a Debian release made with debootstrap, the module built there with its "
          "compiler and apxs and run by its apache2; the checks of t/platform/inside.py.\n")
    print("| release | apache2 | PHP | Python | Java | gdb | " +
          " | ".join(n for _, n in CHECKS) + " |")
    print("|---" * (6 + len(CHECKS)) + "|")
    details = []
    for s in suites:
        res, ver, times = read(os.path.join(logdir, s + ".log"))
        java = re.search(r'version "([^"]+)"', ver.get("java", ""))
        row = [NAMES.get(s, s) + " (" + ver.get("debian", "?") + ")",
               ver.get("apache2", "?").split()[0], ver.get("php", "?"), ver.get("python", "?"),
               "OpenJDK " + java.group(1) if java
               else "—" if res.get("jhsdb", ("",))[0] == "skip" else "?",
               ver.get("gdb", "?").split()[-1]]
        row += [MARK.get(res.get(k, ("not run",))[0], "not run") for k, _ in CHECKS]
        print("| " + " | ".join(row) + " |")
        details.append((s, res, times, ver))
    print("\n*native frames only*: this tree has no layout entry for that interpreter version; the "
          "stacks answer says so and gives native frames (not a failure). *system N s*: how "
          "long the checks waited for the release's system (0: it came from the cache, or was "
          "made while the releases before it were checked). *not run: same as the host*: a check of the host's "
          "own tests (Debian 12 with its updates) that this row's system is made without, to keep "
          "the matrix's time.")
    print("\nWhat each check showed:\n")
    for s, res, times, ver in details:
        print("- **%s** (system %s s, checks %s s; apt suites: %s; %s):" % (
            NAMES.get(s, s), times.get("system", "?"), times.get("checks", "?"),
            ver.get("apt-suites", "?"), ver.get("php-package", "?")))
        for k, n in CHECKS:
            if k in res:
                print("  - %s: %s — %s" % (n, res[k][0], res[k][1].replace("|", "/")))


main()
