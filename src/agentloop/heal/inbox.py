"""The receiver's inbox: every accepted webhook delivery in SQLite (`.agentloop/serve.db`),
written and committed before the receiver answers 202, and the state of its dispatch.

One connection, shared by the HTTP threads and the dispatcher behind a lock (a delivery
is one short INSERT: serialising them costs less than a connection per thread would, and
SQLite admits one writer at a time anyway). WAL with `synchronous=FULL`: a commit that
returned is on disk, so a 202 survives the process being killed and the machine losing
power.

Replay protection is two UNIQUE keys: the delivery id of its source (a redelivery of the
same id), and the SHA-256 of the signed body (the same signed body resent under a new id:
the id is a header and not signed, the body is).

A delivery's dispatch moves pending → dispatching → done | failed, each step committed:
- `claim` marks it dispatching and counts the attempt BEFORE the dispatch call;
- `done` after the call returned; `retry` (pending again, later) after a transient error;
  `failed` after a permanent one (bad token, missing permission) or too many attempts.
The crash point is between the dispatch call and `done`. `recover()` (at start) puts
every `dispatching` row back to pending: the dispatch is sent again. That is at-least-once,
chosen over at-most-once because a lost alert is a production error nobody fixes, while a
second `repository_dispatch` is harmless and visible: it carries the same delivery id (the
workflow can dedupe on it; its concurrency group already coalesces a queued duplicate, and
`agentloop heal`, once it fixes, is to open no second pull request for an issue that has
one; today the run is a read-only triage), and the row
keeps `attempts` > 1 and `recovered` = 1, which the receiver reports. Only a delivery
interrupted inside that window can go twice; every pending one goes exactly once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentloop.integrations.webhooks import Acknowledgement, SentryAlert, Source

INBOX = Path(".agentloop") / "serve.db"
State = Literal["pending", "dispatching", "done", "failed", "ignored"]
Target = Literal["github", "local"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL,
    target TEXT,
    issue_id TEXT,
    short_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    recovered INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    done_at REAL,
    error TEXT,
    UNIQUE (source, delivery_id),
    UNIQUE (source, body_sha256)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (state, next_at);
CREATE TABLE IF NOT EXISTS acknowledgements (
    id INTEGER PRIMARY KEY,
    delivery INTEGER NOT NULL REFERENCES deliveries (id),
    repo TEXT NOT NULL,
    issue_number INTEGER NOT NULL,
    action TEXT NOT NULL,
    by TEXT,
    detail TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS local_jobs (
    id INTEGER PRIMARY KEY,
    delivery INTEGER NOT NULL UNIQUE REFERENCES deliveries (id),
    issue_id TEXT NOT NULL,
    short_id TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    queued_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Delivery:
    """A stored delivery to dispatch."""

    row: int
    source: Source
    delivery_id: str
    target: Target
    issue_id: str
    short_id: str | None
    attempts: int  # counting the one just claimed
    recovered: bool  # a crash interrupted an earlier attempt: it may have reached GitHub


@dataclass(frozen=True)
class Accepted:
    row: int
    new: bool  # False: a replay (same delivery id, or same signed body), stored before


@dataclass(frozen=True)
class Counts:
    pending: int
    dispatching: int
    done: int
    failed: int
    ignored: int


class Inbox:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        # isolation_level=None: transactions are begun and committed here, explicitly.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- receiving (HTTP threads) ----------------------------------------------------------

    def accept(
        self,
        source: Source,
        delivery_id: str,
        body_sha256: str,
        meaning: SentryAlert | Acknowledgement | None,
        *,
        target: Target,
        ignored: str = "",
    ) -> Accepted:
        """Store a verified delivery (committed when this returns). A Sentry alert waits
        for its dispatch to `target`; an acknowledgement is recorded; anything else is
        kept only so a replay of it is known."""
        now = self._clock()
        with self._tx() as db:
            known = db.execute(
                "SELECT id FROM deliveries WHERE source = ? AND (delivery_id = ? OR "
                "body_sha256 = ?)",
                (source, delivery_id, body_sha256),
            ).fetchone()
            if known is not None:
                return Accepted(int(known[0]), new=False)
            values: tuple[str, str, str | None, str | None, str | None]
            if isinstance(meaning, SentryAlert):
                values = ("alert", "pending", target, meaning.issue_id, meaning.short_id)
            elif isinstance(meaning, Acknowledgement):
                values = ("acknowledgement", "done", None, None, None)
            else:
                values = (ignored or "ignored", "ignored", None, None, None)
            cursor = db.execute(
                "INSERT INTO deliveries (source, delivery_id, body_sha256, kind, received_at, "
                "state, target, issue_id, short_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (source, delivery_id, body_sha256, values[0], now, *values[1:]),
            )
            row = int(cursor.lastrowid or 0)
            if isinstance(meaning, Acknowledgement):
                db.execute(
                    "INSERT INTO acknowledgements (delivery, repo, issue_number, action, by, "
                    "detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        row,
                        meaning.repo,
                        meaning.issue_number,
                        meaning.action,
                        meaning.by,
                        meaning.detail,
                        now,
                    ),
                )
            return Accepted(row, new=True)

    # -- dispatching (the dispatcher thread) -----------------------------------------------

    def recover(self) -> int:
        """Put back the dispatches a crash interrupted (see the module's docstring); how
        many there were."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE deliveries SET state = 'pending', recovered = 1, next_at = 0 "
                "WHERE state = 'dispatching'"
            )
            return cursor.rowcount

    def claim(self) -> Delivery | None:
        """The oldest pending delivery that is due, marked dispatching with its attempt
        counted (committed before the caller dispatches it); None when none is due."""
        with self._tx() as db:
            found = db.execute(
                "SELECT id, source, delivery_id, target, issue_id, short_id, attempts, "
                "recovered FROM deliveries WHERE state = 'pending' AND next_at <= ? "
                "ORDER BY id LIMIT 1",
                (self._clock(),),
            ).fetchone()
            if found is None:
                return None
            db.execute(
                "UPDATE deliveries SET state = 'dispatching', attempts = attempts + 1 WHERE id = ?",
                (found[0],),
            )
        return Delivery(
            row=int(found[0]),
            source=found[1],
            delivery_id=found[2],
            target=found[3],
            issue_id=found[4],
            short_id=found[5],
            attempts=int(found[6]) + 1,
            recovered=bool(found[7]),
        )

    def done(self, delivery: Delivery) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = 'done', done_at = ?, error = NULL WHERE id = ?",
                (self._clock(), delivery.row),
            )

    def queue_local(self, delivery: Delivery) -> None:
        """--local: the run is queued as a local job; the job and `done` in one commit,
        so it is queued exactly once whatever the crash."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO local_jobs (delivery, issue_id, short_id, queued_at) "
                "VALUES (?, ?, ?, ?)",
                (delivery.row, delivery.issue_id, delivery.short_id, now),
            )
            db.execute(
                "UPDATE deliveries SET state = 'done', done_at = ? WHERE id = ?",
                (now, delivery.row),
            )

    def retry(self, delivery: Delivery, error: str, after_s: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = 'pending', next_at = ?, error = ? WHERE id = ?",
                (self._clock() + after_s, error, delivery.row),
            )

    def failed(self, delivery: Delivery, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = 'failed', error = ? WHERE id = ?",
                (error, delivery.row),
            )

    # -- reading ---------------------------------------------------------------------------

    def counts(self) -> Counts:
        with self._lock:
            rows = dict(self._db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
        return Counts(
            pending=rows.get("pending", 0),
            dispatching=rows.get("dispatching", 0),
            done=rows.get("done", 0),
            failed=rows.get("failed", 0),
            ignored=rows.get("ignored", 0),
        )

    def acknowledged(self, repo: str, issue_number: int) -> bool:
        """Whether GitHub told the receiver that issue `issue_number` of `repo` was assigned
        or labelled (what stops an alert's escalation, heal/notify.py)."""
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM acknowledgements WHERE lower(repo) = lower(?) AND "
                "issue_number = ? LIMIT 1",
                (repo, issue_number),
            ).fetchone()
        return found is not None

    def next_due(self) -> float | None:
        """When the next pending delivery is due (epoch seconds); None when none waits."""
        with self._lock:
            found = self._db.execute(
                "SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
        return None if found is None or found[0] is None else float(found[0])
