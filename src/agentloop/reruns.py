"""Re-running detect's failing tests: in as few runner processes as possible, in parallel.

What the outcomes mean is decided in agentloop.failures.flaky; this module runs them.

- pytest: the candidates of a suite are split into one batch per available core (in the
  order the suite ran them, so a module's fixtures are set up once per batch); each batch is
  one pytest process given all its node ids, run `reruns` times, every other time in
  reverse. pytest runs node ids in command-line order and reports each to agentloop's
  probe plugin, whose file gives the outcome of every test. Only a test that passed some
  re-run needs processes of its own: alone (when it failed in others: a batch-mate may
  have polluted it), after its predecessors, and the bisection for its polluter.
- vitest/jest: each test is re-run by its own selector (a name filter cannot tell two
  tests of the same name apart), on all cores at once. A test that passes every time is
  run once more with its whole file, where every earlier test of the file runs before it;
  no polluter is searched for (the runners offer no way to run a chosen subset of tests
  in a chosen order).

Each process is killed after

    STARTUP_S + sum(max(FLOOR_S, MULTIPLE × d) for each test it runs)

where d is the test's duration (all its stages) in the suite run. A test whose duration
the report does not give counts as `detect.rerun_timeout`. A run after predecessors counts
the whole suite's duration for them (the report does not time passing tests one by one):
STARTUP_S + MULTIPLE × the suite's duration + FLOOR_S per predecessor + the victim's own
MULTIPLE × d (or FLOOR_S). STARTUP_S covers the
interpreter, imports and collection; FLOOR_S keeps a test that took 2 ms in the suite
from being killed on a busy machine; MULTIPLE absorbs a slower machine or a loaded one.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shlex
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentloop import proc
from agentloop import suites as suites_mod
from agentloop.errors import AgentloopError
from agentloop.failures import flaky
from agentloop.failures import probe as probe_events
from agentloop.failures.model import Dialect, Failure, FlakyTest

STARTUP_S = 30.0
FLOOR_S = 1.0
MULTIPLE = 5.0
# The polluter search stops starting bisections after this many suite durations.
SEARCH_MULTIPLE = 3.0

Progress = Callable[[str], None]
Outcome = Literal["passed", "failed"]


@dataclass(frozen=True)
class Target:
    """How the failures of one suite are re-run."""

    suite: str
    runner: Dialect
    cwd: Path
    # The selector prefix: the runner and the suite's own options, nothing that selects.
    prefix: str
    # Test ids in the order the suite's process ran them; () when unknown.
    order: tuple[str, ...] = ()
    # The suite run's wall time: bounds a re-run of any subset of its tests.
    duration: float = 0.0
    # The suite itself, when agentloop ran it (decides the reporter of a whole-file run).
    source: suites_mod.Suite | None = None


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def allowance(failures: Iterable[Failure], *, unknown: float) -> float:
    return STARTUP_S + sum(
        unknown if f.duration is None else max(FLOOR_S, MULTIPLE * f.duration) for f in failures
    )


def node(failure: Failure) -> str:
    """The pytest node id that runs `failure` (a subtest's is its test's)."""
    return failure.parent or failure.test_id


def run_order(probe: Path) -> tuple[str, ...]:
    """The node ids a pytest process started, in order, from agentloop's probe file."""
    return tuple(
        str(e.get("nodeid", "")) for e in probe_events.events(probe) if e.get("event") == "start"
    )


def _probe_outcomes(found: list[dict[str, Any]]) -> dict[str, Outcome] | None:
    """Per node id: passed (started, finished, nothing failed: no subtest either) or
    failed. None when the process wrote no event at all (the probe was not loaded)."""
    if not found:
        return None
    failed = {str(e.get("nodeid", "")) for e in found if e.get("event") == "failed"}
    outcomes: dict[str, Outcome] = {
        str(e.get("nodeid", "")): "passed" for e in found if e.get("event") == "finish"
    }
    outcomes.update(dict.fromkeys(failed, "failed"))
    return outcomes


