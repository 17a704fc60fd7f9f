"""Benchmark `agentloop detect` against plain pytest on a suite with hanging tests.

What it measures
----------------
A generated project in the shape of a real-bugs benchmark (QuixBugs): ``--modules``
programs (default 40) in ``python_programs/``, each with a test module of six parametrized
cases in ``python_testcases/``, and pytest-timeout configured by the project itself
(``pytest.ini``: ``timeout = 5``). ``--hangs`` programs (default 17) loop forever on one of
their cases, so 17 tests hang until pytest-timeout fails them; the others carry logic bugs
(off by one, wrong operator, wrong element). About two thirds of the tests fail.

Both are timed on the same project, one after the other, wall clock:

* plain ``python -m pytest`` (what a user runs);
* ``agentloop detect --json``, the real CLI, with its default flaky re-runs (2).

and the script prints both and their ratio (the issue's target: at most 1.5x). It exits
non-zero if detect does not find every hanging test as a ``timeout`` and every failure
pytest reported, or if detect re-ran a hanging test (each appends to a run log).

How to run it
-------------
    .venv/bin/python benchmarks/detect_bench.py             # the issue's suite (~3 min)
    .venv/bin/python benchmarks/detect_bench.py --modules 10 --hangs 3 --timeout 2  # smoke
    make bench-detect

Needs pytest, pytest-timeout and pytest-json-report in this interpreter (the dev extra).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (name, correct body, buggy body, cases as (argument, expected)); the buggy body is what
# the generated program holds. Cases whose expected value the bug still returns pass.
BUGS = [
    (
        "sum_to",
        "return sum(range(n + 1))",
        "return sum(range(n))",
        [(0, 0), (1, 1), (2, 3), (3, 6), (10, 55), (100, 5050)],
    ),
    (
        "largest",
        "return max(xs)",
        "return min(xs)",
        [([1], 1), ([2, 9], 9), ([5, 3, 8], 8), ([7, 1], 7), ([4, 4, 6], 6), ([0, -1, 3], 3)],
    ),
    (
        "count_even",
        "return sum(1 for x in xs if x % 2 == 0)",
        "return sum(1 for x in xs if x % 3 == 0)",
        [([], 0), ([2], 1), ([2, 4], 2), ([1, 2, 4, 8], 3), ([4, 8, 10], 3), ([3, 5, 7, 2], 1)],
    ),
    (
        "reverse",
        "return xs[::-1]",
        "return xs[1:][::-1]",
        [
            ([], []),
            ([1], [1]),
            ([1, 2], [2, 1]),
            ([1, 2, 3], [3, 2, 1]),
            ([4, 5], [5, 4]),
            ([9, 8, 7, 6], [6, 7, 8, 9]),
        ],
    ),
]
# gcd with the classic QuixBugs bug: `a, b = b, a` never shrinks b. gcd(x, 0) returns at
# once; any other case loops forever. Each hanging program gets one such case.
HANG = (
    "gcd",
    "    while b:\n        a, b = b, a % b\n    return a",
    "    while b:\n        a, b = b, a\n    return a",
)


def _program(index: int, hangs: bool) -> tuple[str, str]:
    name = f"prog_{index:02d}"
    if hangs:
        _, _, body = HANG
        program = f"def {name}(a, b):\n{body}\n"
        # One case that hangs, three that pass, and two whose expected value is wrong (a
        # bug in the test rather than the program: real suites have those too).
        cases = [((12, 8), 4), ((5, 0), 5), ((9, 0), 9), ((7, 0), 7), ((4, 0), 2), ((6, 0), 3)]
        test = (
            f"import pytest\n\nfrom python_programs.{name} import {name}\n\n\n"
            f"@pytest.mark.parametrize(('args', 'expected'), {cases!r})\n"
            f"def test_{name}(args, expected):\n"
            f"    with open(__import__('os').environ['BENCH_RUN_LOG'], 'a') as log:\n"
            f"        log.write(f'{{args}}\\n')\n"
            f"    assert {name}(*args) == expected\n"
        )
        return program, test
    label, _, bug, cases = BUGS[index % len(BUGS)]
    arg = "n" if label == "sum_to" else "xs"
    program = f"def {name}({arg}):\n    {bug}\n"
    test = (
        f"import pytest\n\nfrom python_programs.{name} import {name}\n\n\n"
        f"@pytest.mark.parametrize(('arg', 'expected'), {cases!r})\n"
        f"def test_{name}(arg, expected):\n"
        f"    assert {name}(arg) == expected\n"
    )
    return program, test


def generate(root: Path, modules: int, hangs: int, timeout: float) -> None:
    (root / "python_programs").mkdir(parents=True)
    (root / "python_testcases").mkdir()
    (root / "python_programs" / "__init__.py").write_text("")
    (root / "pytest.ini").write_text(
        f"[pytest]\npythonpath = .\ntestpaths = python_testcases\ntimeout = {timeout:g}\n"
    )
    # Spread the hanging programs over the suite, as in QuixBugs.
    hanging = {round(i * modules / hangs) for i in range(hangs)} if hangs else set()
    for index in range(modules):
        program, test = _program(index, index in hanging)
        (root / "python_programs" / f"prog_{index:02d}.py").write_text(program)
        (root / "python_testcases" / f"test_prog_{index:02d}.py").write_text(test)


def _env(home: Path, log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTLOOP_", "PYTEST_"))}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        VIRTUAL_ENV=sys.prefix,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        BENCH_RUN_LOG=str(log),
        NO_COLOR="1",
    )
    return env


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, int]:
    start = time.monotonic()
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return time.monotonic() - start, done.stdout, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", type=int, default=40)
    parser.add_argument("--hangs", type=int, default=17)
    parser.add_argument("--timeout", type=float, default=5.0, help="pytest-timeout, seconds")
    args = parser.parse_args()
    if not 0 <= args.hangs <= args.modules:
        parser.error("--hangs must be between 0 and --modules")

    with tempfile.TemporaryDirectory(prefix="agentloop-detect-bench-") as tmp:
        base = Path(tmp)
        root = base / "project"
        generate(root, args.modules, args.hangs, args.timeout)
        (base / "home").mkdir()
        plain_log, detect_log = base / "plain.log", base / "detect.log"

        print(f"{args.modules} modules, {args.modules * 6} tests, {args.hangs} hang under a "
              f"{args.timeout:g} s pytest-timeout", flush=True)  # fmt: skip
        plain_s, plain_out, _ = _timed(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            root,
            _env(base / "home", plain_log),
        )
        summary = plain_out.strip().splitlines()[-1] if plain_out.strip() else "(no output)"
        print(f"pytest            {plain_s:7.1f} s   {summary}", flush=True)
        detect_s, detect_out, code = _timed(
            [sys.executable, "-m", "agentloop", "detect", "--json"],
            root,
            _env(base / "home", detect_log),
        )
        try:
            doc = json.loads(detect_out)
        except json.JSONDecodeError:
            print(f"agentloop detect printed no JSON (exit {code})", file=sys.stderr)
            return 1
        found = [f for task in doc["tasks"] for f in task["failures"]]
        timeouts = sum(1 for f in found if f["category"] == "timeout")
        print(
            f"agentloop detect  {detect_s:7.1f} s   {len(found)} failures in "
            f"{len(doc['tasks'])} tasks, {timeouts} timeouts, {len(doc['flaky'])} flaky",
            flush=True,
        )
        ratio = detect_s / plain_s
        print(f"ratio             {ratio:7.2f}x   (goal <= 1.5x)")

        problems = []
        words = summary.split(" failed")[0].split()
        failed_by_pytest = int(words[-1]) if " failed" in summary and words else 0
        if len(found) != failed_by_pytest:
            problems.append(f"pytest reported {failed_by_pytest} failures, detect {len(found)}")
        if timeouts != args.hangs:
            problems.append(f"{args.hangs} tests hang, detect found {timeouts} timeouts")
        # Each case of a hanging program logs its arguments when it runs: the hanging one
        # must have run in detect's suite run only, never in a re-run.
        hanging_reruns = sum(
            1 for line in detect_log.read_text().splitlines() if line == "(12, 8)"
        ) if detect_log.exists() else 0  # fmt: skip
        if hanging_reruns != args.hangs:
            problems.append(f"the hanging cases ran {hanging_reruns} times (once each expected)")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
