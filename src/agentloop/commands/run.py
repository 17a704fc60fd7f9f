"""`agentloop run`: the headless autofix loop on the project's failing tests."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentloop import detection, environment, errors, git, output, suites
from agentloop.agents import sandbox, secrets
from agentloop.agents.base import Agent, SessionLimits
from agentloop.commands._project import require_tests
from agentloop.config import Config, load_config
from agentloop.errors import AgentloopError, ConfigError, LimitReached, SuiteError, UsageError
from agentloop.failures.model import Task
from agentloop.history import History, ledger_path
from agentloop.loop.jobs import Later
from agentloop.loop.model import RunReport, TaskReport
from agentloop.loop.runner import LoopSettings, autofix
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import ForbiddenPaths
from agentloop.reports.run import to_json, to_markdown
from agentloop.workspace import Workspace


def _overrides(
    *,
    max_turns: int | None,
    max_attempts: int | None,
    max_runtime: float | None,
    max_budget_usd: float | None,
) -> dict[str, Any]:
    layers: dict[str, dict[str, Any]] = {
        "agent": {"max_turns": max_turns},
        "run": {
            "max_attempts": max_attempts,
            "max_runtime": max_runtime,
            "max_budget_usd": max_budget_usd,
        },
    }
    return {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in layers.items()
        if any(v is not None for v in values.values())
    }


def run(
    *,
    repo: Path,
    in_place: bool,
    max_turns: int | None,
    max_attempts: int | None,
    max_runtime: float | None,
    max_budget_usd: float | None,
    forbid: list[str],
    task_ids: list[str],
    dry_run: bool,
    squash: bool,
    as_json: bool,
    sandboxed: bool = True,
    agent: Agent | None = None,
    jobs: int | None = None,
    open_pr: bool = False,
    yes: bool = False,
) -> int:
    root = repo.resolve()
    if not root.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    if open_pr and dry_run:
        raise UsageError("--open-pr with --dry-run: a plan has nothing to propose", hint="drop one")
    if yes and not open_pr:
        raise UsageError("--yes approves the push of --open-pr", hint="add --open-pr or drop --yes")
    if git.find_toplevel(root) is None:
        raise UsageError(
            f"{root} is not a git repository: agentloop run commits fixes on a branch",
            hint="run `git init` and commit first, or use `agentloop detect` to only list failures",
        )
    config, _ = load_config(
        root,
        overrides=_overrides(
            max_turns=max_turns,
            max_attempts=max_attempts,
            max_runtime=max_runtime,
            max_budget_usd=max_budget_usd,
        ),
    )
    started = time.monotonic()  # the runtime cap counts the baseline too
    patterns = (*config.rails.forbidden_paths, *forbid)
    try:
        ForbiddenPaths(patterns)
    except ValueError as exc:  # e.g. --forbid '[a'
        raise ConfigError(
            str(exc), hint="fix the pattern in --forbid or rails.forbidden_paths"
        ) from None
    # Fail before making a worktree, naming the user's project rather than the worktree.
    suites.discover(root, config)
    if sandboxed and not dry_run:
        # Before the baseline, which can take minutes: a run that cannot start its agent
        # should say so at once.
        sandbox.require()
    git.ignore_locally(root, ".agentloop/")
    # A pull request's default base: the branch the user ran on.
    base_ref = git.current_branch(root)
    report: RunReport
    with (
        output.progress(not as_json) as progress,
        History.open(ledger_path(root)) as history,
        Workspace.open(
            root,
            in_place=in_place,
            setup=config.workspace.setup,
            setup_timeout=config.workspace.setup_timeout,
            secrets=config.rails.secret_paths,
        ) as ws,
    ):
        try:
            found = suites.discover(ws.root, config)
            progress("baseline: running the suites")
            baseline = detection.detect(
                ws.root,
                found,
                git=True,
                reruns=config.detect.flaky_reruns,
                rerun_timeout=config.detect.rerun_timeout,
                progress=progress,
                env=ws.env(),
                # Whether a test that passed its re-runs is flaky or order-dependent is
                # found beside the first fixes, not before them: its check runs the
                # suite's order up to it. Not for a plan, whose table must be whole, nor
                # for --task, whose numbers are detect's; nor with workspace.setup, whose
                # outputs that check's own checkout would lack.
                defer_order=not (dry_run or task_ids or in_place or config.workspace.setup),
            )
        except (SuiteError, ConfigError) as exc:
            # Discovery passed in the checkout above: this is the worktree's doing.
            raise _in_the_worktree(exc, ws, root, config.workspace.setup) from exc
        require_tests(baseline)
        tasks = select_tasks(baseline.tasks, task_ids) if task_ids else list(baseline.tasks)
        failing = {(f.suite, f.test_id) for t in baseline.tasks for f in t.failures}
        failing |= {(f.failure.suite, f.failure.test_id) for f in baseline.flaky}
        if baseline.later is not None:
            failing |= {(f.suite, f.test_id) for f in baseline.later.rerunner.deferred}
        forbidden = ForbiddenPaths.with_protected(patterns, root=str(ws.path))
        settings = LoopSettings(
            max_attempts=config.run.max_attempts,
            max_runtime_s=config.run.max_runtime,
            max_budget_usd=config.run.max_budget_usd,
            budget_per_attempt_usd=config.agent.budget_per_attempt_usd,
            limits=SessionLimits(
                max_turns=config.agent.max_turns, allowed_tools=config.agent.allowed_tools
            ),
            forbidden=forbidden,
            allow_test_edits=config.rails.allow_test_edits,
            rerun_timeout=config.detect.rerun_timeout,
            checks=config.run.checks,
            # Jobs work in worktrees of their own; in place, there is only the checkout.
            jobs=1 if in_place else (jobs or config.run.jobs or default_jobs()),
        )
        if agent is None:
            from agentloop.agents.claude import ClaudeCodeAgent

            agent = ClaudeCodeAgent(cli_path=config.agent.cli_path, model=config.agent.model)
        if dry_run:
            skipped = [TaskReport(t, "skipped", reason="dry run") for t in tasks]
            report = RunReport(
                run_id=ws.run_id,
                branch=None,
                base_sha=ws.base_sha,
                commits=(),
                tasks=tuple(skipped),
                duration_s=time.monotonic() - started,
                cost_usd=0.0,
                stopped_by=None,
                dry_run=True,
                sandboxed=sandboxed,
                jobs=settings.jobs,
                baseline_failing=tuple(sorted(f"{s}::{t}" for s, t in failing)),
                final_failing=tuple(sorted(f"{s}::{t}" for s, t in failing)),
            )
        else:
            later = (
                _order_check(ws, baseline.later, progress) if baseline.later is not None else None
            )
            report = dataclasses.replace(
                autofix(
                    ws,
                    tasks,
                    agent=agent,
                    settings=settings,
                    found=found,
                    failing=failing,
                    history=history,
                    squash=squash,
                    # Each job's session gets its worktree's environment, secrets blanked.
                    agent_env=lambda env: secrets.agent_env(os.environ, env),
                    policy=lambda top: sandbox.build_policy(
                        top=top,
                        repo=root,
                        forbidden=forbidden,
                        secrets=config.rails.secret_paths,
                        network=config.sandbox.network,
                        sandboxed=sandboxed,
                    ),
                    guard=lambda top: make_guard(
                        dataclasses.replace(forbidden, root=str(top)),
                        secrets=config.rails.secret_paths,
                    ),
                    started=started,
                    progress=progress,
                    board=progress.job,
                    later=later,
                ),
                sandboxed=sandboxed,
            )
    report = dataclasses.replace(report, base_ref=base_ref)
    folder = _publish(root, report)
    if as_json:
        output.print_json(to_json(report))
    else:
        output.print_run(report)
    if open_pr and not report.dry_run:
        _open_pr(root, folder, report, config=config, yes=yes, as_json=as_json)
    if report.dry_run:
        return errors.FAILURES_FOUND if tasks else errors.OK
    return errors.OK if report.fixed == len(report.tasks) else errors.FAILURES_FOUND


def _order_check(ws: Workspace, check: detection.OrderCheck, progress: output.Progress) -> Later:
    """The baseline's order check, in a checkout of the run's base of its own (the run's
    worktree is the fixes'), started now; its tasks join the run as they are found. A
    check that cannot run costs only its tasks: the fixes go on (its tests stay among the
    baseline's failures, so VERIFY blames no fix for them)."""

    def find() -> list[Task]:
        try:
            top = ws.detached_worktree("order")
            root = top / ws.root.relative_to(ws.path)
            tasks, _flaky = check.run(root, ws.env(root=root))
        except AgentloopError as exc:
            progress(f"the order check of {check.tests} test(s) could not run: {exc.message}")
            return []
        return tasks

    return Later(find)


def default_jobs() -> int:
    """min(4, CPU count): each job runs a session and test processes of its own."""
    return max(1, min(4, os.cpu_count() or 1))


def select_tasks(tasks: Sequence[Task], wanted: Sequence[str]) -> list[Task]:
    """The tasks `--task` names, in the baseline's order. Each value is a task's number in
    the table `agentloop detect` prints (1 is the first task to fix) or its id, whole or a
    prefix of at least 4 characters; a value that could mean two tasks is refused rather
    than guessed. A value may list several, comma-separated, and may be a task's
    fingerprint (`agentloop plan --matrix` gives fingerprints: a job in another checkout
    finds the same failures under the same fingerprints, not always under the same ids)."""
    chosen: set[str] = set()
    problems: list[str] = []
    for value in (part for given in wanted for part in given.split(",") if part.strip()):
        token = value.strip().lower()
        matches = {t.id for t in tasks if token in (t.id, t.fingerprint)}
        if not matches:
            if token.isdigit() and 1 <= int(token) <= len(tasks):
                matches.add(tasks[int(token) - 1].id)
            if len(token) >= 4:
                matches |= {t.id for t in tasks if t.id.startswith(token)}
        if len(matches) == 1:
            chosen |= matches
        elif matches:
            numbered = [f"{n} ({t.id})" for n, t in enumerate(tasks, 1) if t.id in matches]
            problems.append(f"{value!r} could be task {' or '.join(numbered)}")
        else:
            problems.append(f"no task {value!r}")
    if problems:
        count = f"{len(tasks)} task{'' if len(tasks) == 1 else 's'}"
        span = f", numbered 1-{len(tasks)}" if len(tasks) > 1 else ""
        raise UsageError(
            f"--task: {'; '.join(problems)} (this run's baseline has {count}{span})",
            hint="give a number or an id from the table `agentloop detect` prints "
            "(`agentloop run --dry-run` lists this run's tasks in order, with their ids)",
        )
    return [t for t in tasks if t.id in chosen]


def _in_the_worktree(
    exc: SuiteError | ConfigError, ws: Workspace, root: Path, setup: Sequence[str]
) -> AgentloopError:
    """A suite that fails in the run's worktree (`agentloop detect` in the checkout got
    that far): say what agentloop gave the worktree and what else can prepare it, and
    keep the evidence in the checkout, since the worktree is gone when the user reads
    this."""
    if ws.in_place:
        return exc
    output = exc.output if isinstance(exc, SuiteError) else ""
    log = root / ".agentloop" / "runs" / ws.run_id / "baseline.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    given = (
        f"agentloop gave the worktree your checkout's {environment.describe(ws.linked, ws.mirrors)}"
        if ws.linked
        else "agentloop found no ignored .venv, venv, node_modules or generated files in "
        "your checkout to give the worktree"
    )
    ran = "; ".join(setup) or "none"
    where = str(ws.path)
    log.write_text(
        f"agentloop run {ws.run_id}: the suites failed in the run's worktree\n"
        f"worktree (removed since): {where}, at commit {ws.base_sha}\n"
        f"{given} ({ws.repo})\n"
        f"workspace.setup: {ran}\n\n"
        f"error: {exc.message}\n"
        + (f"hint given there: {exc.hint}\n" if exc.hint else "")
        + (f"\n--- what the suite printed ---\n{output.rstrip()}\n" if output else ""),
        encoding="utf-8",
    )
    # The message and hint must not send the user to the worktree: it is removed.
    message = exc.message.replace(where, "<the run's worktree>")
    return SuiteError(
        f"in the run's worktree: {message}",
        hint=f"{given}; if the suites need more there, prepare it with `workspace.setup` "
        f"in agentloop.yaml (e.g. `npm ci`, `uv sync`; now: {ran}). The details (what the "
        f"suite printed) are in {log}. To try a bare worktree yourself: git worktree add "
        f"/tmp/agentloop-try {ws.base_sha[:12]} && agentloop detect --repo /tmp/agentloop-try",
        output=output,
    )


def _open_pr(
    root: Path, folder: Path, report: RunReport, *, config: Config, yes: bool, as_json: bool
) -> None:
    """--open-pr: `agentloop pr` on the run just made. Its outcome goes to stderr under
    --json (stdout holds the run's document); a refusal or GitHub's error is the run's."""
    from agentloop.commands.pr import approval
    from agentloop.pull_request import PrOptions, open_pr

    if report.branch is None:
        output.note("--open-pr: no fix to propose, no pull request opened")
        return
    top = git.find_toplevel(root) or root
    outcome = open_pr(top, folder, PrOptions(), config=config, confirm=approval(yes))
    if outcome.action == "capped":
        raise LimitReached(outcome.message, hint=outcome.hint)
    if as_json:
        output.note(outcome.message)
    else:
        output.print_pr(outcome)


def _publish(root: Path, report: RunReport) -> Path:
    """Under .agentloop/runs/<run-id>/: report.md, run.json (what `agentloop run --json`
    prints) and run.bundle (the run's branch, when it has one), so that `agentloop pr` can
    open a pull request from them in another job or on another machine. Also the GitHub
    step summary, if any."""
    markdown = to_markdown(report)
    folder = root / ".agentloop" / "runs" / report.run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    (folder / "run.json").write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
    if report.branch and report.commits:
        git.create_bundle(root, folder / "run.bundle", report.branch, report.base_sha)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown)
    return folder