@dataclass(frozen=True)
class PytestRun:
    # Each test's outcome (a test missing here did not run); None when the probe saw
    # nothing (it was not loaded, or pytest stopped before collecting).
    outcomes: dict[str, Outcome] | None
    # The node ids the process started, in order (the last one unfinished after a kill
    # is the test that was running).
    started: tuple[str, ...]
    done: proc.Completed


def run_pytest(
    prefix: str, ids: Sequence[str], *, cwd: Path, timeout: float, env: Mapping[str, str]
) -> PytestRun:
    """Run `ids` in this order in one pytest process (`prefix`: the runner and the suite's
    own options), with agentloop's probe reporting each test."""
    with tempfile.TemporaryDirectory(prefix="agentloop-rerun-") as tmp:
        probe = Path(tmp) / "probe.jsonl"
        run_env = {**env, **suites_mod.RUN_ENV, **suites_mod.probe_env(probe, env)}
        # pytest runs each node id once (the first time it is named), in this order.
        unique = list(dict.fromkeys(ids))
        command = f"{suites_mod.with_probe(prefix)} " + " ".join(shlex.quote(i) for i in unique)
        done = proc.run(command, cwd=cwd, timeout=timeout, env=run_env)
        found = probe_events.events(probe)
    started = tuple(str(e.get("nodeid", "")) for e in found if e.get("event") == "start")
    return PytestRun(_probe_outcomes(found), started, done)


