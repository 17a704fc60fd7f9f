"""The generated repository of benchmarks/autofix_bench.py, and how to count its test runs.

`generate(root, config)` writes a small QuixBugs-style project (one buggy program per
module, each with its own parametrized test module), a helper shared by two programs with
one bug that fails tests in both, one flaky test, and filler modules whose passing tests
carry most of the suite's running time. It returns what was planted: every root cause,
the test ids it fails, and the one-line fix a scripted model applies.

`tools_dir(path)` writes, outside any repository, the two files that count what the
contestants run without being part of the project (agentloop's rails never see them):
a pytest plugin (loaded through PYTEST_PLUGINS) appending one JSON line per pytest process,
and a sitecustomize appending each Python process's own CPU time when it exits.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Environment variables the generated tests and the counting tools read.
LOG_VARIABLE = "AUTOFIX_BENCH_PYTEST_LOG"
CPU_VARIABLE = "AUTOFIX_BENCH_CPU_LOG"
STATE_VARIABLE = "AUTOFIX_BENCH_STATE"
PLUGIN = "autofix_bench_counter"


@dataclass(frozen=True)
class Program:
    """A QuixBugs-style program: correct source, and the whole lines the bug replaces."""

    name: str
    source: str
    fixed: str  # whole lines of `source`, without the final newline
    buggy: str  # what they read in the generated repository
    cases: tuple[tuple[Any, ...], ...]  # argument tuples
    call: str = "{name}(*args)"  # how a test calls it; expected values come from `source`


PROGRAMS: tuple[Program, ...] = (
    Program(
        "bitcount",
        """\
        def bitcount(n):
            count = 0
            while n:
                n &= n - 1
                count += 1
            return count
        """,
        "        n &= n - 1",
        "        n >>= 2",
        ((0,), (1,), (2,), (3,), (127,), (128,), (255,)),
    ),
    Program(
        "bucketsort",
        """\
        def bucketsort(arr, k):
            counts = [0] * k
            for x in arr:
                counts[x] += 1
            sorted_arr = []
            for i, count in enumerate(counts):
                sorted_arr.extend([i] * count)
            return sorted_arr
        """,
        "    for i, count in enumerate(counts):",
        "    for i, count in enumerate(arr):",
        (([], 3), ([0], 1), ([3, 1, 2], 4), ([2, 2, 0, 1], 3), ([5, 4, 3, 2, 1], 6)),
    ),
    Program(
        "flatten",
        """\
        def flatten(arr):
            for x in arr:
                if isinstance(x, list):
                    yield from flatten(x)
                else:
                    yield x
        """,
        "            yield from flatten(x)",
        "            yield flatten(x)",
        (([],), ([1, 2],), ([[1], 2],), ([[1, [2, 3]], 4],), (["a", "b"],)),
        call="list(flatten(*args))",
    ),
    Program(
        "gcd",
        """\
        def gcd(a, b):
            while b:
                a, b = b, a % b
            return a
        """,
        "    return a",
        "    return b",
        ((0, 0), (12, 8), (35, 21), (17, 5), (100, 75)),
    ),
    Program(
        "get_factors",
        """\
        def get_factors(n):
            if n == 1:
                return []
            for i in range(2, int(n**0.5) + 1):
                if n % i == 0:
                    return [i, *get_factors(n // i)]
            return [n]
        """,
        "            return [i, *get_factors(n // i)]\n    return [n]",
        "            return [i, *get_factors(n // i)]\n    return []",
        ((1,), (4,), (12,), (13,), (100,)),
    ),
    Program(
        "is_valid_parenthesization",
        """\
        def is_valid_parenthesization(parens):
            depth = 0
            for paren in parens:
                if paren == "(":
                    depth += 1
                else:
                    depth -= 1
                    if depth < 0:
                        return False
            return depth == 0
        """,
        "    return depth == 0",
        "    return True",
        (("()",), (")(",), ("(()",), ("(())()",), ("((",)),
    ),
    Program(
        "kth",
        """\
        def kth(arr, k):
            pivot = arr[0]
            below = [x for x in arr if x < pivot]
            above = [x for x in arr if x > pivot]
            num_less = len(below)
            num_lessoreq = len(arr) - len(above)
            if k < num_less:
                return kth(below, k)
            elif k >= num_lessoreq:
                return kth(above, k - num_lessoreq)
            else:
                return pivot
        """,
        "        return kth(above, k - num_lessoreq)",
        "        return kth(above, k)",
        (([3, 1, 2], 0), ([3, 1, 2], 2), ([5, 4, 3, 2, 1], 1), ([1, 2, 3, 4], 3), ([7], 0)),
    ),
    Program(
        "max_sublist_sum",
        """\
        def max_sublist_sum(arr):
            max_ending_here = 0
            max_so_far = 0
            for x in arr:
                max_ending_here = max(0, max_ending_here + x)
                max_so_far = max(max_so_far, max_ending_here)
            return max_so_far
        """,
        "        max_ending_here = max(0, max_ending_here + x)",
        "        max_ending_here = max_ending_here + x",
        (([1, 2, 3],), ([4, -5, 2, 1],), ([-1, 3],), ([-2, -3, 4, -1, 2],), ([],)),
    ),
    Program(
        "pascal",
        """\
        def pascal(n):
            rows = [[1]]
            for r in range(1, n):
                row = []
                for c in range(0, r + 1):
                    upleft = rows[r - 1][c - 1] if c > 0 else 0
                    upright = rows[r - 1][c] if c < r else 0
                    row.append(upleft + upright)
                rows.append(row)
            return rows
        """,
        "        for c in range(0, r + 1):",
        "        for c in range(0, r):",
        ((1,), (2,), (3,), (5,)),
    ),
    Program(
        "powerset",
        """\
        def powerset(arr):
            if arr:
                first, *rest = arr
                rest_subsets = powerset(rest)
                return rest_subsets + [[first, *subset] for subset in rest_subsets]
            return [[]]
        """,
        "        return rest_subsets + [[first, *subset] for subset in rest_subsets]",
        "        return [[first, *subset] for subset in rest_subsets]",
        (([],), (["a"],), (["a", "b"],), ([1, 2, 3],)),
    ),
    Program(
        "rpn_eval",
        """\
        def rpn_eval(tokens):
            stack = []
            for token in tokens:
                if isinstance(token, float):
                    stack.append(token)
                else:
                    a = stack.pop()
                    b = stack.pop()
                    stack.append({"+": b + a, "-": b - a, "*": b * a, "/": b / a}[token])
            return stack.pop()
        """,
        '            stack.append({"+": b + a, "-": b - a, "*": b * a, "/": b / a}[token])',
        '            stack.append({"+": a + b, "-": a - b, "*": a * b, "/": a / b}[token])',
        (([3.0, 5.0, "+"],), ([2.0, 4.0, "*"],), ([9.0, 4.0, "-"],), ([8.0, 2.0, "/"],)),
    ),
    Program(
        "sieve",
        """\
        def sieve(max):
            primes = []
            for n in range(2, max + 1):
                if all(n % p > 0 for p in primes):
                    primes.append(n)
            return primes
        """,
        "        if all(n % p > 0 for p in primes):",
        "        if any(n % p > 0 for p in primes):",
        ((0,), (1,), (2,), (10,), (30,)),
    ),
    Program(
        "to_base",
        """\
        import string


        def to_base(num, b):
            result = ""
            alphabet = string.digits + string.ascii_uppercase
            while num > 0:
                i = num % b
                num = num // b
                result = alphabet[i] + result
            return result
        """,
        "        result = alphabet[i] + result",
        "        result = result + alphabet[i]",
        ((7, 10), (31, 16), (8, 2), (255, 16), (1, 2)),
    ),
)

# The shared root cause: `last` in quix/common.py is off by one, so every caller that
# passes a non-empty list crashes inside it (one error, one crash site: one root cause).
COMMON = """\
def last(xs, default=None):
    \"\"\"The last element of xs, or default when xs is empty.\"\"\"
    if not xs:
        return default
    return xs[len(xs) - 1]
"""
COMMON_FIXED = "    return xs[len(xs) - 1]"
COMMON_BUGGY = "    return xs[len(xs)]"
# Two callers; each gets failing cases (non-empty input) and passing ones (empty input).
CALLERS: dict[str, str] = {
    "spread": """\
from quix.common import last


def spread(xs):
    top = last(sorted(xs))
    return 0 if top is None else top - min(xs)
""",
    "tail_sum": """\
from quix.common import last


def tail_sum(rows):
    return sum(last(row, 0) for row in rows)
""",
}
Cases = list[tuple[Any, ...]]
CALLER_PASSING: dict[str, Cases] = {"spread": [([],), ((),)], "tail_sum": [([],), ([[], []],)]}
CALLER_FAILING: dict[str, Cases] = {
    "spread": [([3, 1, 2],), ([5, 9],)],
    "tail_sum": [([[1, 2], [3]],), ([[4]],)],
}
CALLER_EXPECTED: dict[str, Callable[..., Any]] = {
    "spread": lambda xs: max(xs) - min(xs) if xs else 0,
    "tail_sum": lambda rows: sum(r[-1] for r in rows if r),
}

FLAKY_TEST = "tests/test_mailer.py::test_send_retries"
FLAKY = """\
import os
from pathlib import Path


def test_send_retries():
    # Stands in for a test that fails now and then (a timeout, a port in use): it fails the
    # first time it runs for a contestant and passes on every later run.
    state = os.environ.get("{state}")
    if not state:
        return
    marker = Path(state) / "mailer-ran"
    first = not marker.exists()
    marker.touch()
    assert not first, "ConnectionResetError: [Errno 104] Connection reset by peer (smtp)"
"""


@dataclass(frozen=True)
class Config:
    bugs: int = 8  # independent bugs, one program each
    shared: int = 2  # failing tests of the one helper bug
    filler: int = 20  # modules with only passing tests
    filler_tests: int = 5  # tests per filler module
    suite_seconds: float = 10.0  # the passing tests' sleeps add up to this


@dataclass(frozen=True)
class RootCause:
    """One planted bug: the file to fix, the lines to replace, the tests it fails. `key` is
    a string the prompt of a session on this bug contains (the test file, or the crash
    site for the shared helper), for the scripted model to match."""

    key: str
    path: str
    buggy: str
    fixed: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Planted:
    causes: tuple[RootCause, ...]
    flaky: str
    passing: tuple[str, ...]
    total: int  # tests in the suite

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(t for c in self.causes for t in c.tests)


def _evaluate(source: str, name: str, call: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
    """(raised, value) of `call` on `args` with `source` defining `name`."""
    scope: dict[str, Any] = {}
    exec(textwrap.dedent(source), scope)
    try:
        return False, eval(call.format(name=name), {**scope, "args": args})
    except Exception as exc:
        return True, type(exc).__name__


def _test_module(name: str, call: str, rows: Sequence[tuple[Any, Any, float]]) -> str:
    cases = "".join(
        f"    ({args!r}, {expected!r}, {pause:.4f}),\n" for args, expected, pause in rows
    )
    return (
        f"import time\n\nimport pytest\n\nfrom quix.{name} import {name}\n\n"
        "# (arguments, expected result, seconds the case sleeps: the passing cases share\n"
        "# the suite's running time, the failing ones are quick)\n"
        f"CASES = [\n{cases}]\n\n\n"
        '@pytest.mark.parametrize(("args", "expected", "pause"), CASES,\n'
        '                         ids=[f"case{i}" for i in range(len(CASES))])\n'
        f"def test_{name}(args, expected, pause):\n"
        "    time.sleep(pause)\n"
        f"    assert {call.format(name=name)} == expected\n"
    )


def generate(root: Path, config: Config) -> Planted:
    """Write the project under `root` (not a git repository yet) and say what it plants."""
    if not 1 <= config.bugs <= len(PROGRAMS):
        raise ValueError(f"bugs must be between 1 and {len(PROGRAMS)}, not {config.bugs}")
    if config.shared < 0:
        raise ValueError("shared must be 0 or more")
    files: dict[str, str] = {
        "pyproject.toml": (
            '[project]\nname = "quix"\nversion = "0"\n\n'
            '[tool.pytest.ini_options]\npythonpath = ["."]\ntestpaths = ["tests"]\n'
        ),
        "quix/__init__.py": "",
        "tests/__init__.py": "",
        ".gitignore": "__pycache__/\n.pytest_cache/\n",
    }
    # Each module's cases as (args, expected, fails with the bug); pauses are set last,
    # when the number of passing tests is known.
    modules: list[tuple[str, str, list[tuple[Any, Any, bool]]]] = []
    causes: list[RootCause] = []
    for program in PROGRAMS[: config.bugs]:
        source = textwrap.dedent(program.source)
        if source.count(program.fixed + "\n") != 1:
            raise AssertionError(f"{program.name}: the fixed lines must occur once")
        buggy_source = source.replace(program.fixed + "\n", program.buggy + "\n")
        # The scripted fix replaces the buggy text wherever it is: it must be there once.
        if buggy_source.count(program.buggy) != 1:
            raise AssertionError(f"{program.name}: the buggy lines must occur once")
        rows = []
        for args in program.cases:
            raised, expected = _evaluate(source, program.name, program.call, args)
            if raised:
                raise AssertionError(f"{program.name}{args!r} raises {expected}")
            got = _evaluate(buggy_source, program.name, program.call, args)
            rows.append((args, expected, got != (False, expected)))
        if all(fails for *_, fails in rows) or not any(fails for *_, fails in rows):
            raise AssertionError(f"{program.name}: needs both passing and failing cases")
        files[f"quix/{program.name}.py"] = buggy_source
        modules.append((program.name, program.call, rows))
        test_file = f"tests/test_{program.name}.py"
        causes.append(
            RootCause(
                key=test_file,
                path=f"quix/{program.name}.py",
                buggy=program.buggy,
                fixed=program.fixed,
                tests=tuple(
                    f"{test_file}::test_{program.name}[case{i}]"
                    for i, (*_, fails) in enumerate(rows)
                    if fails
                ),
            )
        )
    if config.shared:
        files["quix/common.py"] = COMMON.replace(COMMON_FIXED + "\n", COMMON_BUGGY + "\n")
        failing: dict[str, Cases] = {name: [] for name in CALLERS}
        for i in range(config.shared):
            owner = list(CALLERS)[i % len(CALLERS)]
            pool = CALLER_FAILING[owner]
            failing[owner].append(pool[len(failing[owner]) % len(pool)])
        shared_tests = []
        for name, source in CALLERS.items():
            files[f"quix/{name}.py"] = source
            expected_of = CALLER_EXPECTED[name]
            rows = [(a, expected_of(*a), False) for a in CALLER_PASSING[name]]
            rows += [(a, expected_of(*a), True) for a in failing[name]]
            modules.append((name, "{name}(*args)", rows))
            shared_tests += [
                f"tests/test_{name}.py::test_{name}[case{i}]"
                for i, (*_, fails) in enumerate(rows)
                if fails
            ]
        # The crash site is in the helper: the prompt of a session on it names the file.
        causes.append(
            RootCause(
                "quix/common.py", "quix/common.py", COMMON_BUGGY, COMMON_FIXED, tuple(shared_tests)
            )
        )
    files["tests/test_mailer.py"] = FLAKY.replace("{state}", STATE_VARIABLE)
    for index in range(config.filler):
        name = f"feature_{index:02d}"
        files[f"quix/{name}.py"] = f"def {name}(x):\n    return x * {index + 2}\n"
        rows = [((x,), x * (index + 2), False) for x in range(config.filler_tests)]
        modules.append((name, "{name}(*args)", rows))
    passing_count = sum(1 for *_, rows in modules for *_, fails in rows if not fails)
    pause = config.suite_seconds / passing_count if passing_count else 0.0
    passing: list[str] = []
    for name, call, rows in modules:
        files[f"tests/test_{name}.py"] = _test_module(
            name,
            call,
            [(args, expected, 0.0 if fails else pause) for args, expected, fails in rows],
        )
        passing += [
            f"tests/test_{name}.py::test_{name}[case{i}]"
            for i, (*_, fails) in enumerate(rows)
            if not fails
        ]
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    total = sum(len(rows) for *_, rows in modules) + 1
    return Planted(tuple(causes), FLAKY_TEST, tuple(passing), total)


# ---------------------------------------------------------------- counting

_COUNTER = '''\
"""Loaded into every pytest process of a benchmark run through PYTEST_PLUGINS: appends one
JSON line to $%(log)s when the process ends."""
import json
import os
import resource
import sys
import time

_START = time.time()
_COUNTS = {"collected": 0, "ran": 0, "failed": 0}


def pytest_collection_finish(session):
    _COUNTS["collected"] = len(session.items)


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _COUNTS["ran"] += 1
        _COUNTS["failed"] += 1 if report.failed else 0


def pytest_unconfigure(config):
    path = os.environ.get("%(log)s")
    if not path:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    line = dict(_COUNTS, pid=os.getpid(), args=sys.argv[1:], cwd=os.getcwd(), start=_START,
                end=time.time(), cpu=usage.ru_utime + usage.ru_stime)
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\\n")
'''

_SITECUSTOMIZE = '''\
"""Every Python process of a benchmark run appends its own CPU time to $%(cpu)s at exit
(resource.getrusage(RUSAGE_SELF): this process only, every thread, no children)."""
import atexit
import os


def _record():
    path = os.environ.get("%(cpu)s")
    if not path:
        return
    import json
    import resource
    import sys

    usage = resource.getrusage(resource.RUSAGE_SELF)
    line = {"pid": os.getpid(), "argv": sys.argv[:3], "pytest": "%(plugin)s" in sys.modules,
            "cpu": usage.ru_utime + usage.ru_stime}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\\n")


atexit.register(_record)
'''


def tools_dir(path: Path) -> Path:
    """Write the counting plugin and the sitecustomize into `path` (put it on PYTHONPATH)."""
    path.mkdir(parents=True, exist_ok=True)
    names = {"log": LOG_VARIABLE, "cpu": CPU_VARIABLE, "plugin": PLUGIN}
    (path / f"{PLUGIN}.py").write_text(_COUNTER % names, encoding="utf-8")
    (path / "sitecustomize.py").write_text(_SITECUSTOMIZE % names, encoding="utf-8")
    return path


def counting_env(tools: Path, logs: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Variables that make every pytest and Python process under them report to `logs`."""
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "state").mkdir(exist_ok=True)
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (str(tools), base.get("PYTHONPATH")) if p),
        "PYTEST_PLUGINS": PLUGIN,
        LOG_VARIABLE: str(logs / "pytest.jsonl"),
        CPU_VARIABLE: str(logs / "cpu.jsonl"),
        STATE_VARIABLE: str(logs / "state"),
    }


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
