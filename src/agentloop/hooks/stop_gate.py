"""The Stop hook: an /autofix session may not end quietly while its last verification is
red and a failing task has attempts left (session.stop_reason). `stop_hook_active` means
Claude is already going on because of a Stop hook: then it may always stop, so the gate
can hold a session at most once per stop and never loop."""

from __future__ import annotations

import time
from pathlib import Path

from agentloop import session as session_mod
from agentloop.hooks.protocol import PASS, HookAnswer, HookEvent, block


def stop_gate(event: HookEvent, now: float | None = None) -> HookAnswer:
    if event.stop_hook_active or not event.session_id:
        return PASS
    found = session_mod.find(Path(event.project_dir), event.session_id)
    if found is None:
        return PASS
    reason = session_mod.stop_reason(session_mod.load(found), time.time() if now is None else now)
    return PASS if reason is None else block(reason, "Stop")
