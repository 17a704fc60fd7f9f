"""What the integrity check reads out of one test file, whatever its language.

The Python reader (`python_tests`) and the JS/TS reader (`js_tests`) both produce these
records; `integrity` compares them and never looks at source text itself. The readers of
the test surface (`python_patches`, `js_patches`, `testinfra`) report `Finding`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "hidden": pytest does not collect the test at all (a class renamed away from `Test*`,
# `__test__ = False`, a test turned into a fixture).
IntegrityKind = Literal[
    "test_file_deleted",
    # Also renamed away: the old name no longer runs.
    "test_deleted",
    # Fewer `parametrize`/`.each` cases.
    "cases_removed",
    "assertion_removed",
    # Weaker, with a larger tolerance, or unable to fail (emptied body, early return,
    # swallowed by try/except).
    "assertion_loosened",
    # As strict as before but expecting another value, e.g. what the bug returns; also a
    # changed parametrized case or a rewritten stored snapshot.
    "expectation_changed",
    # A module-, class- or test-level constant an assertion compares against now holds
    # another value (`EXPECTED = 5` -> `EXPECTED = 6`).
    "constant_changed",
    "skip_added",
    # Reruns (`flaky`, `retry`, `jest.retryTimes`) make a failing test pass by chance.
    "retry_added",
    # `.only`/`fit`/`fdescribe`: the rest of the file stops running.
    "only_added",
    "timeout_raised",
    # The AFTER file does not parse, so nothing in it can be checked.
    "unparseable",
    # A second definition (or an assignment, a `del`) in the same scope replaces a test:
    # the first one no longer runs.
    "test_shadowed",
    # pytest stops collecting tests: a class renamed away from `Test*`, `__test__ = False`,
    # `collect_ignore`, `-k`/`--deselect`/`testpaths` in the configuration.
    "tests_deselected",
    # The tests replace the code they test: `ops.add = ...`, `monkeypatch.setattr`,
    # `mock.patch`, `vi.mock`, a changed import path.
    "code_under_test_patched",
    # pytest's own behaviour changed: a `pytest_*` hook, `pytest_plugins`, `-p`, or a
    # patch of pytest or unittest themselves.
    "hooks_changed",
    # The test runner's configuration (pytest, jest, vitest, the `test` script) changed.
    "config_changed",
    # Code that runs before any test changed: sitecustomize, `.pth`, a JS setup file.
    "infrastructure_changed",
    # `os._exit`, `sys.exit`, `pytest.exit`, `process.exit`: the run ends before a failure
    # is reported.
    "exit_added",
]

MarkerKind = Literal["skip", "retry", "hidden"]
# A timeout as written: a number, an expression we cannot evaluate, or none set.
Timeout = float | str | None


@dataclass(frozen=True)
class Tolerance:
    """One tolerance parameter of one comparison, e.g. `approx(rel)`."""

    name: str
    # None when the value is an expression: it is then not compared.
    value: float | None
    # True for rel/abs/delta, False for places/numDigits (fewer digits is looser).
    looser_when_larger: bool


@dataclass(frozen=True)
class Assertion:
    # Identity independent of formatting: two assertions with one shape are the same.
    shape: str
    # What asserts: "assert", "assertEqual", "toBe", "pytest.raises".
    family: str
    # 0 always passes, 1 truthiness or a negation, 2 partial (order, membership, type,
    # tolerance), 3 exact (equality, identity, a specific exception).
    rank: int
    # Comparisons and `and`-ed terms: `assert 0 < x < 9 and y` has three.
    conditions: int
    # Literal values in what is compared (not messages, not tolerances), sorted.
    literals: tuple[str, ...]
    tolerances: tuple[Tolerance, ...]
    # Short source text for a violation's detail.
    text: str
    # Why it can no longer fail, e.g. "after an early `return`"; None when it can.
    defeated: str | None = None
    # Constants the assertion reads (`EXPECTED`, `self.RATE`), each with its value as
    # written; their literals are counted in `literals`.
    constants: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Marker:
    kind: MarkerKind
    # Formatting-independent text; a changed condition is a different marker.
    identity: str
    # None: on the test itself; otherwise the class or describe block that carries it.
    origin: str | None = None


@dataclass(frozen=True)
class FunctionFacts:
    """A test, or (in `FileFacts.helpers`) a helper whose assertions tests rely on."""

    # Qualified: "TestCart.test_total" (Python), "cart > adds items" (JS).
    name: str
    # The last part of `name`: a test moved to another class or describe keeps it.
    leaf: str
    # The body's identity, to tell a renamed test from a deleted one.
    shape: str
    assertions: tuple[Assertion, ...]
    # The body is `pass`, `...`, `{}` or missing (`it.todo`).
    empty: bool
    markers: tuple[Marker, ...]
    timeout: Timeout
    # Parametrized cases (`parametrize`, `.each`); 1 when not parametrized, None when the
    # table is not a literal.
    cases: int | None
    # Each parametrized case in a formatting-independent form: a case that is no longer
    # there changed or went (adding cases is fine).
    table: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileFacts:
    tests: tuple[FunctionFacts, ...] = ()
    # Python functions that are not tests (helpers, fixtures): only their assertions count.
    helpers: tuple[FunctionFacts, ...] = ()
    # Markers that reach every test of the file or beyond it (`pytestmark`, a fixture that
    # skips, `jest.retryTimes`): compared per file.
    markers: tuple[Marker, ...] = ()
    # JS `.only`, `fit`, `fdescribe`: each narrows the whole file.
    only: int = 0
    # A file-wide timeout (`jest.setTimeout`, `vi.setConfig({testTimeout})`).
    timeout: Timeout = None
    # Why the file could not be read (a syntax error); the other fields are then empty.
    problem: str | None = None
    # Assertions and skip-like words counted in the raw text: the fallback comparison
    # when the BEFORE side does not parse.
    rough_assertions: int = 0
    rough_markers: int = 0
    # Tests that a later definition, assignment or `del` in the same scope replaced:
    # (qualified name, how), e.g. ("test_add", "defined again on line 12").
    shadowed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Finding:
    """One violation found in one file of the test surface; `integrity` adds the path."""

    kind: IntegrityKind
    detail: str
    # The test concerned, None for the whole file.
    test: str | None = None
