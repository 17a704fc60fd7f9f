"""Running tasks at the same time: which may, and the pool of jobs that runs them.

Two tasks may be fixed at once when their reach through the import graph does not overlap
(`reach`): the files their tests import, directly or not, where a fix is likely to land.
Overlap is not conflict, and no overlap does not rule one out (a fix may land anywhere);
it is a cheap guess that keeps likely conflicts apart. A conflict that happens anyway is
caught when the fix is applied to the run's branch (`git merge-tree`), and the task tries
again on top of the other fix.

`run_jobs` is the scheduler and nothing else: the work of one task (its attempts, in a
worktree of its own) is a function it is given, so its order and stopping rules are tested
with plain functions. It runs in the calling thread's control: each job is a thread, and
^C (which Python delivers to the main thread only) sets `stop` and calls `cancel`, which
ends the sessions in flight; the jobs then finish their attempts' clean-up, and the
interrupt goes on up once every job has returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import PurePosixPath

from agentloop.failures import imports
from agentloop.failures.model import Task
from agentloop.loop.model import TaskReport


class CapReached(Exception):
    """The run's runtime or budget is used up: which, and how the task in hand ended."""

    def __init__(self, cap: str, report: TaskReport | None = None) -> None:
        super().__init__(cap)
        self.cap = cap
        self.report = report


def reach(task: Task, graph: Mapping[str, set[str]]) -> frozenset[str]:
    """The project files `task`'s tests and crash site lead to through the import graph.
    Package `__init__` files are left out: nearly every test reaches them through its
    package, so they would make every pair of tasks overlap."""
    start = {f.file for f in task.failures if f.file}
    if task.crash_location is not None:
        start.add(task.crash_location.file)
    seen = imports.reachable(start, graph)
    return frozenset(p for p in seen if PurePosixPath(p).stem != "__init__")


class Later:
    """Tasks found while the fixing runs: `find` runs in a thread of its own (a run's
    order check), and `run_jobs` takes its tasks in as soon as it has them."""

    def __init__(self, find: Callable[[], Sequence[Task]]) -> None:
        self._found: list[Task] | None = None
        self.error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, args=(find,), daemon=True)
        self._thread.start()

    def _run(self, find: Callable[[], Sequence[Task]]) -> None:
        try:
            self._found = list(find())
        except BaseException as exc:  # reported by whoever takes the tasks
            self.error = exc
            self._found = []

    def pending(self) -> bool:
        return not self._taken

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def take(self) -> list[Task]:
        """The tasks found, once, when the search is over; [] until then and after."""
        if self._taken or self._thread.is_alive():
            return []
        self._taken = True
        if self.error is not None:
            raise self.error
        return self._found or []


# (the job's number, the task) → how the task ended; raises CapReached when a cap stops it.
Work = Callable[[int, Task], TaskReport]
# A fixed task's report → the reports of waiting tasks its fix closed (fixed as a side
# effect, without a session of their own), given the ids of the tasks still waiting.
Closer = Callable[[TaskReport, Collection[str]], Sequence[TaskReport]]
# Every finished task's report, as it finishes (the ledger is written from here).
Finished = Callable[[TaskReport], None]


def run_jobs(
    tasks: Sequence[Task],
    *,
    jobs: int,
    reaches: Mapping[str, frozenset[str]],
    work: Work,
    close: Closer,
    finished: Finished,
    stop: threading.Event,
    cancel: Callable[[], None],
    later: Later | None = None,
    arrived: Callable[[Task], None] = lambda _task: None,
) -> tuple[list[TaskReport], str | None]:
    """Fix `tasks` with up to `jobs` at once, in their order among those free to start,
    and the tasks `later` finds meanwhile (`arrived` is told of each first, so that its
    reach is known); return their reports in that order, and the cap that stopped the
    run, if one did."""
    reports: dict[str, TaskReport] = {}
    tasks = list(tasks)
    waiting = list(tasks)

    def absorb() -> None:
        if later is None:
            return
        for task in later.take():
            if any(t.id == task.id for t in tasks):
                continue
            arrived(task)
            tasks.append(task)
            waiting.append(task)

    def more_coming() -> bool:
        return later is not None and later.pending() and stopped_by is None and not stop.is_set()

    running: dict[Future[TaskReport], tuple[int, Task]] = {}
    free = list(range(1, jobs + 1))
    stopped_by: str | None = None

    def done(report: TaskReport) -> None:
        reports[report.task.id] = report
        finished(report)

    def launch(pool: ThreadPoolExecutor) -> None:
        busy = frozenset().union(*(reaches[t.id] for _, t in running.values()))
        while free and stopped_by is None and not stop.is_set():
            task = next((t for t in waiting if not reaches[t.id] & busy), None)
            if task is None:
                return
            waiting.remove(task)
            job = free.pop(0)
            running[pool.submit(work, job, task)] = (job, task)
            busy |= reaches[task.id]

    def ended(task: Task, outcome: Callable[[], TaskReport]) -> None:
        nonlocal stopped_by
        try:
            report = outcome()
        except CapReached as cap:
            stopped_by = stopped_by or cap.cap
            report = cap.report or TaskReport(task, "skipped", reason=f"{cap.cap} reached")
        done(report)
        if report.outcome == "fixed" and report.commit:
            for other in close(report, [t.id for t in waiting]):
                waiting[:] = [t for t in waiting if t.id != other.task.id]
                done(other)

    if jobs == 1:
        # In this thread: a single job needs no pool, and its session keeps the main
        # thread's own ^C handling.
        while stopped_by is None:
            absorb()
            if not waiting:
                if not more_coming():
                    break
                assert later is not None
                later.wait(0.25)
                continue
            task = waiting.pop(0)
            ended(task, lambda: work(1, task))  # noqa: B023 (called at once)
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="agentloop-job") as pool:
            try:
                while True:
                    absorb()
                    launch(pool)
                    if not running:
                        if not more_coming():
                            break
                        assert later is not None
                        later.wait(0.25)
                        continue
                    # With a timeout: a wait without one blocks on a lock that a signal
                    # delivered to another thread never wakes, and ^C would wait for a job.
                    finished_now, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                    for future in finished_now:
                        job, task = running.pop(future)
                        free.append(job)
                        free.sort()
                        ended(task, future.result)
            except BaseException:
                # ^C, or a job's unexpected error: no new session starts, the ones in
                # flight end now, and every job's attempt puts its worktree back before
                # the exception goes on up.
                stop.set()
                cancel()
                wait(running)
                raise
    if later is not None and stopped_by is not None:
        # Stopped by a cap: the search's own tests end at their timeouts; what it found
        # is reported, skipped.
        later.wait()
        absorb()
    for task in waiting:
        done(TaskReport(task, "skipped", reason=f"{stopped_by or 'the run'} reached"))
    return [reports[t.id] for t in tasks], stopped_by
