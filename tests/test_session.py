"""The /autofix session record: what `agentloop check` compares with."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agentloop import session as session_mod
from agentloop.testing.repos import run_cli, run_git, write_tree

SESSION = "7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b"


def test_a_record_from_before_user_work_was_kept_still_loads(tmp_path: Path) -> None:
    path = session_mod.path_of(tmp_path, SESSION)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"id": SESSION, "started_at": 1.0, "max_attempts": 3, "max_runtime": 60})
    )
    record = session_mod.load(path)
    assert (record.user_work, record.commits) == ((), ())


def test_commits_are_recorded_and_survive_a_reload(tmp_path: Path) -> None:
    started = session_mod.start(
        tmp_path, SESSION, max_attempts=3, max_runtime=60, toplevel=tmp_path,
        user_files=["a.py"], user_work=[session_mod.UserFile("a.py", None)],
    )  # fmt: skip
    path = session_mod.path_of(tmp_path, SESSION)
    session_mod.record_commit(path, "a" * 40)
    session_mod.record_commit(path, "b" * 40)
    loaded = session_mod.load(path)
    assert loaded.commits == ("a" * 40, "b" * 40)
    assert loaded.user_work == started.user_work == (session_mod.UserFile("a.py", None),)
    assert session_mod.work_patch(path) == tmp_path / ".agentloop/sessions" / SESSION / (
        "user-work.patch"
    )


def test_content_hash_tells_files_links_and_absence_apart(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a": "x\n", "b": "x\n"})
    os.symlink("a", tmp_path / "link")
    assert session_mod.content_hash(tmp_path / "a") == session_mod.content_hash(tmp_path / "b")
    assert session_mod.content_hash(tmp_path / "link") != session_mod.content_hash(tmp_path / "a")
    assert session_mod.content_hash(tmp_path / "missing") is None
    assert session_mod.content_hash(tmp_path / "a" / "below") is None


def test_a_session_starts_in_a_repository_without_commits(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "fresh", {"work.py": "x = 1\n"})
    run_git(repo, "init", "-q")
    done = run_cli("session", "start", "--id", SESSION, cwd=repo, home=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    path = session_mod.path_of(repo, SESSION)
    assert session_mod.load(path).user_files == ("work.py",)
    assert "+x = 1" in session_mod.work_patch(path).read_text()
