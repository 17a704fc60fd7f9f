"""The run ledger: a real SQLite file, several processes writing it at once, the statistics
on a hand-built ledger, migrations, a corrupt file, and `agentloop stats`."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import sqlite3
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop import errors, history, output
from agentloop.history import (
    AttemptRecord,
    History,
    HistoryError,
    Ledger,
    Metrics,
    RunRecord,
    TaskRecord,
    compute,
)

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    """Time stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def attempt(
    run_id: str,
    task_id: str,
    category: str,
    number: int,
    outcome: history.AttemptOutcome,
    cost: float,
    seconds: float,
    started: datetime,
) -> AttemptRecord:
    return AttemptRecord(
        run_id=run_id,
        task_id=task_id,
        category=category,
        attempt_no=number,
        outcome=outcome,
        cost_usd=cost,
        duration_s=seconds,
        turns=7,
        started_at=started,
        note=f"{outcome} on attempt {number}",
    )


def build_ledger(path: Path) -> None:
    """Four runs over two ISO weeks, every kind of outcome. The expected numbers in the
    tests below are worked out by hand from this, task by task:

    run A (Mon 2025-01-06, week 02)
      t1 logic_bug     2 attempts (0.10 $/30 s failed, 0.20 $/60 s fixed)  fixed, verified
      t2 type_error    1 attempt  (0.05 $/20 s fixed)       fixed, then regressed in VERIFY
      t3 logic_bug     2 attempts (0.10 $/40 s, 0.10 $/40 s)  unfixed
    run B (Wed 2025-01-08, week 02)
      t4 missing_dep.  1 attempt  (0.40 $/120 s fixed)      fixed, verified
      t5 logic_bug     no attempt: closed by t4's fix        fixed, verified
    run C (Tue 2025-01-14, week 03), interrupted before VERIFY
      t6 logic_bug     1 attempt  (0.06 $/10 s fixed)       fixed, not verified
      t7 type_error    skipped
    run D (Wed 2025-01-15, week 03), killed: never finished
      t8 timeout       1 attempt  (0.50 $/300 s timeout)    no outcome: unfinished
    """
    clock = Clock(at("2025-01-06T10:00:00"))
    with History.open(path, clock=clock) as h:

        def tried(
            run: str, task: str, category: str, n: int, outcome: Any, cost: float, seconds: float
        ) -> None:
            h.record_attempt(attempt(run, task, category, n, outcome, cost, seconds, clock.now))

        h.start_run("A", branch="agentloop/autofix-a", base_sha="aaa", tasks_total=3)
        tried("A", "t1", "logic_bug", 1, "tests_failed", 0.10, 30)
        tried("A", "t1", "logic_bug", 2, "fixed", 0.20, 60)
        h.finish_task(TaskRecord("A", "t1", "logic_bug", "fixed", tests=2, verified=True))
        tried("A", "t2", "type_error", 1, "fixed", 0.05, 20)
        h.finish_task(TaskRecord("A", "t2", "type_error", "fixed", tests=1, verified=False))
        tried("A", "t3", "logic_bug", 1, "rejected_forbidden_path", 0.10, 40)
        tried("A", "t3", "logic_bug", 2, "no_progress", 0.10, 40)
        h.finish_task(
            TaskRecord("A", "t3", "logic_bug", "unfixed", tests=3, verified=False, reason="stuck")
        )
        # VERIFY found t2's fix broke another test: the same task recorded again.
        h.finish_task(TaskRecord("A", "t2", "type_error", "regressed", tests=1, verified=True))
        clock.now = at("2025-01-06T10:30:00")
        h.finish_run("A", status="completed")

        clock.now = at("2025-01-08T09:00:00")
        h.start_run("B", branch="agentloop/autofix-b", base_sha="bbb", tasks_total=2)
        tried("B", "t4", "missing_dependency", 1, "fixed", 0.40, 120)
        h.finish_task(TaskRecord("B", "t4", "missing_dependency", "fixed", tests=1, verified=True))
        h.finish_task(
            TaskRecord("B", "t5", "logic_bug", "fixed", tests=2, verified=True, reason="by t4")
        )
        clock.now = at("2025-01-08T09:10:00")
        h.finish_run("B", status="completed")

        clock.now = at("2025-01-14T12:00:00")
        h.start_run("C", branch="agentloop/autofix-c", base_sha="ccc", tasks_total=2)
        tried("C", "t6", "logic_bug", 1, "fixed", 0.06, 10)
        h.finish_task(TaskRecord("C", "t6", "logic_bug", "fixed", tests=1, verified=False))
        h.finish_task(TaskRecord("C", "t7", "type_error", "skipped", tests=4, verified=False))
        clock.now = at("2025-01-14T12:05:00")
        h.finish_run("C", status="interrupted")

        clock.now = at("2025-01-15T08:00:00")
        h.start_run("D", branch="agentloop/autofix-d", base_sha="ddd", tasks_total=1)
        tried("D", "t8", "timeout", 1, "timeout", 0.50, 300)


