#!/bin/sh
# The platform matrix (`make platforms`, as root): for each Debian release, a
# system with the packages below (debootstrap + apt, cached outside the clone
# by t/platform/chroot.sh, keyed by suite and package list), and in a
# throwaway overlay over it t/platform/inside.py: the module built with that
# release's compiler, its apache2 with event + php-fpm, prefork + mod_php and
# mod_wsgi, the language stacks of PHP and Python targets, a minimal bundle
# read by php-bt in that release's gdb, the .deb built, installed, enabled
# and purged. Writes build/platforms/SUITE.log and the table docs/platforms.md.
#   t/platform/matrix.sh [SUITE...]      (default: bullseye bookworm-main
#                                         trixie testing)
# bookworm-main is Debian 12 from its main suite alone (no -updates, no
# -security: PHP 8.2.32, where the host has the point releases' 8.2.36): the
# PHP and Python checks and the build; not the JDK's nor the .deb's, which
# are the host's own Debian 12 checks (t/integration), so its system is made
# without a JDK and the packaging tools.
# Exits 1 when a check failed (a release whose Python has no layout entry
# yet counts as "native", not as a failure).
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
SUITES=${*:-bullseye bookworm-main trixie testing}
PKGS="apache2 apache2-dev libjansson-dev zlib1g-dev libzstd-dev libdw-dev build-essential php-fpm
      libapache2-mod-php php-dev python3 python3-dev libapache2-mod-wsgi-py3 gdb elfutils curl
      debhelper dh-apache2 dpkg-dev procps"
# what the PHP, Python, build and httpd checks need (bookworm-main's list)
PKGS_LANG="apache2 apache2-dev libjansson-dev zlib1g-dev libzstd-dev libdw-dev build-essential
      php-fpm libapache2-mod-php python3 libapache2-mod-wsgi-py3 gdb elfutils curl procps"
# each release's list; its own JDK for jhsdb: Debian 11's default is 11, but
# it ships 17 too, the oldest the JVM pages are read for (README, Java). The
# lists of the other suites are the cache's keys: changing one makes that
# system again
# shellcheck disable=SC2086 # the lists are words
pkgs_of() {
    case $1 in
        bullseye) echo $PKGS openjdk-17-jdk-headless ;;
        bookworm-main) echo $PKGS_LANG ;;
        *) echo $PKGS default-jdk-headless ;;
    esac
}
# the checks left out where the release is the host's (inside.py: DP_NOT_RUN)
not_run_of() { case $1 in bookworm-main) echo "jhsdb deb" ;; esac; }
OUT=build/platforms
mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "platforms: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }

# the tree as it is: its files that git tracks or would (not build/)
SRC=$(mktemp -d "${TMPDIR:-/tmp}/dpplatforms.XXXXXX")
SYSTEMS=$(mktemp -d "${TMPDIR:-/tmp}/dpsystems.XXXXXX")
PROV=""
# shellcheck disable=SC2317 # run by the trap
on_exit() {
    # provisioning still running (a run cut short): stopped; chroot.sh
    # undoes its mounts, and a half-made system is made again next time
    for p in $PROV; do kill "$p" 2>/dev/null || true; done
    rm -rf "$SRC" "$SYSTEMS"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c 2>/dev/null | tar -x -C "$SRC"
chmod -R a+rX "$SRC"

rc=0
t_all=$(date +%s)
# Every release's system is asked for at once: cached, each answers at once;
# made cold, their debootstraps take turns (chroot.sh's lock) and a release's
# apt runs while the one before it is checked, instead of after
var() { echo "pid_$1" | tr -c 'a-zA-Z0-9_\n' _; }
for suite in $SUITES; do
    # shellcheck disable=SC2046 # the list is words
    sh t/platform/chroot.sh provision "$suite" $(pkgs_of "$suite") \
        >"$SYSTEMS/$suite" 2>"$SYSTEMS/$suite.err" &
    PROV="$PROV $!"
    eval "$(var "$suite")=$!"
done
for suite in $SUITES; do
    t0=$(date +%s)
    prc=0
    eval "wait \$$(var "$suite")" || prc=$?
    cat "$SYSTEMS/$suite.err" >&2
    sys=$(cat "$SYSTEMS/$suite")
    if [ $prc -ne 0 ] || [ -z "$sys" ]; then
        echo "RESULT system fail provisioning failed" >"$OUT/$suite.log"
        echo "platforms: $suite: provisioning failed"
        rc=1
        continue
    fi
    t1=$(date +%s)
    DP_SRC="$SRC" sh t/platform/chroot.sh overlay "$sys" \
        env DP_NOT_RUN="$(not_run_of "$suite")" python3 /src/t/platform/inside.py \
        >"$OUT/$suite.log" 2>"$OUT/$suite.err" || true
    t2=$(date +%s)
    # system: how long the checks waited for it (0: cached, or made while
    # the releases before it were checked)
    echo "TIME system $((t1 - t0))" >>"$OUT/$suite.log"
    echo "TIME checks $((t2 - t1))" >>"$OUT/$suite.log"
    echo "platforms: $suite: system $((t1 - t0)) s, checks $((t2 - t1)) s"
    grep '^RESULT' "$OUT/$suite.log" | sed "s/^RESULT /  $suite: /"
    grep -q '^RESULT [^ ]* fail' "$OUT/$suite.log" && rc=1
    grep -q '^RESULT' "$OUT/$suite.log" || rc=1
done
PROV=""
echo "platforms: $(( $(date +%s) - t_all )) s in all"
python3 t/platform/table.py "$OUT" $SUITES >docs/platforms.md
echo "platforms: wrote docs/platforms.md"
exit $rc
