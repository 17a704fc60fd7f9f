"""Coding agents the loop drives: the `Agent` protocol and the Claude Code implementation."""

from agentloop.agents.base import (
    DEFAULT_TOOLS,
    OUTCOMES,
    Agent,
    AgentUnavailable,
    Guard,
    Outcome,
    PermissionDenial,
    SessionLimits,
    SessionResult,
    classify,
)

__all__ = [
    "DEFAULT_TOOLS",
    "OUTCOMES",
    "Agent",
    "AgentUnavailable",
    "Guard",
    "Outcome",
    "PermissionDenial",
    "SessionLimits",
    "SessionResult",
    "classify",
]
