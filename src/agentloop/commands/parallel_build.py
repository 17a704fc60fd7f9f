"""`agentloop parallel-build`: a feature built as streams in parallel worktrees.

`parallel-build "<request>"` first DECOMPOSES it (build/decompose.py): a read-only
coordinator session reads the request and the code and answers with a manifest, validated
before anything runs (a manifest with problems goes back to it twice, then the command
stops with exit 1 and keeps the last one on disk). The manifest is written to
`.agentloop/builds/<run>/build.yaml` (or `--out`), where the user can edit it and feed it
back with `--manifest`.

`--manifest FILE` reads a manifest and validates it against the repository and the rails
(build/validate.py). `--plan-only`, either way, prints the plan (the streams in waves
that run at once, what each owns, the contracts) and the command that builds it, and
stops. Without it the build runs: a workspace on `agentloop/build-<run>` from HEAD, the
base's failing tests recorded, the streams built in worktrees of their own
(build/execute.py), each merged as it is built (build/integrate.py: the contract wins a
conflict in a contract file), the full suites once, one squashed commit, the streams'
worktrees and branches gone, the build in the ledger. The coordinator's sessions count
against the run's budget and runtime.
"""

from __future__ import annotations

import datetime
import os
import shlex
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from agentloop import errors, git, output, suites, testrun
from agentloop.agents import sandbox, secrets
from agentloop.agents.base import Agent, Guard, SessionLimits
from agentloop.agents.sandbox import Policy
from agentloop.build import manifest as manifest_mod
from agentloop.build import validate
from agentloop.build.decompose import (
    READ_TOOLS,
    DecomposeSettings,
    Decomposition,
    decompose,
    default_path,
)
from agentloop.build.execute import Interrupted, StreamSettings, execute
from agentloop.build.integrate import (
    IntegrateSettings,
    Integrator,
    build_record,
    clean_streams,
    commit_build,
)
from agentloop.build.model import Manifest, StreamReport
from agentloop.commands._project import git_project
from agentloop.config import Config, load_config
from agentloop.errors import AgentloopError, ConfigError, LimitReached, UsageError
from agentloop.history import History, ledger_path, utc_now
from agentloop.loop.runner import LoopSettings
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import ForbiddenPaths
from agentloop.workspace import Workspace, new_run_id

BRANCH_PREFIX = "agentloop/build-"


def parallel_build(
    *,
    repo: Path,
    request: str | None,
    manifest: Path | None,
    plan_only: bool,
    jobs: int | None,
    as_json: bool,
    out: Path | None = None,
    agent: Agent | None = None,
) -> int:
    if manifest is None and not request:
        raise UsageError(
            "give a feature request or --manifest FILE",
            hint='agentloop parallel-build "<feature request>" --plan-only (see `agentloop '
            "parallel-build --help`)",
        )
    if manifest is not None and request:
        raise UsageError(
            "give a feature request or --manifest FILE, not both: the manifest holds its request",
            hint="edit `request:` in the manifest, or drop the request argument",
        )
    if manifest is not None and out is not None:
        raise UsageError(
            "--out is where a manifest written from a request goes; --manifest is one already",
            hint="drop --out",
        )
    root, top = git_project(
        repo,
        why="parallel-build checks the streams' owned paths against the repository's files",
    )
    config, _ = load_config(root)
    try:
        forbidden = ForbiddenPaths.with_protected(config.rails.forbidden_paths, root=str(top))
    except ValueError as exc:
        raise ConfigError(str(exc), hint="fix the pattern in rails.forbidden_paths") from None
    width = jobs or config.run.jobs or default_jobs()
    started = (time.monotonic(), utc_now())
    spent = 0.0
    if manifest is None:
        assert request  # checked above
        if not plan_only:
            # The build after the plan needs the sandbox: say so before the coordinator
            # spends anything.
            sandbox.require()
        agent = agent or _claude(config)
        decomposition = _decompose(
            root, top, request, agent=agent, config=config, forbidden=forbidden, out=out,
            as_json=as_json,
        )  # fmt: skip
        plan, spent = decomposition.manifest, decomposition.cost_usd
        source = _shown(decomposition.path)
    else:
        source = str(manifest)
        plan = manifest_mod.load(manifest, source=source)
        validate.check(plan, top=top, forbidden=forbidden, source=source)
    if not plan_only:
        return _build(root, plan, config=config, forbidden=forbidden, jobs=width,
                      as_json=as_json, agent=agent, started=started, spent_usd=spent)  # fmt: skip
    waves = validate.waves(plan)
    command = f"agentloop parallel-build --manifest {shlex.quote(source)}"
    if as_json:
        output.print_json(
            output.build_plan_doc(plan, waves, jobs=width, source=source, command=command)
        )
    else:
        output.print_build_plan(plan, waves, jobs=width, source=source, command=command)
    return errors.OK


