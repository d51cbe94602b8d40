#!/bin/sh
# The build's list of layout entries: dp_py_layouts[] and dp_php_layouts[]
# with whatever entries the files of helper/layouts/gen/ define, written to
# OUT (in build/, not checked in). OUT is replaced only when its text changes,
# so that the build recompiles it only then.
#   registry.sh OUT GEN_FILE...
set -u
out=$1
shift
entries() {     # entries TYPE FILE...: the names of the TYPE entries the files define
    type=$1
    shift
    [ $# -gt 0 ] && sed -n "s/^const $type \([A-Za-z_][A-Za-z0-9_]*\) = {\$/\1/p" "$@"
}
table() {       # table TYPE ARRAY COUNT FILE...
    type=$1 array=$2 count=$3
    shift 3
    names=$(entries "$type" "$@")
    for n in $names; do echo "extern const $type $n;"; done
    echo "const $type *const $array[] = {"
    for n in $names; do echo "    &$n,"; done
    echo "    NULL"
    echo "};"
    echo "const size_t $count = sizeof($array) / sizeof($array[0]) - 1;"
    echo
}
mkdir -p "$(dirname "$out")" || exit 1
{
    echo "/* The layout entries of helper/layouts/gen/ (helper/layouts/registry.sh): do not edit. */"
    echo "#include \"helper/lang.h\""
    echo
    table dp_py_layout dp_py_layouts dp_py_nlayouts "$@"
    table dp_php_layout dp_php_layouts dp_php_nlayouts "$@"
} >"$out.tmp" || exit 1
if cmp -s "$out.tmp" "$out"; then
    rm -f "$out.tmp"
else
    mv "$out.tmp" "$out"
fi
