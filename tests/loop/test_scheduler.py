"""`loop.jobs`: which tasks may run at once, and the pool's stopping rules, with plain
functions as the work (no git, no agent), and `loop.budget`'s reservations."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence

import pytest

from agentloop.failures.model import Failure, Location, Task
from agentloop.loop.budget import Budget
from agentloop.loop.jobs import CapReached, reach, run_jobs
from agentloop.loop.model import TaskReport


def task(name: str, crash: str | None = None) -> Task:
    failure = Failure(
        id=name, suite="pytest", runner="pytest", test_id=f"tests/test_{name}.py::test_{name}",
        file=f"tests/test_{name}.py", line=1, test_name=f"test_{name}", selector=None, cwd=".",
        error_type="AssertionError", message="", stack_trace="", crash_location=None,
        stage="call", category="assertion",
    )  # fmt: skip
    return Task(
        id=name,
        category="assertion",
        error_type="AssertionError",
        message="",
        crash_location=Location(crash, 1) if crash else None,
        failures=(failure,),
    )


GRAPH = {
    "tests/test_a.py": {"pkg/a.py", "pkg/__init__.py"},
    "tests/test_b.py": {"pkg/b.py", "pkg/__init__.py"},
    "tests/test_c.py": {"pkg/c.py"},
    "pkg/c.py": {"pkg/a.py"},
}


def test_reach_follows_imports_and_leaves_package_inits_out() -> None:
    assert reach(task("a"), GRAPH) == {"tests/test_a.py", "pkg/a.py"}
    # c imports a, through pkg/c.py: c and a overlap, a and b do not.
    assert reach(task("c"), GRAPH) == {"tests/test_c.py", "pkg/c.py", "pkg/a.py"}
    assert reach(task("b", crash="pkg/util.py"), GRAPH) >= {"pkg/util.py"}


class Recorder:
    """Work that takes a while and records which tasks ran at the same time."""

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = seconds
        self.active: set[str] = set()
        self.together: list[frozenset[str]] = []
        self.jobs: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, job: int, t: Task) -> TaskReport:
        with self.lock:
            self.active.add(t.id)
            self.together.append(frozenset(self.active))
            self.jobs[t.id] = job
        time.sleep(self.seconds)
        with self.lock:
            self.active.discard(t.id)
        return TaskReport(t, "unfixed", reason="scripted")


def never_close(_fixed: TaskReport, _waiting: Collection[str]) -> Sequence[TaskReport]:
    return []


def schedule(
    tasks: Sequence[Task], work: object, *, jobs: int = 3, **kw: object
) -> tuple[list[TaskReport], str | None]:
    reaches = {t.id: reach(t, GRAPH) for t in tasks}
    return run_jobs(
        tasks, jobs=jobs, reaches=reaches, work=work,  # type: ignore[arg-type]
        close=kw.get("close", never_close),  # type: ignore[arg-type]
        finished=lambda _r: None, stop=kw.get("stop", threading.Event()),  # type: ignore[arg-type]
        cancel=kw.get("cancel", lambda: None),  # type: ignore[arg-type]
    )  # fmt: skip


def test_tasks_whose_reach_overlaps_never_run_together() -> None:
    work = Recorder()
    reports, stopped = schedule([task("a"), task("b"), task("c")], work)
    assert [r.task.id for r in reports] == ["a", "b", "c"]
    assert stopped is None
    assert any({"a", "b"} <= s for s in work.together)  # independent: at once
    assert not any({"a", "c"} <= s for s in work.together)  # c imports a: one after the other


def test_a_cap_stops_new_tasks_and_skips_the_rest() -> None:
    started: list[str] = []

    def work(_job: int, t: Task) -> TaskReport:
        started.append(t.id)
        if t.id == "a":
            raise CapReached("max_budget")
        time.sleep(0.2)
        return TaskReport(t, "unfixed")

    tasks = [task("a"), task("b"), task("c"), task("d")]
    reports, stopped = schedule(tasks, work, jobs=2)
    assert stopped == "max_budget"
    by_id = {r.task.id: r for r in reports}
    assert by_id["a"].outcome == "skipped"
    # b was in flight and finished; c and d never started.
    assert by_id["b"].outcome == "unfixed"
    assert "c" not in started
    assert by_id["c"].reason == by_id["d"].reason == "max_budget reached"


def test_a_failing_job_stops_and_cancels_the_others_then_raises() -> None:
    stop, cancelled = threading.Event(), threading.Event()

    def work(_job: int, t: Task) -> TaskReport:
        if t.id == "a":
            raise RuntimeError("boom")
        stop.wait(5)  # as a session does until `cancel` ends it
        return TaskReport(t, "unfixed")

    began = time.monotonic()
    with pytest.raises(RuntimeError, match="boom"):
        schedule([task("a"), task("b")], work, jobs=2, stop=stop, cancel=cancelled.set)
    assert stop.is_set()
    assert cancelled.is_set()
    assert time.monotonic() - began < 4


def test_a_task_closed_by_a_fix_is_not_started() -> None:
    started: list[str] = []

    def work(_job: int, t: Task) -> TaskReport:
        started.append(t.id)
        return TaskReport(t, "fixed", commit="f" * 40)

    def close(fixed: TaskReport, waiting: Collection[str]) -> Sequence[TaskReport]:
        if fixed.task.id == "a" and "c" in waiting:
            return [TaskReport(task("c"), "fixed", fixed_by=fixed.commit)]
        return []

    reports, _ = schedule([task("a"), task("c")], work, jobs=2, close=close)
    assert started == ["a"]
    assert reports[1].fixed_by == "f" * 40


def test_budget_reservations_never_exceed_the_cap_and_wait_for_a_settle() -> None:
    budget = Budget(0.05, per_session_usd=0.02)
    held = [budget.reserve() for _ in range(3)]
    assert [r.usd if r else None for r in held] == [0.02, 0.02, pytest.approx(0.01)]
    # Everything is reserved: the next caller waits until a session settles cheaply...
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(budget.reserve()))
    waiter.start()
    time.sleep(0.3)
    assert got == []
    first = held[0]
    assert first is not None
    budget.settle(first, 0.005)
    waiter.join(2)
    assert got
    assert got[0] is not None
    # ...and once the cap is spent, with nothing in flight, there is no more.
    for r in [*held[1:], got[0]]:
        budget.settle(r, 0.02)  # type: ignore[arg-type]
    assert budget.reserve() is None
    assert budget.spent_usd <= 0.05 + 0.02  # what sessions report is counted as spent