def expect(**given: Any) -> dict[str, Any]:
    """Expected metrics: zero counts and None rates unless given."""
    base: dict[str, Any] = {f.name: 0 for f in dataclasses.fields(Metrics)}
    base.update(
        cost_usd=0.0,
        fix_rate=None,
        attempts_per_fix=None,
        regression_rate=None,
        median_time_per_fix_s=None,
        median_cost_per_fix_usd=None,
    )
    unknown = given.keys() - base.keys()
    assert not unknown, unknown
    return base | given


def same(actual: Metrics, expected: dict[str, Any]) -> None:
    got = dataclasses.asdict(actual)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if value is None or isinstance(value, int):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value), key


def run_stats(**kwargs: Any) -> int:
    # Imported here, not at the top: the concurrency test's spawned workers import this
    # module, and need the ledger only, not the command with rich and jsonschema.
    from agentloop.commands.stats import stats

    return stats(**kwargs)


# By hand, from build_ledger's table.
OVERALL = expect(
    runs=4, tasks=7, fixed=4, unfixed=1, regressed=1, unfinished=1, skipped=1, attempts=8,
    fixes_with_attempts=3, verified=4, cost_usd=1.51, fix_rate=4 / 7, attempts_per_fix=4 / 3,
    regression_rate=1 / 4, median_time_per_fix_s=90.0, median_cost_per_fix_usd=0.30,
)  # fmt: skip
WEEK_03 = expect(
    runs=2, tasks=2, fixed=1, unfinished=1, skipped=1, attempts=2, fixes_with_attempts=1,
    cost_usd=0.56, fix_rate=0.5, attempts_per_fix=1.0, median_time_per_fix_s=10.0,
    median_cost_per_fix_usd=0.06,
)  # fmt: skip


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = tmp_path / "repo" / ".agentloop" / "history.db"
    build_ledger(path)
    return path


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "history.db"  # the directory is created
    clock = Clock(at("2025-03-01T23:59:59.123456"))
    with History.open(path, clock=clock) as h:
        started = h.start_run("r1", branch="b", base_sha="0123abc", tasks_total=2)
        assert started == RunRecord(
            run_id="r1",
            started_at=at("2025-03-01T23:59:59.123"),  # stored to the millisecond
            finished_at=None,
            branch="b",
            base_sha="0123abc",
            status="running",
            tasks_total=2,
            tasks_fixed=0,
            cost_usd=0.0,
            duration_s=None,
        )
        assert h.run("r1") == started
        # Another time zone in: the same instant out, in UTC.
        east = datetime(2025, 3, 2, 1, 0, tzinfo=timezone(timedelta(hours=2)))
        sent = dataclasses.replace(
            attempt("r1", "t", "logic_bug", 1, "tests_failed", 0.25, 1.5, east),
            note="ünïcode – and 'quotes'",
        )
        h.record_attempt(sent)
        task = TaskRecord("r1", "t", "logic_bug", "unfixed", tests=3, verified=False, reason="x")
        h.finish_task(task)
        clock.now = at("2025-03-02T00:01:30")
        finished = h.finish_run("r1", status="completed")
    assert finished == dataclasses.replace(
        started,
        finished_at=at("2025-03-02T00:01:30"),
        status="completed",
        cost_usd=0.25,
        duration_s=finished.duration_s,
    )
    assert finished.duration_s == pytest.approx(90.877)
    with History.open(path) as h:
        ledger = h.ledger()
        assert h.run("nope") is None
    assert ledger == Ledger(runs=(finished,), attempts=(sent,), tasks=(task,))
    assert ledger.attempts[0].started_at.utcoffset() == timedelta(0)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    assert raw.execute("SELECT started_at FROM attempts").fetchone()[0] == (
        "2025-03-01T23:00:00.000+00:00"
    )
    raw.close()


