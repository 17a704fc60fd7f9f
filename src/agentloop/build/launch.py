"""Parallel builds for an interactive session (the /parallel-build skill), through
agentloop's MCP server: save a validated manifest, start `agentloop parallel-build` on it
in the background, and report how it is going.

Why through the MCP server: a build writes the git directory (a workspace, worktrees,
branches, its commit), which the sandbox keeps read-only to every command the agent runs.
The server runs outside it. That is also why a build is the user's call every time: it
runs the project's own code (workspace.setup, the suites, the streams' agents) outside
the agent's sandbox, so init never pre-approves the tool that starts one (see
commands/mcp.py).

Everything lives under `.agentloop/builds/`, which the sandbox keeps read-only to the
agent's commands (install/installer.py's _STATE) and the guard keeps from its Edit and
Write tools (`.agentloop/**` is protected): a manifest there was written by `plan` after
validation, or by the user, never by the agent behind the user's back.
- `<name>.yaml`: a manifest `plan` validated and saved (the user may edit it);
- `<run>/manifest.yaml`: the bytes a build was started on (validated once more first);
- `<run>/run.json`: the run, its pid, when it started, which manifest;
- `<run>/build.log`: the build's stderr; `<run>/build.json`: its `--json` document
  (schemas/build.schema.json, or an `{"error": …}` document); `<run>/exit`: its exit
  status, written when it ends.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentloop import detached, output
from agentloop.build import manifest as manifest_mod
from agentloop.build import validate
from agentloop.build.model import Manifest
from agentloop.commands._project import git_project
from agentloop.config import load_config
from agentloop.errors import AgentloopError, ConfigError
from agentloop.install.files import BUILDS_DIR
from agentloop.rails.paths import ForbiddenPaths

BUILDS = BUILDS_DIR
# A saved manifest's name, and a run's: no path separator, no dot, nothing a shell minds.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
WAIT_LIMIT_S = detached.WAIT_LIMIT_S
_OUTPUTS = detached.Outputs(stdout="build.json", stderr="build.log")
State = detached.State


class Refused(AgentloopError):
    """The build tool will not do this; the message says why."""


@dataclass(frozen=True)
class Planned:
    path: str  # the saved manifest, relative to the project
    doc: Mapping[str, Any]  # the plan (schemas/build-plan.schema.json)


@dataclass(frozen=True)
class Started:
    run: str
    pid: int
    directory: str  # relative to the project: where the log and the result go


@dataclass(frozen=True)
class BuildStatus:
    run: str
    state: State
    elapsed_s: float
    directory: str
    exit_code: int | None = None
    # The build's --json document once it finished (a build, or an {"error": …}).
    result: Mapping[str, Any] | None = None
    log_tail: str = ""


def _validated(root: Path, text: str, source: str) -> tuple[Manifest, int]:
    """The manifest in `text`, checked as `agentloop parallel-build --plan-only` checks
    it (ManifestError listing every problem), and the build's width."""
    from agentloop.commands.parallel_build import default_jobs

    root, top = git_project(root, why="a build's streams are git worktrees")
    config, _ = load_config(root)
    try:
        forbidden = ForbiddenPaths.with_protected(config.rails.forbidden_paths, root=str(top))
    except ValueError as exc:
        raise ConfigError(str(exc), hint="fix the pattern in rails.forbidden_paths") from None
    plan = manifest_mod.parse(text, source=source)
    validate.check(plan, top=top, forbidden=forbidden, source=source)
    return plan, config.run.jobs or default_jobs()


