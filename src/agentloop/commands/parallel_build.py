"""`agentloop parallel-build`: a feature built as streams in parallel worktrees.

`--manifest FILE` reads the manifest and validates it against the repository and the
rails (build/validate.py); `--plan-only` prints the plan (the streams in waves that run at
once, what each owns, the contracts) and stops. Without it the build runs: a workspace on
`agentloop/build-<run>` from HEAD, the base's failing tests recorded, the streams built in
worktrees of their own (build/execute.py), each merged as it is built (build/integrate.py:
the contract wins a conflict in a contract file), the full suites once, one squashed
commit, the streams' worktrees and branches gone, the build in the ledger. Writing the
manifest from a request (DECOMPOSE) is not built yet: asking for it is a usage error that
says so, not a pretend run.
"""

from __future__ import annotations

import os
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
from agentloop.build.execute import StreamSettings, execute
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
from agentloop.errors import AgentloopError, ConfigError, UsageError
from agentloop.history import History, ledger_path, utc_now
from agentloop.loop.runner import LoopSettings
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import ForbiddenPaths
from agentloop.workspace import Workspace

BRANCH_PREFIX = "agentloop/build-"

_TRY = "use --manifest build.yaml with --plan-only to check a manifest you wrote"


def parallel_build(
    *,
    repo: Path,
    request: str | None,
    manifest: Path | None,
    plan_only: bool,
    jobs: int | None,
    as_json: bool,
    agent: Agent | None = None,
) -> int:
    if manifest is None:
        if request:
            raise UsageError(
                "not built yet: writing the manifest from a feature request (a coordinator "
                "session that decomposes it) is not part of agentloop yet",
                hint=_TRY,
            )
        raise UsageError(
            "give a feature request or --manifest FILE",
            hint="agentloop parallel-build --manifest build.yaml --plan-only (see `agentloop "
            "parallel-build --help`)",
        )
    if request:
        raise UsageError(
            "give a feature request or --manifest FILE, not both: the manifest holds its request",
            hint="edit `request:` in the manifest, or drop the request argument",
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
    source = str(manifest)
    plan = manifest_mod.load(manifest, source=source)
    validate.check(plan, top=top, forbidden=forbidden, source=source)
    width = jobs or config.run.jobs or default_jobs()
    if not plan_only:
        return _build(root, plan, config=config, forbidden=forbidden, jobs=width,
                      as_json=as_json, agent=agent)  # fmt: skip
    waves = validate.waves(plan)
    if as_json:
        output.print_json(output.build_plan_doc(plan, waves, jobs=width, source=source))
    else:
        output.print_build_plan(plan, waves, jobs=width, source=source)
    return errors.OK


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
) -> int:
    """EXECUTE → INTEGRATE → COMMIT; the exit code: 0 when every stream was built and
    merged and the full suites hold, else 1 (the report says what is missing)."""
    started, started_at = time.monotonic(), utc_now()
    # Before the baseline, which can take minutes: a build that cannot start its agents
    # should say so at once.
    sandbox.require()
    git.ignore_locally(root, ".agentloop/")
    if agent is None:
        from agentloop.agents.claude import ClaudeCodeAgent

        agent = ClaudeCodeAgent(cli_path=config.agent.cli_path, model=config.agent.model)

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
                    max_budget_usd=config.run.max_budget_usd,
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
                max_budget_usd=config.run.max_budget_usd,
                budget_per_attempt_usd=config.agent.budget_per_attempt_usd,
                limits=SessionLimits(
                    max_turns=config.agent.max_turns, allowed_tools=config.agent.allowed_tools
                ),
                forbidden=forbidden,
                secrets=config.rails.secret_paths,
                network=config.sandbox.network,
                allow_test_edits=config.rails.allow_test_edits,
                test_timeout=config.detect.rerun_timeout,
            ),
            suites=found,
            agent_env=agent_env,
            started=started,
            progress=progress,
        )
        if any(m.merged for m in integrator.merges):
            integrator.verify()
        result = integrator.result()
        commit = commit_build(ws, result)
        left_out = {m.stream for m in result.streams if m.outcome == "failed"}
        clean_streams(ws, reports, keep=left_out)
        wall = time.monotonic() - started
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