def _claude(config: Config) -> Agent:
    from agentloop.agents.claude import ClaudeCodeAgent

    return ClaudeCodeAgent(cli_path=config.agent.cli_path, model=config.agent.model)


def _decompose(
    root: Path,
    top: Path,
    request: str,
    *,
    agent: Agent,
    config: Config,
    forbidden: ForbiddenPaths,
    out: Path | None,
    as_json: bool,
) -> Decomposition:
    """DECOMPOSE under the run's caps; the manifest goes to `out`, else under .agentloop/."""
    git.ignore_locally(root, ".agentloop/")
    path = out if out is not None else _fresh(default_path(root, new_run_id()))
    settings = DecomposeSettings(
        limits=SessionLimits(max_turns=config.agent.max_turns, allowed_tools=READ_TOOLS),
        max_budget_usd=config.run.max_budget_usd,
        budget_per_session_usd=config.agent.budget_per_attempt_usd,
        max_runtime_s=config.run.max_runtime,
        forbidden=forbidden,
        secrets=config.rails.secret_paths,
    )
    with output.progress(not as_json) as progress:
        return decompose(
            top, request, agent=agent, out=path, settings=settings,
            env=secrets.agent_env(os.environ, {}), source=_shown(path), progress=progress,
        )  # fmt: skip


def _fresh(path: Path) -> Path:
    """`path`, or beside it with a number when a plan of the same second holds it."""
    found, n = path, 1
    while found.parent.exists():
        n += 1
        found = path.parent.with_name(f"{path.parent.name}-{n}") / path.name
    return found


