"""The detect pipeline: run suites (or read a report) → records → flaky check → group →
order. Pure domain: no CLI, no rich; progress is a callback."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agentloop import reruns as reruns_mod
from agentloop import suites as suites_mod
from agentloop.failures import classify, group, imports, order
from agentloop.failures import text as tx
from agentloop.failures.model import (
    Dialect,
    Failure,
    FlakyTest,
    Location,
    ParsedFailure,
    ParsedReport,
    SuiteRun,
    Task,
    short_hash,
)
from agentloop.failures.reports import Format, read_report

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Detection:
    root: Path
    git: bool
    suites: tuple[SuiteRun, ...]
    tasks: tuple[Task, ...]
    flaky: tuple[FlakyTest, ...]
    notes: tuple[str, ...]
    # With `detect(defer_order=True)`: the tests still to be told flaky from
    # order-dependent, and how (None when there are none).
    later: OrderCheck | None = None

    @property
    def failure_count(self) -> int:
        return sum(len(t.failures) for t in self.tasks)


@dataclass(frozen=True)
class OrderCheck:
    """Tests that failed in the suite, then passed their re-runs and passed alone: flaky,
    or order-dependent. Telling which runs the suite's order before them, the slowest
    step of a detect; a run does it beside its first fixes, in a checkout of its own."""

    rerunner: reruns_mod.Rerunner

    @property
    def tests(self) -> int:
        return len(self.rerunner.deferred)

    def run(self, root: Path, env: Mapping[str, str]) -> tuple[list[Task], list[FlakyTest]]:
        """In the checkout at `root` (the same commit as the detect's): the tasks of the
        order-dependent tests, each naming its polluter, and the flaky tests."""
        kept, flaky_tests = self.rerunner.rebased(root, env).check_order()
        tasks = group.group(kept)
        if tasks:
            graph = imports.import_graph(root)
            tasks = polluters_first(order.order(tasks, imports.levels(graph)))
        return tasks, flaky_tests


def to_failure(parsed: ParsedFailure, *, suite: str, root: Path, cwd: Path, prefix: str) -> Failure:
    rel_cwd = cwd.relative_to(root).as_posix() if cwd.is_relative_to(root) else str(cwd)
    location = classify.crash_location(parsed, str(cwd))
    file = parsed.file
    if rel_cwd not in (".", ""):
        # Report paths are relative to the suite's cwd; records speak repository paths.
        if location is not None:
            location = Location(f"{rel_cwd}/{location.file}", location.line)
        if file is not None:
            file = f"{rel_cwd}/{file}"
    return Failure(
        id=short_hash(suite, parsed.test_id),
        suite=suite,
        runner=parsed.dialect,
        test_id=parsed.test_id,
        file=file,
        line=parsed.line,
        test_name=parsed.test_name,
        selector=suites_mod.selector(parsed, prefix=prefix, cwd=cwd),
        cwd=rel_cwd,
        error_type=parsed.error_type,
        message=tx.trim(parsed.message, max_lines=20, max_chars=2000),
        stack_trace=tx.trim(parsed.text),
        crash_location=location,
        stage=parsed.stage,
        category=classify.categorize(parsed, str(cwd)),
        duration=parsed.duration,
        parent=parsed.parent,
    )


def polluters_first(tasks: list[Task]) -> list[Task]:
    """A task whose test is polluted by a test that fails itself goes after the other
    tasks: its selector runs the polluter first, so it can pass only once the polluter's
    own task is fixed."""
    where = {(f.suite, f.parent or f.test_id): t.id for t in tasks for f in t.failures}

    def waits(task: Task) -> bool:
        return any(
            f.polluter is not None and where.get((f.suite, f.polluter), task.id) != task.id
            for f in task.failures
        )

    return [t for t in tasks if not waits(t)] + [t for t in tasks if waits(t)]


def _finish(
    root: Path,
    git: bool,
    runs: list[SuiteRun],
    failures: list[Failure],
    *,
    targets: Mapping[str, reruns_mod.Target],
    reruns: int,
    rerun_timeout: float,
    progress: Progress,
    notes: list[str],
    env: Mapping[str, str] | None = None,
    defer_order: bool = False,
) -> Detection:
    rerunner = reruns_mod.Rerunner(
        targets,
        root=root,
        reruns=reruns,
        unknown_timeout=rerun_timeout,
        progress=progress,
        env=env,
    )
    kept, flaky_tests = rerunner.check(failures, defer_order=defer_order)
    tasks = group.group(kept)
    if tasks:
        progress("reading the project's import graph")
        tasks = polluters_first(order.order(tasks, imports.levels(imports.import_graph(root))))
    return Detection(
        root=root,
        git=git,
        suites=tuple(runs),
        tasks=tuple(tasks),
        flaky=tuple(flaky_tests),
        notes=tuple(notes),
        later=OrderCheck(rerunner) if rerunner.deferred else None,
    )


def detect(
    root: Path,
    found: list[suites_mod.Suite],
    *,
    git: bool,
    reruns: int,
    rerun_timeout: float,
    progress: Progress,
    env: Mapping[str, str] | None = None,
    defer_order: bool = False,
) -> Detection:
    """Run the suites in `root` with `env` (default: this process's environment; a run
    passes its workspace's, so the worktree's code is the code under test). With
    `defer_order`, the order check of tests that passed their re-runs is left to the
    caller (`Detection.later`)."""
    runs: list[SuiteRun] = []
    failures: list[Failure] = []
    notes: list[str] = []
    targets: dict[str, reruns_mod.Target] = {}
    with tempfile.TemporaryDirectory(prefix="agentloop-detect-") as workdir:
        for suite in found:
            progress(f"running suite {suite.name}: {suite.run}")
            run, report = suites_mod.run_suite(suite, Path(workdir), root, env=env)
            notes.extend(suite.notes)
            notes.extend(f"{suite.name}: {n}" for n in report.notes)
            runs.append(run)
            failures.extend(
                to_failure(p, suite=suite.name, root=root, cwd=suite.cwd, prefix=suite.rerun)
                for p in report.failures
            )
            runner: Dialect | None = report.dialect if suite.runner is None else suite.runner
            if suite.rerun and runner is not None:
                targets[suite.name] = reruns_mod.Target(
                    suite=suite.name,
                    runner=runner,
                    cwd=suite.cwd,
                    prefix=suite.rerun,
                    order=reruns_mod.run_order(suites_mod.probe_path(Path(workdir), suite)),
                    duration=run.duration,
                    source=suite,
                )
    return _finish(
        root,
        git,
        runs,
        failures,
        targets=targets,
        reruns=reruns,
        rerun_timeout=rerun_timeout,
        progress=progress,
        notes=notes,
        env=env,
        defer_order=defer_order,
    )


def detect_report(
    root: Path,
    path: Path,
    *,
    fmt: Format | None,
    git: bool,
    reruns: int,
    rerun_timeout: float,
    progress: Progress,
) -> Detection:
    """Failures from an existing report. Re-runs (the flaky check) need the project here;
    pass reruns=0 for a report from elsewhere."""
    report: ParsedReport = read_report(path, fmt=fmt, root=root)
    name = report.dialect
    failures = [to_failure(p, suite=name, root=root, cwd=root, prefix="") for p in report.failures]
    run = SuiteRun(
        name=name,
        format=report.format,
        command=f"(report {path})",
        cwd=".",
        exit_code=None,
        duration=0.0,
        timed_out=False,
        tests=report.total,
    )
    prefix = suites_mod.default_prefix(report.dialect)
    target = reruns_mod.Target(suite=name, runner=report.dialect, cwd=root, prefix=prefix)
    return _finish(
        root,
        git,
        [run],
        failures,
        targets={name: target} if prefix else {},
        reruns=reruns,
        rerun_timeout=rerun_timeout,
        progress=progress,
        notes=list(report.notes),
    )
