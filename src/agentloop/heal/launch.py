"""Heal runs for an interactive session (the /auto-fix-production skill), through
agentloop's MCP server: the triage (`agentloop heal --dry-run --json`), a fix run started
in the background (`agentloop heal --no-publish --json`), and how it is going.

Why through the MCP server, which runs outside Claude Code's sandbox:
- the triage reads Sentry with the Sentry token. In the agent's Bash the token would be
  in the agent's own environment (one `env` away from the transcript) and sentry.io
  would have to be on the sandbox's network allow-list; the server holds the token,
  and the agent gets the triage, its titles scrubbed;
- a fix run writes the git directory (worktrees, fix/sentry-<id> branches) and runs the
  project's tests, which the sandbox forbids the agent's commands. It runs the project's
  code outside the sandbox, so init never pre-approves the tool that starts one (see
  commands/mcp.py): Claude Code asks the human each time.

Nothing here publishes: a fix run is always --no-publish; pushing, the pull requests and
the incident report are the human's command (`agentloop heal --publish <dir> --yes`).

A fix run's folder is `.agentloop/heals/<run>/` (detached.py): `run.json`, `heal.json`
(the run's --json document), `heal.log` (its progress), `exit`. The run's own result,
its run directory `.agentloop/runs/<id>/`, is what the document names.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agentloop import detached, proc
from agentloop.errors import AgentloopError
from agentloop.install.files import HEALS_DIR

HEALS = HEALS_DIR
RUNS = ".agentloop/runs"
# The most root causes one interactive run may fix: a larger batch is a configuration
# change (sentry.max_fixes) and a headless run, not a click.
MAX_FIXES = 20
# The triage reads a page of issues and an event per issue: bounded, well under Claude
# Code's MCP tool timeout.
TRIAGE_TIMEOUT_S = 180.0
_OUTPUTS = detached.Outputs(stdout="heal.json", stderr="heal.log")


class Refused(AgentloopError):
    """The heal tool will not do this; the message says why."""


@dataclass(frozen=True)
class Started:
    run: str
    pid: int
    directory: str  # relative to the project


@dataclass(frozen=True)
class HealStatus:
    run: str
    state: detached.State
    elapsed_s: float
    directory: str
    exit_code: int | None = None
    # The run's --json document once it finished (a heal, or an {"error": …}).
    result: Mapping[str, Any] | None = None
    log_tail: str = ""

    @property
    def run_dir(self) -> str | None:
        """The heal's run directory (`<project>/.agentloop/runs/<id>`), as its document
        names it; None unless it is one (the document is a file a run of the project's
        code sat beside: what becomes a command line is checked)."""
        named = (self.result or {}).get("run_dir")
        if not isinstance(named, str):
            return None
        path = PurePosixPath(named)
        parts = path.parts
        ours = parts[-3:-1] == PurePosixPath(RUNS).parts and ".." not in parts
        return named if ours and detached.RUN.fullmatch(path.name) else None

    @property
    def publish_command(self) -> str | None:
        """What the human runs to publish the run (the agent never does)."""
        found = self.run_dir
        return f"agentloop heal --publish {shlex.quote(found)} --yes" if found else None


def _agentloop(command: Sequence[str] | None) -> list[str]:
    return list(command) if command else [sys.executable, "-m", "agentloop"]


def triage(
    root: Path,
    *,
    command: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Mapping[str, Any]:
    """`agentloop heal --dry-run --json` on the project: its document, or Refused with the
    command's own error line. Read-only: it reads Sentry, changes nothing."""
    root = root.resolve()
    argv = [*_agentloop(command), "heal", "-C", str(root), "--dry-run", "--json"]
    done = proc.run(argv, cwd=root, env=detached.environment(environ), timeout=TRIAGE_TIMEOUT_S)
    if done.timed_out:
        raise Refused(f"the triage did not finish in {TRIAGE_TIMEOUT_S:.0f} s (Sentry slow?)")
    doc = detached.result_text(done.stdout)
    if done.returncode != 0 or doc is None:
        error = (doc or {}).get("error")
        message = error.get("message") if isinstance(error, dict) else None
        hint = error.get("hint") if isinstance(error, dict) else None
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Refused(
            f"agentloop heal --dry-run failed (exit {done.returncode}): {message or last}",
            hint=str(hint) if hint else None,
        )
    return doc


def _check(allow_sensitive: object, max_fixes: object) -> None:
    # Claude Code validates against the tool's schema, but the tool's caller is the model:
    # a bool is an int to Python, and a count out of range is refused, not clamped.
    if not isinstance(allow_sensitive, bool):
        raise Refused("allow_sensitive must be true or false")
    if max_fixes is None:
        return
    if isinstance(max_fixes, bool) or not isinstance(max_fixes, int):
        raise Refused("max_fixes must be a whole number")
    if not 1 <= max_fixes <= MAX_FIXES:
        raise Refused(
            f"max_fixes must be between 1 and {MAX_FIXES}, not {max_fixes}",
            hint="more root causes per run is sentry.max_fixes in agentloop.yaml and a "
            "headless `agentloop heal`",
        )


def running(root: Path) -> list[str]:
    """The heal runs started here that have not ended yet."""
    return detached.running(root / HEALS)


def start(
    root: Path,
    *,
    allow_sensitive: bool = False,
    max_fixes: int | None = None,
    command: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Started:
    """Start `agentloop heal --no-publish --json` in the background; return at once.
    `max_fixes` None: the configuration's. `command`: what runs as `agentloop` (tests)."""
    _check(allow_sensitive, max_fixes)
    root = root.resolve()
    if (root / HEALS).is_symlink():
        # Its target is not the folder the sandbox and the guard keep the agent out of.
        raise Refused(f"{HEALS} is a symbolic link; agentloop starts no heal run into it")
    busy = running(root)
    if busy:
        raise Refused(
            f"heal run {busy[0]} is still running here; one at a time",
            hint=f"ask heal_status about {busy[0]}",
        )
    run, directory = detached.reserve(root / HEALS)
    argv = [*_agentloop(command), "heal", "-C", str(root), "--no-publish", "--json"]
    if allow_sensitive:
        argv.append("--allow-sensitive")
    if max_fixes is not None:
        argv += ["--max-fixes", str(max_fixes)]
    pid = detached.spawn(
        directory,
        argv,
        cwd=root,
        outputs=_OUTPUTS,
        env=detached.environment(environ),
        record={"allow_sensitive": allow_sensitive, "max_fixes": max_fixes},
    )
    return Started(run, pid, f"{HEALS}/{run}")


def status(root: Path, run: str, *, wait_s: float = 0.0, poll_s: float = 1.0) -> HealStatus:
    """Where heal run `run` is: waits up to `wait_s` (at most 240 s) for it to end."""
    root = root.resolve()
    record = detached.started(root / HEALS, run)
    if record is None:
        busy = running(root)
        raise Refused(
            f"no heal run {run!r} was started here",
            hint=f"running: {', '.join(busy)}" if busy else "start one with heal_start",
        )
    directory = root / HEALS / run
    state, code = detached.wait(directory, wait_s, poll_s)
    return HealStatus(
        run=run,
        state=state,
        elapsed_s=round(time.time() - float(record.get("started", time.time())), 1),
        directory=f"{HEALS}/{run}",
        exit_code=code,
        result=detached.result(directory / _OUTPUTS.stdout) if state == "finished" else None,
        log_tail=detached.tail(directory / _OUTPUTS.stderr),
    )
