#!/bin/sh
# Installs the Debian packages the build, the tests and `make run` need,
# only those missing, and says what it did.
set -e
PKGS="apache2 apache2-dev libjansson-dev zlib1g-dev libcmocka-dev gdb lldb python3-lldb-14 elfutils
      libdw-dev php8.2-cli libapache2-mod-php8.2 openjdk-17-jdk-headless
      unzip curl wrk python3 python3-psutil chromium nodejs perl make gcc g++ clang libclang-rt-14-dev
      apache2-utils debhelper dpkg-dev binutils
      libapache2-mod-wsgi-py3 python3.11-dbg"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# npm drives the browser tests' playwright-core; some nodejs builds carry it
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -z "$missing" ]; then
    echo "deps: all required Debian packages are installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages:$missing" >&2
    echo "deps: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi
echo "deps: installing with apt-get:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: installed:$missing"
