<?php
// A single-threaded PHP loop for bench/profile_bench.py: calls work() as fast
// as it can and prints "COUNT NANOSECONDS" (calls so far, hrtime: the
// monotonic clock) every 0.25 s; "ready" first.
function work() {
    $x = 0;
    for ($i = 0; $i < 100; $i++) {
        $x += $i;
    }
    return $x;
}

echo "ready\n";
$n = 0;
$next = hrtime(true);
for (;;) {
    for ($j = 0; $j < 1000; $j++) {
        work();
    }
    $n += 1000;
    $now = hrtime(true);
    if ($now >= $next) {
        echo "$n $now\n";
        $next = $now + 250000000;
    }
}