def _shown(path: Path) -> str:
    """`path` as the user can pass it back from where they are: relative to the current
    directory when it is below it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def default_jobs() -> int:
    """min(4, CPU count), as `agentloop run` (each stream runs a session and its tests)."""
    return max(1, min(4, os.cpu_count() or 1))


def _build(
    root: Path,
    plan: Manifest,
    *,
    config: Config,
    forbidden: ForbiddenPaths,
    jobs: int,
    as_json: bool,
    agent: Agent | None,
    started: tuple[float, datetime.datetime] | None = None,
    spent_usd: float = 0.0,
) -> int:
    """EXECUTE → INTEGRATE → COMMIT; the exit code: 0 when every stream was built and
    merged and the full suites hold, else 1 (the report says what is missing).
    `started` (monotonic, UTC) and `spent_usd`: when the run began and what its
    coordinator spent, both counted against the run's caps."""
    started_s, started_at = started or (time.monotonic(), utc_now())
    budget = config.run.max_budget_usd - spent_usd
    if budget <= 0:
        raise LimitReached(
            f"the run's budget (${config.run.max_budget_usd:g}) was spent writing the manifest",
            hint="raise run.max_budget_usd",
        )
    # Before the baseline, which can take minutes: a build that cannot start its agents
    # should say so at once.
    sandbox.require()
    git.ignore_locally(root, ".agentloop/")
    if agent is None:
        agent = _claude(config)

    def policy(top: Path) -> Policy:
        return sandbox.build_policy(
            top=top, repo=root, forbidden=forbidden, secrets=config.rails.secret_paths,
            network=config.sandbox.network,
        )  # fmt: skip

    def guard(top: Path) -> Guard:
        return make_guard(replace(forbidden, root=str(top)), secrets=config.rails.secret_paths)

    def agent_env(env: Mapping[str, str]) -> Mapping[str, str]:
        return secrets.agent_env(os.environ, env)

    with (
        output.progress(not as_json) as progress,
        History.open(ledger_path(root)) as history,
        Workspace.open(
            root,
            branch_prefix=BRANCH_PREFIX,
            setup=config.workspace.setup,
            setup_timeout=config.workspace.setup_timeout,
            secrets=config.rails.secret_paths,
        ) as ws,
    ):
        found = suites.discover(ws.root, config)
        progress("baseline: running the suites on the base")
        baseline = testrun.failing_tests(
            ws.root, found, env=ws.env(), timeout=config.detect.suite_timeout
        )
        integrator = Integrator(
            ws,
            plan,
            agent=agent,
            discover=lambda where: suites.discover(where, config),
            baseline_failing=baseline.failing,
            settings=IntegrateSettings(
                autofix=LoopSettings(
                    max_attempts=2,
                    max_budget_usd=budget,
                    limits=SessionLimits(
                        max_turns=config.agent.max_turns,
                        allowed_tools=config.agent.allowed_tools,
                    ),
                    forbidden=forbidden,
                    rerun_timeout=config.detect.rerun_timeout,
                    jobs=1,
                ),
                rerun_timeout=config.detect.rerun_timeout,
            ),
            agent_env=agent_env,
            policy=policy,
            guard=guard,
            history=history,
            progress=progress,
        )

        def merge(report: StreamReport) -> None:
            merged = integrator.merge(report)
            if not merged.merged:
                raise AgentloopError(f"stream {report.stream} could not be merged: {merged.reason}")

        try:
            reports = execute(
                ws,
                plan,
                agent=agent,
                integration_branch=ws.branch,
                merge=merge,
                jobs=jobs,
                settings=StreamSettings(
                    max_attempts=config.run.max_attempts,
                    max_runtime_s=config.run.max_runtime,
                    max_budget_usd=budget,
                    budget_per_attempt_usd=config.agent.budget_per_attempt_usd,
                    # A stream builds new code: it creates files, which a fix does not need
                    # (agent.allowed_tools leaves Write out); its owned globs bound it.
                    limits=SessionLimits(
                        max_turns=config.agent.max_turns,
                        allowed_tools=tuple(dict.fromkeys((*config.agent.allowed_tools, "Write"))),
                    ),
                    forbidden=forbidden,
                    secrets=config.rails.secret_paths,
                    network=config.sandbox.network,
                    allow_test_edits=config.rails.allow_test_edits,
                    test_timeout=config.detect.rerun_timeout,
                ),
                suites=found,
                agent_env=agent_env,
                started=started_s,
                progress=progress,
            )
        except Interrupted:
            # The streams merged so far stay on the build's branch (the workspace keeps a
            # branch with commits): say so, or ^C leaves an unexplained branch of
            # "build: merge stream" commits where one squashed commit was promised.
            merged = [m.stream for m in integrator.merges if m.merged]
            if not merged:
                raise
            raise errors.Interrupted(
                f"interrupted; {', '.join(merged)} had been merged into {ws.branch}, kept "
                "there unsquashed",
                hint=f"look with `git log {ws.branch}`; `git branch -D {ws.branch}` drops it",
            ) from None
        if any(m.merged for m in integrator.merges):
            integrator.verify()
        result = integrator.result()
        commit = commit_build(ws, result)
        left_out = {m.stream for m in result.streams if m.outcome == "failed"}
        clean_streams(ws, reports, keep=left_out)
        wall = time.monotonic() - started_s
        history.record_build(
            build_record(result, reports, started_at=started_at, finished_at=utc_now(),
                         wall_s=wall, commit=commit)
        )  # fmt: skip
        branch = ws.branch if commit else None
    doc = output.build_doc(result, reports, branch=branch, commit=commit, wall_s=wall)
    if as_json:
        output.print_json(doc)
    else:
        output.print_build(doc)
    built = all(r.outcome == "built" for r in reports) and all(m.merged for m in result.streams)
    green = result.verification is None or not result.verification.remaining
    return errors.OK if built and green and commit else errors.FAILURES_FOUND