class Rerunner:
    """Runs the re-runs of one detect; `check` sorts the failures."""

    def __init__(
        self,
        targets: Mapping[str, Target],
        *,
        root: Path,
        reruns: int,
        unknown_timeout: float,
        progress: Progress,
        env: Mapping[str, str] | None = None,
        workers: int | None = None,
    ) -> None:
        self.targets = targets
        self.root = root
        self.reruns = reruns
        self.unknown = unknown_timeout
        self.progress = progress
        self.env = dict(os.environ if env is None else env)
        self.workers = workers or cores()
        self._lock = threading.Lock()
        self._processes = 0
        # What `check(defer_order=True)` left for `check_order`, and what it needs then.
        self.deferred: list[Failure] = []
        self._timed_out: set[str] = set()
        self._passes: Counter[str] = Counter()

    # ------------------------------------------------------------ processes

    def _started(self) -> None:
        with self._lock:
            self._processes += 1

    def _pytest(
        self, target: Target, ids: Sequence[str], timeout: float
    ) -> dict[str, Outcome] | None:
        """Run `ids` in this order in one pytest process: each test's outcome (a test
        missing from the result did not run). None when the probe saw nothing."""
        self._started()
        return run_pytest(
            target.prefix, ids, cwd=target.cwd, timeout=timeout, env=self.env
        ).outcomes

    def _selector(self, failure: Failure, timeout: float) -> bool:
        assert failure.selector is not None
        self._started()
        passed, _ = suites_mod.run_selector(
            failure.selector,
            dialect=failure.runner,
            cwd=self.root / failure.cwd,
            timeout=timeout,
            env=self.env,
        )
        return passed

    def _batch_passes(self, target: Target, batch: Sequence[Failure]) -> Counter[str]:
        """How many of the `reruns` re-runs each failure of the batch passed. Every other
        pass runs the batch in reverse: a test that its batch-mates pollute fails one way
        and passes the other, so it is never taken for a plain failure."""
        passes: Counter[str] = Counter()
        timeout = allowance(batch, unknown=self.unknown)
        for number in range(self.reruns):
            ordered = batch if number % 2 == 0 else batch[::-1]
            outcomes = (
                self._pytest(target, [node(f) for f in ordered], timeout)
                if target.runner == "pytest" and target.prefix
                else None
            )
            for failure in batch:
                if outcomes is None:
                    # Not pytest, or a command the probe could not see into: one at a time.
                    ok = self._selector(failure, allowance([failure], unknown=self.unknown))
                else:
                    ok = outcomes.get(node(failure)) == "passed"
                passes[failure.id] += ok
        return passes

    def _fails_after(self, target: Target, victim: Failure, before: Sequence[str]) -> bool:
        timeout = self._order_timeout([victim], len(before), target)
        outcomes = self._pytest(target, [*before, node(victim)], timeout)
        return outcomes is not None and outcomes.get(node(victim)) == "failed"

    def _passes_alone(self, target: Target, victim: Failure) -> bool:
        """A test that passed some batched re-runs: a flake, unless it passes alone (a
        batch-mate may have polluted it; then it is checked after its predecessors)."""
        outcomes = self._pytest(target, [node(victim)], allowance([victim], unknown=self.unknown))
        return outcomes is not None and outcomes.get(node(victim)) == "passed"

    def _order_group(
        self, target: Target, victims: Sequence[Failure], skip: set[str]
    ) -> dict[str, Failure]:
        """The victims (tests that passed alone) that are order-dependent failures, by id;
        the others are flakes. One polluter usually breaks many tests (a global set and
        never reset), so this costs a handful of processes whatever the number of victims:

        1. one process runs the suite's order up to the last victim: a victim that fails
           there again is confirmed (failed twice in order, passed twice alone);
        2. for the first confirmed victim still unexplained, bisect its predecessors;
        3. one process runs the polluter found, then every later unexplained victim: those
           that fail are its victims too. Back to 2 while victims are left and the search
           has time (SEARCH_MULTIPLE × the suite's duration); those left then are tasks
           without a named polluter, their selector the whole run before them.
        """
        rank = {t: i for i, t in enumerate(target.order)}
        placed = sorted((v for v in victims if node(v) in rank), key=lambda v: rank[node(v)])
        if not placed:
            return {}
        last = rank[node(placed[-1])]
        run = list(dict.fromkeys(t for t in target.order[: last + 1] if t not in skip))
        outcomes = self._pytest(target, run, self._order_timeout(placed, len(run), target))
        if outcomes is None:
            return {}
        left = [v for v in placed if outcomes.get(node(v)) == "failed"]
        found: dict[str, Failure] = {}
        deadline = time.monotonic() + STARTUP_S + SEARCH_MULTIPLE * target.duration
        while left:
            victim = left.pop(0)
            victim_node = node(victim)
            before = [t for t in run[: run.index(victim_node)] if t != victim_node]
            if time.monotonic() > deadline:
                found[victim.id] = self._order_dependent(target, victim, before)
                continue
            culprits = flaky.bisect(before, functools.partial(self._fails_after, target, victim))
            # Once more: a flake that happened to fail after its predecessors passes now.
            if not self._fails_after(target, victim, culprits):
                continue
            found[victim.id] = self._order_dependent(target, victim, culprits)
            if len(culprits) != 1 or not left:
                continue
            polluter = culprits[0]
            later = [v for v in left if rank[node(v)] > rank.get(polluter, -1)]
            if not later:
                continue
            after = self._pytest(
                target,
                [polluter, *(node(v) for v in later)],
                self._order_timeout(later, 1, target),
            )
            for other in later:
                if after is not None and after.get(node(other)) == "failed":
                    found[other.id] = self._order_dependent(target, other, culprits)
                    left.remove(other)
        return found

    def _order_timeout(self, victims: Sequence[Failure], count: int, target: Target) -> float:
        return (
            allowance(victims, unknown=self.unknown) + MULTIPLE * target.duration + FLOOR_S * count
        )

    @staticmethod
    def _order_dependent(target: Target, victim: Failure, before: Sequence[str]) -> Failure:
        words = " ".join(shlex.quote(t) for t in [*before, node(victim)])
        return dataclasses.replace(
            victim,
            order_dependent=True,
            polluter=before[0] if len(before) == 1 else None,
            selector=f"{target.prefix} {words}",
        )

    def _order_file(self, target: Target, victim: Failure) -> Failure | None:
        """vitest/jest: the victim's whole file, through the suite's own reporter."""
        suite = target.source
        if suite is None or suite.runner is None or victim.file is None:
            return None
        rel = victim.file
        if victim.cwd not in (".", "") and rel.startswith(victim.cwd + "/"):
            rel = rel[len(victim.cwd) + 1 :]
        selector = f"{target.prefix} {shlex.quote(rel)}"
        with tempfile.TemporaryDirectory(prefix="agentloop-rerun-") as tmp:
            report = Path(tmp) / "report"
            single = dataclasses.replace(suite, run=selector, report=None)
            command, extra = suites_mod.reporter_command(single, report, Path(tmp) / "probe")
            self._started()
            proc.run(
                command,
                cwd=target.cwd,
                timeout=allowance([victim], unknown=self.unknown) + MULTIPLE * target.duration,
                env={**self.env, **extra},
            )
            try:
                parsed = suites_mod.read_run_report(single, report)
            except (OSError, AgentloopError):
                return None
        if victim.test_id not in {p.test_id for p in parsed.failures}:
            return None
        return dataclasses.replace(victim, order_dependent=True, polluter=None, selector=selector)

    def _order_file_found(self, target: Target, victim: Failure) -> dict[str, Failure]:
        found = self._order_file(target, victim)
        return {} if found is None else {victim.id: found}

    # ------------------------------------------------------------ the check

    def _wait(self, futures: Mapping[Any, int], what: str) -> None:
        """Wait for `futures` (each worth so many tests), reporting progress each second."""
        start = time.monotonic()
        total = sum(futures.values())
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # a bug in a worker must not pass silently
            finished = total - sum(futures[f] for f in pending)
            self.progress(
                f"{what}: {finished}/{total} done, {self._processes} runner processes "
                f"({time.monotonic() - start:.0f}s)"
            )

    def _batches(self, failures: Sequence[Failure]) -> list[tuple[Target, list[Failure]]]:
        by_suite: dict[str, list[Failure]] = {}
        for f in failures:
            by_suite.setdefault(f.suite, []).append(f)
        batches: list[tuple[Target, list[Failure]]] = []
        for name, group in by_suite.items():
            target = self.targets.get(name) or Target(
                suite=name, runner=group[0].runner, cwd=self.root / group[0].cwd, prefix=""
            )
            if target.runner != "pytest" or not target.prefix:
                batches.extend((target, [f]) for f in group)
                continue
            rank = {t: i for i, t in enumerate(target.order)}
            group.sort(key=lambda f: rank.get(node(f), len(rank)))
            count = min(self.workers, len(group))
            size, extra = divmod(len(group), count)
            start = 0
            for i in range(count):
                end = start + size + (1 if i < extra else 0)
                batches.append((target, group[start:end]))
                start = end
        return batches

    def check(
        self, failures: list[Failure], *, defer_order: bool = False
    ) -> tuple[list[Failure], list[FlakyTest]]:
        """Sort `failures` into the kept and the flaky. With `defer_order`, the tests that
        passed their re-runs and passed alone are neither: they wait in `deferred` for
        `check_order`, which runs the suite's order before them (the slowest step, which
        a run does beside its first fixes, in a checkout of its own: see `rebased`)."""
        self.deferred = []
        if self.reruns <= 0:
            return failures, []
        todo = flaky.candidates(failures)
        if not todo:
            return failures, []
        passes: Counter[str] = Counter()
        batches = self._batches(todo)
        checks: list[Future[dict[str, Failure]]] = []
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            reruns = {pool.submit(self._batch_passes, t, batch): batch for t, batch in batches}
            self._wait(
                {f: len(b) for f, b in reruns.items()},
                f"re-running {len(todo)} failing tests {self.reruns}x",
            )
            for future in reruns:
                passes.update(future.result())
            verdicts = {f.id: flaky.verdict(passes[f.id], self.reruns) for f in todo}
            timed_out = {node(f) for f in failures if f.category == "timeout"}
            batched = {f.id for t, b in batches if len(b) > 1 and t.runner == "pytest" for f in b}
            # A flake of a shared batch is looked at again when it passes alone.
            alone = {
                f.id: pool.submit(self._passes_alone, target, f)
                for f in todo
                if verdicts[f.id] == "flaky"
                and f.id in batched
                and (target := self.targets.get(f.suite)) is not None
            }
            if alone:
                self._wait({f: 1 for f in alone.values()}, f"re-running {len(alone)} tests alone")
            victims: dict[str, list[Failure]] = {}
            for f in todo:
                if verdicts[f.id] == "order" or (f.id in alone and alone[f.id].result()):
                    victims.setdefault(f.suite, []).append(f)
            self._timed_out, self._passes = timed_out, passes
            if defer_order:
                self.deferred = [
                    f for name, group in victims.items() if name in self.targets for f in group
                ]
            else:
                checks = self._submit_order_checks(pool, victims)
            if checks:
                count = sum(len(g) for g in victims.values())
                self._wait(
                    {f: 1 for f in checks},
                    f"re-running {count} tests that passed alone after the tests before them",
                )
        finally:
            # On ^C (or a bug) drop the re-runs not started yet; those running end at
            # their own, duration-based timeout.
            pool.shutdown(wait=False, cancel_futures=True)
        replaced: dict[str, Failure] = {}
        for check in checks:
            replaced.update(check.result())
        kept: list[Failure] = []
        set_apart: list[FlakyTest] = []
        waiting = {f.id for f in self.deferred}
        for f in failures:
            verdict = verdicts.get(f.id, "kept")
            if verdict == "kept":
                kept.append(f)
            elif f.id in replaced:
                kept.append(replaced[f.id])
            elif f.id not in waiting:
                set_apart.append(
                    FlakyTest(failure=f, kind="flaky", reruns=self.reruns, passes=passes[f.id])
                )
        return kept, set_apart

    def _submit_order_checks(
        self, pool: ThreadPoolExecutor, victims: Mapping[str, Sequence[Failure]]
    ) -> list[Future[dict[str, Failure]]]:
        checks: list[Future[dict[str, Failure]]] = []
        for suite_name, group in victims.items():
            target = self.targets.get(suite_name)
            if target is None:
                continue
            if target.runner == "pytest" and target.prefix:
                checks.append(pool.submit(self._order_group, target, group, self._timed_out))
            else:
                checks.extend(
                    pool.submit(self._order_file_found, target, victim) for victim in group
                )
        return checks

    def check_order(self) -> tuple[list[Failure], list[FlakyTest]]:
        """The deferred tests' order check (see `check`): the order-dependent ones, with
        their polluter, to keep; the others flaky."""
        victims: dict[str, list[Failure]] = {}
        for f in self.deferred:
            victims.setdefault(f.suite, []).append(f)
        replaced: dict[str, Failure] = {}
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            checks = self._submit_order_checks(pool, victims)
            for check in checks:
                replaced.update(check.result())
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        kept = [replaced[f.id] for f in self.deferred if f.id in replaced]
        flaky = [
            FlakyTest(failure=f, kind="flaky", reruns=self.reruns, passes=self._passes[f.id])
            for f in self.deferred
            if f.id not in replaced
        ]
        return kept, flaky

    def rebased(self, root: Path, env: Mapping[str, str]) -> Rerunner:
        """The same re-runs in another checkout of the same commit at `root` (the suites'
        folders moved along), with its environment."""

        def moved(path: Path) -> Path:
            return root / path.relative_to(self.root) if path.is_relative_to(self.root) else path

        targets = {
            name: dataclasses.replace(
                t,
                cwd=moved(t.cwd),
                source=None
                if t.source is None
                else dataclasses.replace(t.source, cwd=moved(t.source.cwd)),
            )
            for name, t in self.targets.items()
        }
        other = Rerunner(
            targets, root=root, reruns=self.reruns, unknown_timeout=self.unknown,
            progress=self.progress, env=env, workers=self.workers,
        )  # fmt: skip
        other.deferred = list(self.deferred)
        other._timed_out, other._passes = self._timed_out, self._passes
        return other