def test_wrong_values_are_refused(tmp_path: Path) -> None:
    with History.open(tmp_path / "h.db") as h:
        h.start_run("r", branch="b", base_sha="s", tasks_total=1)
        now = history.utc_now()
        wrong = attempt("r", "t", "c", 1, "great", 0, 0, now)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="unknown attempt outcome 'great'"):
            h.record_attempt(wrong)
        naive = attempt("r", "t", "c", 1, "fixed", 0, 0, now.replace(tzinfo=None))
        with pytest.raises(ValueError, match="naive datetime"):
            h.record_attempt(naive)
        with pytest.raises(ValueError, match="no run 'other'"):
            h.finish_run("other", status="completed")
        with pytest.raises(sqlite3.IntegrityError):  # a bug of the caller, not a user error
            h.start_run("r", branch="b", base_sha="s", tasks_total=1)
        assert h.ledger().attempts == ()


def test_stats_by_hand(ledger_file: Path) -> None:
    with History.open(ledger_file) as h:
        ledger = h.ledger()
    result = compute(ledger)
    same(result.overall, OVERALL)

    assert [c for c, _ in result.by_category] == [
        "logic_bug",
        "missing_dependency",
        "timeout",
        "type_error",
    ]
    category = dict(result.by_category)
    same(
        category["logic_bug"],
        expect(
            runs=3, tasks=4, fixed=3, unfixed=1, attempts=5, fixes_with_attempts=2, verified=2,
            cost_usd=0.56, fix_rate=0.75, attempts_per_fix=1.5, regression_rate=0.0,
            median_time_per_fix_s=50.0, median_cost_per_fix_usd=0.18,
        ),
    )  # fmt: skip
    same(
        category["missing_dependency"],
        expect(
            runs=1, tasks=1, fixed=1, attempts=1, fixes_with_attempts=1, verified=1,
            cost_usd=0.40, fix_rate=1.0, attempts_per_fix=1.0, regression_rate=0.0,
            median_time_per_fix_s=120.0, median_cost_per_fix_usd=0.40,
        ),
    )  # fmt: skip
    same(
        category["timeout"],
        expect(runs=1, tasks=1, unfinished=1, attempts=1, cost_usd=0.50, fix_rate=0.0),
    )
    same(
        category["type_error"],
        expect(
            runs=2, tasks=1, regressed=1, skipped=1, attempts=1, verified=1, cost_usd=0.05,
            fix_rate=0.0, regression_rate=1.0,
        ),
    )  # fmt: skip

    assert [w for w, _ in result.by_week] == ["2025-W02", "2025-W03"]
    week = dict(result.by_week)
    same(
        week["2025-W02"],
        expect(
            runs=2, tasks=5, fixed=3, unfixed=1, regressed=1, attempts=6, fixes_with_attempts=2,
            verified=4, cost_usd=0.95, fix_rate=0.6, attempts_per_fix=1.5, regression_rate=0.25,
            median_time_per_fix_s=105.0, median_cost_per_fix_usd=0.35,
        ),
    )  # fmt: skip
    same(week["2025-W03"], WEEK_03)

    runs = [run for run, _ in result.by_run]
    assert [r.run_id for r in runs] == ["A", "B", "C", "D"]
    # The run rows' totals are derived from their tasks and attempts at finish_run.
    assert [(r.status, r.tasks_fixed, r.duration_s) for r in runs] == [
        ("completed", 1, 1800.0),
        ("completed", 2, 600.0),
        ("interrupted", 1, 300.0),
        ("running", 0, None),
    ]
    assert [r.cost_usd for r in runs] == pytest.approx([0.55, 0.40, 0.06, 0.0])
    per_run = [m for _, m in result.by_run]
    same(
        per_run[0],
        expect(
            runs=1, tasks=3, fixed=1, unfixed=1, regressed=1, attempts=5, fixes_with_attempts=1,
            verified=2, cost_usd=0.55, fix_rate=1 / 3, attempts_per_fix=2.0, regression_rate=0.5,
            median_time_per_fix_s=90.0, median_cost_per_fix_usd=0.30,
        ),
    )  # fmt: skip
    same(
        per_run[1],
        expect(
            runs=1, tasks=2, fixed=2, attempts=1, fixes_with_attempts=1, verified=2,
            cost_usd=0.40, fix_rate=1.0, attempts_per_fix=1.0, regression_rate=0.0,
            median_time_per_fix_s=120.0, median_cost_per_fix_usd=0.40,
        ),
    )  # fmt: skip
    same(
        per_run[2],
        expect(
            runs=1, tasks=1, fixed=1, skipped=1, attempts=1, fixes_with_attempts=1,
            cost_usd=0.06, fix_rate=1.0, attempts_per_fix=1.0, median_time_per_fix_s=10.0,
            median_cost_per_fix_usd=0.06,
        ),
    )  # fmt: skip
    same(
        per_run[3],
        expect(runs=1, tasks=1, unfinished=1, attempts=1, cost_usd=0.50, fix_rate=0.0),
    )


