"""Benchmark agentloop's report parsers on large synthetic reports.

What it measures
----------------
* ``parse_junit`` on a 100,000-testcase JUnit XML file written the way pytest writes it
  (xunit1 family: one ``<testsuite name="pytest">`` inside ``<testsuites name="pytest tests">``,
  ``file``/``line`` attributes), spread over ~1,000 test modules, with ~1% ``<failure>``
  carrying a multi-line pytest traceback, ~0.2% setup ``<error>`` and ~2% ``<skipped>``.
* ``parse_pytest_json`` on a 10,000-test pytest-json-report 1.5 file (same proportions).
* junitparser on the same JUnit file, as a reference point: ``JUnitXml.fromfile(path)``, then
  every suite and case and ``case.result`` (skipped if junitparser is not installed).

Only the parse is timed: the report is read into memory before the clock starts (junitparser
is given the path, as its users do; the file is in the page cache by then). Each parser runs
``--repeat`` times (default 3) and the best ``time.perf_counter()`` time is reported. Peak
memory is measured with ``tracemalloc`` in one extra, untimed run, because tracing slows the
parse down. MB are 10^6 bytes.

The script checks that agentloop reports exactly the failures the generator planted (failures
plus errors, errors at the setup stage) and that ``.total`` is the number of test cases, and
exits non-zero if not. The reports are written to a temporary directory that is removed.

How to run it
-------------
    .venv/bin/python benchmarks/parse_bench.py                              # full run
    .venv/bin/python benchmarks/parse_bench.py --cases 2000 --json-tests 500  # smoke run
    make bench

Install the reference with ``.venv/bin/pip install junitparser``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape

from agentloop.failures.junit import parse_junit
from agentloop.failures.model import ParsedReport
from agentloop.failures.pytest_json import parse_pytest_json

GOAL_SECONDS = 2.0
CASES_PER_MODULE = 100
FAIL_RATE = 0.01
ERROR_RATE = 0.002
SKIP_RATE = 0.02
SEED = 20240611
ROOT = "/home/dev/shop"
MB = 1_000_000

T = TypeVar("T")


@dataclass(frozen=True)
class Planted:
    """What a generator wrote, to check the parsers against."""

    cases: int
    failures: int  # failed in the test body
    errors: int  # failed in a fixture's setup
    skipped: int

    @property
    def failing(self) -> int:
        return self.failures + self.errors


@dataclass(frozen=True)
class Row:
    file: str
    parser: str
    cases: int
    size: int
    best: float
    peak: float | None


# --- JUnit XML (pytest, xunit1) -------------------------------------------------------------

_SETUP_ERROR = 'failed on setup with "RuntimeError: boom"'


def _attr(value: str) -> str:
    """Escape for a double-quoted attribute, as pytest does (`"` becomes `&quot;`)."""
    return escape(value, {'"': "&quot;"})


def _failure_text(module: int, case: int, line: int) -> str:
    helper = f"src/shop/helpers_{module % 37}.py"
    return escape(
        f"tests/test_mod_{module}.py:{line + 3}: in test_case_{case}\n"
        f"    assert helpers.total(items) == 2\n"
        f"{helper}:{40 + case % 50}: in total\n"
        f"    return _sum(items, strict=True)\n"
        f"{helper}:{12 + case % 20}: in _sum\n"
        "    assert len(items) == 2\n"
        f"E   AssertionError: assert 1 == 2\n"
        f"E    +  where 1 = len(['apple'])"
    )


_ERROR_TEXT = escape(
    "@pytest.fixture\n"
    "    def database():\n"
    '>       raise RuntimeError("boom")\n'
    "E       RuntimeError: boom\n"
    "\n"
    "tests/conftest.py:12: RuntimeError"
)
_FAILURE_OPEN = f'<failure message="{_attr("AssertionError: assert 1 == 2")}">'
_ERROR_OPEN = f'<error message="{_attr(_SETUP_ERROR)}">'


def write_junit(path: Path, cases: int, rng: random.Random) -> Planted:
    """Write a pytest-style JUnit report by string building; return what was planted."""
    modules = max(1, cases // CASES_PER_MODULE)
    per_module = -(-cases // modules)
    parts: list[str] = []
    failures = errors = skipped = 0
    for index in range(cases):
        module, case = divmod(index, per_module)
        line = 4 + case * 6
        parts.append(
            f'<testcase classname="tests.test_mod_{module}" name="test_case_{case}" '
            f'file="tests/test_mod_{module}.py" line="{line}" '
            f'time="{rng.uniform(0.0005, 0.004):.3f}"'
        )
        roll = rng.random()
        if roll < FAIL_RATE:
            failures += 1
            parts.append(f">{_FAILURE_OPEN}{_failure_text(module, case, line)}</failure>")
            parts.append("</testcase>")
        elif roll < FAIL_RATE + ERROR_RATE:
            errors += 1
            parts.append(f">{_ERROR_OPEN}{_ERROR_TEXT}</error></testcase>")
        elif roll < FAIL_RATE + ERROR_RATE + SKIP_RATE:
            skipped += 1
            parts.append(
                '><skipped type="pytest.skip" message="requires network">'
                f"tests/test_mod_{module}.py:{line + 1}: requires network</skipped></testcase>"
            )
        else:
            parts.append(" />")
    head = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<testsuites name="pytest tests">'
        f'<testsuite name="pytest" errors="{errors}" failures="{failures}" '
        f'skipped="{skipped}" tests="{cases}" time="{cases * 0.002:.3f}" '
        'timestamp="2024-06-11T10:00:00.000000+00:00" hostname="ci-runner">'
    )
    tail = "</testsuite></testsuites>"
    path.write_text(head + "".join(parts) + tail, encoding="utf-8")
    return Planted(cases=cases, failures=failures, errors=errors, skipped=skipped)


# --- pytest-json-report 1.5 ---------------------------------------------------------------


def _stage(outcome: str, rng: random.Random, **extra: Any) -> dict[str, Any]:
    return {"duration": rng.uniform(5e-5, 4e-3), "outcome": outcome, **extra}


def _json_test(module: int, case: int, roll: float, rng: random.Random) -> dict[str, Any]:
    file = f"tests/test_mod_{module}.py"
    name = f"test_case_{case}"
    lineno = 4 + case * 6  # 0-based, as pytest-json-report writes it
    test: dict[str, Any] = {
        "nodeid": f"{file}::{name}",
        "lineno": lineno,
        "outcome": "passed",
        "keywords": [name, f"test_mod_{module}.py", "tests", "shop", ""],
    }
    if roll < FAIL_RATE:
        helper = f"src/shop/helpers_{module % 37}.py"
        test["outcome"] = "failed"
        test["setup"] = _stage("passed", rng)
        test["call"] = _stage(
            "failed",
            rng,
            crash={"path": f"{ROOT}/{helper}", "lineno": 13, "message": "assert 1 == 2"},
            traceback=[
                {"path": file, "lineno": lineno + 3, "message": ""},
                {"path": helper, "lineno": 41, "message": ""},
                {"path": helper, "lineno": 13, "message": "AssertionError"},
            ],
            longrepr=(
                f"{file}:{lineno + 3}: in {name}\n"
                "    assert helpers.total(items) == 2\n"
                f"{helper}:41: in total\n"
                "    return _sum(items, strict=True)\n"
                f"{helper}:13: in _sum\n"
                "    assert len(items) == 2\n"
                "E   AssertionError: assert 1 == 2\n"
                "E    +  where 1 = len(['apple'])"
            ),
        )
    elif roll < FAIL_RATE + ERROR_RATE:
        test["outcome"] = "error"
        test["setup"] = _stage(
            "failed",
            rng,
            crash={
                "path": f"{ROOT}/tests/conftest.py",
                "lineno": 12,
                "message": "RuntimeError: boom",
            },
            traceback=[{"path": "tests/conftest.py", "lineno": 12, "message": "RuntimeError"}],
            longrepr=(
                "@pytest.fixture\n"
                "    def database():\n"
                '>       raise RuntimeError("boom")\n'
                "E       RuntimeError: boom\n\n"
                "tests/conftest.py:12: RuntimeError"
            ),
        )
    elif roll < FAIL_RATE + ERROR_RATE + SKIP_RATE:
        test["outcome"] = "skipped"
        test["keywords"][1:1] = ["skip", "pytestmark"]
        test["setup"] = _stage(
            "skipped", rng, longrepr=f"('{ROOT}/{file}', {lineno + 1}, 'Skipped: requires network')"
        )
    else:
        test["setup"] = _stage("passed", rng)
        test["call"] = _stage("passed", rng)
    test["teardown"] = _stage("passed", rng)
    return test


def write_pytest_json(path: Path, tests: int, rng: random.Random) -> Planted:
    """Write a pytest-json-report 1.5 report; return what was planted."""
    modules = max(1, tests // CASES_PER_MODULE)
    per_module = -(-tests // modules)
    records = [_json_test(*divmod(index, per_module), rng.random(), rng) for index in range(tests)]
    by_module: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        file = record["nodeid"].partition("::")[0]
        by_module.setdefault(file, []).append(
            {"nodeid": record["nodeid"], "type": "Function", "lineno": record["lineno"]}
        )
    collectors: list[dict[str, Any]] = [
        {"nodeid": "", "outcome": "passed", "result": [{"nodeid": "tests", "type": "Dir"}]},
        *(
            {"nodeid": file, "outcome": "passed", "result": items}
            for file, items in by_module.items()
        ),
        {
            "nodeid": "tests",
            "outcome": "passed",
            "result": [{"nodeid": file, "type": "Module"} for file in by_module],
        },
    ]
    counts = {
        outcome: sum(1 for r in records if r["outcome"] == outcome)
        for outcome in ("passed", "failed", "error", "skipped")
    }
    report = {
        "created": 1718100000.0,
        "duration": tests * 0.002,
        "exitcode": 1 if counts["failed"] or counts["error"] else 0,
        "root": ROOT,
        "environment": {"Python": "3.12.3", "Platform": "Linux-6.8.0-x86_64-with-glibc2.39"},
        "summary": {
            **{k: v for k, v in counts.items() if v},
            "total": tests,
            "collected": tests,
        },
        "collectors": collectors,
        "tests": records,
    }
    # pytest-json-report writes compact JSON unless --json-report-indent is given.
    path.write_text(json.dumps(report), encoding="utf-8")
    return Planted(
        cases=tests, failures=counts["failed"], errors=counts["error"], skipped=counts["skipped"]
    )


# --- measuring ------------------------------------------------------------------------------


def best_of(run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Best wall time of `repeat` calls, and the last call's result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        result = None  # let the previous result go before the next run
        gc.collect()
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    assert result is not None  # repeat >= 1
    return best, result


def peak_mb(run: Callable[[], object]) -> float:
    """Peak traced Python memory of one call, in MB."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MB


