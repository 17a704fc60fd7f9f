"""Judging a session's result: every field together, never the subtype alone."""

from __future__ import annotations

import pytest

from agentloop.agents import OUTCOMES, Outcome, SessionLimits, classify

# (subtype, is_error, terminal_reason, permission denials, api_error_status) as Claude Code
# 2.1.330 reports them (see the result_*.json samples in the shared reference).
CASES: list[tuple[str, tuple[str | None, bool, str | None, int, int | None], Outcome]] = [
    ("completed", ("success", False, "completed", 0, None), "success"),
    ("older CLI without a reason", ("success", False, None, 0, None), "success"),
    ("tools refused", ("success", False, "completed", 1, None), "denied"),
    ("a hook said continue: false", ("success", False, "hook_stopped", 0, None), "stopped"),
    ("max turns", ("error_max_turns", True, "max_turns", 0, None), "max_turns"),
    ("budget", ("error_max_budget_usd", True, "budget_exhausted", 0, None), "budget"),
    ("API unreachable", ("success", True, "api_error", 0, None), "api_error"),
    ("API 529", ("success", True, "api_error", 0, 529), "api_error"),
    ("API error, even with denials", ("success", True, "api_error", 1, 500), "api_error"),
    ("success subtype, is_error, odd reason", ("success", True, "completed", 0, None), "api_error"),
    ("execution error", ("error_during_execution", True, "model_error", 0, None), "error"),
    ("error subtype without is_error", ("error_during_execution", False, None, 0, None), "error"),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_judges_the_fields_together(
    fields: tuple[str | None, bool, str | None, int, int | None], expected: Outcome
) -> None:
    subtype, is_error, reason, denials, status = fields
    outcome = classify(
        subtype=subtype,
        is_error=is_error,
        terminal_reason=reason,
        permission_denials=[object()] * denials,
        api_error_status=status,
    )
    assert outcome == expected
    assert outcome in OUTCOMES


def test_limits_have_the_documented_defaults_and_refuse_nonsense() -> None:
    limits = SessionLimits()
    assert limits.max_turns == 50
    assert limits.max_budget_usd is None
    assert limits.timeout_s is None
    assert limits.allowed_tools == ("Bash", "Read", "Edit", "Grep", "Glob")
    for bad in ({"max_turns": 0}, {"max_budget_usd": 0.0}, {"timeout_s": -1.0}):
        with pytest.raises(ValueError, match="must be"):
            SessionLimits(**bad)


def test_tool_names_come_from_the_permission_rules() -> None:
    limits = SessionLimits(allowed_tools=("Bash(git diff *)", "Bash(pytest *)", "Read"))
    assert limits.tool_names == ("Bash", "Read")
