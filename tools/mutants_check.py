"""Check named mutmut mutants against named test files, in one Python process.

``make mutation`` runs each mutant in a fresh worker, against the tests mutmut found reaching
its function, which is slow on a loaded machine. After a run, this re-checks a list of
mutants (the survivors, say) against the test files that should kill them, in seconds: mutmut's
trampolines pick the mutant from ``MUTANT_UNDER_TEST`` at each call, so one process can
run pytest once per mutant. It needs the ``mutants/`` tree of a ``mutmut run``.

    .venv/bin/python tools/mutants_check.py build/mutation/mutants names.txt \\
        tests/core/test_config.py

Prints ``killed`` or ``SURVIVED`` per mutant, after a clean run (must pass) and mutmut's
forced failure (must fail). Exit status 1 if any mutant survived. A mutant whose tests use more
than ``--cpu-limit`` seconds of CPU (an endless loop) is stopped and reported
``killed(timeout)``, as mutmut counts its timeouts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants_dir", help="the mutants/ tree of a mutmut run")
    parser.add_argument("names", help="file of mutant names, separated by white space")
    parser.add_argument("tests", nargs="+", help="test files or node ids to run per mutant")
    parser.add_argument(
        "--cpu-limit", type=float, default=60.0, help="CPU seconds a mutant may use (0: no limit)"
    )
    args = parser.parse_args()
    with open(args.names, encoding="utf-8") as f:
        names = f.read().split()
    os.chdir(args.mutants_dir)
    sys.path.insert(0, os.getcwd())
    import pytest

    pytest_args = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    pytest_args += ["-m", "not engine and not slow", *args.tests]
    output = io.StringIO()
    timed_out = False

    def stop(*_: object) -> None:
        nonlocal timed_out
        timed_out = True
        raise TimeoutError(f"the mutant used more than {args.cpu_limit} s of CPU")

    signal.signal(signal.SIGPROF, stop)

    def run(mutant: str, limit: float = 0.0) -> int:
        nonlocal timed_out
        timed_out = False
        os.environ["MUTANT_UNDER_TEST"] = mutant
        output.seek(0)
        output.truncate()
        signal.setitimer(signal.ITIMER_PROF, limit)
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                return int(pytest.main(pytest_args))
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0.0)

    if run("") != 0:
        print(output.getvalue()[-4000:])
        print("the tests fail without a mutant: fix them first")
        return 2
    if run("fail") == 0:
        print("mutmut's forced failure did not fail: the mutants tree is not in use")
        return 2
    survived = 0
    for name in names:
        code = run(name, args.cpu_limit)
        survived += code == 0
        verdict = "SURVIVED" if code == 0 else "killed(timeout)" if timed_out else f"killed({code})"
        print(f"{verdict} {name}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
