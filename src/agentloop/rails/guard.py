"""The PreToolUse guard the agent runs under: defence in depth, never the only check.

After every attempt agentloop itself diffs the worktree against the rails (loop/runner);
this guard only stops the obvious cases early, before anything is written: an edit of a
forbidden path, a shell command that names one, and `git push`. Shell analysis is
deliberately coarse here: any word of the command that names a forbidden path denies it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from agentloop.agents.base import Guard
from agentloop.rails.paths import OUTSIDE_REPOSITORY, ForbiddenPaths

_EDIT_TOOLS = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path"}
_NOTEBOOK = {"NotebookEdit": "notebook_path"}
_PUSH = re.compile(r"\bgit\b[^|;&]*\bpush\b")


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        return command.split()


def make_guard(forbidden: ForbiddenPaths) -> Guard:
    def guard(tool: str, tool_input: Mapping[str, Any]) -> str | None:
        key = _EDIT_TOOLS.get(tool) or _NOTEBOOK.get(tool)
        if key is not None:
            path = str(tool_input.get(key) or "")
            pattern = forbidden.match(path)
            if pattern is not None:
                return f"agentloop rails: {path} is a forbidden path ({pattern}); do not edit it"
            return None
        if tool == "Bash":
            command = str(tool_input.get("command") or "")
            if _PUSH.search(command):
                return "agentloop rails: git push is not allowed; agentloop commits and pushes"
            for word in _words(command):
                # Redirections glue paths to operators: `x>auth/t.py`, `2>>.env`.
                for candidate in re.split(r"[<>|&;]+", word):
                    if candidate.startswith("-") or not ("/" in candidate or "." in candidate):
                        continue
                    pattern = forbidden.match(candidate)
                    # Reading /usr/lib is fine; only the repository's forbidden paths count.
                    if pattern is not None and pattern != OUTSIDE_REPOSITORY:
                        return (
                            f"agentloop rails: the command touches {candidate}, a forbidden "
                            f"path ({pattern})"
                        )
        return None

    return guard
