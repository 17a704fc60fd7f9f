"""Group failures by root cause: same error type, same normalised message, same crash
location. One broken helper that fails fifty tests becomes one task listing fifty tests."""

from __future__ import annotations

import re
from collections import Counter

from agentloop.failures.model import Failure, Task, short_hash

_NORMALISERS = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x?"),
    (re.compile(r"(?:/[\w.@+-]+)+/?"), "<path>"),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\""), "<str>"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "<n>"),
    (re.compile(r"\s+"), " "),
)


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


def group(failures: list[Failure]) -> list[Task]:
    buckets: dict[tuple[str, str, str], list[Failure]] = {}
    for failure in failures:
        buckets.setdefault(signature(failure), []).append(failure)
    tasks = []
    for key, members in buckets.items():
        category = Counter(f.category for f in members).most_common(1)[0][0]
        first = members[0]
        tasks.append(
            Task(
                id=short_hash(*key),
                category=category,
                error_type=first.error_type,
                message=first.message,
                crash_location=first.crash_location,
                failures=tuple(members),
            )
        )
    return tasks