def test_since_keeps_later_runs_whole(ledger_file: Path) -> None:
    with History.open(ledger_file) as h:
        ledger = h.ledger(since=at("2025-01-13T00:00:00"))
    assert [r.run_id for r in ledger.runs] == ["C", "D"]
    assert {a.run_id for a in ledger.attempts} == {"C", "D"}
    result = compute(ledger)
    same(result.overall, WEEK_03)
    assert [w for w, _ in result.by_week] == ["2025-W03"]


def test_empty_ledger_is_zeros(tmp_path: Path) -> None:
    for ledger in (Ledger(), read_ledger(tmp_path / "empty.db")):
        result = compute(ledger)
        same(result.overall, expect())
        assert (result.by_category, result.by_week, result.by_run) == ((), (), ())
    # A run with nothing to fix: counted, with no rate.
    with History.open(tmp_path / "green.db") as h:
        h.start_run("g", branch="b", base_sha="s", tasks_total=0)
        h.finish_run("g", status="completed")
        result = compute(h.ledger())
    same(result.overall, expect(runs=1))
    assert [m.tasks for _, m in result.by_week] == [0]


def read_ledger(path: Path) -> Ledger:
    with History.open(path) as h:
        return h.ledger()


# ---------------------------------------------------------------- concurrency

WORKERS = 8
RUNS_EACH = 3
FRESH_LEDGERS = 20


def _worker(path: str, number: int, barrier: Any) -> None:
    """Runs' worth of writes (and stats reads), all workers starting together on ledgers
    that do not exist yet."""
    barrier.wait(timeout=60)
    # Creating a ledger is the narrowest race (switching it to WAL); run it many times.
    for k in range(FRESH_LEDGERS):
        with History.open(Path(path).with_name(f"fresh-{k}.db")):
            pass
    with History.open(Path(path)) as h:
        for r in range(RUNS_EACH):
            run_id = f"w{number}-r{r}"
            h.start_run(run_id, branch=f"agentloop/{run_id}", base_sha="s", tasks_total=2)
            for t in range(2):
                for n in (1, 2):
                    outcome: history.AttemptOutcome = "fixed" if n == 2 else "tests_failed"
                    h.record_attempt(
                        AttemptRecord(
                            run_id, f"t{t}", "logic_bug", n, outcome, 0.5, 1.0, 3, history.utc_now()
                        )
                    )
                h.finish_task(TaskRecord(run_id, f"t{t}", "logic_bug", "fixed", 1, True))
                compute(h.ledger())
            h.finish_run(run_id, status="completed")


