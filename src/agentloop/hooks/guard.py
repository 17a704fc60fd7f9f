"""The PreToolUse guard of interactive sessions: the headless loop's guard (rails.guard,
rails.shell) with the rails read from the project's configuration, plus, while an /autofix
session is active, the files the user had uncommitted when it started.

It only ever denies or passes. Passing prints nothing, so the user's own permission rules
still apply; an explicit "allow" would skip them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentloop import session as session_mod
from agentloop.config import load_config
from agentloop.hooks.protocol import PASS, HookAnswer, HookEvent, deny
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import ForbiddenPaths

_PATH_KEYS = ("file_path", "notebook_path")
# gitignore-pattern metacharacters: a user's file name must match only itself.
_GLOB = str.maketrans({c: f"\\{c}" for c in "*?[]\\!#"})


def _real(path: str, cwd: str) -> str:
    """Absolute with symlinks resolved: a link inside the repository pointing into auth/
    is auth/, and /tmp vs /private/tmp style aliases of the project agree."""
    return os.path.realpath(os.path.join(cwd, path)) if path else path


def _user_files(event: HookEvent, root: str) -> tuple[str, ...]:
    if not event.session_id:
        return ()
    found = session_mod.find(Path(root), event.session_id)
    if found is None:
        return ()
    record = session_mod.load(found)
    if not record.active or not record.toplevel:
        return ()
    top = os.path.realpath(record.toplevel)
    patterns = []
    for name in record.user_files:
        absolute = os.path.join(top, name)
        relative = os.path.relpath(absolute, root)
        if not relative.startswith(".."):
            patterns.append("/" + relative.replace(os.sep, "/").translate(_GLOB))
    return tuple(patterns)


def guard(event: HookEvent) -> HookAnswer:
    root = os.path.realpath(event.project_dir)
    config, _ = load_config(Path(root))
    user_files = _user_files(event, root)
    forbidden = ForbiddenPaths.with_protected(
        (*config.rails.forbidden_paths, *user_files), root=root
    )
    cwd = os.path.realpath(event.cwd)
    tool_input: Mapping[str, Any] = {
        key: _real(str(value), cwd) if key in _PATH_KEYS and isinstance(value, str) else value
        for key, value in event.tool_input.items()
    }
    # Interactive: the /autofix skill has the agent stage, commit and revert its own files.
    rails = make_guard(forbidden, cwd=cwd, secrets=config.rails.secret_paths, interactive=True)
    reason = rails(event.tool_name or "", tool_input)
    if reason is None:
        return PASS
    if user_files and any(p.lstrip("/") in reason for p in user_files):
        reason += " (it had uncommitted changes of the user's when /autofix started)"
    return deny(reason)