def junitparser_walker() -> Callable[[Path], tuple[int, int]] | None:
    """junitparser's usual read loop, or None when it is not installed."""
    try:
        from junitparser import Error, Failure, JUnitXml, TestSuite
    except ImportError:
        return None

    def walk(path: Path) -> tuple[int, int]:
        xml = JUnitXml.fromfile(str(path))
        suites = [xml] if isinstance(xml, TestSuite) else list(xml)
        total = failing = 0
        for suite in suites:
            for case in suite:
                total += 1
                if any(isinstance(result, (Failure, Error)) for result in case.result):
                    failing += 1
        return total, failing

    return walk


def check(label: str, report: ParsedReport, planted: Planted) -> None:
    """Exit non-zero unless the parser found exactly what the generator planted."""
    setup = sum(1 for failure in report.failures if failure.stage == "setup")
    problems = [
        f"{what}: got {got:,}, planted {want:,}"
        for what, got, want in (
            ("failures", len(report.failures), planted.failing),
            ("setup errors", setup, planted.errors),
            ("total", report.total, planted.cases),
        )
        if got != want
    ]
    if problems:
        sys.exit(f"{label}: wrong result: " + "; ".join(problems))


def print_table(rows: list[Row]) -> None:
    header = ("file", "parser", "cases", "size MB", "best s", "cases/s", "peak MB")
    cells = [
        (
            row.file,
            row.parser,
            f"{row.cases:,}",
            f"{row.size / MB:.1f}",
            f"{row.best:.3f}",
            f"{row.cases / row.best:,.0f}",
            f"{row.peak:.1f}" if row.peak is not None else "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]

    def fmt(line: tuple[str, ...]) -> str:
        left = [cell.ljust(w) for cell, w in zip(line[:2], widths[:2], strict=True)]
        right = [cell.rjust(w) for cell, w in zip(line[2:], widths[2:], strict=True)]
        return "  ".join(left + right)

    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for line in cells:
        print(fmt(line))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--cases", type=_positive, default=100_000, help="JUnit test cases")
    parser.add_argument("--json-tests", type=_positive, default=10_000, help="pytest-json tests")
    parser.add_argument("--repeat", type=_positive, default=3, help="timed runs per parser")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="agentloop-bench-") as tmp:
        junit_path = Path(tmp) / "junit.xml"
        json_path = Path(tmp) / "report.json"
        start = time.perf_counter()
        junit_planted = write_junit(junit_path, args.cases, random.Random(SEED))
        json_planted = write_pytest_json(json_path, args.json_tests, random.Random(SEED + 1))
        print(
            f"generated {args.cases:,} JUnit cases ({junit_planted.failures:,} failures, "
            f"{junit_planted.errors:,} errors, {junit_planted.skipped:,} skipped) and "
            f"{args.json_tests:,} pytest-json tests ({json_planted.failures:,} failed, "
            f"{json_planted.errors:,} errors) in {time.perf_counter() - start:.1f} s\n"
        )

        junit_bytes = junit_path.read_bytes()
        best, report = best_of(lambda: parse_junit(junit_bytes), args.repeat)
        check("agentloop JUnit", report, junit_planted)
        peak = peak_mb(lambda: parse_junit(junit_bytes))
        rows.append(Row(junit_path.name, "agentloop", args.cases, len(junit_bytes), best, peak))
        junit_best = best

        walk = junitparser_walker()
        reference: float | None = None
        if walk is None:
            print("junitparser is not installed: skipping the comparison")
            print("  (install it with `.venv/bin/pip install junitparser`)\n")
        else:
            reference, counted = best_of(lambda: walk(junit_path), args.repeat)
            if counted != (junit_planted.cases, junit_planted.failing):
                sys.exit(f"junitparser counted {counted}, planted the other numbers")
            peak = peak_mb(lambda: walk(junit_path))
            rows.append(
                Row(junit_path.name, "junitparser", args.cases, len(junit_bytes), reference, peak)
            )

        json_text = json_path.read_text(encoding="utf-8")
        best, report = best_of(lambda: parse_pytest_json(json_text), args.repeat)
        check("agentloop pytest-json", report, json_planted)
        peak = peak_mb(lambda: parse_pytest_json(json_text))
        rows.append(
            Row(
                json_path.name,
                "agentloop",
                args.json_tests,
                len(json_path.read_bytes()),
                best,
                peak,
            )
        )

    print_table(rows)
    print()
    print(f"failures found match the planted ones (JUnit {junit_planted.failing:,}, ", end="")
    print(f"pytest-json {json_planted.failing:,}); totals match")
    if reference is not None:
        print(
            f"agentloop vs junitparser: {junit_best:.2f} s vs {reference:.2f} s, "
            f"ratio {junit_best / reference:.2f} (below 1: agentloop is faster)"
        )
    if junit_best >= GOAL_SECONDS:
        print("the JUnit parse is over the goal")
    print(f"JUnit {args.cases:,} cases: {junit_best:.2f} s (goal < {GOAL_SECONDS:g} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
