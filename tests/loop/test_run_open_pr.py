"""`agentloop run --open-pr`: the run, then `agentloop pr` on it, in one command (real
Claude Code CLI, scripted model, a bare `origin`, the fake GitHub API)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentloop.testing.fake_github import FakeGitHub
from agentloop.testing.repos import git_init, pytest_project, run_cli

from .test_run_e2e import git_out, run_agentloop
from .test_run_options import ADD_TEST, FIX_ADD, TWO, fix_task

TOKEN = "ghs_OpenPrToken0123456789abcdefABCDEF"


def test_run_open_pr_opens_the_draft_pr_and_the_agent_never_sees_the_token(
    tmp_path: Path,
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(root), str(origin)], check=True)
    subprocess.run(["git", "-C", str(root), "remote", "add", "origin", str(origin)], check=True)
    with FakeGitHub() as github:
        github.add_repo("o/r", origin=origin)
        done, doc, server = run_agentloop(
            root, tmp_path / "home", fix_task(ADD_TEST, *FIX_ADD), "--max-attempts", "1",
            "--open-pr", "--yes",
            extra_env={"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "o/r",
                       "GITHUB_API_URL": github.api_url},
        )  # fmt: skip
        # One task fixed, one left: the run's exit code is the run's (1), the PR is opened.
        assert done.returncode == 1, done.stderr
        assert "opened draft PR #1" in done.stderr
        pull = github.pull(1)
    assert pull["draft"] is True
    assert pull["head"]["ref"] == doc["branch"]
    assert [label["name"] for label in pull["labels"]] == ["auto-fix"]
    fixed = next(t for t in doc["tasks"] if t["outcome"] == "fixed")
    assert f"<!-- agentloop:fingerprint {fixed['fingerprint']} -->" in pull["body"]
    # The fix commit names the failure it fixes as its one git trailer.
    message = git_out(root, "log", "-1", "--format=%B", fixed["commit"])
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert parsed == f"Agentloop-Fingerprint: {fixed['fingerprint']}\n", message
    assert f"Made by agentloop run {doc['run_id']}, attempt 1." in message
    # Nothing the agent's tools returned, and nothing the command printed, holds the token.
    assert not any(TOKEN in r.content for r in server.tool_results())
    assert TOKEN not in done.stdout + done.stderr


def test_open_pr_and_its_yes_are_checked_before_anything_runs(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    home = tmp_path / "home"
    for args, needle in (
        (("--open-pr", "--dry-run"), "--open-pr with --dry-run"),
        (("--yes",), "--yes approves the push of --open-pr"),
    ):
        done = run_cli("run", *args, cwd=root, home=home)
        assert done.returncode == 2, done.stderr
        assert f"error: {needle}" in done.stderr
        assert not (root / ".agentloop").exists()  # refused before any baseline
