"""The real-home check of tests/conftest.py: it fails a test for what the test could have
written (agentloop's, git's and Claude Code's files), not for what the rest of the machine
writes meanwhile. Exercised on a stand-in home: no test touches the real one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentloop.testing.home import home_state, sanitized, written


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    home = tmp_path / "realhome"
    (home / ".claude" / "projects" / "-home-me-work").mkdir(parents=True)
    (home / ".cache" / "agentloop").mkdir(parents=True)
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".config" / "git" / "ignore").write_text("*.swp\n")
    (home / ".gitconfig").write_text("[user]\n\tname = me\n")
    (home / ".claude.json").write_text(json.dumps({"projects": {"/home/me/work": {}}}))
    return home


def _bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_the_rest_of_the_machine_may_write_there(fake_home: Path, tmp_path: Path) -> None:
    suite_tmp = tmp_path / "pytest-7"
    before = home_state(fake_home, suite_tmp)
    (fake_home / ".bash_history").write_text("ls\n")
    (fake_home / ".cache" / "pip").mkdir()
    _bump(fake_home)
    # Claude Code sessions of the user's own: a new project, a rewritten ~/.claude.json.
    (fake_home / ".claude" / "projects" / "-home-me-other").mkdir()
    (fake_home / ".claude" / "todos").mkdir()
    (fake_home / ".claude.json").write_text(
        json.dumps({"projects": {"/home/me/work": {}, "/home/me/other": {}}, "n": 2})
    )
    assert written(before, home_state(fake_home, suite_tmp)) == []


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (lambda h: (h / ".gitconfig").write_text("[user]\n\tname = tests\n"), ".gitconfig"),
        (lambda h: _bump(h / ".gitconfig"), ".gitconfig changed"),
        (lambda h: (h / ".config" / "git" / "ignore").write_text(".agentloop/\n"), "ignore"),
        (lambda h: (h / ".cache" / "agentloop" / "crash-1.log").write_text("x"), "crash-1.log"),
        (lambda h: (h / ".agentloop").mkdir(), ".agentloop created"),
    ],
)
def test_agentloop_and_git_files_are_watched(
    fake_home: Path, tmp_path: Path, write: object, expected: str
) -> None:
    suite_tmp = tmp_path / "pytest-7"
    before = home_state(fake_home, suite_tmp)
    write(fake_home)  # type: ignore[operator]
    changes = written(before, home_state(fake_home, suite_tmp))
    assert any(expected in line for line in changes), changes


def test_claude_code_traces_of_a_test_are_caught(fake_home: Path, tmp_path: Path) -> None:
    suite_tmp = tmp_path / "pytest-7"
    project = suite_tmp / "test_x0" / "repo"
    before = home_state(fake_home, suite_tmp)
    (fake_home / ".claude" / "projects" / sanitized(str(project))).mkdir()
    changes = written(before, home_state(fake_home, suite_tmp))
    assert changes == [
        f".claude/projects/{sanitized(str(project))} (Claude Code, for a test's directory)"
    ]
    before = home_state(fake_home, suite_tmp)
    doc = json.loads((fake_home / ".claude.json").read_text())
    doc["projects"][str(project)] = {"allowedTools": []}
    (fake_home / ".claude.json").write_text(json.dumps(doc))
    changes = written(before, home_state(fake_home, suite_tmp))
    assert changes == [f".claude.json: {project} (Claude Code, for a test's directory)"]
