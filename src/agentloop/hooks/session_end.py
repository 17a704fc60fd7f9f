"""SessionEnd: an /autofix of this session that still holds the user's files (the
session ended inside the turn, so the stop gate never let it go) gives them back."""

from __future__ import annotations

from pathlib import Path

from agentloop import locks
from agentloop.hooks.protocol import PASS, HookAnswer, HookEvent


def session_end(event: HookEvent) -> HookAnswer:
    if event.session_id:
        locks.release(Path(event.project_dir).resolve(), event.session_id)
    return PASS
