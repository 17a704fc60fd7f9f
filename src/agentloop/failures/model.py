"""Typed, frozen records for failures and the tasks they group into."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

Stage = Literal["collection", "setup", "call", "teardown"]
Category = Literal[
    "missing_dependency",
    "type_error",
    "logic_bug",
    "stale_mock",
    "env_mismatch",
    "collection_error",
    "fixture_error",
    "timeout",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
# Which runner wrote a report decides how a single test is re-run.
Dialect = Literal["pytest", "vitest", "jest", "go", "surefire", "junit"]
# A test that fails alone in some re-runs and passes in others. (One that passes alone but
# fails after the tests that ran before it is no flake: it is a task, see Failure.polluter.)
FlakyKind = Literal["flaky"]


def short_hash(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ParsedFailure:
    """What a report says about one failing test, before agentloop judges it."""

    dialect: Dialect
    test_id: str
    test_name: str
    file: str | None
    line: int | None
    error_type: str
    message: str
    text: str
    stage: Stage
    # Outermost first, innermost (where it raised) last; paths as the report gives them.
    frames: tuple[Location, ...] = ()
    timed_out: bool = False
    # Dialect-specific pieces a selector needs (e.g. the JUnit classname, the Go package).
    classname: str = ""
    # Seconds the test took in the run that reported it (all its stages), when known:
    # what a re-run of it may take (see agentloop.reruns).
    duration: float | None = None
    # For a subtest (test_id `node [msg] (k=v)`): the test it runs in, which is all a
    # selector can name.
    parent: str = ""


@dataclass(frozen=True)
class ParsedReport:
    dialect: Dialect
    format: Literal["pytest-json", "junit", "vitest-json"]
    failures: tuple[ParsedFailure, ...]
    total: int
    # e.g. "pytest exited 5: no tests collected"
    notes: tuple[str, ...] = ()
    # The ids of the tests that ran and passed, where the parser records them (vitest's
    # JSON, vitest's and jest's JUnit): a batch of selected tests learns which of them
    # really ran from it (agentloop.testrun). Empty for the other formats.
    passed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Failure:
    """One failing test, ready for a human or an agent. See schemas/detect.schema.json."""

    id: str
    suite: str
    # The runner that reported it; decides how its selector's result is read.
    runner: Dialect
    test_id: str
    file: str | None
    line: int | None
    test_name: str
    selector: str | None
    cwd: str
    error_type: str
    message: str
    stack_trace: str
    crash_location: Location | None
    stage: Stage
    category: Category
    duration: float | None = None
    # Passes alone, fails after the tests that ran before it in the suite's process: test
    # pollution, deterministic. The selector then runs what makes it fail, in order.
    order_dependent: bool = False
    # The one earlier test that makes it fail (found by bisection); None when no single
    # test does, or the runner allows no search.
    polluter: str | None = None
    # A subtest's test (ParsedFailure.parent): the node id a runner knows.
    parent: str = ""


@dataclass(frozen=True)
class FlakyTest:
    failure: Failure
    kind: FlakyKind
    reruns: int
    passes: int


@dataclass(frozen=True)
class Task:
    """Failures that share one root cause: fix it once, all of them should pass."""

    id: str
    category: Category
    error_type: str
    message: str
    crash_location: Location | None
    failures: tuple[Failure, ...]
    # Height in the project's import graph: 0 = imports no other project module.
    level: int | None = None

    @property
    def fingerprint(self) -> str:
        """The failure as another run (another process, another checkout) will see it
        again: which tests fail, and with which error type. The id is not that: it comes
        from the message, whose values vary between processes (dict order under hash
        randomisation, object addresses in a truncated repr), found on toolz."""
        return short_hash(
            "fingerprint",
            *sorted(f"{f.suite}::{f.test_id}::{f.error_type}" for f in self.failures),
        )


@dataclass(frozen=True)
class SuiteRun:
    name: str
    format: str
    command: str
    cwd: str
    exit_code: int | None
    duration: float
    timed_out: bool
    tests: int
    # Tests the runner collected but never ran (stopped at a collection error, killed at
    # its timeout, -x); None when the runner does not say.
    not_run: int | None = None
