#!/bin/sh
# Runs each fuzzer for a bounded time on its checked-in corpus and prints
# libFuzzer's summary; fails on any finding. Usage: run.sh SECONDS BIN...
secs=$1; shift
rc=0
for bin in "$@"; do
    name=$(basename "$bin")
    corpus="t/fuzz/corpus/${name#fuzz_}"
    new=$(mktemp -d)
    log=$(mktemp)
    mkdir -p "$corpus"
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$(dirname "$bin")/$name-" "$new" "$corpus" >"$log" 2>&1
    st=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $st -eq 0 ]; then
        echo "fuzz $name: $runs runs in ${secs}s, $cov, $(ls "$corpus" | wc -l) corpus inputs, findings 0"
    else
        echo "fuzz $name: FINDING (exit $st); log:"
        grep -A30 -E 'ERROR|runtime error|SUMMARY' "$log" | head -60
        rc=1
    fi
    rm -rf "$new" "$log"
done
exit $rc
