"""Minimal TAP producer for prove: ok/is_/like/done_testing, plan-less.

Every integration test is a Python script run by `prove --exec /usr/bin/python3`.
"""
import sys
import traceback

_n = 0
_failed = 0


def ok(cond, name=""):
    global _n, _failed
    _n += 1
    if cond:
        print(f"ok {_n} - {name}", flush=True)
    else:
        _failed += 1
        print(f"not ok {_n} - {name}", flush=True)
        where = traceback.extract_stack(limit=3)[0]
        diag(f"  Failed test '{name}' at {where.filename} line {where.lineno}.")
    return bool(cond)


def is_(got, expected, name=""):
    good = ok(got == expected, name)
    if not good:
        diag(f"         got: {got!r}")
        diag(f"    expected: {expected!r}")
    return good


def like(got, pattern, name=""):
    import re
    good = ok(got is not None and re.search(pattern, got) is not None, name)
    if not good:
        diag(f"    {got!r}")
        diag(f"    doesn't match {pattern!r}")
    return good


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print(f"# {line}", file=sys.stderr, flush=True)


def note(msg):
    for line in str(msg).splitlines() or [""]:
        print(f"# {line}", flush=True)


def bail_out(reason):
    print(f"Bail out! {reason}", flush=True)
    sys.exit(255)


def done_testing():
    print(f"1..{_n}", flush=True)
    sys.exit(1 if _failed or _n == 0 else 0)
