"""`agentloop hook <name>`: answer one Claude Code hook event read from stdin.

Claude Code, not errors.guarded, gives these exit codes their meaning (hooks.protocol), so
this command maps its own failures: the guard fails closed (exit 2 blocks the tool call;
exit 1 or 3 would let it through), and so does the /autofix hook (exit 2: no loop without
the user's files held); the stop gate, the post-edit check and the session end fail open
(exit 1: a broken gate must never trap a session, a broken linter never stop one).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from agentloop import errors
from agentloop.hooks.protocol import (
    BLOCK,
    NON_BLOCKING,
    HookAnswer,
    HookEvent,
    failed_closed,
    read_event,
)

NAMES = ("guard", "stop-gate", "post-edit", "autofix", "session-end")
# Hooks whose failure must block what they guard.
_FAIL_CLOSED = {"guard", "autofix"}


def _guard(event: HookEvent) -> HookAnswer:
    from agentloop.hooks.guard import guard

    return guard(event)


def _stop_gate(event: HookEvent) -> HookAnswer:
    from agentloop.hooks.stop_gate import stop_gate

    return stop_gate(event)


def _post_edit(event: HookEvent) -> HookAnswer:
    from agentloop.config import load_config
    from agentloop.hooks.post_edit import post_edit

    config, _ = load_config(Path(event.project_dir))
    return post_edit(event, config)


def _autofix(event: HookEvent) -> HookAnswer:
    from agentloop.hooks.autofix import autofix

    return autofix(event)


def _session_end(event: HookEvent) -> HookAnswer:
    from agentloop.hooks.session_end import session_end

    return session_end(event)


_HANDLERS: dict[str, Callable[[HookEvent], HookAnswer]] = {
    "guard": _guard,
    "stop-gate": _stop_gate,
    "post-edit": _post_edit,
    "autofix": _autofix,
    "session-end": _session_end,
}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.AgentloopError):
        return exc.message + (f" ({exc.hint})" if exc.hint else "")
    log = errors.write_crash_log(exc)
    where = f"; traceback in {log}" if log else ""
    return f"internal error {type(exc).__name__}: {exc}{where}"


def answer(name: str, stdin: TextIO) -> HookAnswer:
    """The answer to the event on `stdin`; never raises (but for an unknown name)."""
    handler = _HANDLERS.get(name)
    if handler is None:
        raise errors.UsageError(f"unknown hook {name!r}", hint=f"use one of: {', '.join(NAMES)}")
    try:
        return handler(read_event(stdin.read()))
    except Exception as exc:
        if name == "guard":
            return failed_closed(_describe(exc))
        if name in _FAIL_CLOSED:
            return HookAnswer(exit_code=BLOCK, stderr=f"agentloop {name}: {_describe(exc)}")
        return HookAnswer(exit_code=NON_BLOCKING, stderr=f"agentloop {name}: {_describe(exc)}")


def hook(*, name: str, stdin: TextIO | None = None) -> int:
    result = answer(name, sys.stdin if stdin is None else stdin)
    if result.stdout:
        sys.stdout.write(result.stdout + "\n")
    if result.stderr:
        sys.stderr.write(result.stderr + "\n")
    return result.exit_code
