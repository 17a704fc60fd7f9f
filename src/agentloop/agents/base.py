"""What the loop needs from a coding agent: run one session, say how it ended.

The loop talks to `Agent`; `ClaudeCodeAgent` (claude.py) is the real one, and a test can
pass any object with the same `run`. A session's end is judged here, once, from every
field that matters together: a result that says `success` while `is_error` is true is
an API error, and a clean finish with refused tool calls did not do what it was asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from agentloop.errors import AgentloopError

if TYPE_CHECKING:
    from agentloop.agents.sandbox import Policy

Outcome = Literal[
    "success",  # finished normally, every tool call allowed
    "denied",  # finished normally, but some tool calls were refused (guard or permissions)
    "stopped",  # ended early without an error, e.g. a hook said `continue: false`
    "max_turns",
    "budget",
    "api_error",  # the model API failed; the result can still say subtype "success"
    "error",  # the CLI reported another error
    "timeout",  # agentloop's wall-clock cap killed the session
    "crashed",  # no result at all: the CLI died or could not start
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

# A PreToolUse guard: (tool name, tool input) → the reason to deny it, or None to allow.
Guard = Callable[[str, Mapping[str, Any]], str | None]

DEFAULT_TOOLS = ("Bash", "Read", "Edit", "Grep", "Glob")


class AgentUnavailable(AgentloopError):
    """The agent cannot be started at all (e.g. the Claude Code CLI is missing)."""


@dataclass(frozen=True)
class SessionLimits:
    max_turns: int = 50
    max_budget_usd: float | None = None
    # Wall clock, enforced by agentloop (the CLI has no such limit): the session's
    # processes are killed when it runs out.
    timeout_s: float | None = None
    # Permission rules the session may use without asking, e.g. "Bash(git diff *)";
    # nothing else runs.
    allowed_tools: tuple[str, ...] = DEFAULT_TOOLS

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_tools", tuple(self.allowed_tools))
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, not {self.max_turns}")
        for name in ("max_budget_usd", "timeout_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")

    @property
    def tool_names(self) -> tuple[str, ...]:
        """The tools the rules name: "Bash(git diff *)" → "Bash", once each, in order."""
        names = (rule.split("(", 1)[0].strip() for rule in self.allowed_tools)
        return tuple(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class PermissionDenial:
    tool_name: str
    tool_use_id: str
    tool_input: Mapping[str, Any]
    # What the model was told (the tool result), e.g. the guard's reason.
    message: str = ""


@dataclass(frozen=True)
class SessionResult:
    outcome: Outcome
    subtype: str | None
    is_error: bool
    terminal_reason: str | None
    num_turns: int
    cost_usd: float
    duration_s: float
    permission_denials: tuple[PermissionDenial, ...] = ()
    errors: tuple[str, ...] = ()
    # The final answer, or the error text the CLI gave instead of one.
    text: str = ""
    session_id: str | None = None
    api_error_status: int | None = None
    # The agent's process, for logs and for checking that nothing outlived the session.
    pid: int | None = None
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


def classify(
    *,
    subtype: str | None,
    is_error: bool,
    terminal_reason: str | None,
    permission_denials: Sequence[object],
    api_error_status: int | None = None,
) -> Outcome:
    """Judge a Claude Code result object by all of its fields together.

    Limits come first (they are errors with their own subtype and reason); then any
    error: an error result with subtype "success" is how the CLI reports a failed API call
    (its `result` is the "API Error: …" text); then a clean finish that did not complete
    normally; then refused tool calls.
    """
    if subtype == "error_max_turns" or terminal_reason == "max_turns":
        return "max_turns"
    if subtype == "error_max_budget_usd" or terminal_reason == "budget_exhausted":
        return "budget"
    if is_error:
        if subtype == "success" or terminal_reason == "api_error" or api_error_status:
            return "api_error"
        return "error"
    if subtype != "success":
        # An error subtype without is_error: not a shape seen from the CLI; not a success.
        return "error"
    if terminal_reason not in (None, "completed"):
        return "stopped"
    if permission_denials:
        return "denied"
    return "success"


class Agent(Protocol):
    def run(
        self,
        prompt: str,
        *,
        cwd: Path,
        limits: SessionLimits,
        env: Mapping[str, str],
        policy: Policy | None = None,
        guard: Guard | None = None,
    ) -> SessionResult:
        """Run one session on `prompt` in `cwd` and report how it ended, under `policy`
        (what the session may write, read and reach; None: no restriction beyond the
        guard) and `guard` (asked before each tool call; None: the agent's own, if any).
        Both are per session: each job's worktree has its own paths. Never raises for how
        a session ends (limits, API errors, timeouts are outcomes); raises
        `AgentUnavailable` when the agent cannot be started at all, and
        `SandboxUnavailable` when the policy asks for a sandbox this machine lacks."""
        ...

    def cancel(self) -> None:
        """End every session in progress now, from another thread (^C in a parallel
        run); each `run` then returns or raises KeyboardInterrupt promptly."""
        ...
