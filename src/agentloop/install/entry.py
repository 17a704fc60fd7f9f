"""The agentloop command the installed hooks and MCP server run, recorded by `agentloop
init` in .agentloop/command (per checkout: .agentloop/ is not committed).

The hooks used to find `agentloop` on PATH, else in the project's .venv/bin: a file the
agent's commands could write, so `exit 0` written there switched the guard off for the
rest of the session. Now they run one absolute path, chosen here once, and the sandbox
keeps it, and the environment it lives in, read-only; when it is gone they fail closed
and say to run `agentloop init` again.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import agentloop
from agentloop import INSTALL, git, proc
from agentloop.errors import UsageError

RECORD = ".agentloop/command"
_NAMES = ("agentloop", "agentloop.exe")


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def entry_point() -> Path:
    """The console script of the agentloop running now, absolute, symlinks resolved: the
    one this process was started as, else the one installed beside its interpreter. Never
    one found on PATH: that may be another installation, or another version."""
    candidates = []
    started_as = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started_as is not None and started_as.name in _NAMES:
        candidates.append(started_as)
    candidates += [Path(sys.executable).parent / name for name in _NAMES]
    for candidate in candidates:
        if _runnable(candidate):
            return Path(os.path.realpath(candidate))
    raise UsageError(
        "cannot tell which `agentloop` command the hooks should run: this Python "
        f"({sys.executable}) has no agentloop script beside it",
        hint=f"install agentloop once for all projects ({INSTALL}) and run `agentloop init` "
        "through the installed command",
    )


# Where uvx and `pipx run` keep the environments they make on the fly: a cache that is
# cleared without warning, and the hooks with it.
_EPHEMERAL = ("/.cache/uv/", "/uv/archive-", "/pipx/.cache/", "/.local/pipx/.cache/")


def hooks_warning(command: Path) -> str | None:
    """Why the hooks could not run `command`, checked the way they will run it: every
    tool call in Claude Code would then be blocked (the guard fails closed)."""
    blocked = "every tool call in Claude Code would be blocked"
    again = f"install agentloop for good ({INSTALL}) and run `agentloop init` again"
    try:
        done = proc.run([str(command), "--version"], cwd=Path(tempfile.gettempdir()), timeout=60)
    except proc.CommandNotFound:
        return f"the hooks run {command}, which does not exist: {blocked}; {again}"
    if not done.ok or not done.stdout.startswith("agentloop "):
        why = "timed out" if done.timed_out else f"exited {done.returncode}"
        last = (done.stderr.strip().splitlines() or [""])[-1][:200]
        return (
            f"the hooks run {command}, but `{command.name} --version` {why}"
            f"{f' ({last})' if last else ''}: {blocked}; {again}"
        )
    where = str(command)
    temporary = os.path.realpath(tempfile.gettempdir()) + os.sep
    if any(part in where for part in _EPHEMERAL) or where.startswith(temporary):
        return (
            f"the hooks run {command}, from a temporary environment (uvx, `pipx run`, a temp "
            f"directory) that can vanish at any time: then {blocked}; {again}"
        )
    return None


def installation(entry: Path, top: Path | None) -> list[Path]:
    """What the hooks' agentloop runs from, which no agent command may write: the
    environment of its script (a venv's whole tree: its interpreter and every package it
    imports) and agentloop's own package. A package that is this repository's own tracked
    source (agentloop developing itself, installed editable) is left out: the agent must
    be able to edit it."""
    found: list[Path] = []
    bin_dir = entry.parent
    if (bin_dir.parent / "pyvenv.cfg").is_file():
        found.append(bin_dir.parent)
    else:
        found.append(entry)
    if sys.prefix != sys.base_prefix:
        found.append(Path(sys.prefix).resolve())
    package = Path(agentloop.__file__).resolve().parent
    if top is None or not git.is_tracked(top, package / "__init__.py"):
        found.append(package)
    return list(dict.fromkeys(found))
