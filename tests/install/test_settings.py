"""Merging agentloop's hooks into a user's settings.json, taking them out, and the schema
check that keeps Claude Code from silently ignoring the file."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from agentloop.errors import ConfigError
from agentloop.install import settings
from agentloop.install.settings import HOOKS

USERS: dict[str, Any] = {
    "permissions": {"allow": ["Bash(make test)"], "deny": []},
    "model": "sonnet",
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "./my-check.sh"}]}
        ],
        "SessionStart": [{"hooks": [{"type": "command", "command": "echo hi", "timeout": 5}]}],
    },
}


def schema() -> dict[str, Any]:
    text = resources.files("agentloop.schemas").joinpath("claude-settings.schema.json")
    doc: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return doc


def test_the_schema_is_valid_and_knows_the_33_events() -> None:
    doc = schema()
    Draft202012Validator.check_schema(doc)
    events = doc["properties"]["hooks"]["propertyNames"]["enum"]
    assert len(events) == len(set(events)) == 33
    assert {h.event for h in HOOKS} <= set(events)


def test_generated_hooks_have_the_documented_shape() -> None:
    doc = settings.generated()
    assert settings.problem(doc) is None
    assert doc == {
        "hooks": {
            "PreToolUse": [
                {
                    "matcher": "Edit|Write|MultiEdit|NotebookEdit|Bash",
                    "hooks": [
                        {
                            "type": "command",
                            "command": 'sh "$CLAUDE_PROJECT_DIR/.claude/hooks/guard.sh" || exit 2',
                            "timeout": 30,
                        }
                    ],
                }
            ],
            "Stop": [
                {
                    "hooks": [
                        {
                            "type": "command",
                            "command": 'sh "$CLAUDE_PROJECT_DIR/.claude/hooks/stop-gate.sh"',
                            "timeout": 60,
                        }
                    ]
                }
            ],
            "PostToolUse": [
                {
                    "matcher": "Edit|Write|MultiEdit",
                    "hooks": [
                        {
                            "type": "command",
                            "command": 'sh "$CLAUDE_PROJECT_DIR/.claude/hooks/post-edit.sh"',
                            "timeout": 120,
                        }
                    ],
                }
            ],
        }
    }


def test_merge_keeps_the_users_keys_and_hooks_and_adds_ours_once() -> None:
    original = copy.deepcopy(USERS)
    merged = settings.merge(USERS)
    assert original == USERS  # not modified in place
    assert settings.problem(merged) is None
    Draft202012Validator(schema()).validate(merged)
    assert merged["permissions"] == USERS["permissions"]
    assert merged["model"] == "sonnet"
    # The user's own PreToolUse group stays first; ours is a group of its own after it.
    assert merged["hooks"]["PreToolUse"][0] == USERS["hooks"]["PreToolUse"][0]
    assert merged["hooks"]["PreToolUse"][1] == HOOKS[0].group()
    assert merged["hooks"]["SessionStart"] == USERS["hooks"]["SessionStart"]
    assert settings.merge(merged) == merged
    assert settings.unmerge(merged) == USERS


def test_an_older_version_of_ours_is_replaced_in_place() -> None:
    old_guard = {
        "type": "command",
        "command": '"$CLAUDE_PROJECT_DIR"/.claude/hooks/guard.sh',
        "timeout": 10,
    }
    users = {"type": "command", "command": "./mine.sh"}
    doc = {
        "hooks": {
            "PreToolUse": [
                {"matcher": "Edit|Write", "hooks": [old_guard]},
                {"matcher": "Bash", "hooks": [users]},
            ],
            # An older layout put the post-edit hook under another event.
            "PostToolUseFailure": [
                {"hooks": [{"type": "command", "command": "sh .claude/hooks/post-edit.sh"}]}
            ],
        }
    }
    merged = settings.merge(doc)
    assert merged["hooks"]["PreToolUse"] == [
        HOOKS[0].group(),
        {"matcher": "Bash", "hooks": [users]},
    ]
    assert "PostToolUseFailure" not in merged["hooks"]
    assert settings.ours(merged) == {h.event: [h.group()] for h in HOOKS}


def test_a_group_shared_with_the_users_handlers_is_split() -> None:
    users = {"type": "command", "command": "./lint.sh"}
    doc = {"hooks": {"Stop": [{"hooks": [HOOKS[1].group()["hooks"][0], users]}]}}
    merged = settings.merge(doc)
    assert merged["hooks"]["Stop"] == [HOOKS[1].group(), {"hooks": [users]}]
    assert settings.merge(merged) == merged
    assert settings.unmerge(merged) == {"hooks": {"Stop": [{"hooks": [users]}]}}


def test_unmerge_leaves_what_the_user_left_empty() -> None:
    assert settings.unmerge(settings.merge({})) == {}
    assert settings.unmerge(settings.merge({"hooks": {}})) == {}
    assert settings.unmerge({"hooks": {}, "x": 1}) == {"hooks": {}, "x": 1}


def test_a_script_of_a_similar_name_is_not_ours() -> None:
    assert settings.our_script({"command": "sh .claude/hooks/guard.sh.bak"}) is None
    assert settings.our_script({"command": "sh .claude/hooks/my-guard.sh"}) is None
    assert settings.our_script({"command": "sh .claude/hooks/guard.sh"}) == "guard.sh"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "not valid JSON: Expecting property name"),
        (b"[]", "the top level: expected an object, got an array"),
        (b'{"hooks": []}', "hooks: expected an object, got an array"),
        (b'{"hooks": {"PreToolUs": []}}', "'PreToolUs' is not a Claude Code hook event"),
        (b'{"hooks": {"Stop": [{"matcher": "x"}]}}', "hooks.Stop[0]: 'hooks' is a required"),
        (
            b'{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": ""}]}]}}',
            "hooks.Stop[0].hooks[0].command",
        ),
        (
            b'{"hooks": {"Stop": [{"hooks": [{"type": "shell", "command": "x"}]}]}}',
            "'shell' is not one of command, http",
        ),
        (
            b'{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x", '
            b'"timeout": 0}]}]}}',
            "hooks.Stop[0].hooks[0].timeout",
        ),
        (b"\xff{}", "not UTF-8"),
    ],
)
def test_parse_refuses_what_claude_code_would_ignore(raw: bytes, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.parse(raw)
    assert fragment in caught.value.message
    assert caught.value.message.startswith(".claude/settings.json ")
    assert caught.value.hint
    assert "nothing was changed" in caught.value.hint


def test_parse_accepts_other_keys_and_handler_types() -> None:
    doc = {
        "env": {"X": "1"},
        "hooks": {
            "Notification": [{"matcher": "", "hooks": [{"type": "http", "url": "http://x"}]}],
            "PreToolUse": [{"hooks": [{"type": "prompt", "prompt": "ok?", "timeout": 1.5}]}],
        },
    }
    assert settings.parse(json.dumps(doc).encode()) == doc
