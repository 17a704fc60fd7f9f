"""The Stop hook: an /autofix session may not end quietly while its last verification is
red and a failing task has attempts left (session.stop_reason). `stop_hook_active` means
Claude is already going on because of a Stop hook: then it may always stop, so the gate
can hold a session at most once per stop and never loop.

When the turn may end, the /autofix loop is over: the user's files it held read-only
(locks.hold) are given back to the agent's commands."""

from __future__ import annotations

import time
from pathlib import Path

from agentloop import locks
from agentloop import session as session_mod
from agentloop.hooks.protocol import PASS, HookAnswer, HookEvent, block


def stop_gate(event: HookEvent, now: float | None = None) -> HookAnswer:
    reason = _reason(event, time.time() if now is None else now)
    if reason is not None:
        return block(reason, "Stop")
    if event.session_id:
        locks.release(Path(event.project_dir).resolve(), event.session_id)
    return PASS


def _reason(event: HookEvent, now: float) -> str | None:
    if event.stop_hook_active or not event.session_id:
        return None
    found = session_mod.find(Path(event.project_dir), event.session_id)
    if found is None:
        return None
    return session_mod.stop_reason(session_mod.load(found), now)
