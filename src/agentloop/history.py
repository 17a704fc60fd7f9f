"""The ledger: every run, attempt and task outcome in SQLite at `.agentloop/history.db`,
every parallel build, what humans did with agentloop's pull requests (`agentloop stats
--prs` records it), and the statistics `agentloop stats` shows from it.

Several runs may write at once (parallel CI jobs, a developer's run beside a hook's), each
in its own process. SQLite in WAL mode lets readers and one writer proceed together; every
write is one short `BEGIN IMMEDIATE` transaction, so a writer that has to wait does so in
SQLite's busy handler (up to the busy timeout) instead of failing with "database is
locked". `filelock` is not needed on top: SQLite's own locks already cover the file.

Times are stored as UTC ISO-8601 text with a fixed width, so text comparison orders them.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

from agentloop import UPGRADE
from agentloop.errors import AgentloopError

LEDGER = Path(".agentloop") / "history.db"

RunStatus = Literal["running", "completed", "interrupted", "failed"]
"""`completed`: the run reached its report, whatever it fixed (caps end runs this way too);
`interrupted`: ^C or a signal; `failed`: an error ended it; `running`: not finished yet, or
killed before it could say (SIGKILL, power loss)."""
AttemptOutcome = Literal[
    "fixed",
    "rejected_forbidden_path",
    "rejected_integrity",
    # It moved git's state: a ref, HEAD, the stash, config, hooks or info/.
    "rejected_git_state",
    "rejected_check",
    "tests_failed",
    "no_progress",
    "agent_error",
    "max_turns",
    "budget",
    "timeout",
    "regressed",
    # The fix conflicted with another job's fix that landed on the run's branch first.
    "conflict",
    "interrupted",
]
TaskOutcome = Literal["fixed", "unfixed", "regressed", "skipped"]
PullState = Literal["open", "merged", "closed"]
"""Of an auto-fix pull request on GitHub: `closed` is closed without being merged."""
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
ATTEMPT_OUTCOMES: tuple[AttemptOutcome, ...] = get_args(AttemptOutcome)
TASK_OUTCOMES: tuple[TaskOutcome, ...] = get_args(TaskOutcome)
PULL_STATES: tuple[PullState, ...] = get_args(PullState)

# The category of a pull request whose fixes the ledger has no task for (opened from a run
# recorded elsewhere, e.g. a CI job's ledger that was not kept).
UNKNOWN_CATEGORY = "unknown"

Clock = Callable[[], datetime]

# A run holds its connection for up to its whole runtime; a writer waits this long for
# another process's transaction (each lasts milliseconds) before giving up.
BUSY_TIMEOUT_S = 30.0


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def ledger_path(root: Path) -> Path:
    """Where the ledger of the project at root lives (the run and `stats` agree on it)."""
    return root / LEDGER


class HistoryError(AgentloopError):
    """The ledger cannot be opened or read: not a database, corrupt, locked, newer."""


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    branch: str
    base_sha: str
    status: RunStatus
    tasks_total: int
    tasks_fixed: int
    cost_usd: float
    duration_s: float | None


@dataclass(frozen=True)
class AttemptRecord:
    run_id: str
    task_id: str
    category: str
    attempt_no: int
    outcome: AttemptOutcome
    cost_usd: float
    duration_s: float
    turns: int
    started_at: datetime
    note: str = ""


@dataclass(frozen=True)
class TaskRecord:
    """How a task ended in a run. `verified`: a fixed task went through the final full-suite
    run and held (regressed tasks went through it and did not)."""

    run_id: str
    task_id: str
    category: str
    outcome: TaskOutcome
    tests: int
    verified: bool
    reason: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class PullOutcome:
    """What GitHub says became of one auto-fix pull request (agentloop.pulls reads it).

    `fingerprints`: the dedupe markers of its body (one per fixed task); `run_id`: the run
    it came from (body footer or branch name), None when neither says; `commits`: the
    SHAs of its commits; `human_commits`/`human_authors`: commits neither agentloop's nor
    a bot's (for a merged pull request, all made before the merge); `reverted_by`: the
    commit on the default branch that reverted its merge or one of its commits."""

    repo: str
    number: int
    url: str
    title: str
    state: PullState
    created_at: datetime
    merged_at: datetime | None
    closed_at: datetime | None
    run_id: str | None
    fingerprints: tuple[str, ...]
    commits: tuple[str, ...]
    merge_commit_sha: str | None
    human_commits: int
    human_authors: tuple[str, ...]
    reverted_by: str | None

    @property
    def time_to_merge_s(self) -> float | None:
        if self.merged_at is None:
            return None
        return (self.merged_at - self.created_at).total_seconds()


@dataclass(frozen=True)
class PullRecord:
    """A pull request's outcome as the ledger holds it: `categories` of the tasks it fixed
    (from the ledger's tasks when it was recorded; `unknown` for a fix the ledger has no
    task of), `checked_at` when it was last read from GitHub."""

    pull: PullOutcome
    categories: tuple[str, ...]
    checked_at: datetime


@dataclass(frozen=True)
class BuildRecord:
    """One parallel build. `wall_s`: its wall-clock time; `serial_s`: the sum of its
    streams' times (the serial estimate); `conflicts`: streams whose first merge
    conflicted; `failed_suites`: 1 when the full suites failed after the merges;
    `integrated`: streams that reached integration; `contract_matched`: of those, the
    ones that merged with no conflict in a contract file."""

    run_id: str
    request: str
    streams: int
    started_at: datetime
    finished_at: datetime | None
    wall_s: float | None
    serial_s: float
    merged: int
    conflicts: int
    failed_suites: int
    integrated: int
    contract_matched: int
    commit_sha: str | None
    status: RunStatus

    @property
    def integration_failures(self) -> int:
        return self.conflicts + self.failed_suites


@dataclass(frozen=True)
class AlertRecord:
    """An alert issue `agentloop heal` opened, and how far it escalated (tiers 0-based)."""

    repo: str
    number: int
    url: str
    title: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged: str  # how: "assigned to octocat", "labelled triaged", "closed"…
    tiers: tuple[int, ...]


@dataclass(frozen=True)
class Ledger:
    runs: tuple[RunRecord, ...] = ()
    attempts: tuple[AttemptRecord, ...] = ()
    tasks: tuple[TaskRecord, ...] = ()
    pulls: tuple[PullRecord, ...] = ()
    builds: tuple[BuildRecord, ...] = ()


# ---------------------------------------------------------------- schema

# Step n brings a ledger from user_version n-1 to n. Never edit a released step: append
# one. Statements, not scripts: sqlite3's executescript() commits first, and a migration
# must be one transaction with its user_version bump. No CHECK constraints on enumerations
# either: SQLite cannot alter one without rebuilding the table, and adding an outcome must
# not need that (values are checked on write, in Python).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            run_id      TEXT PRIMARY KEY,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            branch      TEXT NOT NULL,
            base_sha    TEXT NOT NULL,
            status      TEXT NOT NULL,
            tasks_total INTEGER NOT NULL,
            tasks_fixed INTEGER NOT NULL DEFAULT 0,
            cost_usd    REAL NOT NULL DEFAULT 0,
            duration_s  REAL
        )""",
        """CREATE TABLE attempts (
            run_id     TEXT NOT NULL REFERENCES runs (run_id),
            task_id    TEXT NOT NULL,
            category   TEXT NOT NULL,
            attempt_no INTEGER NOT NULL,
            outcome    TEXT NOT NULL,
            cost_usd   REAL NOT NULL,
            duration_s REAL NOT NULL,
            turns      INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            note       TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, task_id, attempt_no)
        )""",
        "CREATE INDEX runs_by_start ON runs (started_at)",
    ),
    # Per-task outcomes came after the first draft of the ledger. Keeping them a step of
    # their own means the upgrade path is exercised (and tested) from the first release.
    (
        """CREATE TABLE tasks (
            run_id   TEXT NOT NULL REFERENCES runs (run_id),
            task_id  TEXT NOT NULL,
            category TEXT NOT NULL,
            outcome  TEXT NOT NULL,
            tests    INTEGER NOT NULL,
            verified INTEGER NOT NULL,
            reason   TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, task_id)
        )""",
    ),
    # What humans did with the auto-fix pull requests (`agentloop stats --prs`). Keyed by
    # repository and number: reading them again updates the row. Lists (fingerprints,
    # categories, SHAs, logins) are space-separated: none of their items holds a space.
    (
        """CREATE TABLE pull_requests (
            repo             TEXT NOT NULL,
            number           INTEGER NOT NULL,
            url              TEXT NOT NULL,
            title            TEXT NOT NULL,
            state            TEXT NOT NULL,
            created_at       TEXT NOT NULL,
            merged_at        TEXT,
            closed_at        TEXT,
            run_id           TEXT,
            fingerprints     TEXT NOT NULL DEFAULT '',
            categories       TEXT NOT NULL DEFAULT '',
            commits          TEXT NOT NULL DEFAULT '',
            merge_commit_sha TEXT,
            human_commits    INTEGER NOT NULL DEFAULT 0,
            human_authors    TEXT NOT NULL DEFAULT '',
            reverted_by      TEXT,
            checked_at       TEXT NOT NULL,
            PRIMARY KEY (repo, number)
        )""",
        "CREATE INDEX pull_requests_by_creation ON pull_requests (created_at)",
    ),
    # A task's failure fingerprint (its tests and their error types): what a pull
    # request's markers name. The id alone cannot link them: it comes from the failure's
    # message, which can differ from one process to the next. Older rows have ''.
    ("ALTER TABLE tasks ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''",),
    # Parallel builds (`agentloop parallel-build`, `stats --builds`): one row per build,
    # written when it ends. `serial_s` is the sum of its streams' own times (what one
    # stream after another would have taken); `integrated` counts the streams that
    # reached integration, `contract_matched` those that merged without a conflict in a
    # contract file.
    (
        """CREATE TABLE builds (
            run_id           TEXT PRIMARY KEY,
            request          TEXT NOT NULL,
            streams          INTEGER NOT NULL,
            started_at       TEXT NOT NULL,
            finished_at      TEXT,
            wall_s           REAL,
            serial_s         REAL NOT NULL DEFAULT 0,
            merged           INTEGER NOT NULL DEFAULT 0,
            conflicts        INTEGER NOT NULL DEFAULT 0,
            failed_suites    INTEGER NOT NULL DEFAULT 0,
            integrated       INTEGER NOT NULL DEFAULT 0,
            contract_matched INTEGER NOT NULL DEFAULT 0,
            commit_sha       TEXT,
            status           TEXT NOT NULL
        )""",
        "CREATE INDEX builds_by_start ON builds (started_at)",
    ),
    # `agentloop heal`'s alert issues and their escalation (heal/notify.py): an alert is
    # open until acknowledged; each tier sent is a row, unique per alert and tier, so a
    # tier is claimed by one INSERT and never sent twice. `failed`: the channels of the
    # tier that could not be reached, space-separated.
    (
        """CREATE TABLE alerts (
            repo            TEXT NOT NULL,
            number          INTEGER NOT NULL,
            url             TEXT NOT NULL,
            title           TEXT NOT NULL,
            opened_at       TEXT NOT NULL,
            acknowledged_at TEXT,
            acknowledged    TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (repo, number)
        )""",
        """CREATE TABLE alert_tiers (
            repo    TEXT NOT NULL,
            number  INTEGER NOT NULL,
            tier    INTEGER NOT NULL,
            sent_at TEXT NOT NULL,
            done    INTEGER NOT NULL DEFAULT 0,
            failed  TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (repo, number, tier),
            FOREIGN KEY (repo, number) REFERENCES alerts (repo, number)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def _iso(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the ledger stores UTC, pass an aware one")
    # Fixed width (always milliseconds, always +00:00) so that text order is time order.
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _checked(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(allowed)}")


@contextmanager
def _translated(path: Path, timeout: float) -> Iterator[None]:
    """SQLite's failures as one line and a hint. An IntegrityError is a bug of the caller
    (a run recorded twice, an attempt of an unknown run) and stays what it is."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            hint = (
                f"move it aside (mv {path} {path}.bad); the next run starts a new ledger "
                "(the old file keeps whatever SQLite tools can still recover)"
            )
        elif "locked" in text or "busy" in text:
            hint = (
                f"another process kept it locked for over {timeout:g} s; "
                "look for a hung agentloop and try again"
            )
        elif "readonly" in text or "unable to open" in text:
            hint = f"check that {path.parent} exists and is writable by you"
        else:
            hint = f"if it persists, move {path} aside; the next run starts a new ledger"
        raise HistoryError(f"cannot use the run ledger {path}: {text}", hint=hint) from None


