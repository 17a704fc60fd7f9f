"""`agentloop hook guard` and `agentloop hook stop-gate` as Claude Code runs them: the event
JSON on stdin, the answer on stdout and in the exit code, through the installed scripts in
`.claude/hooks/` too. Real git repositories, real pytest for the recorded verifications."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop import session as session_mod
from agentloop.testing.repos import (
    agentloop_env,
    git_init,
    pytest_project,
    run_cli,
    run_git,
    write_tree,
)

SESSION = "0b9f3c6e-5a44-4a59-9a55-3c3b1f7f0d11"
HOOKS = resources.files("agentloop") / "assets" / "claude" / "hooks"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    project = pytest_project(
        tmp_path / "proj",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
            "    assert add(1, 2) == 3\n",
            "auth/token.py": "SECRET = 1\n",
            "src/app.py": "X = 1\n",
        },
    )
    return git_init(project)


def event(repo: Path, tool: str | None = None, **fields: Any) -> str:
    data: dict[str, Any] = {
        "session_id": SESSION,
        "transcript_path": str(repo / "t.jsonl"),
        "cwd": str(repo),
        "hook_event_name": "PreToolUse" if tool else "Stop",
    }
    if tool:
        data["tool_name"] = tool
        data["tool_input"] = fields.pop("tool_input")
    data.update(fields)
    return json.dumps(data)


def hook(name: str, payload: str, repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "hook", name, cwd=repo, home=home, input=payload,
        extra_env={"CLAUDE_PROJECT_DIR": str(repo)},
    )  # fmt: skip


def decision(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """("deny", reason) or ("pass", "") from a guard's answer."""
    assert done.returncode == 0, done.stderr
    if not done.stdout.strip():
        return "pass", ""
    out = json.loads(done.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    return out["permissionDecision"], out["permissionDecisionReason"]


# ---------------------------------------------------------------- guard


@pytest.mark.parametrize(
    ("tool", "tool_input", "expected"),
    [
        ("Edit", {"file_path": "{repo}/auth/token.py", "old_string": "1", "new_string": "2"},
         "auth/token.py is a forbidden path (**/auth/**)"),
        ("Write", {"file_path": "{repo}/.claude/settings.json", "content": "{}"},
         "forbidden path (.claude/settings.json)"),
        ("Edit", {"file_path": "{repo}/.claude/hooks/guard.sh", "old_string": "a",
                  "new_string": "b"}, "forbidden path (.claude/hooks/**)"),
        ("MultiEdit", {"file_path": "{repo}/agentloop.yaml", "edits": []},
         "forbidden path (agentloop.yaml)"),
        ("NotebookEdit", {"notebook_path": "{repo}/auth/n.ipynb", "new_source": ""},
         "forbidden path (**/auth/**)"),
        ("Write", {"file_path": "{repo}/.agentloop/sessions/" + SESSION + ".json",
                   "content": "{}"}, "forbidden path (.agentloop/**)"),
        ("Bash", {"command": "echo x > auth/token.py"}, "write auth/token.py"),
        ("Bash", {"command": "git push origin HEAD"}, "git push"),
        ("Bash", {"command": "sed -i s/1/2/ .claude/settings.json"}, ".claude/settings.json"),
        ("Edit", {"file_path": "/etc/hosts", "old_string": "a", "new_string": "b"},
         "outside the repository"),
    ],
)  # fmt: skip
def test_the_guard_denies_with_the_documented_json_and_a_reason(
    repo: Path, isolated_home: Path, tool: str, tool_input: dict[str, Any], expected: str
) -> None:
    filled = json.loads(json.dumps(tool_input).replace("{repo}", str(repo)))
    verdict, reason = decision(
        hook("guard", event(repo, tool, tool_input=filled), repo, isolated_home)
    )
    assert verdict == "deny"
    assert expected in reason


@pytest.mark.parametrize(
    ("tool", "tool_input"),
    [
        ("Edit", {"file_path": "{repo}/calc.py", "old_string": "-", "new_string": "+"}),
        ("Write", {"file_path": "{repo}/src/new.py", "content": "Y = 2\n"}),
        ("Bash", {"command": "python -m pytest -q && git diff > /tmp/agentloop.diff"}),
        ("Bash", {"command": "cat auth/token.py"}),  # reading is not writing
        ("Read", {"file_path": "{repo}/auth/token.py"}),
    ],
)
def test_the_guard_passes_ordinary_work_silently(
    repo: Path, isolated_home: Path, tool: str, tool_input: dict[str, Any]
) -> None:
    filled = json.loads(json.dumps(tool_input).replace("{repo}", str(repo)))
    done = hook("guard", event(repo, tool, tool_input=filled), repo, isolated_home)
    # No output at all: an explicit "allow" would skip the user's own permission rules.
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_relative_paths_are_taken_from_where_the_session_is(
    repo: Path, isolated_home: Path
) -> None:
    payload = event(
        repo, "Bash", tool_input={"command": "echo x > token.py"}, cwd=str(repo / "auth")
    )
    verdict, reason = decision(hook("guard", payload, repo, isolated_home))
    assert verdict == "deny"
    assert "auth/token.py" in reason


def test_a_symlink_into_a_forbidden_directory_is_that_directory(
    repo: Path, isolated_home: Path
) -> None:
    (repo / "src" / "keys").symlink_to(repo / "auth")
    payload = event(repo, "Write", tool_input={"file_path": str(repo / "src/keys/token.py")})
    verdict, reason = decision(hook("guard", payload, repo, isolated_home))
    assert verdict == "deny"
    assert "**/auth/**" in reason


def test_the_configured_forbidden_paths_count_and_the_rails_files_always_do(
    repo: Path, isolated_home: Path
) -> None:
    write_tree(repo, {"agentloop.yaml": "rails:\n  forbidden_paths: ['src/**']\n"})
    app = event(repo, "Edit", tool_input={"file_path": str(repo / "src/app.py")})
    assert decision(hook("guard", app, repo, isolated_home))[0] == "deny"
    # auth/ is no longer forbidden by this config; the rails' own files still are.
    auth = event(repo, "Edit", tool_input={"file_path": str(repo / "auth/token.py")})
    assert decision(hook("guard", auth, repo, isolated_home))[0] == "pass"
    settings = event(repo, "Edit", tool_input={"file_path": str(repo / ".claude/settings.json")})
    assert decision(hook("guard", settings, repo, isolated_home))[0] == "deny"


@pytest.mark.parametrize(
    ("why", "payload", "config"),
    [
        ("not JSON", "this is not json", None),
        ("no event name", '{"tool_name": "Edit"}', None),
        ("bad tool_input", '{"hook_event_name": "PreToolUse", "tool_input": [1]}', None),
        ("invalid config", None, "rails:\n  forbidden_path: []\n"),
        ("unreadable config", None, "rails: [\n"),
    ],
)
def test_a_guard_that_cannot_decide_blocks(
    repo: Path, isolated_home: Path, why: str, payload: str | None, config: str | None
) -> None:
    if config is not None:
        write_tree(repo, {"agentloop.yaml": config})
    text = payload or event(repo, "Edit", tool_input={"file_path": str(repo / "calc.py")})
    done = hook("guard", text, repo, isolated_home)
    assert done.returncode == 2, why
    assert done.stderr.startswith("agentloop guard:")
    assert "blocked to be safe" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def run_script(
    name: str, payload: str, repo: Path, home: Path, command: Path | None
) -> subprocess.CompletedProcess[str]:
    """An installed hook script as Claude Code runs it: `sh <script>` with the event on
    stdin, through the command line settings.json registers (`|| exit 2` for the guard and
    the /autofix hook), with `command` recorded as the agentloop to run (None: no record).
    PATH holds a working agentloop: the scripts must not look there."""
    hooks = repo / ".claude" / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(str(HOOKS / name), hooks / name)
    record = repo / ".agentloop" / "command"
    if command is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(f"{command}\n")
    suffix = " || exit 2" if name in ("guard.sh", "autofix.sh") else ""
    env = agentloop_env(home, {"CLAUDE_PROJECT_DIR": str(repo)})
    return subprocess.run(
        ["bash", "-c", f'sh "$CLAUDE_PROJECT_DIR/.claude/hooks/{name}"{suffix}'],
        input=payload, cwd=repo, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def fake_agentloop(directory: Path, body: str) -> Path:
    """An `agentloop` that is this shell script."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "agentloop"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def installed_agentloop() -> Path:
    return Path(sys.executable).parent / "agentloop"


def test_the_installed_guard_script_runs_the_recorded_agentloop_and_denies(
    repo: Path, isolated_home: Path
) -> None:
    payload = event(repo, "Bash", tool_input={"command": "echo x > auth/token.py"})
    done = run_script("guard.sh", payload, repo, isolated_home, installed_agentloop())
    assert decision(done)[0] == "deny"


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("no record", None),
        ("the recorded agentloop is gone", "gone"),
        ("agentloop crashes with exit 1", "echo boom >&2; exit 1"),
        ("agentloop crashes with exit 3", "exit 3"),
        ("agentloop killed", "kill -9 $$"),
    ],
)
def test_the_installed_guard_script_fails_closed(
    repo: Path, isolated_home: Path, tmp_path: Path, case: str, body: str | None
) -> None:
    if body is None:
        command = None
    elif body == "gone":
        command = tmp_path / "moved" / "bin" / "agentloop"
    else:
        command = fake_agentloop(tmp_path / "bin", body)
    payload = event(repo, "Edit", tool_input={"file_path": str(repo / "calc.py")})
    done = run_script("guard.sh", payload, repo, isolated_home, command)
    assert done.returncode == 2, case
    if body in (None, "gone"):
        # The reason reaches Claude (and the user): what broke and what to run.
        assert "agentloop guard: cannot run" in done.stderr
        assert "run `agentloop init`" in done.stderr
    if body == "gone":
        assert str(command) in done.stderr


def test_the_autofix_script_fails_closed_when_agentloop_is_gone(
    repo: Path, isolated_home: Path, tmp_path: Path
) -> None:
    payload = json.dumps({"session_id": SESSION, "hook_event_name": "UserPromptExpansion"})
    for command in (None, tmp_path / "gone" / "agentloop"):
        done = run_script("autofix.sh", payload, repo, isolated_home, command)
        assert done.returncode == 2
        assert "/autofix cannot start" in done.stderr


def test_a_missing_guard_script_blocks_through_the_registered_command(
    repo: Path, isolated_home: Path
) -> None:
    env = agentloop_env(isolated_home, {"CLAUDE_PROJECT_DIR": str(repo)})
    done = subprocess.run(
        ["bash", "-c", 'sh "$CLAUDE_PROJECT_DIR/.claude/hooks/guard.sh" || exit 2'],
        input="{}", cwd=repo, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2


def test_the_other_scripts_fail_open_when_agentloop_is_missing(
    repo: Path, isolated_home: Path
) -> None:
    for name in ("stop-gate.sh", "post-edit.sh", "session-end.sh"):
        done = run_script(name, event(repo), repo, isolated_home, None)
        # 1 is Claude Code's non-blocking error: the session goes on, the log says why.
        assert done.returncode == 1, name
        assert "cannot run agentloop (no .agentloop/command)" in done.stderr


# ---------------------------------------------------------------- sessions and the stop gate


def start_session(repo: Path, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = run_cli("session", "start", "--id", SESSION, *extra, cwd=repo, home=home)
    assert done.returncode == 0, done.stderr
    return done


def detect_in_session(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`agentloop detect` as Claude's Bash runs it: CLAUDE_CODE_SESSION_ID is set."""
    return run_cli(
        "detect", "--json", "--flaky-reruns", "0", cwd=repo, home=home,
        extra_env={"CLAUDE_CODE_SESSION_ID": SESSION},
    )  # fmt: skip


def stop(repo: Path, home: Path, **fields: Any) -> subprocess.CompletedProcess[str]:
    return hook("stop-gate", event(repo, **{"stop_hook_active": False, **fields}), repo, home)


def blocked(done: subprocess.CompletedProcess[str]) -> str | None:
    assert done.returncode == 0, done.stderr
    if not done.stdout.strip():
        return None
    answer = json.loads(done.stdout)
    assert answer["decision"] == "block"
    return str(answer["reason"])


def test_session_start_prints_the_limits_from_the_projects_config(
    repo: Path, isolated_home: Path
) -> None:
    write_tree(repo, {"agentloop.yaml": "run:\n  max_attempts: 2\n  max_runtime: 600\n"})
    out = start_session(repo, isolated_home).stdout
    assert "at most 2 attempts per failing task" in out
    assert "10 minutes in all" in out
    assert "**/auth/**" in out
    assert ".claude/settings.json" in out
    # agentloop.yaml itself is the user's uncommitted work here.
    assert "uncommitted files (not yours, never touch them): agentloop.yaml" in out


def test_session_commands_need_an_id_and_a_git_repository(
    tmp_path: Path, repo: Path, isolated_home: Path
) -> None:
    done = run_cli("session", "start", cwd=repo, home=isolated_home)
    assert done.returncode == 2
    assert "no session id" in done.stderr
    done = run_cli("session", "start", "--id", "../../etc", cwd=repo, home=isolated_home)
    assert done.returncode == 2
    assert "is not a Claude Code session id" in done.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    done = run_cli("session", "start", "--id", SESSION, cwd=plain, home=isolated_home)
    assert done.returncode == 2
    assert "not a git repository" in done.stderr
    done = run_cli("session", "status", "--id", SESSION, cwd=repo, home=isolated_home)
    assert done.returncode == 2
    assert "no /autofix session" in done.stderr


def test_the_stop_gate_holds_a_red_session_once_and_names_what_fails(
    repo: Path, isolated_home: Path
) -> None:
    start_session(repo, isolated_home)
    assert blocked(stop(repo, isolated_home)) is None  # nothing verified yet
    assert detect_in_session(repo, isolated_home).returncode == 1
    reason = blocked(stop(repo, isolated_home))
    assert reason is not None
    assert "tests/test_calc.py::test_add" in reason
    assert "attempts used 0 of 3" in reason
    # Claude is already going on because of the gate: it may stop now, whatever the state.
    assert blocked(stop(repo, isolated_home, stop_hook_active=True)) is None
    # Another session in the same repository is not held.
    assert blocked(stop(repo, isolated_home, session_id="another-session")) is None


def test_the_stop_gate_lets_go_when_green_out_of_attempts_stopped_or_out_of_time(
    repo: Path, isolated_home: Path
) -> None:
    write_tree(repo, {"agentloop.yaml": "run:\n  max_attempts: 2\n"})
    start_session(repo, isolated_home)
    for expected_used in (0, 1):
        detect_in_session(repo, isolated_home)
        reason = blocked(stop(repo, isolated_home))
        assert reason is not None
        assert f"attempts used {expected_used} of 2" in reason
    detect_in_session(repo, isolated_home)  # the second attempt fails too: none left
    assert blocked(stop(repo, isolated_home)) is None
    status = run_cli("session", "status", "--json", "--id", SESSION, cwd=repo, home=isolated_home)
    doc = json.loads(status.stdout)
    assert doc["failing"][0]["attempts"] == 2
    assert doc["green"] is False

    # Green: fixed code, verified.
    start_session(repo, isolated_home)
    detect_in_session(repo, isolated_home)
    assert blocked(stop(repo, isolated_home)) is not None
    write_tree(repo, {"calc.py": "def add(a, b):\n    return a + b\n"})
    assert detect_in_session(repo, isolated_home).returncode == 0
    assert blocked(stop(repo, isolated_home)) is None

    # Stopped by the skill's REPORT step.
    write_tree(repo, {"calc.py": "def add(a, b):\n    return a - b\n"})
    start_session(repo, isolated_home)
    detect_in_session(repo, isolated_home)
    assert blocked(stop(repo, isolated_home)) is not None
    done = run_cli("session", "stop", "--id", SESSION, cwd=repo, home=isolated_home)
    assert done.returncode == 0
    assert blocked(stop(repo, isolated_home)) is None

    # Out of time.
    start_session(repo, isolated_home)
    detect_in_session(repo, isolated_home)
    path = session_mod.path_of(repo, SESSION)
    record = session_mod.load(path)
    session_mod.save(path, replace(record, started_at=record.started_at - 1201))
    assert blocked(stop(repo, isolated_home)) is None


def test_only_a_full_detect_inside_the_session_is_a_verification(
    repo: Path, isolated_home: Path
) -> None:
    start_session(repo, isolated_home)
    run_cli("detect", "--json", cwd=repo, home=isolated_home)  # not in Claude's Bash
    partial = run_cli(
        "detect", "--suite", "pytest", cwd=repo, home=isolated_home,
        extra_env={"CLAUDE_CODE_SESSION_ID": SESSION},
    )  # fmt: skip
    assert partial.returncode == 1
    assert session_mod.load(session_mod.path_of(repo, SESSION)).verifications == ()
    # From a subdirectory the session is found in the project above it.
    sub = repo / "tests"
    run_cli(
        "detect", "--repo", str(repo), cwd=sub, home=isolated_home,
        extra_env={"CLAUDE_CODE_SESSION_ID": SESSION},
    )  # fmt: skip
    assert len(session_mod.load(session_mod.path_of(repo, SESSION)).verifications) == 1


def test_the_users_uncommitted_files_are_guarded_during_a_session(
    repo: Path, isolated_home: Path
) -> None:
    write_tree(repo, {"src/app.py": "X = 2  # the user's work in progress\n", "notes.txt": "n\n"})
    start_session(repo, isolated_home)
    for path in ("src/app.py", "notes.txt"):
        payload = event(repo, "Write", tool_input={"file_path": str(repo / path)})
        verdict, reason = decision(hook("guard", payload, repo, isolated_home))
        assert verdict == "deny", path
        assert "uncommitted changes of the user's" in reason
    bash = event(repo, "Bash", tool_input={"command": "git checkout -- src/app.py"})
    assert decision(hook("guard", bash, repo, isolated_home))[0] == "deny"
    ordinary = event(repo, "Edit", tool_input={"file_path": str(repo / "calc.py")})
    assert decision(hook("guard", ordinary, repo, isolated_home))[0] == "pass"
    # Once the session is stopped they are ordinary files again.
    run_cli("session", "stop", "--id", SESSION, cwd=repo, home=isolated_home)
    payload = event(repo, "Write", tool_input={"file_path": str(repo / "notes.txt")})
    assert decision(hook("guard", payload, repo, isolated_home))[0] == "pass"


def test_a_broken_session_file_does_not_trap_the_session(repo: Path, isolated_home: Path) -> None:
    start_session(repo, isolated_home)
    session_mod.path_of(repo, SESSION).write_text("{not json")
    done = stop(repo, isolated_home)
    assert done.returncode == 1  # non-blocking: the session may end
    assert done.stderr.startswith("agentloop stop-gate:")
    assert done.stdout == ""


def test_check_in_a_session_sees_what_the_agent_committed_but_not_the_users_files(
    repo: Path, isolated_home: Path
) -> None:
    write_tree(repo, {"auth/token.py": "SECRET = 2  # the user's own change\n"})
    start_session(repo, isolated_home)
    # The agent commits a test deletion; the user's auth/ edit stays uncommitted.
    (repo / "tests/test_calc.py").unlink()
    run_git(repo, "add", "tests/test_calc.py")
    run_git(repo, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "drop")
    in_session = run_cli(
        "check", "--json", cwd=repo, home=isolated_home,
        extra_env={"CLAUDE_CODE_SESSION_ID": SESSION},
    )  # fmt: skip
    assert in_session.returncode == 1, in_session.stderr
    doc = json.loads(in_session.stdout)
    # The commit moved main, and agentloop did not make it: that is named too.
    assert [(v["kind"], v["path"]) for v in doc["violations"]] == [
        ("test_file_deleted", "tests/test_calc.py"),
        ("git_state_changed", "refs/heads/main"),
    ]
    assert "auth/token.py" not in doc["changed"]
    # Outside the session: since HEAD, where the deletion is already history.
    plain = run_cli("check", "--json", cwd=repo, home=isolated_home)
    assert [v["path"] for v in json.loads(plain.stdout)["violations"]] == ["auth/token.py"]
