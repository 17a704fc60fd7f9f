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

    def group(script: str, timeout: int, matcher: str | None, closed: bool) -> dict[str, Any]:
        command = f'sh "$CLAUDE_PROJECT_DIR/.claude/hooks/{script}"'
        handler = {
            "type": "command",
            "command": command + (" || exit 2" if closed else ""),
            "timeout": timeout,
        }
        return {"hooks": [handler]} if matcher is None else {"matcher": matcher, "hooks": [handler]}

    assert doc == {
        "hooks": {
            "PreToolUse": [
                group("guard.sh", 30, "Edit|Write|MultiEdit|NotebookEdit|Bash|Read|Grep|Glob", True)
            ],
            "Stop": [group("stop-gate.sh", 60, None, False)],
            "PostToolUse": [group("post-edit.sh", 120, "Edit|Write|MultiEdit", False)],
            "UserPromptExpansion": [group("autofix.sh", 60, "autofix", True)],
            "SessionEnd": [group("session-end.sh", 30, None, False)],
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


# ---------------------------------------------------------------- the rails' settings

WANTED = settings.Wanted.of(
    {
        "sandbox": {
            "enabled": True,
            "failIfUnavailable": True,
            "filesystem": {"denyWrite": [".git", "auth"], "denyRead": [".env"]},
            "network": {"allowedDomains": []},
        },
        "permissions": {"deny": ["Edit(/auth/**)", "Read(/.env)"]},
        "enabledMcpjsonServers": ["agentloop"],
    }
)


def test_wanted_flattens_a_fragment_into_values_and_items() -> None:
    assert dict(WANTED.values) == {"sandbox.enabled": True, "sandbox.failIfUnavailable": True}
    assert dict(WANTED.items) == {
        "sandbox.filesystem.denyWrite": (".git", "auth"),
        "sandbox.filesystem.denyRead": (".env",),
        "sandbox.network.allowedDomains": (),
        "permissions.deny": ("Edit(/auth/**)", "Read(/.env)"),
        "enabledMcpjsonServers": ("agentloop",),
    }


def test_merge_owned_into_nothing_writes_no_empty_list_and_takes_all_out_again() -> None:
    merged, owned = settings.merge_owned({}, WANTED)
    assert merged == {
        "sandbox": {
            "enabled": True,
            "failIfUnavailable": True,
            "filesystem": {"denyWrite": [".git", "auth"], "denyRead": [".env"]},
        },
        "permissions": {"deny": ["Edit(/auth/**)", "Read(/.env)"]},
        "enabledMcpjsonServers": ["agentloop"],
    }
    assert settings.problem(merged) is None
    assert settings.merge_owned(merged, WANTED, owned) == (merged, owned)
    assert settings.unmerge_owned(merged, owned) == {}
    # The record survives the manifest's JSON.
    assert settings.Owned.from_json(json.loads(json.dumps(owned.to_json()))) == owned


def test_merge_owned_keeps_the_users_items_values_and_order() -> None:
    users: dict[str, Any] = {
        "sandbox": {"enabled": False, "filesystem": {"denyWrite": ["secrets", "auth"]}},
        "permissions": {"deny": ["Bash(rm *)"], "allow": ["Bash(make)"]},
    }
    original = copy.deepcopy(users)
    merged, owned = settings.merge_owned(users, WANTED)
    assert users == original
    assert merged["sandbox"]["enabled"] is True
    # The user's entries first, where they were; "auth" was theirs already: not ours.
    assert merged["sandbox"]["filesystem"]["denyWrite"] == ["secrets", "auth", ".git"]
    assert owned.items["sandbox.filesystem.denyWrite"] == (".git",)
    assert merged["permissions"]["deny"][0] == "Bash(rm *)"
    assert owned.values["sandbox.enabled"] == {"set": True, "was": False}
    assert settings.unmerge_owned(merged, owned) == original


def test_merge_owned_again_replaces_ours_in_place() -> None:
    merged, owned = settings.merge_owned({"permissions": {"deny": ["Bash(rm *)"]}}, WANTED)
    merged["permissions"]["deny"].append("Bash(curl *)")  # the user's, after ours
    later = settings.Wanted.of(
        {
            "sandbox": {"enabled": True, "filesystem": {"denyWrite": [".git", "payments"]}},
            "permissions": {"deny": ["Read(/.env)", "Edit(/payments/**)"]},
        }
    )
    again, owned2 = settings.merge_owned(merged, later, owned)
    assert again["permissions"]["deny"] == [
        "Bash(rm *)", "Read(/.env)", "Bash(curl *)", "Edit(/payments/**)",
    ]  # fmt: skip
    assert again["sandbox"]["filesystem"] == {"denyWrite": [".git", "payments"]}
    # No longer wanted: the value init set goes back to what it was (absent).
    assert "failIfUnavailable" not in again["sandbox"]
    assert "enabledMcpjsonServers" not in again
    assert settings.unmerge_owned(again, owned2) == {
        "permissions": {"deny": ["Bash(rm *)", "Bash(curl *)"]}
    }


def test_a_value_the_user_changed_after_init_stays_theirs_on_uninstall() -> None:
    merged, owned = settings.merge_owned({}, WANTED)
    merged["sandbox"]["failIfUnavailable"] = False
    rest = settings.unmerge_owned(merged, owned)
    assert rest == {"sandbox": {"failIfUnavailable": False}}
