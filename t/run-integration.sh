#!/bin/sh
# Integration tests against a real httpd. As root (CI): workers run as the
# test account dptest; targets of a second (dptest2) and a third (dptest3)
# account test the scope and the helper's ceiling; then the suite runs again
# as the ordinary user dptest, for the parts that apply.
set -e
cd "$(dirname "$0")/.."
# the tests' library (tap, dphttpd, ...), for the tests and what they run
PYTHONPATH="$(pwd)/t/lib"
export PYTHONPATH
PROVE="prove --exec /usr/bin/python3 --timer"
if [ "$(id -u)" -ne 0 ]; then
    exec $PROVE t/integration/*.t
fi
for u in dptest dptest2 dptest3; do
    if ! id "$u" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
        echo "integration: created test account $u"
    fi
done
echo "integration: as root (httpd User dptest)"
rc=0
$PROVE t/integration/*.t || rc=1
echo "integration: as the ordinary user dptest"
# the ordinary-user run needs to read the tree and write its temp files only
runuser -u dptest -- env HOME=/tmp DP_TEST_MODE=user PYTHONPATH="$PYTHONPATH" $PROVE t/integration/*.t || rc=1
exit $rc
