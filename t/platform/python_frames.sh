#!/bin/sh
# CPython frames on another Debian release (as root): builds the module and
# build/tools/dpstacks inside a copy of SUITE's minbase system, runs
# t/fixtures/lang/stuck.py with the release's python3.X there, and checks
# that the stacks give each known function with its file and line. Where the
# interpreter publishes _Py_DebugOffsets (3.13 and later), also runs copies
# of it whose cookie is broken (native frames and the reason, never
# garbage), whose _PyRuntime symbol is larger than the runtime (the same
# frames) and too small for the debug offsets (the reason). Where gdb is
# installed inside, the bundle's dp-py-bt gives the same frames from a
# minimal core with the walk's pages (dpcore with DPCORE_RUNTIME=1).
#
#   t/platform/python_frames.sh SUITE       bullseye (3.9), bookworm (3.11),
#                                           trixie (3.13), forky (3.14)
#
# DP_PY_CHROOT  a system of SUITE to use as it is (the platform matrix's, with
#               the packages below installed); without it a copy of
#               `t/platform/chroot.sh create SUITE` is made, provisioned and
#               removed at the end
# Prints TAP; exits non-zero when a check fails.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=${1:?usage: python_frames.sh SUITE}
CHROOT="$TOP/t/platform/chroot.sh"
PACKAGES="apache2-dev libjansson-dev zlib1g-dev libdw-dev build-essential make gdb"
case $SUITE in
    bullseye) PY=3.9 ;;
    bookworm) PY=3.11 ;;
    trixie) PY=3.13 ;;
    forky|testing|sid) PY=3.14 ;;
    *) echo "python_frames: no Python known for $SUITE" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "python_frames: needs root (chroot)" >&2; exit 2; }

