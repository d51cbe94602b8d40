#!/bin/sh
# The integration suite once more against the AddressSanitizer + UBSan build:
# the module (helper included) and the tools that drive the cores directly.
# The sanitizers' runtimes are preloaded into httpd alone; each report goes to
# a log file, and any report -- or any failing test -- fails the pass.
#
#   t/run-asan.sh MODULE.so TOOLS_DIR [TEST...]   (TEST: a name in t/integration)
set -u
cd "$(dirname "$0")/.."
so=$1
tools=$2
shift 2
# Left out, with the reason:
#   debian_package  builds and installs the Debian package, whose module is
#                   built by dpkg-buildpackage without the sanitizers, into the
#                   system's apache2: nothing instrumented would run in it
#   run_local       starts `make run`'s own config, which loads the ordinary
#                   build of the module: nothing instrumented would run either
skip="debian_package run_local"
if [ $# -gt 0 ]; then
    tests="$*"
    skip="the others"
else
    tests=""
    for f in t/integration/*.t; do
        t=$(basename "$f" .t)
        case " $skip " in *" $t "*) ;; *) tests="$tests $t" ;; esac
    done
fi
files=""
for t in $tests; do files="$files t/integration/$t.t"; done
logs=$(mktemp -d /tmp/dp-asan.XXXXXX)
chmod 1777 "$logs"
start=$(date +%s)
DP_MODULE="$(pwd)/$so" DP_TOOLS="$(pwd)/$tools" \
DP_HTTPD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path=$logs/asan" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan" \
    prove --exec /usr/bin/python3 --timer $files
rc=$?
reports=$(ls "$logs" | wc -l)
for f in "$logs"/*; do [ -f "$f" ] && { echo "# $f:"; head -40 "$f"; }; done
echo "asan: AddressSanitizer + UBSan pass over $(echo $tests | wc -w) integration tests" \
     "(left out: $skip) in $(( $(date +%s) - start )) s: reports $reports, tests $([ $rc -eq 0 ] && echo passed || echo FAILED)"
rm -rf "$logs"
[ $rc -eq 0 ] && [ "$reports" -eq 0 ]
