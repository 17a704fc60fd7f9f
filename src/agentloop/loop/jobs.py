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
    seen, todo = set(start), list(start)
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return frozenset(p for p in seen if PurePosixPath(p).stem != "__init__")


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
) -> tuple[list[TaskReport], str | None]:
    """Fix `tasks` with up to `jobs` at once, in their order among those free to start;
    return their reports in that order, and the cap that stopped the run, if one did."""
    reports: dict[str, TaskReport] = {}
    waiting = list(tasks)
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
        while waiting and stopped_by is None:
            task = waiting.pop(0)
            ended(task, lambda: work(1, task))  # noqa: B023 (called at once)
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="agentloop-job") as pool:
            try:
                launch(pool)
                while running:
                    # With a timeout: a wait without one blocks on a lock that a signal
                    # delivered to another thread never wakes, and ^C would wait for a job.
                    finished_now, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                    for future in finished_now:
                        job, task = running.pop(future)
                        free.append(job)
                        free.sort()
                        ended(task, future.result)
                    launch(pool)
            except BaseException:
                # ^C, or a job's unexpected error: no new session starts, the ones in
                # flight end now, and every job's attempt puts its worktree back before
                # the exception goes on up.
                stop.set()
                cancel()
                wait(running)
                raise
    for task in waiting:
        done(TaskReport(task, "skipped", reason=f"{stopped_by or 'the run'} reached"))
    return [reports[t.id] for t in tasks], stopped_by
