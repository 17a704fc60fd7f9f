"""The interactive half end to end: a repository set up by `agentloop init`, the real Claude
Code CLI bundled in claude-agent-sdk run as `claude -p`, and the scripted Messages API
standing in for the model. Claude Code reads the installed `.claude/settings.json`, runs
the installed hook scripts, which run this agentloop; nothing is faked but the model."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentloop.agents.claude import bundled_cli
from agentloop.testing.model_server import Match, ModelServer, Text, ToolUse, Turn, offline_env
from agentloop.testing.repos import agentloop_env, commit_all, git_init, pytest_project, run_cli

pytestmark = pytest.mark.skipif(
    not bundled_cli().is_file(), reason="claude-agent-sdk's bundled Claude Code CLI is absent"
)

CALC = "def add(a, b):\n    return a - b\n"


@pytest.fixture
def repo(tmp_path: Path, isolated_home: Path) -> Path:
    """A small project with a failing test and an auth/ package, initialised and committed
    the way a user would: `agentloop init`, then commit what it wrote."""
    project = pytest_project(
        tmp_path / "proj",
        {
            "calc.py": CALC,
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
            "    assert add(1, 2) == 3\n",
            "auth/token.py": "SECRET = 1\n",
        },
    )
    git_init(project)
    done = run_cli("init", cwd=project, home=isolated_home)
    assert done.returncode == 0, done.stderr
    commit_all(project, "agentloop init")
    return project


def claude(repo: Path, home: Path, server: ModelServer, prompt: str, *flags: str) -> dict[str, Any]:
    """`claude -p PROMPT` in `repo` with the installed project settings (the default
    setting sources), agentloop on PATH as in the user's activated venv."""
    # agentloop_env puts this interpreter's bin first on PATH: the hooks find this agentloop.
    env = agentloop_env(home, offline_env(home, server.base_url))
    done = subprocess.run(
        [str(bundled_cli()), "-p", prompt, "--output-format", "json", *flags],
        cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def request_text(server: ModelServer, index: int) -> str:
    return json.dumps(server.messages_requests()[index].body["messages"])


def results_by_id(server: ModelServer) -> dict[str, tuple[str, bool]]:
    return {r.tool_use_id: (r.content, r.is_error) for r in server.tool_results()}


def test_autofix_loads_the_skill_with_the_limits_of_the_projects_config(
    repo: Path, isolated_home: Path
) -> None:
    (repo / "agentloop.yaml").write_text(
        (repo / "agentloop.yaml").read_text() + "run:\n  max_attempts: 2\n"
    )
    commit_all(repo, "two attempts")
    with ModelServer([Turn([Text("Looking at the failures.")])]) as server:
        claude(repo, isolated_home, server, "/autofix")
        first = request_text(server, 0)
    skill = (repo / ".claude/skills/autofix/SKILL.md").read_text()
    # The skill's own words reached the model...
    assert "<command-name>/autofix</command-name>" in first
    assert "# /autofix: agentloop's autofix loop" in first
    for line in ("**Never `git push`**", "**Commit only when green, only through"):
        assert line in skill
        assert json.dumps(line)[1:-1] in first
    # ...with the limits `agentloop session start` read from agentloop.yaml, not the defaults.
    assert "at most 2 attempts per failing task" in first
    assert "20 minutes in all" in first
    assert "**/auth/**" in first
    sessions = list((repo / ".agentloop" / "sessions").glob("*.json"))
    assert len(sessions) == 1


def test_the_guard_denies_forbidden_writes_and_push_and_allows_ordinary_edits(
    repo: Path, isolated_home: Path
) -> None:
    settings_before = (repo / ".claude/settings.json").read_text()
    token_before = (repo / "auth/token.py").read_text()
    reads = Turn(
        [
            ToolUse("Read", {"file_path": "{cwd}/auth/token.py"}, id="toolu_read_auth"),
            ToolUse("Read", {"file_path": "{cwd}/.claude/settings.json"}, id="toolu_read_set"),
            ToolUse("Read", {"file_path": "{cwd}/calc.py"}, id="toolu_read_calc"),
        ]
    )
    edits = Turn(
        [
            ToolUse(
                "Edit",
                {"file_path": "{cwd}/auth/token.py", "old_string": "1", "new_string": "2"},
                id="toolu_edit_auth",
            ),
            ToolUse("Bash", {"command": "echo x > auth/token.py"}, id="toolu_bash_auth"),
            ToolUse("Bash", {"command": "git push origin HEAD"}, id="toolu_push"),
            ToolUse(
                "Edit",
                {
                    "file_path": "{cwd}/.claude/settings.json",
                    # Claude Code checks an Edit's input (and a settings file's validity)
                    # before any hook runs: this one would apply, and switch hooks off.
                    "old_string": '"hooks": {\n    "PreToolUse"',
                    "new_string": '"disableAllHooks": true,\n  "hooks": {\n    "PreToolUse"',
                },
                id="toolu_edit_settings",
            ),
            ToolUse(
                "Edit",
                {"file_path": "{cwd}/calc.py", "old_string": "a - b", "new_string": "a + b"},
                id="toolu_edit_calc",
            ),
        ],
        match=Match(assistant_turns=1),
    )
    with ModelServer([reads, edits, Turn([Text("Done.")], match=Match(assistant_turns=2))]) as s:
        # Edits and every Bash command pre-approved: without the guard all of it would run.
        result = claude(
            repo, isolated_home, s, "fix calc", "--permission-mode", "acceptEdits",
            "--allowedTools", "Bash",
        )  # fmt: skip
        results = results_by_id(s)
    for denied in ("toolu_edit_auth", "toolu_bash_auth", "toolu_push", "toolu_edit_settings"):
        assert results[denied][1], denied
    # The file tools meet the permission deny rules init wrote before any hook runs (a
    # rule holds even when a hook times out, which lets the call through); Bash meets
    # the guard first, which says why.
    for by_rule in ("toolu_edit_auth", "toolu_edit_settings"):
        assert "denied by your permission settings" in results[by_rule][0], by_rule
    assert "agentloop rails" in results["toolu_bash_auth"][0]
    assert "write auth/token.py" in results["toolu_bash_auth"][0]
    assert "agentloop rails" in results["toolu_push"][0]
    assert "git push" in results["toolu_push"][0]
    assert not results["toolu_edit_calc"][1], results["toolu_edit_calc"]
    denied_ids = {d["tool_use_id"] for d in result["permission_denials"]}
    assert denied_ids == {"toolu_edit_auth", "toolu_bash_auth", "toolu_push", "toolu_edit_settings"}
    assert (repo / "auth/token.py").read_text() == token_before
    assert (repo / ".claude/settings.json").read_text() == settings_before
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_the_stop_gate_keeps_a_red_autofix_session_going_once(
    repo: Path, isolated_home: Path
) -> None:
    turns = [
        Turn([ToolUse("Bash", {"command": "agentloop detect --json --flaky-reruns 0"})]),
        Turn([Text("I could not fix it.")], match=Match(tool_result='"green": false')),
        # Only reached because the gate sent Claude back to work.
        Turn([Text("Still red; stopping.")], match=Match(assistant_turns=2)),
    ]
    with ModelServer(turns) as server:
        result = claude(repo, isolated_home, server, "/autofix")
        requests = server.messages_requests()
        after_gate = request_text(server, 2)
    assert len(requests) == 3
    assert "agentloop stop gate" in after_gate
    assert "tests/test_calc.py::test_add" in after_gate
    assert "attempts used 0 of 3" in after_gate
    # The second stop came with stop_hook_active: the gate let the session end.
    assert result["result"] == "Still red; stopping."
    assert result["subtype"] == "success"
    assert (repo / "calc.py").read_text() == CALC


def test_the_stop_gate_does_not_hold_a_session_without_autofix(
    repo: Path, isolated_home: Path
) -> None:
    turns = [
        Turn([ToolUse("Bash", {"command": "agentloop detect --json --flaky-reruns 0"})]),
        Turn([Text("Red, as you said.")], match=Match(tool_result='"green": false')),
    ]
    with ModelServer(turns) as server:
        result = claude(repo, isolated_home, server, "run the tests", "--allowedTools", "Bash")
        assert len(server.messages_requests()) == 2
    assert result["result"] == "Red, as you said."


def test_the_post_edit_check_tells_claude_about_a_problem_its_edit_made(
    repo: Path, isolated_home: Path
) -> None:
    ruff = (
        f"{shlex.quote(sys.executable)} -m ruff check --output-format concise --isolated {{file}}"
    )
    with (repo / "agentloop.yaml").open("a") as config:
        config.write(f"hooks:\n  post_edit: [{json.dumps(ruff)}]\n")
    commit_all(repo, "post-edit check")
    turns = [
        Turn([ToolUse("Read", {"file_path": "{cwd}/calc.py"})]),
        Turn(
            [
                ToolUse(
                    "Edit",
                    {
                        "file_path": "{cwd}/calc.py",
                        "old_string": "def add(a, b):",
                        "new_string": "import os\n\n\ndef add(a, b):",
                    },
                )
            ],
            match=Match(assistant_turns=1),
        ),
        Turn([Text("Noted.")], match=Match(assistant_turns=2)),
    ]
    with ModelServer(turns) as server:
        claude(repo, isolated_home, server, "tidy calc", "--permission-mode", "acceptEdits")
        after_edit = request_text(server, 2)
    assert "agentloop post-edit check" in after_edit
    assert "F401" in after_edit  # `os` imported but unused, on the line the edit wrote
    assert "import os" in (repo / "calc.py").read_text()  # PostToolUse cannot undo an edit
