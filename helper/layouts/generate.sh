#!/bin/sh
# `make layouts`: writes helper/layouts/gen/<interpreter>-<version>.c for each
# interpreter version whose -dev headers are installed here, and leaves the
# files of every other version as they are (they were made where their
# headers were: another Debian release, another machine).
#   CPython 3.X: /usr/include/python3.X with its internal headers (Debian's
#                libpython3.X-dev, which python3.X-dev pulls in)
#   PHP X.Y:     php-configX.Y (Debian's phpX.Y-dev)
# A version whose headers the generator does not compile against (a layout
# the walk does not know) is reported and skipped, as is CPython 3.13 and
# later (the walk reads their layout from the running interpreter's
# _Py_DebugOffsets); the run fails only when nothing at all could be written.
#   generate.sh BUILD_DIR     (CC from the environment)
set -u
CC=${CC:-cc}
BUILD=${1:-build}
OUT=helper/layouts/gen
mkdir -p "$BUILD/layouts" "$OUT" || exit 1
written=0
skipped=0

# "package version" of the Debian package holding a file, else "unpackaged headers"
package_of() {
    pkg=$(dpkg-query -S "$1" 2>/dev/null | head -n 1 | cut -d: -f1)
    ver=$([ -n "$pkg" ] && dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null | head -n 1)
    if [ -n "$pkg" ] && [ -n "$ver" ]; then
        echo "$pkg $ver"
    else
        echo "unpackaged headers"
    fi
}

# generate WHAT GENERATOR PACKAGE HEADERS CFLAGS...
generate() {
    what=$1 src=$2 pkg=$3 headers=$4
    shift 4
    bin="$BUILD/layouts/$what"
    if ! "$CC" -std=gnu11 -I. "$@" "$src" -o "$bin" 2>"$bin.log"; then
        echo "layouts: $what skipped: $src does not compile against $headers:" >&2
        grep -m 1 'error' "$bin.log" | sed 's/^/    /' >&2
        skipped=$((skipped + 1))
        return
    fi
    name=$("$bin" --name) || { skipped=$((skipped + 1)); return; }
    if ! "$bin" "$pkg" "$headers" >"$bin.c"; then
        echo "layouts: $what skipped: the generator failed" >&2
        skipped=$((skipped + 1))
        return
    fi
    if cmp -s "$bin.c" "$OUT/$name.c"; then
        echo "layouts: $OUT/$name.c unchanged ($pkg)"
    else
        mv "$bin.c" "$OUT/$name.c" || exit 1
        echo "layouts: wrote $OUT/$name.c ($pkg)"
    fi
    written=$((written + 1))
}

for inc in /usr/include/python3.*; do
    v=${inc##*/python}
    case $v in
        3.[0-9] | 3.[0-9][0-9]) ;;
        *) continue ;;      # python3.11d: a debug build's headers (another ABI)
    esac
    case $v in
        3.[0-9] | 3.1[0-2]) ;;
        *)  # 3.13 and later publish _Py_DebugOffsets, read at run time
            echo "layouts: python$v needs no entry (the walk reads its _Py_DebugOffsets)"
            continue ;;
    esac
    if [ ! -f "$inc/internal/pycore_runtime.h" ]; then
        echo "layouts: python$v skipped: no internal headers in $inc" >&2
        skipped=$((skipped + 1))
        continue
    fi
    generate "cpython-$v" helper/layouts/cpython.c \
        "$(package_of "$inc/internal/pycore_runtime.h")" "$inc" \
        -DPy_BUILD_CORE -I"$inc" -I"$inc/internal"
done

for cfg in /usr/bin/php-config[0-9]*; do
    [ -x "$cfg" ] || continue
    v=${cfg##*/php-config}
    inc=$("$cfg" --include-dir) || continue
    # shellcheck disable=SC2046 # the include flags are words
    generate "php-$v" helper/layouts/php.c "$(package_of "$inc/main/php.h")" "$inc" \
        $("$cfg" --includes)
done

echo "layouts: $written version(s) from headers installed here, $skipped skipped;" \
     "$(ls "$OUT"/*.c 2>/dev/null | wc -l) file(s) in $OUT"
[ "$written" -gt 0 ] || { echo "layouts: no version written (no interpreter headers here, or none the generators compile against)" >&2; exit 1; }
