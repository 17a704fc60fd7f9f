"""An attempt's hold on git's state, with an in-process agent (no model, no CLI): what the
agent moves is put back and rejects the attempt; what the user (or another run) does in
the same repository meanwhile is left alone when the sandbox kept the agent out of .git."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from agentloop import detection, suites
from agentloop.agents import sandbox
from agentloop.agents.base import SessionLimits, SessionResult
from agentloop.config import load_config
from agentloop.loop.model import TaskReport
from agentloop.loop.runner import AutofixLoop, LoopSettings
from agentloop.rails.paths import DEFAULT_FORBIDDEN, ForbiddenPaths
from agentloop.testing.repos import GIT_IDENTITY, git_init, pytest_project, repo_state
from agentloop.workspace import Workspace

CALC = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "tests/test_ops.py": "from calc import ops\n\ndef test_add():\n    assert ops.add(2, 3) == 5\n",
    "notes.md": "notes\n",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**GIT_IDENTITY, "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    ).stdout


class Scripted:
    """An agent whose session is a Python function of (worktree, user's checkout)."""

    def __init__(self, session: Callable[[Path], None]) -> None:
        self.session = session

    def run(
        self,
        prompt: str,
        *,
        cwd: Path,
        limits: SessionLimits,
        env: Mapping[str, str],
        policy: sandbox.Policy | None = None,
    ) -> SessionResult:
        self.session(cwd)
        return SessionResult(
            outcome="success",
            subtype="success",
            is_error=False,
            terminal_reason="completed",
            num_turns=1,
            cost_usd=0.01,
            duration_s=0.1,
        )


def fix(worktree: Path) -> None:
    ops = worktree / "calc" / "ops.py"
    ops.write_text(ops.read_text().replace("a - b", "a + b"))


def attempt(root: Path, session: Callable[[Path], None], *, sandboxed: bool) -> TaskReport:
    with Workspace.open(root) as ws:
        config, _ = load_config(ws.root)
        found = suites.discover(ws.root, config)
        baseline = detection.detect(
            ws.root, found, git=True, reruns=0, rerun_timeout=60, progress=lambda _m: None
        )
        (task,) = baseline.tasks
        forbidden = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN, root=str(ws.path))
        loop = AutofixLoop(
            top=ws.path,
            root=ws.root,
            base_sha=ws.base_sha,
            run_id=ws.run_id,
            agent=Scripted(session),
            settings=LoopSettings(max_attempts=1, forbidden=forbidden, rerun_timeout=60),
            env=ws.env(),
            history=None,
            branch=ws.branch,
            rescue_dir=ws.places.rescued,
            open_worktree=lambda: ws.detached_worktree("judge"),
            env_for=lambda judge_root: ws.env(root=judge_root),
            policy=lambda: sandbox.Policy(
                write=(ws.path,), deny_write=(), deny_read=(), sandboxed=sandboxed
            ),
        )
        (report,), _ = loop.fix([task])
    return report


@pytest.fixture
def root(tmp_path: Path, git_identity: None) -> Path:
    return git_init(pytest_project(tmp_path / "repo", CALC))


def test_the_users_own_commit_meanwhile_is_kept_under_the_sandbox(root: Path) -> None:
    def session(worktree: Path) -> None:
        fix(worktree)
        # Meanwhile, in their own checkout, the user commits and switches branches.
        (root / "notes.md").write_text("more notes\n")
        git(root, "commit", "-qam", "my own work")
        git(root, "switch", "-qc", "feature")

    report = attempt(root, session, sandboxed=True)
    assert report.outcome == "fixed", report
    assert git(root, "log", "-1", "--format=%s", "main").strip() == "my own work"
    assert git(root, "branch", "--show-current").strip() == "feature"


def test_without_the_sandbox_whatever_moved_is_put_back_and_saved(root: Path) -> None:
    state = repo_state(root)

    def session(worktree: Path) -> None:
        fix(worktree)
        git(worktree, "config", "alias.p", "push")
        git(worktree, "update-ref", "refs/heads/main", "HEAD~0")
        git(worktree, "commit", "-qam", "the agent commits")

    report = attempt(root, session, sandboxed=False)
    assert report.outcome == "unfixed", report
    (only,) = report.attempts
    assert only.outcome == "rejected_git_state", only
    assert "alias.p=push" in only.reason
    assert "refs/heads/agentloop/" in only.reason
    assert repo_state(root) == state


def test_another_runs_worktree_and_branch_are_not_undone(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-run"

    def session(worktree: Path) -> None:
        fix(worktree)
        # Another agentloop run of this repository starts meanwhile.
        git(root, "worktree", "add", "-q", "-b", "agentloop/autofix-other", str(other))

    for sandboxed in (True, False):
        report = attempt(root, session, sandboxed=sandboxed)
        assert report.outcome == "fixed", report
        assert git(root, "rev-parse", "--verify", "-q", "agentloop/autofix-other").strip()
        assert (other / "calc" / "ops.py").is_file()
        git(root, "worktree", "remove", "--force", str(other))
        git(root, "branch", "-D", "agentloop/autofix-other")


def test_the_agent_moving_its_own_branch_is_undone(root: Path) -> None:
    def session(worktree: Path) -> None:
        fix(worktree)
        git(worktree, "commit", "-qam", "the agent commits its fix itself")

    report = attempt(root, session, sandboxed=True)
    (only,) = report.attempts
    assert only.outcome == "rejected_git_state", only
    assert "moved" in only.reason
