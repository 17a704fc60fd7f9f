"""Writes history-v2.db: a ledger as agentloop wrote it before pull requests were recorded.

Run with the agentloop of that time on the path (schema version 2, commit ed1cbee):
    PYTHONPATH=<checkout at ed1cbee>/src python tests/data/ledgers/make_ledger.py OUT.db
Two runs, four tasks (ids are fingerprints: 12 hex digits, as failures.model.short_hash
makes them), attempts with costs; the WAL is checkpointed so the file stands alone.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

from agentloop.history import AttemptRecord, History, TaskRecord


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = at("2025-01-06T10:00:00")

    def __call__(self) -> datetime:
        return self.now


def main(path: Path) -> None:
    clock = Clock()
    with History.open(path, clock=clock) as h:
        h.start_run("20250106T100000Z", branch="agentloop/autofix-20250106T100000Z",
                    base_sha="1" * 40, tasks_total=3)  # fmt: skip
        for task, category, outcome, cost in (
            ("aaaaaaaaaaa1", "logic_bug", "fixed", 0.20),
            ("bbbbbbbbbbb2", "type_error", "fixed", 0.10),
            ("ccccccccccc3", "logic_bug", "max_turns", 0.30),
        ):
            h.record_attempt(
                AttemptRecord(
                    "20250106T100000Z", task, category, 1, outcome, cost, 60.0, 9, clock.now
                )  # fmt: skip
            )
            h.finish_task(
                TaskRecord("20250106T100000Z", task, category,
                           "fixed" if outcome == "fixed" else "unfixed", tests=1, verified=True)
            )  # fmt: skip
        clock.now = at("2025-01-06T10:20:00")
        h.finish_run("20250106T100000Z", status="completed")

        clock.now = at("2025-01-13T10:00:00")
        h.start_run("20250113T100000Z", branch="agentloop/autofix-20250113T100000Z",
                    base_sha="2" * 40, tasks_total=1)  # fmt: skip
        h.record_attempt(
            AttemptRecord(
                "20250113T100000Z",
                "ddddddddddd4",
                "missing_dependency",
                1,
                "fixed",
                0.40,
                120.0,
                12,
                clock.now,
            )  # fmt: skip
        )
        h.finish_task(
            TaskRecord(
                "20250113T100000Z",
                "ddddddddddd4",
                "missing_dependency",
                "fixed",
                tests=2,
                verified=True,
            )  # fmt: skip
        )
        clock.now = at("2025-01-13T10:10:00")
        h.finish_run("20250113T100000Z", status="completed")
    # The file stays in WAL mode, as every ledger is; the last connection's close folds
    # the WAL into it and removes the -wal file: this checks that it did.
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    assert not path.with_name(path.name + "-wal").exists()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
