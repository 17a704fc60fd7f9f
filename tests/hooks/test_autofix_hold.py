"""Typing /autofix: the UserPromptExpansion hook starts the session outside the sandbox and
holds the user's uncommitted files read-only to the agent's commands (through
.claude/settings.local.json, which Claude Code re-reads); the stop gate, the session's
end and `agentloop session stop` give them back, leaving the user's own settings file
byte for byte. Real git repositories; what Claude Code makes of the settings is tested
with the real CLI in test_interactive_sandbox.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agentloop import locks
from agentloop import session as session_mod
from agentloop.hooks.autofix import autofix
from agentloop.hooks.protocol import HookEvent
from agentloop.hooks.session_end import session_end
from agentloop.hooks.stop_gate import stop_gate
from agentloop.testing.repos import (
    agentloop_env,
    commit_all,
    git_init,
    pytest_project,
    run_cli,
    run_git,
    write_tree,
)

SESSION = "6f1d2c3b-0a9e-4b8d-8c7f-1e2d3c4b5a69"
OTHER = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    project = pytest_project(
        tmp_path / "proj",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
            "    assert add(1, 2) == 3\n",
            "src/notes.py": "N = 1\n",
            "src/old.py": "O = 1\n",
        },
    )
    git_init(project)
    (project / "src/notes.py").write_text("N = 2\n")
    (project / "new dir").mkdir()
    (project / "new dir/idea [draft].txt").write_text("mine\n")
    run_git(project, "mv", "src/old.py", "src/renamed.py")
    return project


def expansion(repo: Path, session_id: str = SESSION) -> HookEvent:
    return HookEvent("UserPromptExpansion", session_id, str(repo), str(repo))


def local_settings(repo: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((repo / locks.LOCAL_SETTINGS).read_text())
    return doc


def test_autofix_holds_the_users_files_from_outside_the_sandbox(repo: Path) -> None:
    assert autofix(expansion(repo), settle=0).stdout == ""
    record = session_mod.load(session_mod.path_of(repo, SESSION))
    # Git as it is (inside the sandbox it would also see placeholder files as changes).
    assert record.user_files == (
        "new dir/idea [draft].txt", "src/notes.py", "src/old.py", "src/renamed.py",
    )  # fmt: skip
    doc = local_settings(repo)
    assert doc["sandbox"]["filesystem"]["denyWrite"] == list(record.user_files)
    # A name that reads as a pattern gets no permission rule (it would mean other files,
    # or make Claude Code drop the whole file); the sandbox path above is literal.
    assert doc["permissions"]["deny"] == [
        "Edit(/src/notes.py)", "Edit(/src/notes.py/**)", "Edit(/src/old.py)",
        "Edit(/src/old.py/**)", "Edit(/src/renamed.py)", "Edit(/src/renamed.py/**)",
    ]  # fmt: skip
    assert locks.holds(repo) == frozenset(record.user_files)
    # The file agentloop created is kept out of git without touching a tracked file.
    assert run_git(repo, "status", "--porcelain", "--", ".claude") == ""
    assert "/.claude/settings.local.json" in (repo / ".git/info/exclude").read_text()


def test_the_stop_gate_gives_the_files_back_only_when_the_turn_may_end(repo: Path) -> None:
    autofix(expansion(repo), settle=0)
    path = session_mod.path_of(repo, SESSION)
    session_mod.record_verification(path, [session_mod.FailingTask("t1", ("tests/x",))])
    stop = HookEvent("Stop", SESSION, str(repo), str(repo))
    assert "agentloop stop gate" in stop_gate(stop).stdout
    assert locks.holds(repo)  # red, attempts left: the loop goes on, the hold stays
    session_mod.record_verification(path, [])
    assert stop_gate(stop).stdout == ""
    assert not locks.holds(repo)
    assert not (repo / locks.LOCAL_SETTINGS).exists()
    assert not (repo / locks.LEDGER).exists()


def test_release_puts_the_users_own_settings_file_back_byte_for_byte(repo: Path) -> None:
    mine = '{\n  "permissions": {"deny": ["Bash(rm *)"]},\n  "sandbox": {"enabled": true}\n}'
    write_tree(repo, {locks.LOCAL_SETTINGS: mine})
    autofix(expansion(repo), settle=0)
    doc = local_settings(repo)
    assert doc["permissions"]["deny"][0] == "Bash(rm *)"
    assert "src/notes.py" in doc["sandbox"]["filesystem"]["denyWrite"]
    # Another session's end does not let go of this one's hold; this session's does.
    session_end(HookEvent("SessionEnd", OTHER, str(repo), str(repo)))
    assert locks.holds(repo)
    session_end(HookEvent("SessionEnd", SESSION, str(repo), str(repo)))
    assert (repo / locks.LOCAL_SETTINGS).read_text() == mine


def test_a_new_autofix_replaces_a_hold_left_behind(repo: Path) -> None:
    autofix(expansion(repo, OTHER), settle=0)  # Claude Code killed mid-loop: never released
    (repo / "src/notes.py").write_text("N = 3\n")
    commit_all(repo, "the user commits their work")
    autofix(expansion(repo), settle=0)
    record = locks.held(repo)
    assert record is not None
    assert record.session_id == SESSION
    assert record.files == ()
    # Nothing of the user's to hold now: the old hold is gone, nothing new was written.
    assert not (repo / locks.LOCAL_SETTINGS).exists()
    assert locks.release(repo)


def test_session_stop_outside_the_sandbox_releases_and_start_keeps_the_hooks_record(
    repo: Path, isolated_home: Path
) -> None:
    autofix(expansion(repo), settle=0)
    started = session_mod.load(session_mod.path_of(repo, SESSION))
    # The skill's own `session start` (inside the sandbox, right after the hook) shows
    # the hook's record rather than starting over.
    done = run_cli("session", "start", "--id", SESSION, cwd=repo, home=isolated_home)
    assert done.returncode == 0, done.stderr
    assert session_mod.load(session_mod.path_of(repo, SESSION)) == started
    assert "src/notes.py" in done.stdout
    done = run_cli("session", "stop", "--id", SESSION, cwd=repo, home=isolated_home)
    assert done.returncode == 0, done.stderr
    assert not locks.holds(repo)


def test_the_autofix_hook_blocks_autofix_when_it_cannot_hold(
    repo: Path, isolated_home: Path
) -> None:
    write_tree(repo, {locks.LOCAL_SETTINGS: "{ not json"})
    payload = json.dumps(
        {"session_id": SESSION, "cwd": str(repo), "hook_event_name": "UserPromptExpansion"}
    )
    done = run_cli(
        "hook", "autofix", cwd=repo, home=isolated_home, input=payload,
        extra_env={"CLAUDE_PROJECT_DIR": str(repo)},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("agentloop autofix: .claude/settings.local.json is not valid")
    assert (repo / locks.LOCAL_SETTINGS).read_text() == "{ not json"


def test_the_autofix_hook_through_the_cli_waits_for_claude_code_to_apply_it(
    repo: Path, isolated_home: Path
) -> None:
    payload = json.dumps(
        {"session_id": SESSION, "cwd": str(repo), "hook_event_name": "UserPromptExpansion"}
    )
    done = subprocess.run(
        ["bash", "-c", "time -p agentloop hook autofix"], input=payload, cwd=repo,
        env=agentloop_env(isolated_home, {"CLAUDE_PROJECT_DIR": str(repo)}),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    timing = [line for line in done.stderr.splitlines() if line.startswith("real ")]
    assert float(timing[0].split()[1]) >= locks.SETTLE
    assert locks.holds(repo)