# ---------------------------------------------------------------- the ledger


class History:
    """An open ledger. Use `History.open(path)`; each method is one short transaction."""

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Clock, timeout: float):
        self._main = conn
        self._owner = threading.get_ident()
        self.path = path
        self._clock = clock
        self._timeout = timeout
        # One connection per worker thread (sqlite3 connections are not to be shared
        # between threads); each is opened on the worker's first write, closed at the end.
        self._local = threading.local()
        self._workers: list[sqlite3.Connection] = []
        self._workers_lock = threading.Lock()

    @property
    def _conn(self) -> sqlite3.Connection:
        if threading.get_ident() == self._owner:
            return self._main
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with _translated(self.path, self._timeout):
                conn = sqlite3.connect(
                    self.path, timeout=self._timeout, isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
            self._local.conn = conn
            with self._workers_lock:
                self._workers.append(conn)
        return conn

    def _close_workers(self) -> None:
        with self._workers_lock:
            for conn in self._workers:
                conn.close()
            self._workers.clear()

    @classmethod
    @contextmanager
    def open(
        cls, path: Path, *, clock: Clock = utc_now, timeout: float = BUSY_TIMEOUT_S
    ) -> Iterator[History]:
        """Open (creating it and its directory if need be) and bring up to date."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(
                f"cannot create {path.parent} for the run ledger: {exc.strerror or exc}",
                hint=f"check that {path.parent.parent} is writable by you",
            ) from None
        with _translated(path, timeout):
            # isolation_level=None: no implicit transactions; each write says BEGIN
            # IMMEDIATE itself, taking the write lock up front. A deferred transaction that
            # reads and then writes can get SQLITE_BUSY at once, without waiting, when
            # another writer committed in between.
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            with _translated(path, timeout):
                _prepare(conn, timeout=timeout)
            history = cls(conn, path, clock, timeout)
            try:
                yield history
            finally:
                history._close_workers()
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with _translated(self.path, self._timeout), _transaction(self._conn, "BEGIN IMMEDIATE"):
            yield self._conn

    # ------------------------------------------------------------ writes

    def start_run(self, run_id: str, *, branch: str, base_sha: str, tasks_total: int) -> RunRecord:
        run = RunRecord(
            run_id=run_id,
            started_at=self._now(),
            finished_at=None,
            branch=branch,
            base_sha=base_sha,
            status="running",
            tasks_total=tasks_total,
            tasks_fixed=0,
            cost_usd=0.0,
            duration_s=None,
        )
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, started_at, branch, base_sha, status, tasks_total)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, _iso(run.started_at), branch, base_sha, run.status, tasks_total),
            )
        return run

    def record_attempt(self, attempt: AttemptRecord) -> None:
        _checked(attempt.outcome, ATTEMPT_OUTCOMES, "attempt outcome")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO attempts (run_id, task_id, category, attempt_no, outcome,"
                " cost_usd, duration_s, turns, started_at, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.run_id,
                    attempt.task_id,
                    attempt.category,
                    attempt.attempt_no,
                    attempt.outcome,
                    attempt.cost_usd,
                    attempt.duration_s,
                    attempt.turns,
                    _iso(attempt.started_at),
                    attempt.note,
                ),
            )

    def finish_task(self, task: TaskRecord) -> None:
        """Record how a task ended. Recording it again replaces the outcome: VERIFY can turn
        a task already recorded `fixed` into `regressed`."""
        _checked(task.outcome, TASK_OUTCOMES, "task outcome")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tasks (run_id, task_id, category, outcome, tests, verified, reason,"
                " fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, task_id) DO UPDATE SET category = excluded.category,"
                " outcome = excluded.outcome, tests = excluded.tests,"
                " verified = excluded.verified, reason = excluded.reason,"
                " fingerprint = excluded.fingerprint",
                (
                    task.run_id,
                    task.task_id,
                    task.category,
                    task.outcome,
                    task.tests,
                    int(task.verified),
                    task.reason,
                    task.fingerprint,
                ),
            )

    def finish_run(self, run_id: str, *, status: RunStatus) -> RunRecord:
        """Close a run. Its totals are derived from what was recorded under it, so the run
        row cannot disagree with its tasks and attempts."""
        _checked(status, RUN_STATUSES, "run status")
        finished = _iso(self._now())
        with self._write() as conn:
            row = conn.execute("SELECT started_at FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise ValueError(f"no run {run_id!r} in {self.path}")
            duration = (_moment(finished) - _moment(row[0])).total_seconds()
            conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, duration_s = ?,"
                " tasks_fixed = (SELECT count(*) FROM tasks"
                "                WHERE run_id = runs.run_id AND outcome = 'fixed'),"
                " cost_usd = (SELECT coalesce(sum(cost_usd), 0) FROM attempts"
                "             WHERE run_id = runs.run_id)"
                " WHERE run_id = ?",
                (finished, status, duration, run_id),
            )
            result = conn.execute(f"{_RUNS} WHERE run_id = ?", (run_id,)).fetchone()
        return _run(result)

    def record_pulls(self, pulls: Sequence[PullOutcome]) -> tuple[PullRecord, ...]:
        """Record pull requests' outcomes in one transaction; a pull request recorded before
        is updated, never duplicated. Each gets the categories of the tasks it fixed, as
        the ledger knows them now (so reading them again also fills in categories of runs
        recorded since)."""
        for pull in pulls:
            _checked(pull.state, PULL_STATES, "pull request state")
        checked = self._now()
        records = []
        with self._write() as conn:
            for pull in pulls:
                record = PullRecord(
                    pull=pull, categories=_categories(conn, pull), checked_at=checked
                )
                conn.execute(
                    "INSERT INTO pull_requests (repo, number, url, title, state, created_at,"
                    " merged_at, closed_at, run_id, fingerprints, categories, commits,"
                    " merge_commit_sha, human_commits, human_authors, reverted_by, checked_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (repo, number) DO UPDATE SET url = excluded.url,"
                    " title = excluded.title, state = excluded.state,"
                    " created_at = excluded.created_at, merged_at = excluded.merged_at,"
                    " closed_at = excluded.closed_at, run_id = excluded.run_id,"
                    " fingerprints = excluded.fingerprints, categories = excluded.categories,"
                    " commits = excluded.commits, merge_commit_sha = excluded.merge_commit_sha,"
                    " human_commits = excluded.human_commits,"
                    " human_authors = excluded.human_authors,"
                    " reverted_by = excluded.reverted_by, checked_at = excluded.checked_at",
                    _pull_row(record),
                )
                records.append(record)
        return tuple(records)

    def record_build(self, build: BuildRecord) -> None:
        """Record a build; recording it again (the same run id) replaces the row."""
        _checked(build.status, RUN_STATUSES, "build status")
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO builds (run_id, request, streams, started_at,"
                " finished_at, wall_s, serial_s, merged, conflicts, failed_suites, integrated,"
                " contract_matched, commit_sha, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    build.run_id,
                    build.request,
                    build.streams,
                    _iso(build.started_at),
                    None if build.finished_at is None else _iso(build.finished_at),
                    build.wall_s,
                    build.serial_s,
                    build.merged,
                    build.conflicts,
                    build.failed_suites,
                    build.integrated,
                    build.contract_matched,
                    build.commit_sha,
                    build.status,
                ),
            )

    def record_alert(
        self, repo: str, number: int, *, url: str, title: str, opened_at: datetime
    ) -> AlertRecord:
        """Record an alert issue; one recorded before keeps its start (and its tiers)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO alerts (repo, number, url, title, opened_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (repo, number) DO UPDATE SET url = excluded.url,"
                " title = excluded.title",
                (repo, number, url, title, _iso(opened_at)),
            )
        found = self._alerts(" WHERE repo = ? AND number = ?", (repo, number))
        return found[0]

    def claim_tier(self, repo: str, number: int, tier: int, at: datetime) -> bool:
        """Claim escalation tier `tier` of an alert: True once, False ever after."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO alert_tiers (repo, number, tier, sent_at)"
                " VALUES (?, ?, ?, ?)",
                (repo, number, tier, _iso(at)),
            )
            return cursor.rowcount == 1

    def finish_tier(self, repo: str, number: int, tier: int, failed: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE alert_tiers SET done = 1, failed = ?"
                " WHERE repo = ? AND number = ? AND tier = ?",
                (failed, repo, number, tier),
            )

    def acknowledge_alert(self, repo: str, number: int, *, how: str, at: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE alerts SET acknowledged_at = ?, acknowledged = ?"
                " WHERE repo = ? AND number = ? AND acknowledged_at IS NULL",
                (_iso(at), how, repo, number),
            )

    def open_alerts(self, repo: str) -> tuple[AlertRecord, ...]:
        """The alerts of `repo` nobody has acknowledged yet, oldest first."""
        return self._alerts(" WHERE repo = ? AND acknowledged_at IS NULL", (repo,))

    def alerts(self, repo: str) -> tuple[AlertRecord, ...]:
        return self._alerts(" WHERE repo = ?", (repo,))

    def _alerts(self, where: str, args: tuple[Any, ...]) -> tuple[AlertRecord, ...]:
        with _translated(self.path, self._timeout):
            rows = self._conn.execute(
                "SELECT repo, number, url, title, opened_at, acknowledged_at, acknowledged"
                f" FROM alerts{where} ORDER BY opened_at, number",
                args,
            ).fetchall()
            tiers = {
                (r[0], r[1]): tuple(
                    t[0]
                    for t in self._conn.execute(
                        "SELECT tier FROM alert_tiers WHERE repo = ? AND number = ? ORDER BY tier",
                        (r[0], r[1]),
                    )
                )
                for r in rows
            }
        return tuple(
            AlertRecord(
                repo=r[0],
                number=int(r[1]),
                url=r[2],
                title=r[3],
                opened_at=_moment(r[4]),
                acknowledged_at=None if r[5] is None else _moment(r[5]),
                acknowledged=r[6],
                tiers=tiers[(r[0], r[1])],
            )
            for r in rows
        )

    # ------------------------------------------------------------ reads

    def pulls(self, *, repo: str | None = None) -> tuple[PullRecord, ...]:
        """Recorded pull requests (of one repository, or all), oldest first."""
        where, args = ("", ()) if repo is None else (" WHERE repo = ?", (repo,))
        with _translated(self.path, self._timeout):
            rows = self._conn.execute(
                f"{_PULLS}{where} ORDER BY created_at, repo, number", args
            ).fetchall()
        return tuple(_pull(r) for r in rows)

    def run(self, run_id: str) -> RunRecord | None:
        with _translated(self.path, self._timeout):
            row = self._conn.execute(f"{_RUNS} WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _run(row)

    def ledger(self, *, since: datetime | None = None) -> Ledger:
        """Runs started at or after `since` (all when None) with their attempts and tasks,
        and the pull requests opened since then, read in one transaction: a consistent
        snapshot while other runs keep writing."""
        start = "" if since is None else _iso(since)
        in_runs = "run_id IN (SELECT run_id FROM runs WHERE started_at >= ?)"
        with _translated(self.path, self._timeout), _transaction(self._conn, "BEGIN"):
            runs = self._conn.execute(
                f"{_RUNS} WHERE started_at >= ? ORDER BY started_at, run_id", (start,)
            ).fetchall()
            attempts = self._conn.execute(
                f"{_ATTEMPTS} WHERE {in_runs} ORDER BY run_id, task_id, attempt_no", (start,)
            ).fetchall()
            tasks = self._conn.execute(
                f"{_TASKS} WHERE {in_runs} ORDER BY run_id, task_id", (start,)
            ).fetchall()
            pulls = self._conn.execute(
                f"{_PULLS} WHERE created_at >= ? ORDER BY created_at, repo, number", (start,)
            ).fetchall()
            builds = self._conn.execute(
                f"{_BUILDS} WHERE started_at >= ? ORDER BY started_at, run_id", (start,)
            ).fetchall()
        return Ledger(
            runs=tuple(_run(r) for r in runs),
            attempts=tuple(_attempt(r) for r in attempts),
            tasks=tuple(_task(r) for r in tasks),
            pulls=tuple(_pull(r) for r in pulls),
            builds=tuple(_build(r) for r in builds),
        )

    def _now(self) -> datetime:
        return _moment(_iso(self._clock()))


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str) -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # Also after a failed COMMIT: the connection must not stay inside a transaction.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _prepare(conn: sqlite3.Connection, *, timeout: float) -> None:
    # Reading user_version is the first touch of the file: a file that is not a database
    # fails here, before anything is written to it.
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"the run ledger has schema version {version}; this agentloop knows up to "
            f"{SCHEMA_VERSION}",
            hint=f"a newer agentloop wrote it: upgrade agentloop ({UPGRADE})",
        )
    _use_wal(conn, deadline=time.monotonic() + timeout)
    # In WAL mode NORMAL never corrupts the file; a power cut may lose the last commits.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    if version == SCHEMA_VERSION:
        return
    with _transaction(conn, "BEGIN IMMEDIATE"):
        # Read again under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        # PRAGMA takes no parameters; SCHEMA_VERSION is our own integer.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")


def _use_wal(conn: sqlite3.Connection, *, deadline: float) -> None:
    """Put the file in WAL mode (it stays so; later opens only read the mode).

    Switching needs an exclusive lock, and SQLite asks for it without calling the busy
    handler: processes opening a new ledger together got "database is locked" at once in
    the concurrency test. So wait here, until the busy timeout's deadline."""
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            # A file system without WAL support: the rollback journal still works, with
            # the busy handler, only with less concurrency.
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


_RUNS = (
    "SELECT run_id, started_at, finished_at, branch, base_sha, status, tasks_total,"
    " tasks_fixed, cost_usd, duration_s FROM runs"
)
_ATTEMPTS = (
    "SELECT run_id, task_id, category, attempt_no, outcome, cost_usd, duration_s, turns,"
    " started_at, note FROM attempts"
)
_TASKS = (
    "SELECT run_id, task_id, category, outcome, tests, verified, reason, fingerprint FROM tasks"
)
_PULLS = (
    "SELECT repo, number, url, title, state, created_at, merged_at, closed_at, run_id,"
    " fingerprints, categories, commits, merge_commit_sha, human_commits, human_authors,"
    " reverted_by, checked_at FROM pull_requests"
)

_BUILDS = (
    "SELECT run_id, request, streams, started_at, finished_at, wall_s, serial_s, merged,"
    " conflicts, failed_suites, integrated, contract_matched, commit_sha, status FROM builds"
)


def _categories(conn: sqlite3.Connection, pull: PullOutcome) -> tuple[str, ...]:
    """The categories of the tasks a pull request fixed: each fingerprint's task (the one
    of the pull request's own run if the ledger has it, else the latest; a fingerprint
    names the same failure in every run), or, without fingerprints, the fixed tasks of
    its run. A fix the ledger has no task of counts as `unknown`."""
    found: set[str] = set()
    unresolved = not pull.fingerprints and pull.run_id is None
    for fingerprint in pull.fingerprints:
        row = conn.execute(
            # A task recorded before fingerprints were (schema 3 and older): its id.
            "SELECT t.category FROM tasks t JOIN runs r ON r.run_id = t.run_id"
            " WHERE t.fingerprint = ? OR (t.fingerprint = '' AND t.task_id = ?)"
            " ORDER BY t.run_id = ? DESC, r.started_at DESC LIMIT 1",
            (fingerprint, fingerprint, pull.run_id or ""),
        ).fetchone()
        if row is None:
            unresolved = True
        else:
            found.add(row[0])
    if not pull.fingerprints and pull.run_id is not None:
        rows = conn.execute(
            "SELECT DISTINCT category FROM tasks WHERE run_id = ? AND outcome = 'fixed'",
            (pull.run_id,),
        ).fetchall()
        found.update(r[0] for r in rows)
        unresolved = not rows
    if unresolved:
        found.add(UNKNOWN_CATEGORY)
    return tuple(sorted(found))


def _words(items: Iterable[str]) -> str:
    return " ".join(items)


def _pull_row(record: PullRecord) -> tuple[Any, ...]:
    pull = record.pull
    return (
        pull.repo,
        pull.number,
        pull.url,
        pull.title,
        pull.state,
        _iso(pull.created_at),
        None if pull.merged_at is None else _iso(pull.merged_at),
        None if pull.closed_at is None else _iso(pull.closed_at),
        pull.run_id,
        _words(pull.fingerprints),
        _words(record.categories),
        _words(pull.commits),
        pull.merge_commit_sha,
        pull.human_commits,
        _words(pull.human_authors),
        pull.reverted_by,
        _iso(record.checked_at),
    )


# Values read back are not checked against the Literals: a newer agentloop sharing the
# ledger may have written an outcome this one does not know, and stats should still count it.
# Column affinity gives back str, int and float as written; only times and flags convert.
def _run(row: tuple[Any, ...]) -> RunRecord:
    run_id, started, finished, branch, base_sha, status, total, fixed, cost, duration = row
    return RunRecord(
        run_id=run_id,
        started_at=_moment(started),
        finished_at=None if finished is None else _moment(finished),
        branch=branch,
        base_sha=base_sha,
        status=status,
        tasks_total=total,
        tasks_fixed=fixed,
        cost_usd=cost,
        duration_s=duration,
    )


def _attempt(row: tuple[Any, ...]) -> AttemptRecord:
    run_id, task_id, category, number, outcome, cost, duration, turns, started, note = row
    return AttemptRecord(
        run_id=run_id,
        task_id=task_id,
        category=category,
        attempt_no=number,
        outcome=outcome,
        cost_usd=cost,
        duration_s=duration,
        turns=turns,
        started_at=_moment(started),
        note=note,
    )


def _task(row: tuple[Any, ...]) -> TaskRecord:
    run_id, task_id, category, outcome, tests, verified, reason, fingerprint = row
    return TaskRecord(
        run_id=run_id,
        task_id=task_id,
        category=category,
        outcome=outcome,
        tests=tests,
        verified=bool(verified),
        reason=reason,
        fingerprint=fingerprint,
    )


def _build(row: tuple[Any, ...]) -> BuildRecord:
    (run_id, request, streams, started, finished, wall, serial, merged, conflicts,
     failed_suites, integrated, matched, commit_sha, status) = row  # fmt: skip
    return BuildRecord(
        run_id=run_id,
        request=request,
        streams=streams,
        started_at=_moment(started),
        finished_at=None if finished is None else _moment(finished),
        wall_s=wall,
        serial_s=serial,
        merged=merged,
        conflicts=conflicts,
        failed_suites=failed_suites,
        integrated=integrated,
        contract_matched=matched,
        commit_sha=commit_sha,
        status=status,
    )


def _pull(row: tuple[Any, ...]) -> PullRecord:
    (repo, number, url, title, state, created, merged, closed, run_id, fingerprints,
     categories, commits, merge_sha, human_commits, human_authors, reverted_by,
     checked) = row  # fmt: skip
    return PullRecord(
        pull=PullOutcome(
            repo=repo,
            number=number,
            url=url,
            title=title,
            state=state,
            created_at=_moment(created),
            merged_at=None if merged is None else _moment(merged),
            closed_at=None if closed is None else _moment(closed),
            run_id=run_id,
            fingerprints=tuple(fingerprints.split()),
            commits=tuple(commits.split()),
            merge_commit_sha=merge_sha,
            human_commits=human_commits,
            human_authors=tuple(human_authors.split()),
            reverted_by=reverted_by,
        ),
        categories=tuple(categories.split()),
        checked_at=_moment(checked),
    )


# ---------------------------------------------------------------- statistics

TaskState = Literal["fixed", "unfixed", "regressed", "skipped", "unfinished"]


@dataclass(frozen=True)
class TaskSummary:
    """One task of one run, its outcome joined with its attempts. `unfinished`: attempts
    were recorded but no outcome (the run was killed mid-task)."""

    run_id: str
    task_id: str
    category: str
    state: TaskState
    verified: bool
    attempts: int
    cost_usd: float
    duration_s: float


@dataclass(frozen=True)
class Metrics:
    """Counts say how large each sample is; a rate or median is None when its sample is
    empty.

    - tasks: tasks attempted = fixed + unfixed + regressed + unfinished (skipped apart);
    - fix_rate = fixed / tasks;
    - fixes_with_attempts: fixed tasks that had attempts of their own (a task closed by
      another task's fix had none); the sample of attempts_per_fix and the medians, which
      count every attempt of the task, failed ones included;
    - verified: fixed tasks that went through the final verification, plus regressed ones;
      regression_rate = regressed / verified.
    """

    runs: int
    tasks: int
    fixed: int
    unfixed: int
    regressed: int
    unfinished: int
    skipped: int
    attempts: int
    fixes_with_attempts: int
    verified: int
    cost_usd: float
    fix_rate: float | None
    attempts_per_fix: float | None
    regression_rate: float | None
    median_time_per_fix_s: float | None
    median_cost_per_fix_usd: float | None


@dataclass(frozen=True)
class PullMetrics:
    """What humans did with auto-fix pull requests. Counts say how large each sample is;
    a rate or median is None when its sample is empty.

    - prs = open + merged + closed (closed: closed without being merged);
    - reverted: merged, then reverted on the default branch; accepted = merged - reverted;
    - acceptance_rate = accepted / (merged + closed): open pull requests are undecided;
    - changed_by_human: merged pull requests that had a human's commits before the merge;
    - median_time_to_merge_s: merged_at - created_at over the merged ones.
    """

    prs: int
    open: int
    merged: int
    closed: int
    reverted: int
    accepted: int
    changed_by_human: int
    acceptance_rate: float | None
    median_time_to_merge_s: float | None


@dataclass(frozen=True)
class Stats:
    """`by_category` has every category of a task or of a pull request; `pulls_by_category`
    the same names, in the same order (a category with no pull request has zeros)."""

    overall: Metrics
    by_category: tuple[tuple[str, Metrics], ...]
    by_week: tuple[tuple[str, Metrics], ...]
    by_run: tuple[tuple[RunRecord, Metrics], ...]
    pulls_overall: PullMetrics
    pulls_by_category: tuple[tuple[str, PullMetrics], ...]
    pulls: tuple[PullRecord, ...]


def summarize(ledger: Ledger) -> tuple[TaskSummary, ...]:
    """Every task of the ledger: those with an outcome, and those with attempts only."""
    spent: dict[tuple[str, str], list[AttemptRecord]] = {}
    for attempt in ledger.attempts:
        spent.setdefault((attempt.run_id, attempt.task_id), []).append(attempt)
    outcomes = {(t.run_id, t.task_id): t for t in ledger.tasks}
    summaries = []
    for key in sorted(outcomes.keys() | spent.keys()):
        attempts = spent.get(key, [])
        task = outcomes.get(key)
        summaries.append(
            TaskSummary(
                run_id=key[0],
                task_id=key[1],
                category=task.category if task else attempts[-1].category,
                state=task.outcome if task else "unfinished",
                verified=bool(task and task.verified),
                attempts=len(attempts),
                cost_usd=sum(a.cost_usd for a in attempts),
                duration_s=sum(a.duration_s for a in attempts),
            )
        )
    return tuple(summaries)


def _ratio(part: float, whole: int) -> float | None:
    return part / whole if whole else None


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def metrics(tasks: Iterable[TaskSummary], *, runs: int) -> Metrics:
    tasks = list(tasks)
    count = {state: 0 for state in get_args(TaskState)}
    for task in tasks:
        count[task.state] += 1
    attempted = len(tasks) - count["skipped"]
    fixes = [t for t in tasks if t.state == "fixed" and t.attempts]
    verified = sum(1 for t in tasks if t.state == "fixed" and t.verified) + count["regressed"]
    return Metrics(
        runs=runs,
        tasks=attempted,
        fixed=count["fixed"],
        unfixed=count["unfixed"],
        regressed=count["regressed"],
        unfinished=count["unfinished"],
        skipped=count["skipped"],
        attempts=sum(t.attempts for t in tasks),
        fixes_with_attempts=len(fixes),
        verified=verified,
        cost_usd=sum(t.cost_usd for t in tasks),
        fix_rate=_ratio(count["fixed"], attempted),
        attempts_per_fix=_ratio(sum(t.attempts for t in fixes), len(fixes)),
        regression_rate=_ratio(count["regressed"], verified),
        median_time_per_fix_s=_median([t.duration_s for t in fixes]),
        median_cost_per_fix_usd=_median([t.cost_usd for t in fixes]),
    )


def pull_metrics(records: Iterable[PullRecord]) -> PullMetrics:
    pulls = [r.pull for r in records]
    merged = [p for p in pulls if p.state == "merged"]
    closed = sum(1 for p in pulls if p.state == "closed")
    reverted = sum(1 for p in merged if p.reverted_by is not None)
    times = [t for p in merged if (t := p.time_to_merge_s) is not None]
    return PullMetrics(
        prs=len(pulls),
        open=sum(1 for p in pulls if p.state == "open"),
        merged=len(merged),
        closed=closed,
        reverted=reverted,
        accepted=len(merged) - reverted,
        changed_by_human=sum(1 for p in merged if p.human_commits),
        acceptance_rate=_ratio(len(merged) - reverted, len(merged) + closed),
        median_time_to_merge_s=_median(times),
    )


@dataclass(frozen=True)
class BuildMetrics:
    """Of parallel builds; a rate or ratio is None when its sample is empty.

    - speedup = serial_s / wall_s over the builds with a wall-clock time: how much faster
      than one stream after another;
    - failure_rate = builds with an integration failure (a conflict, or failed full
      suites after the merges) / builds;
    - contract_accuracy = contract_matched / integrated, over every stream that reached
      integration.
    """

    builds: int
    streams: int
    wall_s: float
    serial_s: float
    speedup: float | None
    integration_failures: int
    failed_builds: int
    failure_rate: float | None
    integrated: int
    contract_matched: int
    contract_accuracy: float | None


def build_metrics(builds: Iterable[BuildRecord]) -> BuildMetrics:
    builds = list(builds)
    timed = [b for b in builds if b.wall_s]
    wall = sum(b.wall_s or 0.0 for b in timed)
    serial = sum(b.serial_s for b in timed)
    integrated = sum(b.integrated for b in builds)
    matched = sum(b.contract_matched for b in builds)
    failed = sum(1 for b in builds if b.integration_failures)
    return BuildMetrics(
        builds=len(builds),
        streams=sum(b.streams for b in builds),
        wall_s=wall,
        serial_s=serial,
        speedup=serial / wall if wall else None,
        integration_failures=sum(b.integration_failures for b in builds),
        failed_builds=failed,
        failure_rate=_ratio(failed, len(builds)),
        integrated=integrated,
        contract_matched=matched,
        contract_accuracy=_ratio(matched, integrated),
    )


def iso_week(moment: datetime) -> str:
    """`2025-W02`: ISO weeks start on Monday and never split a week across two years."""
    year, week, _day = moment.astimezone(timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


def _grouped(
    tasks: Sequence[TaskSummary], runs: Sequence[RunRecord], key: Callable[[RunRecord], str]
) -> tuple[tuple[str, Metrics], ...]:
    """Metrics per group of runs, in order of first appearance (runs come sorted by start).
    A group whose runs had no task still appears, with zeros."""
    groups: dict[str, set[str]] = {}
    for run in runs:
        groups.setdefault(key(run), set()).add(run.run_id)
    return tuple(
        (name, metrics((t for t in tasks if t.run_id in ids), runs=len(ids)))
        for name, ids in groups.items()
    )


def compute(ledger: Ledger) -> Stats:
    """Everything `agentloop stats` shows; an empty ledger gives zeros and Nones.

    A pull request that fixed tasks of several categories counts in each of them (and
    once overall): humans accept or close the pull request as a whole."""
    tasks = summarize(ledger)
    runs = sorted(ledger.runs, key=lambda r: (r.started_at, r.run_id))
    categories = sorted(
        {t.category for t in tasks} | {c for p in ledger.pulls for c in p.categories}
    )
    by_category = tuple(
        (
            category,
            metrics(
                (t for t in tasks if t.category == category),
                runs=len({t.run_id for t in tasks if t.category == category}),
            ),
        )
        for category in categories
    )
    by_run_metrics = dict(_grouped(tasks, runs, lambda r: r.run_id))
    return Stats(
        overall=metrics(tasks, runs=len(runs)),
        by_category=by_category,
        by_week=_grouped(tasks, runs, lambda r: iso_week(r.started_at)),
        by_run=tuple((run, by_run_metrics[run.run_id]) for run in runs),
        pulls_overall=pull_metrics(ledger.pulls),
        pulls_by_category=tuple(
            (category, pull_metrics(p for p in ledger.pulls if category in p.categories))
            for category in categories
        ),
        pulls=ledger.pulls,
    )
