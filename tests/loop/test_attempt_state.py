"""An attempt's hold on git's state, with an in-process agent (no model, no CLI): what the
agent moves is put back and rejects the attempt; what the user (or another run) does in
the same repository meanwhile is left alone when the sandbox kept the agent out of .git."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agentloop import detection, suites
from agentloop.agents import sandbox
from agentloop.config import load_config
from agentloop.loop.model import TaskReport
from agentloop.loop.runner import AutofixLoop, LoopSettings
from agentloop.rails.paths import DEFAULT_FORBIDDEN, ForbiddenPaths
from agentloop.testing.agents import ScriptedAgent
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


def fix(worktree: Path) -> None:
    ops = worktree / "calc" / "ops.py"
    ops.write_text(ops.read_text().replace("a - b", "a + b"))


def attempt(root: Path, session: Callable[[Path], None], *, sandboxed: bool = True) -> TaskReport:
    with Workspace.open(root) as ws:
        config, _ = load_config(ws.root)
        found = suites.discover(ws.root, config)
        baseline = detection.detect(
            ws.root, found, git=True, reruns=0, rerun_timeout=60, progress=lambda _m: None
        )
        (task,) = baseline.tasks
        forbidden = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN, root=str(ws.path))
        loop = AutofixLoop.in_workspace(
            ws,
            agent=ScriptedAgent(session),
            settings=LoopSettings(max_attempts=1, forbidden=forbidden, rerun_timeout=60),
            history=None,
            policy=lambda _top: sandbox.Policy(
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


# ------------------------------------------------------------------ judged by the original tests

STALE_MOCK = {
    "shop/__init__.py": "",
    "shop/mailer.py": "def send(to, subject, body, reply_to=None):\n    pass\n",
    "shop/checkout.py": """\
        from shop import mailer

        def place_order(to):
            mailer.send(to, "Your order", "thanks", reply_to="shop@example.com")
        """,
    "tests/test_checkout.py": """\
        from unittest import mock

        from shop import checkout

        def test_confirmation():
            with mock.patch("shop.mailer.send") as send:
                checkout.place_order("ann@example.com")
            send.assert_called_once_with("ann@example.com", "Your order", mock.ANY)
        """,
}


def test_a_needed_test_change_is_accepted_and_said_plainly(
    tmp_path: Path, git_identity: None
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", STALE_MOCK))

    def session(worktree: Path) -> None:
        test = worktree / "tests" / "test_checkout.py"
        test.write_text(test.read_text().replace("mock.ANY)", "mock.ANY, reply_to=mock.ANY)"))

    report = attempt(root, session)
    assert report.outcome == "fixed", report
    (only,) = report.attempts
    assert only.tests_changed == ("tests/test_checkout.py",)
    message = git(root, "log", "-1", "--format=%B", report.commit or "")
    assert "TESTS CHANGED. The task's tests as they were still fail" in message
    assert (
        '+    send.assert_called_once_with("ann@example.com", "Your order", mock.ANY, ' in message
    )
    # The same diff reaches the run's JSON, and from there the pull request.
    assert only.tests_diff.startswith("diff --git a/tests/test_checkout.py"), only.tests_diff
    assert only.tests_diff in message


def test_a_code_fix_with_a_new_regression_test_keeps_the_test(root: Path) -> None:
    def session(worktree: Path) -> None:
        fix(worktree)
        (worktree / "tests" / "test_more.py").write_text(
            "from calc import ops\n\ndef test_add_negative():\n    assert ops.add(-1, 1) == 0\n"
        )

    report = attempt(root, session)
    assert report.outcome == "fixed", report
    (only,) = report.attempts
    assert only.tests_changed == ("tests/test_more.py",)
    message = git(root, "log", "-1", "--format=%B", report.commit or "")
    assert "The original tests pass with the code change alone" in message
    assert "+def test_add_negative():" in only.tests_diff
    assert "test_add_negative" in git(root, "show", f"{report.commit}:tests/test_more.py")


@pytest.mark.parametrize(
    "fake",
    [
        "from calc import ops\n\nops.add = lambda a, b: a + b\n",
        "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n"
        "    outcome.get_result().outcome = 'passed'\n",
    ],
    ids=["patches-the-code", "rewrites-the-report"],
)
def test_a_fake_fix_from_a_conftest_is_not_a_fix(root: Path, fake: str) -> None:
    def session(worktree: Path) -> None:
        (worktree / "tests" / "conftest.py").write_text(fake)

    report = attempt(root, session)
    assert report.outcome == "unfixed", report
    (only,) = report.attempts
    assert only.outcome in ("rejected_integrity", "tests_failed"), only


def test_a_fake_fix_hidden_from_git_is_not_seen_by_the_judge_and_is_removed(root: Path) -> None:
    seen: list[Path] = []

    def session(worktree: Path) -> None:
        (worktree / "tests" / ".gitignore").write_text(".gitignore\nconftest.py\n")
        (worktree / "tests" / "conftest.py").write_text(
            "from calc import ops\n\nops.add = lambda a, b: a + b\n"
        )
        seen.append(worktree)

    report = attempt(root, session)
    assert report.outcome == "unfixed", report
    (only,) = report.attempts
    # Git sees no change at all: the fake hides itself; nothing is judged as a fix.
    assert only.outcome == "agent_error", only
    assert "changed nothing" in only.reason


def test_a_forged_bytecode_cache_is_not_a_fix(tmp_path: Path, git_identity: None) -> None:
    root = git_init(pytest_project(tmp_path / "repo", {**CALC, ".gitignore": "__pycache__/\n"}))

    def session(worktree: Path) -> None:
        import os
        import py_compile

        source = worktree / "calc" / "ops.py"
        real, stat = source.read_text(), source.stat()
        # Same length, same mtime: Python would trust the cached bytecode of the fake.
        source.write_text(real.replace("a - b", "a + b"))
        py_compile.compile(
            str(source),
            cfile=str(
                worktree
                / "calc"
                / "__pycache__"
                / (f"ops.{__import__('sys').implementation.cache_tag}.pyc")
            ),
        )
        source.write_text(real)
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    report = attempt(root, session)
    assert report.outcome == "unfixed", report


def test_a_symlink_out_of_the_repository_is_not_a_fix(root: Path) -> None:
    def session(worktree: Path) -> None:
        # The code becomes a link to a fake the agent keeps outside the tree: the judge's
        # checkout would follow it back into the agent's worktree.
        (worktree / "build").mkdir()
        (worktree / "build" / "fake.py").write_text("def add(a, b):\n    return a + b\n")
        ops = worktree / "calc" / "ops.py"
        ops.unlink()
        ops.symlink_to(worktree / "build" / "fake.py")

    report = attempt(root, session)
    assert report.outcome == "unfixed", report
    (only,) = report.attempts
    assert only.outcome == "rejected_forbidden_path", only
    assert "calc/ops.py" in only.reason
    assert "out of the repository" in only.reason


def test_a_link_to_a_file_the_commit_does_not_hold_is_not_a_fix(
    tmp_path: Path, git_identity: None
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", {**CALC, ".gitignore": "build/\n"}))

    def session(worktree: Path) -> None:
        # Inside the repository, but ignored: a fresh checkout has nothing at the end of it.
        (worktree / "build").mkdir()
        (worktree / "build" / "fake.py").write_text("def add(a, b):\n    return a + b\n")
        ops = worktree / "calc" / "ops.py"
        ops.unlink()
        ops.symlink_to("../build/fake.py")

    report = attempt(root, session)
    assert report.outcome == "unfixed", report
    (only,) = report.attempts
    assert only.outcome == "rejected_forbidden_path", only
    assert "calc/ops.py -> ../build/fake.py" in only.reason
