"""Minimal TAP producer for prove: ok/is_/like/skip/done_testing, plan-less.

Every integration test is a Python script run by `prove --exec /usr/bin/python3`
with PYTHONPATH naming this folder (t/run-integration.sh, t/run-asan.sh).

- skip(reason) is for a missing capability (a tool, a kernel feature); under
  CI=true a skip fails instead: CI must run everything.
- Root-only checks are not skips: the ordinary-user pass (DP_TEST_MODE=user)
  leaves them out, as the root pass of the same file runs them; each file of
  that pass says so once, at its start.
- An exception that escapes the test becomes one failed assertion with the
  traceback, followed by the plan, so prove always sees one.
- at_end(fn) runs fn before the plan is printed (dphttpd checks the error
  logs of the servers still running there).
"""
import os
import sys
import traceback

_n = 0
_failed = 0
_planned = False
_at_end = []
CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")


def ok(cond, name=""):
    """cond may be a falsy object with a `why` (procstate.settle's answer when
    it gave up): the why goes to the diagnostics."""
    global _n, _failed
    _n += 1
    if cond:
        print(f"ok {_n} - {name}", flush=True)
    else:
        _failed += 1
        print(f"not ok {_n} - {name}", flush=True)
        where = traceback.extract_stack(limit=3)[0]
        diag(f"  Failed test '{name}' at {where.filename} line {where.lineno}.")
        if getattr(cond, "why", None):
            diag(f"  {cond.why}")
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


def skip(reason, count=1):
    """count assertions not run for want of a capability: `ok N # skip reason`,
    or under CI=true `not ok N - skipped under CI: reason`."""
    global _n, _failed
    for _ in range(count):
        _n += 1
        if CI:
            _failed += 1
            print(f"not ok {_n} - skipped under CI: {reason}", flush=True)
        else:
            print(f"ok {_n} # skip {reason}", flush=True)


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print(f"# {line}", file=sys.stderr, flush=True)


def note(msg):
    for line in str(msg).splitlines() or [""]:
        print(f"# {line}", flush=True)


def bail_out(reason):
    print(f"Bail out! {reason}", flush=True)
    sys.exit(255)


def at_end(fn):
    """fn() runs before the plan is printed (once, in the order registered)."""
    if fn not in _at_end:
        _at_end.append(fn)


def _run_at_end():
    while _at_end:
        fn = _at_end.pop(0)
        try:
            fn()
        except Exception:
            ok(False, f"clean-up {getattr(fn, '__name__', fn)}")
            diag(traceback.format_exc())


def _plan():
    global _planned
    _run_at_end()
    _planned = True
    print(f"1..{_n}", flush=True)


def done_testing():
    _plan()
    sys.exit(1 if _failed or _n == 0 else 0)


def _excepthook(kind, value, tb):
    """An exception that escaped the test: a failed assertion with its
    traceback, then the plan (the interpreter still exits with 1)."""
    if _planned:
        sys.__excepthook__(kind, value, tb)
        return
    ok(False, f"the test ran to its end (it died of {kind.__name__}: {value})")
    diag("".join(traceback.format_exception(kind, value, tb)))
    _plan()


sys.excepthook = _excepthook

if os.environ.get("DP_TEST_MODE") == "user":
    note("user mode: root-only checks run in the root pass")
elif os.geteuid() != 0:
    note("not root: the root-only checks are left out (t/run-integration.sh as root runs them)")