DIR=${DP_PY_CHROOT:-}
OWN=""
cleanup() {
    [ -n "$DIR" ] && rm -rf "$DIR/tmp/diagproc-src" "$DIR/tmp/pyframes"
    [ -n "$OWN" ] && rm -rf "$OWN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -z "$DIR" ]; then
    base=$("$CHROOT" create "$SUITE") || exit 1
    OWN=$(mktemp -d "${TMPDIR:-/var/tmp}/diagproc-pyframes-$SUITE.XXXXXX") || exit 1
    DIR="$OWN/root"
    cp -a "$base" "$DIR" || exit 1
    cp /etc/resolv.conf "$DIR/etc/resolv.conf"
    echo "# provisioning $SUITE: $PACKAGES python$PY"
    install="apt-get update -q && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends $PACKAGES python$PY"
    # a mirror whose security suite lists packages it does not hold (seen
    # with bullseye-security here): again from the release and its updates
    if ! "$CHROOT" enter "$DIR" sh -c "$install" >"$OWN/apt.log" 2>&1; then
        echo "# apt failed; again without the security suite"
        sed -i '/-security/d' "$DIR/etc/apt/sources.list"
        "$CHROOT" enter "$DIR" sh -c "$install" >>"$OWN/apt.log" 2>&1 \
            || { tail -20 "$OWN/apt.log" >&2; exit 1; }
    fi
fi

# the tree as it is (tracked and new files), built inside
mkdir -p "$DIR/tmp/diagproc-src" "$DIR/tmp/pyframes" || exit 1
(cd "$TOP" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$DIR/tmp/diagproc-src"
n=0
fail=0
ok() {          # ok COND_EXIT_STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}
"$CHROOT" enter "$DIR" sh -c 'cd /tmp/diagproc-src && make -j2 module build/tools/dpstacks build/tools/dpcore' \
    >"$DIR/tmp/pyframes/build.log" 2>&1
ok $? "$SUITE: the module and the tools build (make module build/tools/dpstacks build/tools/dpcore)"
[ $fail -eq 0 ] || { tail -20 "$DIR/tmp/pyframes/build.log"; echo "1..$n"; exit 1; }

# stacks NAME PYTHON: dpstacks of stuck.py run by PYTHON, inside, into NAME.out
stacks() {
    "$CHROOT" enter "$DIR" sh -c '
        cd /tmp/diagproc-src
        "$1" t/fixtures/lang/stuck.py >/tmp/pyframes/$2.ready 2>&1 &
        pid=$!
        i=0
        while ! grep -q ready /tmp/pyframes/$2.ready && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        build/tools/dpstacks $pid >/tmp/pyframes/$2.out 2>&1
        rc=$?
        if [ "$2" = plain ] && command -v gdb >/dev/null; then
            build/tools/dpstacks --gdb-script >/tmp/pyframes/diagproc-lang.py
            DPCORE_RUNTIME=1 build/tools/dpcore $pid 0 >/tmp/pyframes/core 2>/dev/null
            gdb -batch -nx -ex "source /tmp/pyframes/diagproc-lang.py" -ex dp-py-bt "$(command -v "$1")" \
                /tmp/pyframes/core >/tmp/pyframes/gdb.out 2>&1
            rm -f /tmp/pyframes/core
        fi
        kill $pid
        wait $pid 2>/dev/null
        exit $rc' sh "$2" "$1"
}
has() { grep -q -- "$2" "$DIR/tmp/pyframes/$1.out"; }

# the known functions at their lines (the LINE: markers of stuck.py)
expect_frames() {
    name=$1
    src=/tmp/diagproc-src/t/fixtures/lang/stuck.py
    for fn in wait_for_lock outer_call main_sleep; do
        line=$(grep -n "# LINE:$fn\$" "$DIR$src" | cut -d: -f1)
        qual=$fn
        # before 3.11 a code object has no qualified name; lang@-1: no
        # native frame named _PyEval_EvalFrameDefault to place it under
        # (testing's interpreters export no such symbol)
        [ $fn = wait_for_lock ] && [ "$PY" != 3.9 ] && [ "$PY" != 3.10 ] && qual=Worker.wait_for_lock
        has "$name" "lang@-*[0-9]* $qual $src:$line\$"
        ok $? "$name: $qual at stuck.py:$line"
    done
}

stacks plain "python$PY"
ok $? "python$PY: dpstacks answers"
has plain "runtime CPython version $PY"
ok $? "python$PY: the runtime and its version are named"
has plain "unsupported -\$"
ok $? "python$PY: the walk is supported"
expect_frames plain

if [ -f "$DIR/tmp/pyframes/gdb.out" ]; then
    src=/tmp/diagproc-src/t/fixtures/lang/stuck.py
    for fn in wait_for_lock outer_call main_sleep; do
        line=$(grep -n "# LINE:$fn\$" "$DIR$src" | cut -d: -f1)
        has gdb "^#[0-9]* *[A-Za-z.]*$fn at $src:$line\$"
        ok $? "dp-py-bt on a minimal core: $fn at stuck.py:$line"
    done
else
    echo "# no gdb in $SUITE's system: dp-py-bt not checked"
fi

if [ "$PY" != 3.9 ] && [ "$PY" != 3.11 ]; then
    # the copies keep the interpreter's name: it is how a process is known
    # to run CPython
    exe="$DIR/usr/bin/python$PY"
    mkdir -p "$DIR/tmp/pyframes/cookie" "$DIR/tmp/pyframes/large" "$DIR/tmp/pyframes/small"
    python3 "$TOP/t/platform/py_patch.py" "$exe" "$DIR/tmp/pyframes/cookie/python$PY" cookie >/dev/null
    stacks cookie /tmp/pyframes/cookie/python$PY
    ok $? "a broken _Py_DebugOffsets cookie: dpstacks answers"
    has cookie 'unsupported CPython .*cookie "xdebugpy"'
    ok $? "a broken cookie: the reason names the cookie"
    ! has cookie "lang@"
    ok $? "a broken cookie: no language frames"
    has cookie "^#0 "
    ok $? "a broken cookie: native frames"

    size=$(readelf -Ws --dyn-syms "$exe" | awk '$8 == "_PyRuntime" { print $3; exit }')
    python3 "$TOP/t/platform/py_patch.py" "$exe" "$DIR/tmp/pyframes/large/python$PY" size \
        $((size + 65536)) >/dev/null
    stacks large /tmp/pyframes/large/python$PY
    ok $? "_PyRuntime's symbol 64 KiB larger than the runtime: dpstacks answers"
    expect_frames large

    python3 "$TOP/t/platform/py_patch.py" "$exe" "$DIR/tmp/pyframes/small/python$PY" size 64 \
        >/dev/null
    stacks small /tmp/pyframes/small/python$PY
    ok $? "_PyRuntime's symbol of 64 bytes: dpstacks answers"
    has small "unsupported CPython .*_PyRuntime .*fewer than"
    ok $? "_PyRuntime's symbol of 64 bytes: the reason gives the sizes"
    ! has small "lang@"
    ok $? "_PyRuntime's symbol of 64 bytes: no language frames"
fi
echo "1..$n"
[ $fail -eq 0 ] || { for f in "$DIR"/tmp/pyframes/*.out; do echo "# $f:"; sed 's/^/#   /' "$f"; done; }
exit $fail
