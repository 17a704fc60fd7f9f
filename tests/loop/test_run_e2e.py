"""`agentloop run` end to end: the real Claude Code CLI bundled in claude-agent-sdk,
driven by the scripted Messages API on 127.0.0.1, on real git repositories."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import agentloop
from agentloop.testing.model_server import CWD, Match, ModelServer, Text, ToolUse, Turn, offline_env
from agentloop.testing.repos import git_init, pytest_project, run_cli

CALC = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "tests/test_ops.py": """\
        from calc import ops

        def test_add():
            assert ops.add(2, 3) == 5

        def test_add_zero():
            assert ops.add(4, 0) == 4
        """,
    "tests/test_ok.py": "def test_ok():\n    assert True\n",
}


def snapshot(root: Path) -> dict[str, Any]:
    """Everything a user could lose: every file's bytes (outside .git and agentloop's own
    .agentloop/), HEAD, the branch, the status and the stash list."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    files = {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and ".git" not in p.relative_to(root).parts
        and ".agentloop" not in p.relative_to(root).parts
        and "__pycache__" not in p.parts
    }
    return {
        "files": files,
        "head": git("rev-parse", "HEAD"),
        "branch": git("branch", "--show-current"),
        "status": git("status", "--porcelain", "--untracked-files=all"),
        "stash": git("stash", "list"),
    }


def run_agentloop(
    root: Path,
    home: Path,
    turns: Sequence[Turn],
    *args: str,
    timeout: float = 300,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], ModelServer]:
    with ModelServer(turns) as server:
        done = run_cli(
            "run", "--json", "--repo", str(root), *args, cwd=root, home=home, timeout=timeout,
            extra_env={**offline_env(home, server.base_url), **(extra_env or {})},
        )  # fmt: skip
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done, doc, server


RUN_SCHEMA = json.loads(
    (Path(agentloop.__file__).parent / "schemas" / "run.schema.json").read_text()
)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator

    return [error.message for error in Draft202012Validator(RUN_SCHEMA).iter_errors(doc)]


def fix(path: str, old: str, new: str) -> list[Turn]:
    """A model that reads `path` (relative to its working directory), then edits it."""
    file = f"{CWD}/{path}"
    return [
        Turn(
            [Text("Let me look."), ToolUse("Read", {"file_path": file})],
            match=Match(assistant_turns=0),
        ),
        Turn(
            [ToolUse("Edit", {"file_path": file, "old_string": old, "new_string": new})],
            match=Match(assistant_turns=1),
        ),
        Turn([Text("Fixed.")], match=Match(assistant_turns=2)),
    ]


def git_out(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def test_a_correct_fix_is_verified_committed_and_the_checkout_untouched(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", CALC))
    # The user has work in progress: an uncommitted change and an untracked file.
    (root / "tests" / "test_ok.py").write_text("def test_ok():\n    assert 1 == 1\n")
    (root / "notes.txt").write_text("my notes\n")
    before = snapshot(root)
    done, doc, server = run_agentloop(root, tmp_path / "home", fix("calc/ops.py", "a - b", "a + b"))
    assert done.returncode == 0, done.stderr
    assert snapshot(root) == before
    assert schema_errors(doc) == []
    (task,) = doc["tasks"]
    assert task["outcome"] == "fixed", task
    assert task["tests"] == ["tests/test_ops.py::test_add"]
    branch = doc["branch"]
    assert branch.startswith("agentloop/autofix-")
    assert "a + b" in git_out(root, "show", f"{branch}:calc/ops.py")
    (subject,) = git_out(root, "log", "--format=%s", f"main..{branch}").splitlines()
    assert subject == "fix add() in calc/ops.py", subject
    body = git_out(root, "log", "--format=%b", f"main..{branch}")
    assert f"Made by agentloop run {doc['run_id']}, attempt 1." in body
    assert (root / ".agentloop" / "runs" / doc["run_id"] / "report.md").is_file()
    (prompt,) = server.prompts()
    assert "tests/test_ops.py::test_add" in prompt
    assert "Never push" in prompt


def test_secrets_stay_out_of_the_agents_environment(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", CALC))
    secret = "ghp_do-not-leak-0123456789"
    probe = Turn(
        [ToolUse("Bash", {"command": "printenv GITHUB_TOKEN DB_PASSWORD; echo probed"})],
        match=Match(assistant_turns=0),
    )
    turns = [probe, *(_shifted(turn) for turn in fix("calc/ops.py", "a - b", "a + b"))]
    done, doc, server = run_agentloop(
        root,
        tmp_path / "home",
        turns,
        extra_env={"GITHUB_TOKEN": secret, "DB_PASSWORD": "hunter2"},
    )
    assert done.returncode == 0, done.stderr
    outputs = [r.content for r in server.tool_results()]
    assert any("probed" in output for output in outputs)
    assert not any(secret in output or "hunter2" in output for output in outputs)
    assert doc["tasks"][0]["outcome"] == "fixed"


def _shifted(turn: Turn) -> Turn:
    """The same turn one assistant message later (after the probe)."""
    turns = turn.match.assistant_turns
    return dataclasses.replace(
        turn, match=dataclasses.replace(turn.match, assistant_turns=(turns or 0) + 1)
    )


def test_the_secret_filter_keeps_what_the_cli_needs() -> None:
    from agentloop.agents.secrets import agent_env

    env = agent_env(
        {"GITHUB_TOKEN": "x", "ANTHROPIC_API_KEY": "k", "SSH_AUTH_SOCK": "/s", "HOME": "/h"},
        {"PATH": "/bin", "DATABASE_PASSWORD": "p", "PYTHONPATH": "/w"},
    )
    assert env["GITHUB_TOKEN"] == env["SSH_AUTH_SOCK"] == env["DATABASE_PASSWORD"] == ""
    assert "ANTHROPIC_API_KEY" not in env  # inherited untouched by the CLI
    assert env["PATH"] == "/bin"
    assert env["PYTHONPATH"] == "/w"


def test_a_fix_that_adds_findings_to_a_configured_check_is_rejected(tmp_path: Path) -> None:
    project = {
        **CALC,
        "agentloop.yaml": """\
            run:
              max_attempts: 1
              checks: ["grep -rn 'print(' calc || true"]
            detect:
              flaky_reruns: 0
            """,
    }
    root = git_init(pytest_project(tmp_path / "repo", project))
    before = snapshot(root)
    noisy = fix("calc/ops.py", "return a - b", "print(a, b)\n    return a + b")
    done, doc, _ = run_agentloop(root, tmp_path / "home", noisy)
    assert done.returncode == 1, done.stderr
    assert snapshot(root) == before
    (task,) = doc["tasks"]
    (attempt,) = task["attempts"]
    assert attempt["outcome"] == "rejected_check"
    assert "grep -rn 'print(' calc || true" in attempt["reason"]
    assert "print(a, b)" in attempt["reason"]
    assert doc["commits"] == []
    assert doc["branch"] is None
