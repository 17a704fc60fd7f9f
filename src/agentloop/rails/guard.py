"""The PreToolUse guard the agent runs under: defence in depth, never the only check.

After every attempt agentloop itself diffs the worktree against the rails (loop/runner);
this guard only stops what it can see early, before anything is written: an edit of a
forbidden path, a shell command that writes one or whose targets cannot be known
(rails/shell.py says what shell analysis cannot see), and `git push`.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from typing import Any

from agentloop.agents.base import Guard
from agentloop.rails.paths import OUTSIDE_REPOSITORY, ForbiddenPaths
from agentloop.rails.shell import forbidden_writes

_EDIT_TOOLS = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path"}
# Files that hold secrets: not even read (the model would see their contents).
_SECRET_FILES = ("**/.env*",)


def _names_secret_file(command: str, secret_files: ForbiddenPaths) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for word in words:
        for part in re.split(r"[<>|&;=]+", word):
            if part and secret_files.match(part) not in (None, OUTSIDE_REPOSITORY):
                return part
    return None


_NOTEBOOK = {"NotebookEdit": "notebook_path"}


def make_guard(forbidden: ForbiddenPaths, cwd: str | None = None) -> Guard:
    """The guard for a session in `cwd` (absolute; default: the repository root, which is
    where relative paths are then taken from)."""
    secret_files = ForbiddenPaths(_SECRET_FILES, root=forbidden.root)

    def absolute(path: str) -> str:
        if cwd and path and not path.startswith("/"):
            return posixpath.join(cwd, path)
        return path

    def guard(tool: str, tool_input: Mapping[str, Any]) -> str | None:
        if tool == "Read":
            path = absolute(str(tool_input.get("file_path") or ""))
            if secret_files.match(path) not in (None, OUTSIDE_REPOSITORY):
                return f"agentloop rails: {path} holds secrets; do not read it"
            return None
        key = _EDIT_TOOLS.get(tool) or _NOTEBOOK.get(tool)
        if key is not None:
            path = absolute(str(tool_input.get(key) or ""))
            pattern = forbidden.match(path)
            if pattern is not None:
                return f"agentloop rails: {path} is a forbidden path ({pattern}); do not edit it"
            return None
        if tool == "Bash":
            command = str(tool_input.get("command") or "")
            reasons = forbidden_writes(command, forbidden, cwd)
            if reasons:
                return "agentloop rails: " + "; ".join(reasons[:3])
            secret = _names_secret_file(command, secret_files)
            if secret is not None:
                return f"agentloop rails: {secret} holds secrets; do not read it"
        return None

    return guard
