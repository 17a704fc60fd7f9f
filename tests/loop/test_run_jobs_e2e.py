"""`agentloop run --jobs 2` end to end: two sessions of the real Claude Code CLI at once,
each in a worktree of its own, against the scripted model server; real git and pytest.
The outcome logic of parallel jobs (conflicts, budget, caps) is tested in-process in
test_jobs.py; here, that it holds with the real CLI, and that ^C stops every job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentloop.agents.claude import bundled_cli
from agentloop.testing.model_server import CWD, Match, ModelServer, Text, ToolUse, Turn
from agentloop.testing.repos import git_init, pytest_project

from .test_run_e2e import git_out, schema_errors, snapshot
from .test_run_limits import TWO_BUGS, assert_no_leftovers, cli_env, run_json

pytestmark = pytest.mark.skipif(
    not bundled_cli().is_file(), reason="claude-agent-sdk's bundled Claude Code CLI is absent"
)

# Each test's prompt names it; the model answers each task with its own edit.
ADD, SHOUT = "tests/test_ops.py::test_add", "tests/test_text.py::test_shout"


def edit_after(
    test: str, path: str, old: str, new: str, *, delay_s: float, answer_s: float = 0
) -> list[Turn]:
    """For the task of `test`: think for `delay_s`, edit `path`, take `answer_s` to say
    so."""
    file = f"{CWD}/{path}"
    return [
        Turn(
            [ToolUse("Edit", {"file_path": file, "old_string": old, "new_string": new})],
            match=Match(prompt=test, assistant_turns=0),
            delay_s=delay_s,
        ),
        Turn([Text("Fixed it.")], match=Match(prompt=test, assistant_turns=1), delay_s=answer_s),
    ]


def test_two_tasks_run_at_once_and_both_fixes_land(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO_BUGS))
    home = tmp_path / "home"
    before = snapshot(root)
    turns = [
        *edit_after(ADD, "calc/ops.py", "a - b", "a + b", delay_s=4),
        *edit_after(SHOUT, "calc/text.py", "s.lower()", "s.upper()", delay_s=4),
    ]
    run = run_json(root, home, turns, "--jobs", "2")
    assert run.done.returncode == 0, run.done.stderr
    assert schema_errors(run.doc) == []
    assert run.doc["jobs"] == 2
    assert [t["outcome"] for t in run.doc["tasks"]] == ["fixed", "fixed"]
    (a,), (b,) = (t["attempts"] for t in run.doc["tasks"])
    # Recorded side by side: each started before the other ended, in different jobs.
    assert a["started_s"] < b["started_s"] + b["duration_s"]
    assert b["started_s"] < a["started_s"] + a["duration_s"]
    assert {a["job"], b["job"]} == {1, 2}
    branch = run.doc["branch"]
    shown = git_out(root, "show", f"{branch}:calc/ops.py", f"{branch}:calc/text.py")
    assert "a + b" in shown
    assert "s.upper()" in shown
    assert len(run.doc["commits"]) == 2
    assert snapshot(root) == before
    # No worktree or job branch is left; the run's branch holds the fixes.
    assert git_out(root, "worktree", "list", "--porcelain").count("worktree ") == 1
    branches = git_out(root, "branch", "--format=%(refname:short)").split()
    assert branches == [branch, "main"]
    # Nor the empty files the sandboxed sessions mount their masks on, though they ran
    # side by side (each one's clean-up cannot tell the other's stubs from its own).
    assert not (root / ".git" / "config.worktree").exists()
    assert not (root / ".git" / "objects" / "info" / "alternates").exists()


def test_sigint_during_parallel_work_stops_every_job_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO_BUGS))
    home = tmp_path / "home"
    before = snapshot(root)
    # Both sessions make their edit, then take a minute to answer.
    turns = [
        *edit_after(ADD, "calc/ops.py", "a - b", "a + b", delay_s=0, answer_s=60),
        *edit_after(SHOUT, "calc/text.py", "s.lower()", "s.upper()", delay_s=0, answer_s=60),
    ]
    with ModelServer(turns) as server:
        child = subprocess.Popen(
            [sys.executable, "-m", "agentloop", "run", "--json", "--jobs", "2",
             "--repo", str(root)],
            cwd=root, env=cli_env(home, server.base_url), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            # Both sessions are in their slow answer.
            while len(server.messages_requests()) < 4 and child.poll() is None:
                assert time.monotonic() < deadline, server.messages_requests()
                time.sleep(0.05)
            assert child.poll() is None, child.communicate()
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=60)
            exited_after = time.monotonic() - sent
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 130, (out, err)
    assert exited_after < 15, exited_after
    doc: dict[str, Any] = json.loads(out)
    assert doc["error"]["message"] == "interrupted"
    # Neither edit landed, the checkout is as it was, and nothing is left behind.
    assert snapshot(root) == before
    assert_no_leftovers(root, home)
