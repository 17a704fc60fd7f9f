"""Work agentloop's MCP server starts in the background for an interactive session (a
parallel build, build/launch.py; a heal run, heal/launch.py) and reports on later.

Each run has a folder of its own under a base folder the sandbox keeps read-only to the
agent's commands and the guard keeps from its file tools (`.agentloop/**`), so the agent
cannot forge a result or a record:
- `run.json`: the run, its pid, when it started, and what the starter adds;
- the command's stdout (its `--json` document) and stderr (progress lines, the log);
- `exit`: its exit status, written when it ends.

The process outlives the server (Claude Code may stop it at any time): proc.spawn_detached
starts it in a session of its own. It is a run of its own, as from the user's terminal, so
the variables Claude Code sets for the session the server serves are not passed on.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentloop import output, proc
from agentloop.workspace import new_run_id

# A run's name: no path separator, no dot, nothing a shell minds.
RUN = re.compile(r"[0-9]{8}T[0-9]{6}Z(-[0-9]+)?")
# How long one status call may wait for the end: well under Claude Code's MCP tool
# timeout, so the answer is a status, never a timed-out call.
WAIT_LIMIT_S = 240.0
_LOG_TAIL = 20
# What Claude Code sets for the session the server serves. With the session's id, an
# agentloop run in the background (its suites, its sessions' tools) would take itself for
# part of an /autofix session.
SESSION_VARS = ("CLAUDECODE", "CLAUDE_CODE_SESSION_ID", "CLAUDE_CODE_ENTRYPOINT",
                "CLAUDE_PROJECT_DIR")  # fmt: skip

State = Literal["running", "finished", "ended"]


@dataclass(frozen=True)
class Outputs:
    """The file names in a run's folder for the command's stdout and stderr."""

    stdout: str
    stderr: str


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The background run's environment: the server's, without the session's variables,
    with progress as lines (the log's tail shows how it is going)."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if k not in SESSION_VARS}  # fmt: skip
    env[output.PROGRESS_ENV] = "lines"
    return env


def reserve(base: Path) -> tuple[str, Path]:
    """A new run's id and its (created) folder under `base`."""
    run = new_run_id()
    n = 1
    while os.path.lexists(base / (run if n == 1 else f"{run}-{n}")):
        n += 1
    run = run if n == 1 else f"{run}-{n}"
    directory = base / run
    directory.mkdir(parents=True)
    return run, directory


def spawn(
    directory: Path,
    argv: Sequence[str],
    *,
    cwd: Path,
    outputs: Outputs,
    env: Mapping[str, str],
    record: Mapping[str, Any],
) -> int:
    """Start `argv` detached, its output into `directory`; run.json records its pid (and
    `record`) once it started. Returns the pid."""
    pid = proc.spawn_detached(
        argv,
        cwd=cwd,
        stdout=directory / outputs.stdout,
        stderr=directory / outputs.stderr,
        status=directory / "exit",
        env=env,
    )
    doc = {
        "run": directory.name,
        "pid": pid,
        **record,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "started": time.time(),
    }
    (directory / "run.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return pid


def state(directory: Path) -> tuple[State, int | None]:
    try:
        code = int((directory / "exit").read_text().strip())
    except (OSError, ValueError):
        code = None
    if code is not None:
        return "finished", code
    try:
        pid = int(json.loads((directory / "run.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        # run.json is written as soon as the process started; without it, the start
        # failed (and a folder like that must not hold up every later run).
        return "ended", None
    return ("running" if proc.alive(pid) else "ended"), None


def running(base: Path) -> list[str]:
    """The runs under `base` that have not ended yet."""
    found = []
    for child in sorted(base.iterdir()) if base.is_dir() else ():
        if RUN.fullmatch(child.name) and state(child)[0] == "running":
            found.append(child.name)
    return found


def started(base: Path, run: str) -> Mapping[str, Any] | None:
    """The run.json of run `run` under `base`, or None when no such run was started."""
    directory = base / run
    if not RUN.fullmatch(run) or not (directory / "run.json").is_file():
        return None
    try:
        loaded = json.loads((directory / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def wait(directory: Path, wait_s: float, poll_s: float = 1.0) -> tuple[State, int | None]:
    """The run's state, after waiting up to `wait_s` (at most WAIT_LIMIT_S) for its end."""
    deadline = time.monotonic() + max(0.0, min(wait_s, WAIT_LIMIT_S))
    now, code = state(directory)
    while now == "running" and time.monotonic() < deadline:
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        now, code = state(directory)
    return now, code


def result_text(text: str) -> Mapping[str, Any] | None:
    """A --json document (an object) in a command's output, if it printed one."""
    try:
        loaded = json.loads(text)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def result(path: Path) -> Mapping[str, Any] | None:
    """A finished run's --json document (an object), if it printed one."""
    try:
        return result_text(path.read_text(encoding="utf-8"))
    except OSError:
        return None


def tail(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-_LOG_TAIL:])