def plan(root: Path, text: str, name: str) -> Planned:
    """Validate the manifest `text` and save it as `.agentloop/builds/<name>.yaml`; the
    plan as `--plan-only --json` prints it. Nothing is saved when it is not valid."""
    if not _NAME.fullmatch(name):
        raise Refused(
            f"{name!r} cannot name a manifest",
            hint="use lowercase letters, digits and dashes, e.g. profile-page",
        )
    rel = f"{BUILDS}/{name}.yaml"
    try:
        manifest, jobs = _validated(root, text, rel)
    except manifest_mod.ManifestError as exc:
        # The tool's user fixes the text and calls it again; there is no file to edit yet.
        raise manifest_mod.ManifestError(
            "the manifest", exc.problems, hint="fix them and validate the manifest again"
        ) from None
    path = root.resolve() / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    # From a terminal the same build is this command; the skill starts it through the
    # `parallel_build` tool instead (the sandbox keeps .git from the agent's commands).
    command = f"agentloop parallel-build --manifest {shlex.quote(rel)}"
    doc = output.build_plan_doc(
        manifest, validate.waves(manifest), jobs=jobs, source=rel, command=command
    )
    return Planned(rel, doc)


def _inside_builds(root: Path, name: str) -> Path:
    if (root / BUILDS).is_symlink():
        # Its target is not the folder the sandbox and the guard keep the agent out of.
        raise Refused(f"{BUILDS} is a symbolic link; agentloop starts no build from it")
    builds = Path(os.path.realpath(root / BUILDS))
    given = Path(name) if os.path.isabs(name) else root / name
    real = Path(os.path.realpath(given))
    if builds not in real.parents:
        raise Refused(
            f"{name} is not a manifest in {BUILDS}/: a build starts only from a manifest "
            "agentloop validated and saved there (or you put there)",
            hint="validate it with the build_plan tool first; it answers with the path to use",
        )
    if not real.is_file():
        raise Refused(f"{name} does not exist", hint="use the path build_plan answered with")
    return real


def running(root: Path) -> list[str]:
    """The builds started here that have not ended yet."""
    return detached.running(root / BUILDS)


def start(
    root: Path,
    manifest: str,
    *,
    command: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Started:
    """Start `agentloop parallel-build --json` on the manifest at `manifest` (a path inside
    `.agentloop/builds/`) in the background, after validating it; return at once. The
    build reads a copy of the bytes validated here, so what runs is what was checked.
    `command`: what runs as `agentloop` (tests put an in-process agent behind it)."""
    root = root.resolve()
    source = _inside_builds(root, manifest)
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{manifest} is not UTF-8 text") from None
    rel = os.path.relpath(source, root)
    _validated(root, text, rel)
    busy = running(root)
    if busy:
        raise Refused(
            f"build {busy[0]} is still running here; one build at a time",
            hint=f"ask build_status about {busy[0]} and start the next one when it is done",
        )
    run, directory = detached.reserve(root / BUILDS)
    copy = directory / "manifest.yaml"
    copy.write_bytes(text.encode("utf-8"))
    agentloop = list(command) if command else [sys.executable, "-m", "agentloop"]
    argv = [*agentloop, "parallel-build", "-C", str(root), "--manifest", str(copy), "--json"]
    pid = detached.spawn(
        directory,
        argv,
        cwd=root,
        outputs=_OUTPUTS,
        env=detached.environment(environ),
        record={"manifest": rel},
    )
    return Started(run, pid, f"{BUILDS}/{run}")


def status(root: Path, run: str, *, wait_s: float = 0.0, poll_s: float = 1.0) -> BuildStatus:
    """Where build `run` is: waits up to `wait_s` (at most WAIT_LIMIT_S) for it to end."""
    root = root.resolve()
    directory = root / BUILDS / run
    record = detached.started(root / BUILDS, run)
    if record is None:
        started = running(root)
        raise Refused(
            f"no build {run!r} was started here",
            hint=f"running: {', '.join(started)}" if started else "start one with parallel_build",
        )
    state, code = detached.wait(directory, wait_s, poll_s)
    return BuildStatus(
        run=run,
        state=state,
        elapsed_s=round(time.time() - float(record.get("started", time.time())), 1),
        directory=f"{BUILDS}/{run}",
        exit_code=code,
        result=detached.result(directory / _OUTPUTS.stdout) if state == "finished" else None,
        log_tail=detached.tail(directory / _OUTPUTS.stderr),
    )
