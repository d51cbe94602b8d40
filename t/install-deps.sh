#!/bin/sh
# Installs the Debian packages a list needs, only those missing, and says
# what it did:
#   t/install-deps.sh run    building the module and `make run` (httpd, the
#                            build's headers and libraries, make, gcc)
#   t/install-deps.sh test   the run list and everything `make test` adds:
#                            unit tests, fuzzers, debuggers and runtimes,
#                            the browser, load generators, the package's tools
set -e
RUN_PKGS="apache2 apache2-dev libjansson-dev zlib1g-dev libzstd-dev libdw-dev make gcc"
TEST_PKGS="libcmocka-dev gdb lldb python3-lldb-14 elfutils
      php8.2-cli libapache2-mod-php8.2 php8.2-fpm openjdk-17-jdk-headless
      unzip zstd curl wrk python3 python3-psutil chromium nodejs perl g++ clang libclang-rt-14-dev
      apache2-utils debhelper dpkg-dev binutils
      libapache2-mod-wsgi-py3 python3-gunicorn python3.11-dbg debootstrap
      protobuf-compiler python3-protobuf python3-jsonschema"
case "${1:-test}" in
    run)  what=run;  PKGS="$RUN_PKGS" ;;
    test) what=test; PKGS="$RUN_PKGS $TEST_PKGS" ;;
    *)    echo "usage: $0 run|test" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# npm drives the browser tests' playwright-core; some nodejs builds carry it
if [ "$what" = test ] && ! command -v npm >/dev/null 2>&1; then
    missing="$missing npm"
fi
if [ -z "$missing" ]; then
    echo "deps ($what): all installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps ($what): missing packages:$missing" >&2
    echo "deps ($what): run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi
echo "deps ($what): apt-get install --no-install-recommends$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps ($what): installed:$missing"
