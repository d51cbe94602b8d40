#!/bin/sh
# Starts (or stops) a private httpd on 127.0.0.1 with the freshly built
# module, mounted at /diagnostics/processes and /api/processes.
# As root its workers run as www-data; otherwise as the calling user.
set -e
cd "$(dirname "$0")/.."
TOP=$(pwd)
# DP_RUN_DIR: another directory for the config, logs and pid (a test runs its own)
RUN="${DP_RUN_DIR:-$TOP/build/run}"
PORT="${PORT:-8088}"
CONF="$RUN/httpd.conf"

stop() {
    if [ -f "$RUN/httpd.pid" ] && kill -0 "$(cat "$RUN/httpd.pid")" 2>/dev/null; then
        /usr/sbin/apache2 -f "$CONF" -k stop
        echo "run: stopped the httpd on port $(cat "$RUN/port" 2>/dev/null)"
    else
        echo "run: no local httpd running"
    fi
}

if [ "$1" = stop ]; then
    stop
    exit 0
fi
[ -f "$RUN/httpd.pid" ] && kill -0 "$(cat "$RUN/httpd.pid")" 2>/dev/null && stop && sleep 1
mkdir -p "$RUN"
chmod 755 "$RUN"
USERCONF=""
if [ "$(id -u)" -eq 0 ]; then
    USERCONF="User www-data
Group www-data"
fi
M=/usr/lib/apache2/modules
cat > "$CONF" <<CONF
ServerRoot $RUN
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile $RUN/httpd.pid
DefaultRuntimeDir $RUN
ErrorLog $RUN/error.log
LogLevel info
$USERCONF
LoadModule mpm_event_module $M/mod_mpm_event.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule authz_host_module $M/mod_authz_host.so
# a client that promises a header or a body and sends nothing, or sends it
# slowly, loses its connection instead of holding a worker for the whole
# Timeout: httpd's usual limits (Debian enables mod_reqtimeout by default),
# and a blocked read or write gives up after 30 s instead of 60
LoadModule reqtimeout_module $M/mod_reqtimeout.so
RequestReadTimeout header=20-40,MinRate=500 body=20,MinRate=500
Timeout 30
LoadModule diagproc_module $TOP/build/mod_diagproc.so
# a local playground: every action enabled, reachable from this machine only
<Location /diagnostics/processes>
    SetHandler diagproc
    DiagProcAllow kill dump fulldump environment stacks
    Require local
</Location>
<Location /api/processes>
    SetHandler diagproc
    DiagProcAllow kill dump fulldump environment stacks
    Require local
</Location>
CONF
echo "$PORT" > "$RUN/port"
/usr/sbin/apache2 -f "$CONF" -k start
sleep 0.5
if ! kill -0 "$(cat "$RUN/httpd.pid" 2>/dev/null)" 2>/dev/null; then
    echo "run: httpd did not start; see $RUN/error.log" >&2
    tail -5 "$RUN/error.log" >&2
    exit 1
fi
echo "run: httpd is serving mod_diagproc (config: $CONF, log: $RUN/error.log)"
echo "run: open   http://127.0.0.1:$PORT/diagnostics/processes   (JSON; a browser gets the HTML page)"
echo "run: stop   make stop"
