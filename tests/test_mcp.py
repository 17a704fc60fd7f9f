"""agentloop's MCP tools behind the transport: `commit` (the rails first, then exactly the
named files, the user's index and work untouched) and `check`, on real git repositories.
The server itself, started by the real Claude Code CLI outside its sandbox, is tested in
tests/hooks/test_interactive_sandbox.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentloop import git, locks
from agentloop import session as session_mod
from agentloop.commands import mcp
from agentloop.errors import AgentloopError
from agentloop.testing.repos import git_init, pytest_project, run_git

SESSION = "3c2b1a09-8f7e-4d6c-9b5a-0f1e2d3c4b5a"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"


@pytest.fixture
def repo(tmp_path: Path, git_identity: None) -> Path:
    project = pytest_project(
        tmp_path / "proj",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": TEST,
            "auth/token.py": "S = 1\n",
            "old.py": "O = 1\n",
            "notes.md": "notes\n",
        },
    )
    return git_init(project)


def head(repo: Path) -> str:
    return run_git(repo, "rev-parse", "HEAD").strip()


def test_commit_takes_only_the_named_files_and_leaves_the_users_index_alone(repo: Path) -> None:
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "old.py").unlink()
    (repo / "helper.py").write_text("H = 1\n")
    # The user's: one change staged, one not, one new file.
    (repo / "notes.md").write_text("notes, staged\n")
    run_git(repo, "add", "notes.md")
    (repo / "notes.md").write_text("notes, staged, then edited\n")
    (repo / "mine.txt").write_text("mine\n")
    before = head(repo)
    done = mcp.commit(repo, ["calc.py", str(repo / "old.py"), "./helper.py"], "Fix add\n\nwhy")
    assert git.rev_parse(repo, "HEAD^") == before
    assert done.files == ("calc.py", "old.py", "helper.py")
    assert run_git(repo, "show", "--name-status", "--format=%B", "HEAD").split() == [
        "Fix", "add", "why", "M", "calc.py", "A", "helper.py", "D", "old.py",
    ]  # fmt: skip
    assert run_git(repo, "status", "--porcelain") == "MM notes.md\n?? mine.txt\n"
    assert (repo / "notes.md").read_text() == "notes, staged, then edited\n"
    assert run_git(repo, "show", ":notes.md") == "notes, staged\n"


@pytest.mark.parametrize(
    ("files", "message", "why"),
    [
        (["calc.py"], "  ", "the commit message is empty"),
        ([], "Fix", "no files named"),
        (["../elsewhere.py"], "Fix", "is not a file in this repository"),
        ([".git/config"], "Fix", "inside the git directory"),
        (["auth/token.py"], "Fix", "auth/token.py: matches forbidden pattern **/auth/**"),
        (["tests/test_calc.py"], "Fix", "tests/test_calc.py::test_add: `assert add(1, 2) == 3`"),
        (["notes.md"], "Fix", "nothing to commit"),
    ],
)
def test_commit_refuses_and_changes_nothing(
    repo: Path, files: list[str], message: str, why: str
) -> None:
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "auth/token.py").write_text("S = 2\n")
    (repo / "tests/test_calc.py").write_text(TEST.replace("== 3", "is not None"))
    before, status = head(repo), run_git(repo, "status", "--porcelain")
    with pytest.raises(AgentloopError) as caught:
        mcp.commit(repo, files, message)
    assert why in str(caught.value.message) + str(caught.value.hint)
    assert head(repo) == before
    assert run_git(repo, "status", "--porcelain") == status


def test_commit_refuses_the_users_files_even_when_the_session_record_is_rewritten(
    repo: Path,
) -> None:
    (repo / "notes.md").write_text("the user's\n")
    session_mod.begin(repo, repo, SESSION, max_attempts=3, max_runtime=600)
    locks.hold(repo, SESSION, ["notes.md"])
    path = session_mod.path_of(repo, SESSION)
    # The agent's commands can write the record (`agentloop detect` must); not the hold.
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "user_files": []}))
    with pytest.raises(mcp.Refused, match=r"notes\.md had uncommitted changes of the user's"):
        mcp.commit(repo, ["notes.md"], "Tidy", environ={})
    locks.release(repo)


def test_a_commit_is_recorded_in_the_session_in_progress(repo: Path) -> None:
    session_mod.begin(repo, repo, SESSION, max_attempts=3, max_runtime=600)
    path = session_mod.path_of(repo, SESSION)
    # Another writer of the list may record more than the sha: kept, and read.
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "commits": [{"sha": "abc123", "task": "t1"}]}))
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    done = mcp.commit(repo, ["calc.py"], "Fix add", environ={"CLAUDE_CODE_SESSION_ID": SESSION})
    assert done.session == SESSION
    assert session_mod.load(path).commits == ("abc123", done.sha)


def test_check_sees_the_session_since_it_started_without_the_users_files(repo: Path) -> None:
    (repo / "notes.md").write_text("the user's\n")
    session_mod.begin(repo, repo, SESSION, max_attempts=3, max_runtime=600)
    env = {"CLAUDE_CODE_SESSION_ID": SESSION}
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    mcp.commit(repo, ["calc.py"], "Fix add", environ=env)
    (repo / "auth/token.py").write_text("S = 2\n")
    checked = mcp.check(repo, environ=env)
    assert checked.base_sha == session_mod.load(session_mod.path_of(repo, SESSION)).base_sha
    # The committed fix is still checked; the user's file is not the agent's.
    assert checked.result.changed == ("auth/token.py", "calc.py")
    assert [v.path for v in checked.result.forbidden] == ["auth/token.py"]


def test_check_leaves_out_the_holds_own_entries_in_a_tracked_local_settings_file(
    repo: Path,
) -> None:
    (repo / ".claude").mkdir()
    (repo / locks.LOCAL_SETTINGS).write_text("{}\n")
    run_git(repo, "add", locks.LOCAL_SETTINGS)
    run_git(repo, "commit", "-q", "-m", "the user tracks their local settings")
    (repo / "notes.md").write_text("the user's\n")
    session_mod.begin(repo, repo, SESSION, max_attempts=3, max_runtime=600)
    locks.hold(repo, SESSION, ["notes.md"])
    assert (
        run_git(repo, "status", "--porcelain", "--", ".claude")
        == " M .claude/settings.local.json\n"
    )
    checked = mcp.check(repo, environ={"CLAUDE_CODE_SESSION_ID": SESSION})
    assert checked.result.ok
    assert checked.result.changed == ()
    locks.release(repo)
    assert (repo / locks.LOCAL_SETTINGS).read_text() == "{}\n"
