"""Group failures by root cause. One broken helper that fails fifty tests becomes one task
listing fifty tests.

Two failures share a cause when any of these holds, and causes chain (A with B and B with
C puts all three in one task):
- the same signature: error type, normalised message, crash location;
- cases of one test (the parametrized cases of a pytest function, the subtests of one
  test, the rows of a JS `test.each`) failing with the same error type at the same crash
  location, whatever their messages: the assertion that compares lists of different
  lengths prints a different message for every case;
- the same missing thing (`failures.missing`): an attribute, name, export, module or
  package, wherever it crashed;
- the same polluter: order-dependent failures after one test that leaves state behind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from agentloop.failures.missing import Missing, missing
from agentloop.failures.model import Failure, Task, short_hash

_NORMALISERS = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x?"),
    (re.compile(r"(?:/[\w.@+-]+)+/?"), "<path>"),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\""), "<str>"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "<n>"),
    (re.compile(r"\s+"), " "),
)
# A pytest node id's test, without its parametrize id or subtest description:
# `tests/t.py::T::test_y[a b] [msg] (i=1)` → `tests/t.py::T::test_y`.
_PYTEST_TEST = re.compile(r"^[^\[\s]*")

Key = tuple[str, ...]


def normalize_message(message: str) -> str:
    """The first line of a message with the values that vary per test taken out."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, replacement in _NORMALISERS:
        first = pattern.sub(replacement, first)
    return first.strip()


def signature(failure: Failure) -> tuple[str, str, str]:
    where = (
        str(failure.crash_location)
        if failure.crash_location
        else f"{failure.suite}:{failure.test_id}"
    )
    return (failure.error_type, normalize_message(failure.message), where)


def test_family(failure: Failure) -> str:
    """The test a failure is one case of: itself, unless it is a parametrized case, a
    subtest or a row of `test.each`."""
    test_id = failure.test_id
    if failure.runner == "pytest":
        path, sep, rest = test_id.partition("::")
        match = _PYTEST_TEST.match(rest)
        return f"{path}{sep}{match.group() if match else rest}"
    if failure.runner in ("vitest", "jest"):
        # `test.each` names each row from one template: the values are what differ.
        return f"{failure.file or ''} > {normalize_message(failure.test_name)}"
    return test_id


def missing_of(failure: Failure) -> Missing | None:
    return missing(failure.runner, failure.error_type, failure.message)


def _keys(failure: Failure) -> list[Key]:
    keys: list[Key] = [("signature", *signature(failure))]
    if failure.crash_location is not None and failure.stage != "collection":
        where = str(failure.crash_location)
        family = test_family(failure)
        keys.append(("case", failure.suite, family, failure.error_type, where))
    found = missing_of(failure)
    if found is not None:
        keys.append(("missing", *found.key()))
    if failure.polluter is not None:
        # One test that leaves state behind breaks every test it reaches: one cause.
        keys.append(("polluter", failure.suite, failure.polluter))
    return keys


def _primary(failure: Failure) -> tuple[int, Key]:
    """The key a task's id comes from (the lowest rank wins): what stays the same while
    some of its failures come and go (a fixed case, a test that no longer imports the
    missing name, a victim of the same polluter)."""
    if failure.polluter is not None:
        return -1, ("polluter", failure.suite, failure.polluter)
    found = missing_of(failure)
    if found is not None:
        return 0, ("missing", *found.key())
    family = test_family(failure)
    if family != failure.test_id and failure.crash_location is not None:
        where = str(failure.crash_location)
        return 1, ("case", failure.suite, family, failure.error_type, where)
    # A plain signature keeps the id it had before tasks could merge.
    return 2, signature(failure)


def _clusters(failures: Sequence[Failure]) -> list[list[Failure]]:
    parent = list(range(len(failures)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Key, int] = {}
    for i, failure in enumerate(failures):
        for key in _keys(failure):
            j = first.setdefault(key, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the earliest failure stays the root
    clusters: dict[int, list[Failure]] = {}
    for i, failure in enumerate(failures):
        clusters.setdefault(root(i), []).append(failure)
    return list(clusters.values())


def _message(members: list[Failure]) -> str:
    """What is missing, when that is the cause: the most telling description (one that
    names the owner); otherwise the first failure's own message."""
    described = [m for m in (missing_of(f) for f in members) if m is not None]
    if described:
        return max(described, key=lambda m: bool(m.owner)).describe()
    polluters = {f.polluter for f in members}
    if len(members) > 1 and len(polluters) == 1 and None not in polluters:
        return f"{len(members)} tests fail after {members[0].polluter}: {members[0].message}"
    return members[0].message


def group(failures: list[Failure]) -> list[Task]:
    tasks = []
    for members in _clusters(failures):
        category = Counter(f.category for f in members).most_common(1)[0][0]
        first = members[0]
        tasks.append(
            Task(
                id=short_hash(*min(_primary(f) for f in members)[1]),
                category=category,
                error_type=first.error_type,
                message=_message(members),
                crash_location=first.crash_location,
                failures=tuple(members),
            )
        )
    return tasks