def test_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / ".agentloop" / "history.db"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    workers = [
        context.Process(target=_worker, args=(str(path), n, barrier)) for n in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * WORKERS  # a traceback is on stderr if not
    with History.open(path) as h:
        ledger = h.ledger()
    assert len(ledger.runs) == WORKERS * RUNS_EACH
    assert len(ledger.tasks) == WORKERS * RUNS_EACH * 2
    assert len(ledger.attempts) == WORKERS * RUNS_EACH * 4
    assert {(r.status, r.tasks_fixed, r.cost_usd) for r in ledger.runs} == {("completed", 2, 2.0)}
    result = compute(ledger)
    assert (result.overall.fixed, result.overall.attempts_per_fix) == (WORKERS * RUNS_EACH * 2, 2)


# ---------------------------------------------------------------- schema versions, damage


def test_migrates_a_version_1_ledger(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    old = sqlite3.connect(path)
    for statement in history.MIGRATIONS[0]:
        old.execute(statement)
    old.execute("PRAGMA user_version = 1")
    old.execute(
        "INSERT INTO runs (run_id, started_at, branch, base_sha, status, tasks_total)"
        " VALUES ('old', '2024-12-01T10:00:00.000+00:00', 'b', 's', 'running', 1)"
    )
    old.execute(
        "INSERT INTO attempts VALUES ('old', 't', 'logic_bug', 1, 'fixed', 0.3, 12.0, 4,"
        " '2024-12-01T10:01:00.000+00:00', '')"
    )
    old.commit()
    old.close()

    with History.open(path, clock=Clock(at("2024-12-01T10:05:00"))) as h:
        h.finish_task(TaskRecord("old", "t", "logic_bug", "fixed", tests=1, verified=True))
        run = h.finish_run("old", status="completed")
        ledger = h.ledger()
    assert (run.tasks_fixed, run.cost_usd, run.duration_s) == (1, 0.3, 300.0)
    assert ledger.attempts[0].turns == 4
    same(
        compute(ledger).overall,
        expect(
            runs=1, tasks=1, fixed=1, attempts=1, fixes_with_attempts=1, verified=1,
            cost_usd=0.3, fix_rate=1.0, attempts_per_fix=1.0, regression_rate=0.0,
            median_time_per_fix_s=12.0, median_cost_per_fix_usd=0.3,
        ),
    )  # fmt: skip
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION == 6
    raw.close()


def build_row(run_id: str, started: datetime, **values: Any) -> history.BuildRecord:
    fields: dict[str, Any] = {
        "run_id": run_id,
        "request": f"feature {run_id}",
        "streams": 4,
        "started_at": started,
        "wall_s": 100.0,
        "serial_s": 300.0,
        "merged": 4,
        "conflicts": 0,
        "failed_suites": 0,
        "integrated": 4,
        "contract_matched": 4,
        "commit_sha": "c" * 40,
        "status": "completed",
    }
    fields.update(values)
    fields["finished_at"] = started + timedelta(seconds=fields["wall_s"])
    return history.BuildRecord(**fields)


def test_migrates_a_version_4_ledger(tmp_path: Path) -> None:
    """The ledger as agentloop wrote it before parallel builds: its runs stay, and builds
    can be recorded."""
    path = tmp_path / "history.db"
    old = sqlite3.connect(path)
    for statements in history.MIGRATIONS[:4]:
        for statement in statements:
            old.execute(statement)
    old.execute("PRAGMA user_version = 4")
    old.execute(
        "INSERT INTO runs (run_id, started_at, branch, base_sha, status, tasks_total)"
        " VALUES ('old', '2025-01-01T10:00:00.000+00:00', 'b', 's', 'completed', 1)"
    )
    old.commit()
    old.close()

    with History.open(path) as h:
        h.record_build(build_row("B", at("2025-01-02T10:00:00")))
        ledger = h.ledger()
    assert [r.run_id for r in ledger.runs] == ["old"]
    [build] = ledger.builds
    assert (build.run_id, build.serial_s, build.finished_at) == (
        "B",
        300.0,
        at("2025-01-02T10:01:40"),
    )
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 6
    raw.close()


def test_migrates_a_version_5_ledger_and_an_alert_tier_is_claimed_once(tmp_path: Path) -> None:
    """The ledger as agentloop wrote it before heal's alerts: its builds stay, and an
    alert's escalation tiers can be claimed, each exactly once."""
    path = tmp_path / "history.db"
    old = sqlite3.connect(path)
    for statements in history.MIGRATIONS[:5]:
        for statement in statements:
            old.execute(statement)
    old.execute("PRAGMA user_version = 5")
    old.commit()
    old.close()

    opened = at("2025-01-02T10:00:00")
    with History.open(path) as h:
        h.record_build(build_row("B", opened))
        h.record_alert("o/r", 7, url="u", title="t", opened_at=opened)
        h.record_alert("o/r", 7, url="u", title="t2", opened_at=opened + timedelta(hours=1))
        assert h.claim_tier("o/r", 7, 1, opened)
        assert not h.claim_tier("o/r", 7, 1, opened)
        [alert] = h.open_alerts("o/r")
        h.acknowledge_alert("o/r", 7, how="assigned to octocat", at=opened)
        assert h.open_alerts("o/r") == ()
        assert len(h.ledger().builds) == 1
    assert (alert.title, alert.opened_at, alert.tiers) == ("t2", opened, (1,))


def test_a_newer_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with History.open(path):
        pass
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {history.SCHEMA_VERSION + 1}")
    raw.close()
    with (
        pytest.raises(HistoryError, match=f"schema version {history.SCHEMA_VERSION + 1}") as caught,
        History.open(path),
    ):
        pass
    assert caught.value.hint is not None
    assert "upgrade agentloop" in caught.value.hint


def _truncated_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    db.commit()
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", ["text", "truncated"])
def test_a_corrupt_ledger_is_an_error_with_a_hint(tmp_path: Path, damage: str) -> None:
    path = tmp_path / ".agentloop" / "history.db"
    path.parent.mkdir()
    if damage == "text":
        path.write_text("these are my notes, not a database\n" * 50)
    else:
        _truncated_database(path)
    before = path.read_bytes()
    with pytest.raises(HistoryError) as caught, History.open(path):
        pass
    assert str(path) in caught.value.message
    assert caught.value.hint is not None
    assert f"mv {path} {path}.bad" in caught.value.hint
    assert path.read_bytes() == before  # nothing was written into it

    reported: list[tuple[str, str | None, int]] = []
    code = errors.guarded(
        lambda: run_stats(repo=tmp_path, as_json=True),
        report=lambda message, hint, code: reported.append((message, hint, code)),
    )
    assert code == errors.USAGE == 2
    [(message, hint, _)] = reported
    assert message.startswith("cannot use the run ledger")
    assert hint is not None
    assert "mv " in hint


def test_a_file_where_the_directory_goes(tmp_path: Path) -> None:
    (tmp_path / ".agentloop").write_text("")
    path = tmp_path / ".agentloop" / "history.db"
    with pytest.raises(HistoryError, match="cannot create") as caught, History.open(path):
        pass
    assert caught.value.hint is not None


# ---------------------------------------------------------------- agentloop stats


@pytest.fixture(scope="module")
def validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath("stats.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def json_of(capsys: pytest.CaptureFixture[str], validator: Any, **kwargs: Any) -> dict[str, Any]:
    assert run_stats(as_json=True, **kwargs) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert problems == []
    return doc


def test_json_validates_against_the_schema(
    ledger_file: Path, capsys: pytest.CaptureFixture[str], validator: Any
) -> None:
    repo = ledger_file.parents[1]
    doc = json_of(capsys, validator, repo=repo)
    assert doc["ledger"] == str(ledger_file.resolve())
    assert doc["since"] is None
    assert doc["notes"] == []
    assert doc["overall"]["fix_rate"] == round(4 / 7, 4) == 0.5714
    assert doc["overall"]["median_cost_per_fix_usd"] == 0.3
    assert [c["category"] for c in doc["by_category"]] == [
        "logic_bug",
        "missing_dependency",
        "timeout",
        "type_error",
    ]
    assert [w["week"] for w in doc["by_week"]] == ["2025-W02", "2025-W03"]
    first, *_, last = doc["by_run"]
    assert (first["run_id"], first["started_at"], first["duration_s"]) == (
        "A",
        "2025-01-06T10:00:00+00:00",
        1800.0,
    )
    assert (last["status"], last["finished_at"], last["metrics"]["unfinished"]) == (
        "running",
        None,
        1,
    )

    doc = json_of(capsys, validator, repo=repo, since="2025-01-13")
    assert doc["since"] == "2025-01-13T00:00:00+00:00"
    assert doc["overall"]["tasks"] == 2

    doc = json_of(capsys, validator, repo=repo, since="2030-01-01")
    assert doc["notes"] == ["no runs since 2030-01-01 00:00 UTC"]
    assert doc["overall"]["runs"] == 0


def test_no_ledger_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str], validator: Any) -> None:
    doc = json_of(capsys, validator, repo=tmp_path)
    assert doc["notes"] == ["no runs recorded yet"]
    assert doc["overall"]["fix_rate"] is None
    assert doc["by_run"] == []
    assert run_stats(repo=tmp_path, as_json=False) == 0
    captured = capsys.readouterr()
    assert "no runs recorded yet" in captured.err
    assert captured.out == ""
    assert not (tmp_path / ".agentloop").exists()  # reading never creates the ledger


def test_tables(
    ledger_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As wide as a log gets (output.py): under pytest-xdist a worker's COLUMNS says 80.
    monkeypatch.setattr(output.out, "width", 120)
    assert run_stats(repo=ledger_file.parents[1], as_json=False) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    (overall,) = [line for line in lines if line.startswith("│ all ")]
    # tasks fixed of attempted, regressed of verified, attempts/fix (n), medians, cost.
    for cell in ("4/7 57%", "1/4 25%", "1.33 (n=3)", "1m 30s", "$0.30", "$1.51"):
        assert cell in overall, overall
    (logic,) = [line for line in lines if line.startswith("│ logic_bug ")]
    assert "3/4 75%" in logic
    assert any(line.startswith("│ 2025-W03 ") and "1/2 50%" in line for line in lines)
    assert any(line.startswith("│ D ") and "running" in line for line in lines)
    assert lines[-1] == "4/7 tasks fixed in 4 runs, 8 attempts, $1.51"


def test_repo_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="is not a directory"):
        run_stats(repo=tmp_path / "missing", as_json=False)


def test_parse_since() -> None:
    from agentloop.commands.stats import parse_since

    now = at("2025-02-10T12:00:00")
    assert parse_since("7d", now=now) == at("2025-02-03T12:00:00")
    assert parse_since("36h", now=now) == at("2025-02-09T00:00:00")
    assert parse_since("2w", now=now) == at("2025-01-27T12:00:00")
    assert parse_since("2025-01-31", now=now) == at("2025-01-31T00:00:00")
    assert parse_since("2025-01-31T12:30+01:00", now=now) == at("2025-01-31T11:30:00")
    with pytest.raises(errors.UsageError, match="neither an age nor a date") as caught:
        parse_since("last tuesday", now=now)
    assert caught.value.hint is not None


def test_stats_builds(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    validator: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with History.open(history.ledger_path(tmp_path)) as h:
        # 100 s for 300 s of streams, clean; 200 s for 300 s, one conflict (the contract
        # kept) and a failed full suite.
        h.record_build(build_row("B1", at("2025-01-06T10:00:00")))
        h.record_build(
            build_row(
                "B2", at("2025-01-07T10:00:00"), wall_s=200.0, conflicts=1, failed_suites=1,
                contract_matched=3,
            )
        )  # fmt: skip
    doc = json_of(capsys, validator, repo=tmp_path, builds=True)
    overall = doc["builds"]["overall"]
    assert overall["speedup"] == 2.0  # 600 s serial in 300 s
    assert (overall["failed_builds"], overall["failure_rate"]) == (1, 0.5)
    assert overall["integration_failures"] == 2
    assert (overall["contract_matched"], overall["integrated"]) == (7, 8)
    assert overall["contract_accuracy"] == 0.875
    assert [b["speedup"] for b in doc["builds"]["builds"]] == [3.0, 1.5]
    # The plain document has no builds part; the schema allows both.
    assert "builds" not in json_of(capsys, validator, repo=tmp_path)

    monkeypatch.setattr(output.out, "width", 160)
    assert run_stats(repo=tmp_path, as_json=False, builds=True) == 0
    lines = capsys.readouterr().out.splitlines()
    (b2,) = [line for line in lines if line.startswith("│ B2 ")]
    for cell in ("3m 20s", "5m 00s", "1.50x", "3/4 75%"):
        assert cell in b2, b2
    assert lines[-1] == (
        "2.00x faster than serial (5m 00s wall, 10m 00s serial estimate); integration "
        "failed in 1/2 50% builds; contract accuracy 7/8 88% streams"
    )


def test_stats_builds_says_slower_when_builds_took_longer_than_serial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found on humanize: 42 s wall for 29 s of streams printed "0.68x faster than serial".
    with History.open(history.ledger_path(tmp_path)) as h:
        h.record_build(build_row("B1", at("2025-01-06T10:00:00"), wall_s=600.0))
    monkeypatch.setattr(output.out, "width", 160)
    assert run_stats(repo=tmp_path, as_json=False, builds=True) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("0.50x: slower than serial (10m 00s wall, 5m 00s serial estimate)"), last


def test_stats_builds_without_builds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_stats(repo=tmp_path, as_json=False, builds=True) == 0
    assert "no parallel builds recorded yet" in capsys.readouterr().err
