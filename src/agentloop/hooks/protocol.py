"""The hook protocol of Claude Code (2.1.330): the event on stdin, the answer on stdout and
in the exit code.

Exit 0 with a JSON document decides; exit 2 blocks with stderr as the reason (on
PreToolUse it blocks the tool call, on Stop it keeps Claude going); any other exit code is
a non-blocking error that lets the action proceed, which is why the guard never uses one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentloop.errors import AgentloopError

# Exit codes Claude Code gives a meaning to.
PROCEED = 0
BLOCK = 2
# A non-blocking error: shown in Claude Code's debug log, the action goes on.
NON_BLOCKING = 1


class HookInputError(AgentloopError):
    """The event on stdin is not a Claude Code hook payload."""


@dataclass(frozen=True)
class HookEvent:
    event: str
    session_id: str
    # Where the session is now (Claude Code's Bash keeps `cd`); absolute.
    cwd: str
    # The project the session started in: $CLAUDE_PROJECT_DIR, else cwd. Config, rails
    # and state are read from here.
    project_dir: str
    tool_name: str | None = None
    tool_input: Mapping[str, Any] = field(default_factory=dict)
    tool_response: Any = None
    # Stop: Claude is already continuing because a Stop hook blocked it.
    stop_hook_active: bool = False


def read_event(text: str, environ: Mapping[str, str] | None = None) -> HookEvent:
    env = os.environ if environ is None else environ
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HookInputError(
            f"the hook input is not JSON ({exc.msg})",
            hint="`agentloop hook` is run by Claude Code with the event on stdin",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("hook_event_name"), str):
        raise HookInputError(
            "the hook input has no hook_event_name",
            hint="`agentloop hook` is run by Claude Code with the event on stdin",
        )
    cwd = data.get("cwd")
    if not isinstance(cwd, str) or not cwd:
        cwd = os.getcwd()
    tool_input = data.get("tool_input")
    if tool_input is not None and not isinstance(tool_input, dict):
        raise HookInputError("the hook input's tool_input is not an object")
    return HookEvent(
        event=data["hook_event_name"],
        session_id=str(data.get("session_id") or ""),
        cwd=cwd,
        project_dir=env.get("CLAUDE_PROJECT_DIR") or cwd,
        tool_name=data.get("tool_name") if isinstance(data.get("tool_name"), str) else None,
        tool_input=tool_input or {},
        tool_response=data.get("tool_response"),
        stop_hook_active=data.get("stop_hook_active") is True,
    )


@dataclass(frozen=True)
class HookAnswer:
    exit_code: int = PROCEED
    # A JSON document, or "" for none.
    stdout: str = ""
    stderr: str = ""


# No output: Claude Code goes on as it would without the hook. (An explicit "allow" would
# also skip the user's permission rules, which a guard must never do.)
PASS = HookAnswer()


def deny(reason: str) -> HookAnswer:
    """PreToolUse: refuse the tool call; Claude sees the reason."""
    document = {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }
    return HookAnswer(stdout=json.dumps(document))


def block(reason: str, event: str, context: str | None = None) -> HookAnswer:
    """Stop: keep Claude going with `reason` as its next instruction. PostToolUse: the tool
    already ran; `reason` is fed back to Claude."""
    document: dict[str, Any] = {"decision": "block", "reason": reason}
    if context:
        document["hookSpecificOutput"] = {"hookEventName": event, "additionalContext": context}
    return HookAnswer(stdout=json.dumps(document))


def failed_closed(message: str) -> HookAnswer:
    """The guard could not decide: block, with the reason on stderr (exit 2 cannot be
    overridden by anything else a hook prints)."""
    return HookAnswer(exit_code=BLOCK, stderr=f"agentloop guard: {message}; blocked to be safe")
