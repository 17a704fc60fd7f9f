"""Order tasks: low-level modules first (utilities before features), then the tasks that
fail the most tests, then by id so the order is stable."""

from __future__ import annotations

import dataclasses

from agentloop.failures.model import Task

_UNKNOWN = 1 << 30


def order(tasks: list[Task], levels: dict[str, int]) -> list[Task]:
    placed = [
        dataclasses.replace(
            task,
            level=levels.get(task.crash_location.file) if task.crash_location else None,
        )
        for task in tasks
    ]
    return sorted(
        placed,
        key=lambda t: (_UNKNOWN if t.level is None else t.level, -len(t.failures), t.id),
    )
