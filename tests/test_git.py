from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from agentloop import git
from agentloop.testing.repos import SAMPLE_REPO, commit_all, git_init, run_git, write_tree

# The code under test commits in this process.
pytestmark = pytest.mark.usefixtures("git_identity")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_init(write_tree(tmp_path / "repo", SAMPLE_REPO))


def agentloop_worktree(repo: Path, name: str = "w1") -> Path:
    path = repo.parent / name
    git.add_worktree(repo, path, f"agentloop/autofix-{name}", git.head_sha(repo))
    return path


def test_clean_env_drops_what_picks_a_repository_and_keeps_who_commits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("GIT_INDEX_FILE", "/elsewhere/index")
    monkeypatch.setenv("GIT_WORK_TREE", "/elsewhere")
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i key")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.autocrlf")
    env = git.clean_env()
    assert not {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"} & set(env)
    assert env["GIT_AUTHOR_NAME"] == "agentloop tests"
    assert env["GIT_SSH_COMMAND"] == "ssh -i key"
    assert env["GIT_CONFIG_KEY_0"] == "core.autocrlf"


def test_inherited_git_dir_does_not_redirect_commands(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = git_init(write_tree(tmp_path / "other", {"x": "x\n"}))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # as inside another repo's hook
    assert (
        git.head_sha(repo)
        == run_git(repo, "--git-dir", str(repo / ".git"), "rev-parse", "HEAD").strip()
    )
    assert git.find_toplevel(repo / "src") == repo.resolve()


def test_where_am_i(repo: Path, tmp_path: Path) -> None:
    assert git.find_toplevel(repo / "src" / "app") == repo.resolve()
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git.find_toplevel(outside) is None
    assert git.common_dir(repo / "src") == (repo / ".git").resolve()
    assert git.current_branch(repo) == "main"
    sha = git.head_sha(repo)
    assert len(sha) == 40
    run_git(repo, "switch", "--quiet", "--detach", "HEAD")
    assert git.current_branch(repo) is None
    assert git.head_sha(repo) == sha


def test_a_repository_without_commits_has_no_head(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    run_git(empty, "init", "-q", "-b", "main")
    with pytest.raises(git.GitError) as err:
        git.head_sha(empty)
    assert "no commit" in err.value.message
    assert err.value.hint is not None
    assert "git commit" in err.value.hint


def test_a_failing_command_says_which_how_and_why(repo: Path) -> None:
    with pytest.raises(git.GitError) as err:
        git.commits_between(repo, "no-such-rev", "HEAD")
    exc = err.value
    assert "rev-list" in exc.command
    assert exc.returncode == 128
    assert "no-such-rev" in exc.stderr
    assert "exit 128" in exc.message
    assert exc.hint


def test_status_lists_staged_unstaged_untracked_and_renames_with_odd_names(repo: Path) -> None:
    (repo / "README.md").write_text("changed\n")
    (repo / "new file ü.txt").write_text("untracked\n")
    (repo / "dir").mkdir()
    (repo / "dir" / "deep.txt").write_text("untracked\n")
    (repo / "debug.log").write_text("ignored\n")
    run_git(repo, "mv", "src/app/__init__.py", "src/app/renamed.py")
    entries = {e.path: e for e in git.status_porcelain(repo)}
    assert entries["README.md"].code == " M"
    assert entries["new file ü.txt"].code == "??"
    assert entries["dir/deep.txt"].code == "??"
    assert entries["src/app/renamed.py"].code == "R "
    assert entries["src/app/renamed.py"].orig == "src/app/__init__.py"
    assert "debug.log" not in entries
    assert git.is_dirty(repo)


def test_an_ignored_file_is_not_dirt(repo: Path) -> None:
    (repo / "debug.log").write_text("ignored\n")
    assert not git.is_dirty(repo)


def test_reading_status_does_not_rewrite_the_index(repo: Path) -> None:
    index = repo / ".git" / "index"
    before = index.read_bytes()
    # Stale stat data (and an old enough mtime not to be "racy"): a plain `git status`
    # would refresh the entry and write the index back.
    os.utime(repo / "README.md", (1_600_000_000, 1_600_000_000))
    git.status_porcelain(repo)
    git.is_dirty(repo)
    assert index.read_bytes() == before


def test_worktrees_are_added_listed_and_removed(repo: Path) -> None:
    base = git.head_sha(repo)
    path = repo.parent / "a worktree"
    git.add_worktree(repo, path, "agentloop/autofix-1", base)
    assert (path / "README.md").read_text() == "hello\n"
    assert git.current_branch(path) == "agentloop/autofix-1"
    assert git.common_dir(path) == (repo / ".git").resolve()
    found = {wt.path.resolve(): wt for wt in git.list_worktrees(repo)}
    assert found[repo.resolve()].branch == "main"
    mine = found[path.resolve()]
    assert (mine.head, mine.branch, mine.locked, mine.prunable) == (
        base,
        "agentloop/autofix-1",
        False,
        False,
    )
    git.remove_worktree(repo, path, force=False)
    assert not path.exists()
    assert [wt.path.resolve() for wt in git.list_worktrees(repo)] == [repo.resolve()]
    assert git.branch_exists(repo, "agentloop/autofix-1")


def test_locked_and_prunable_worktrees_are_reported(repo: Path) -> None:
    locked = agentloop_worktree(repo, "locked")
    gone = agentloop_worktree(repo, "gone")
    run_git(repo, "worktree", "lock", "--reason", "on a\nusb stick", str(locked))
    shutil.rmtree(gone)
    found = {wt.path.name: wt for wt in git.list_worktrees(repo)}
    assert found["locked"].locked
    assert not found["locked"].prunable
    assert found["gone"].prunable
    # A registered worktree whose directory is gone is simply unregistered.
    git.remove_worktree(repo, gone, force=False)
    assert "gone" not in {wt.path.name for wt in git.list_worktrees(repo)}


def test_a_dirty_worktree_is_removed_only_by_force(repo: Path) -> None:
    path = agentloop_worktree(repo)
    (path / "scratch.txt").write_text("untracked\n")
    with pytest.raises(git.GitError):
        git.remove_worktree(repo, path, force=False)
    assert path.exists()
    git.remove_worktree(repo, path, force=True)
    assert not path.exists()


def test_adding_a_worktree_never_resets_an_existing_branch(repo: Path) -> None:
    run_git(repo, "branch", "agentloop/autofix-taken")
    with pytest.raises(git.GitError):
        git.add_worktree(repo, repo.parent / "w", "agentloop/autofix-taken", git.head_sha(repo))


def test_branches_are_listed_by_prefix_and_deleted_carefully(repo: Path) -> None:
    path = agentloop_worktree(repo)
    run_git(repo, "branch", "agentloop/autofix-free")
    run_git(repo, "branch", "feature")
    run_git(repo, "tag", "agentloop/autofix-free")  # same short name as the branch
    sha = git.head_sha(repo)
    assert git.branches(repo, "agentloop/") == {
        "agentloop/autofix-w1": sha,
        "agentloop/autofix-free": sha,
    }
    with pytest.raises(git.GitError) as err:
        git.delete_branch(repo, "agentloop/autofix-w1")  # checked out in the worktree
    assert "w1" in err.value.stderr
    with pytest.raises(git.GitError, match="moved"):
        git.delete_branch(repo, "agentloop/autofix-free", expected_sha="0" * 40)
    git.delete_branch(repo, "agentloop/autofix-free", expected_sha=sha)
    assert not git.branch_exists(repo, "agentloop/autofix-free")
    assert git.branch_exists(repo, "feature")
    assert path.exists()


def test_commits_between_and_unique_commits(repo: Path) -> None:
    base = git.head_sha(repo)
    path = agentloop_worktree(repo)
    (path / "fix.txt").write_text("fix\n")
    first = git.commit_all(path, "a fix")
    assert git.commits_between(repo, base, "agentloop/autofix-w1") == [first]
    # Checked out in its worktree, the branch's commit is still its own.
    assert git.unique_commits(repo, "agentloop/autofix-w1") == [first]
    run_git(repo, "branch", "keep", "agentloop/autofix-w1")
    assert git.unique_commits(repo, "agentloop/autofix-w1") == []


def test_changed_paths_covers_committed_staged_unstaged_untracked_and_renames(
    repo: Path,
) -> None:
    base = git.head_sha(repo)
    path = agentloop_worktree(repo)
    (path / "committed.txt").write_text("c\n")
    git.commit_all(path, "commit")
    (path / "src/app/__init__.py").write_text("VALUE = 2\n")
    run_git(path, "add", "src/app/__init__.py")
    (path / "README.md").write_text("unstaged\n")
    (path / "tests" / "new test.py").write_text("untracked\n")
    run_git(path, "mv", "tests/test_app.py", "tests/test_moved.py")
    (path / "debug.log").write_text("ignored\n")
    index = Path(run_git(path, "rev-parse", "--git-path", "index").strip())
    before = index.read_bytes()
    assert git.changed_paths(path, base) == [
        "README.md",
        "committed.txt",
        "src/app/__init__.py",
        "tests/new test.py",
        "tests/test_app.py",
        "tests/test_moved.py",
    ]
    assert index.read_bytes() == before  # a throwaway index did the work


def test_changed_paths_pairs_an_untracked_rename(repo: Path) -> None:
    path = agentloop_worktree(repo)
    body = "".join(f"line {i}\n" for i in range(50))
    (path / "big.txt").write_text(body)
    git.commit_all(path, "big")
    head = git.head_sha(path)
    (path / "big.txt").rename(path / "bigger.txt")  # not staged: seen only with untracked
    assert git.changed_paths(path, head) == ["big.txt", "bigger.txt"]


def test_diff_shows_untracked_files_whatever_the_diff_config(repo: Path) -> None:
    run_git(repo, "config", "diff.noprefix", "true")
    run_git(repo, "config", "color.ui", "always")
    path = agentloop_worktree(repo)
    (path / "README.md").write_text("changed\n")
    (path / "brand new.txt").write_text("new\n")
    text = git.diff(path, git.head_sha(path))
    assert "diff --git a/README.md b/README.md" in text
    assert "+++ b/brand new.txt" in text
    assert "+new" in text
    assert "\x1b[" not in text


def test_a_saved_diff_is_byte_exact_and_applies(repo: Path, tmp_path: Path) -> None:
    path = agentloop_worktree(repo)
    (path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    (path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (path / "README.md").write_text("changed\n")
    patch = tmp_path / "saved.patch"
    git.save_diff(path, git.head_sha(path), patch)
    other = agentloop_worktree(repo, "w2")
    run_git(other, "apply", str(patch))
    for name in ("latin1.txt", "blob.bin", "README.md"):
        assert (other / name).read_bytes() == (path / name).read_bytes()


def test_commit_all_takes_everything_and_skips_hooks(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in ("pre-commit", "commit-msg"):
        (hooks / hook).write_text("#!/bin/sh\nexit 1\n")
        (hooks / hook).chmod(0o755)
    (hooks / "post-checkout").write_text(f"#!/bin/sh\ntouch {repo.parent}/post-checkout-ran\n")
    (hooks / "post-checkout").chmod(0o755)
    path = agentloop_worktree(repo)
    assert not (repo.parent / "post-checkout-ran").exists()
    (path / "README.md").write_text("fixed\n")
    (path / "new.txt").write_text("new\n")
    sha = git.commit_all(path, "fix: README")
    assert sha == git.head_sha(path)
    assert run_git(path, "log", "-1", "--format=%s").strip() == "fix: README"
    assert not git.is_dirty(path)
    with pytest.raises(git.GitError, match="nothing to commit"):
        git.commit_all(path, "again")


def test_revert_commit_undoes_a_fix(repo: Path) -> None:
    path = agentloop_worktree(repo)
    (path / "README.md").write_text("fixed\n")
    fix = git.commit_all(path, "fix")
    revert = git.revert_commit(path, fix)
    assert revert != fix
    assert (path / "README.md").read_text() == "hello\n"
    assert git.commits_between(path, fix, "HEAD") == [revert]


def test_reset_clean_commit_and_revert_refuse_anything_but_an_agentloop_branch(repo: Path) -> None:
    (repo / "README.md").write_text("the user's work\n")
    (repo / "notes.txt").write_text("the user's notes\n")
    with pytest.raises(RuntimeError, match="refusing"):
        git.reset_hard(repo, "HEAD")
    with pytest.raises(RuntimeError, match="refusing"):
        git.clean_untracked(repo)
    with pytest.raises(RuntimeError, match="refusing"):
        git.commit_all(repo, "on the user's branch")
    with pytest.raises(RuntimeError, match="refusing"):
        git.revert_commit(repo, "HEAD")
    run_git(repo, "switch", "--quiet", "--detach", "HEAD")
    with pytest.raises(RuntimeError, match="detached"):
        git.clean_untracked(repo)
    assert (repo / "README.md").read_text() == "the user's work\n"
    assert (repo / "notes.txt").exists()


def test_reset_and_clean_discard_an_attempt_but_keep_ignored_files(repo: Path) -> None:
    path = agentloop_worktree(repo)
    (path / "README.md").write_text("attempt\n")
    (path / "scratch").mkdir()
    (path / "scratch" / "x.py").write_text("attempt\n")
    (path / "cache.log").write_text("ignored\n")
    git.reset_hard(path, "HEAD")
    git.clean_untracked(path)
    assert (path / "README.md").read_text() == "hello\n"
    assert not (path / "scratch").exists()
    assert (path / "cache.log").exists()
    assert not git.is_dirty(path)


def test_show_file(repo: Path) -> None:
    base = git.head_sha(repo)
    (repo / "README.md").write_text("changed in the tree\n")
    assert git.show_file(repo / "src", base, "README.md") == "hello\n"
    assert git.show_file(repo, "HEAD", "src/app/__init__.py") == "VALUE = 1\n"
    assert git.show_file(repo, "HEAD", "missing.py") is None
    assert git.show_file(repo, "HEAD", "src/app") is None  # a directory is no file
    assert git.show_file(repo, "HEAD", "src/app/__init__") is None  # no prefix matching
    with pytest.raises(git.GitError):
        git.show_file(repo, "no-such-rev", "README.md")


def test_a_revert_that_conflicts_leaves_nothing_behind(repo: Path) -> None:
    path = agentloop_worktree(repo)
    (path / "README.md").write_text("fix 1\n")
    fix = git.commit_all(path, "fix 1")
    (path / "README.md").write_text("fix 2 on top\n")
    git.commit_all(path, "fix 2")
    head = git.head_sha(path)
    with pytest.raises(git.GitError) as err:
        git.revert_commit(path, fix)
    assert "revert" in err.value.command
    assert git.head_sha(path) == head
    assert not git.is_dirty(path)
    assert not (git.common_dir(path) / "worktrees" / "w1" / "REVERT_HEAD").exists()


def test_branches_match_a_prefix_that_ends_mid_name(repo: Path) -> None:
    # A for-each-ref pattern would only match up to a "/": this must not rely on it.
    run_git(repo, "branch", "agentloop/autofix-1")
    run_git(repo, "branch", "agentloop/other")
    sha = git.head_sha(repo)
    assert git.branches(repo, "agentloop/autofix-") == {"agentloop/autofix-1": sha}


def test_worktree_records_from_git_before_2_36_without_z() -> None:
    # What `git worktree list --porcelain` prints without -z, NULs in place of newlines.
    text = (
        "worktree /r\nHEAD aaa\nbranch refs/heads/main\n\n"
        "worktree /r/.git/agentloop/worktrees/1\nHEAD bbb\ndetached\nlocked reason\n\n"
        "worktree /gone\nHEAD ccc\nbranch refs/heads/agentloop/autofix-2\nprunable gitdir\n\n"
    ).replace("\n", "\0")
    found = git._parse_worktrees(text)
    assert [(w.path, w.head, w.branch) for w in found] == [
        (Path("/r"), "aaa", "main"),
        (Path("/r/.git/agentloop/worktrees/1"), "bbb", None),
        (Path("/gone"), "ccc", "agentloop/autofix-2"),
    ]
    assert [(w.detached, w.locked, w.prunable) for w in found] == [
        (False, False, False),
        (True, True, False),
        (False, False, True),
    ]


def test_changed_paths_sees_an_edit_the_stat_cache_cannot(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Racy git": an edit in the same second as the index was written keeps size and mtime;
    # git then compares contents only if the index is no older than the file. The throwaway
    # index must keep the real one's mtime. (ctime off: it cannot be set back.)
    for key, value in {"COUNT": "1", "KEY_0": "core.trustctime", "VALUE_0": "false"}.items():
        monkeypatch.setenv(f"GIT_CONFIG_{key}", value)
    readme = repo / "README.md"
    past = time.time() - 3600
    os.utime(readme, (past, past))
    run_git(repo, "update-index", "--refresh")
    readme.write_text("HELLO\n")  # the same size as "hello\n"
    os.utime(readme, (past, past))
    os.utime(repo / ".git" / "index", (past, past))
    assert git.changed_paths(repo, "HEAD") == ["README.md"]


# ---------------------------------------------------------------- by content, trusting no index


def sneak_flags(cwd: Path) -> None:
    """What an agent does to blind a diff taken through the real index."""
    run_git(cwd, "update-index", "--assume-unchanged", "src/app/__init__.py")
    run_git(cwd, "update-index", "--skip-worktree", "tests/test_app.py")
    (cwd / "src/app/__init__.py").write_text("VALUE = 2\n")
    (cwd / "tests/test_app.py").write_text("def test(): pass\n")
    exclude = Path(run_git(cwd, "rev-parse", "--git-path", "info/exclude").strip())
    exclude = exclude if exclude.is_absolute() else cwd / exclude
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a") as handle:
        handle.write("README.md\nsecret.py\n")
    (cwd / "README.md").write_text("changed\n")
    (cwd / "secret.py").write_text("hidden by exclude\n")


def test_index_flags_and_excludes_hide_nothing_tracked(repo: Path) -> None:
    path = agentloop_worktree(repo)
    base = git.head_sha(path)
    sneak_flags(path)
    # Blind, as the agent wanted (an exclude rule hides no tracked file, though).
    assert run_git(path, "status", "--porcelain") == " M README.md\n"
    assert git.changed_paths(path, base) == [
        "README.md",
        "src/app/__init__.py",
        "tests/test_app.py",
    ]
    # The new file behind the exclude rule is not part of the working state (ignored),
    # and is listed among the ignored entries, where undoing an attempt finds it.
    assert "secret.py" in git.ignored_entries(path)


def test_the_base_is_the_base_whatever_the_agent_committed(repo: Path) -> None:
    path = agentloop_worktree(repo)
    base = git.head_sha(path)
    (path / "src/app/__init__.py").write_text("VALUE = 2\n")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "-m", "sneak")
    (path / "README.md").write_text("harmless\n")
    assert git.changed_paths(path, "HEAD") == ["README.md"]  # what the loop used to ask
    assert git.changed_paths(path, base) == ["README.md", "src/app/__init__.py"]


def test_a_snapshot_is_the_tree_git_would_commit(repo: Path) -> None:
    path = agentloop_worktree(repo)
    base = git.head_sha(path)
    index = Path(run_git(path, "rev-parse", "--git-path", "index").strip())
    before = index.read_bytes()
    sneak_flags(path)
    flagged = index.read_bytes()
    (path / "new dir").mkdir()
    (path / "new dir" / "x ü.py").write_text("x\n")
    (path / "debug.log").write_text("ignored\n")
    snap = git.snapshot_tree(path, "HEAD")
    assert snap.base == base
    assert snap.changed == (
        "README.md", "new dir/x ü.py", "src/app/__init__.py", "tests/test_app.py",
    )  # fmt: skip
    listed = run_git(path, "ls-tree", "-r", "--name-only", snap.tree).splitlines()
    assert "debug.log" not in listed
    assert "secret.py" not in listed
    assert run_git(path, "show", f"{snap.tree}:src/app/__init__.py") == "VALUE = 2\n"
    assert index.read_bytes() == flagged != before  # the real index was not touched
    assert git.snapshot_tree(path, base) == snap  # nothing moved: the same answer


def test_config_cannot_blind_the_snapshot_or_run_a_command(repo: Path, tmp_path: Path) -> None:
    path = agentloop_worktree(repo)
    marker = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "fsmonitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nprintf 'token\\0'\n")
    hook.chmod(0o755)
    for key, value in {
        "core.fsmonitor": str(hook),
        "core.untrackedCache": "true",
        "core.ignoreStat": "true",
        "core.splitIndex": "true",
        "core.sparseCheckout": "true",
        "index.sparse": "true",
        "add.ignoreErrors": "true",
        "diff.ignoreSubmodules": "all",
    }.items():
        run_git(repo, "config", key, value)
    (path / "src/app/__init__.py").write_text("VALUE = 2\n")
    (path / "new.py").write_text("new\n")
    assert git.changed_paths(path, "HEAD") == ["new.py", "src/app/__init__.py"]
    assert not marker.exists()
    assert not list((repo / ".git").glob("sharedindex.*"))


def test_core_worktree_cannot_point_the_snapshot_at_another_checkout(repo: Path) -> None:
    path = agentloop_worktree(repo)
    run_git(path, "config", "extensions.worktreeConfig", "true")
    run_git(path, "config", "--worktree", "core.worktree", str(repo))
    (path / "src/app/__init__.py").write_text("VALUE = 2\n")
    assert run_git(path, "rev-parse", "--show-toplevel").strip() == str(repo)  # git is fooled
    assert git.changed_paths(path, "HEAD") == ["src/app/__init__.py"]


def test_diff_and_save_diff_see_through_flags(repo: Path, tmp_path: Path) -> None:
    path = agentloop_worktree(repo)
    base = git.head_sha(path)
    sneak_flags(path)
    assert "+VALUE = 2" in git.diff(path, base)
    patch = tmp_path / "p.patch"
    git.save_diff(path, base, patch)
    assert "src/app/__init__.py" in patch.read_text()


def test_commit_tree_and_advance_branch_commit_exactly_the_snapshot(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    for hook in ("pre-commit", "reference-transaction"):
        (hooks / hook).write_text("#!/bin/sh\nexit 1\n")
        (hooks / hook).chmod(0o755)
    path = agentloop_worktree(repo)
    base = git.head_sha(path)
    (path / "README.md").write_text("fixed\n")
    snap = git.snapshot_tree(path, base)
    sha = git.commit_tree(path, snap.tree, base, "fix: README")
    assert git.head_sha(path) == base  # only an object so far
    with pytest.raises(git.GitError):
        git.advance_branch(path, "agentloop/autofix-w1", sha, expected_old=sha)  # stale
    git.advance_branch(path, "agentloop/autofix-w1", sha, expected_old=base)
    assert git.head_sha(path) == sha
    assert run_git(path, "log", "-1", "--format=%s %P").strip() == f"fix: README {base}"
    with pytest.raises(RuntimeError, match="refusing"):
        git.advance_branch(repo, "main", sha, expected_old=base)


def test_a_symbolic_agentloop_branch_is_never_written_through(repo: Path) -> None:
    path = agentloop_worktree(repo)
    main = git.head_sha(repo)
    run_git(repo, "branch", "agentloop/autofix-evil", main)
    run_git(repo, "symbolic-ref", "refs/heads/agentloop/autofix-evil", "refs/heads/main")
    (path / "README.md").write_text("x\n")
    sha = git.commit_tree(path, git.snapshot_tree(path, "HEAD").tree, main, "x")
    with pytest.raises(RuntimeError, match="symbolic ref to refs/heads/main"):
        git.advance_branch(path, "agentloop/autofix-evil", sha, expected_old=main)
    # The same trick on the checked-out branch stops every destructive command.
    run_git(repo, "symbolic-ref", "refs/heads/agentloop/autofix-w1", "refs/heads/main")
    with pytest.raises(RuntimeError, match="refusing"):
        git.reset_hard(path, "HEAD~0")
    assert git.head_sha(repo) == main


def test_restore_worktree_undoes_everything_but_what_it_keeps(repo: Path) -> None:
    path = agentloop_worktree(repo)
    base = git.head_sha(path)
    (path / ".venv" / "lib").mkdir(parents=True)
    (path / ".venv" / ".gitignore").write_text("*\n")
    (path / "cache.log").write_text("kept\n")
    (path / "odd [1]*.log").write_text("kept too\n")
    keep = git.ignored_entries(path)
    assert keep == (".venv/", "cache.log", "odd [1]*.log")
    # The attempt: flags, edits, new files, files hidden behind a new ignore rule.
    sneak_flags(path)
    (path / "scratch.py").write_text("new\n")
    (path / "src" / "hidden").mkdir()
    (path / "src" / "hidden" / ".gitignore").write_text("*\n")
    (path / "src" / "hidden" / "conftest.py").write_text("evil\n")
    (path / "other.log").write_text("new and ignored\n")
    run_git(path, "commit", "-q", "--allow-empty", "-m", "sneak")
    git.restore_worktree(path, base, keep)
    assert git.head_sha(path) == base
    assert git.snapshot_tree(path, base).changed == ()
    assert git.ignored_entries(path) == keep
    assert (path / "cache.log").read_text() == "kept\n"
    assert (path / "odd [1]*.log").exists()
    assert (path / ".venv" / "lib").is_dir()
    assert not (path / "secret.py").exists()
    assert not (path / "src" / "hidden").exists()
    assert (path / "tests/test_app.py").read_text() == SAMPLE_REPO["tests/test_app.py"]
    # No flag survives in the index, and the files are as git checked them out.
    assert all(line[0] == "H" for line in run_git(path, "ls-files", "-v").splitlines())
    run_git(path, "update-index", "--really-refresh")  # raises on any difference


def test_restore_worktree_leaves_unchanged_files_alone(repo: Path) -> None:
    path = agentloop_worktree(repo)
    readme = path / "README.md"
    os.utime(readme, (1_600_000_000, 1_600_000_000))
    (path / "src/app/__init__.py").write_text("VALUE = 2\n")
    git.restore_worktree(path, "HEAD", ())
    assert readme.stat().st_mtime == 1_600_000_000  # not rewritten: no rebuild
    assert (path / "src/app/__init__.py").read_text() == "VALUE = 1\n"


def test_restore_worktree_refuses_the_users_checkout(repo: Path) -> None:
    (repo / "README.md").write_text("the user's work\n")
    (repo / "notes.log").write_text("the user's ignored notes\n")
    with pytest.raises(RuntimeError, match="refusing"):
        git.restore_worktree(repo, "HEAD", ())
    # Redirected by core.worktree, the agentloop checkout's commands would hit the user's.
    path = agentloop_worktree(repo)
    run_git(path, "config", "extensions.worktreeConfig", "true")
    run_git(path, "config", "--worktree", "core.worktree", str(repo))
    with pytest.raises(RuntimeError, match=r"core\.worktree"):
        git.restore_worktree(path, "HEAD", ())
    with pytest.raises(RuntimeError, match=r"core\.worktree"):
        git.clean_untracked(path)
    assert (repo / "README.md").read_text() == "the user's work\n"
    assert (repo / "notes.log").exists()


def test_a_gitignore_that_hides_itself_is_found(repo: Path) -> None:
    write_tree(repo, {".venv/lib/x.py": "", "node_modules/a/.gitignore": "*\n"})
    (repo / ".venv" / ".gitignore").write_text("*\n")  # as uv makes it
    with (repo / ".gitignore").open("a") as handle:
        handle.write("node_modules/\n")
    assert git.hidden_ignore_files(repo) == (".venv/.gitignore",)
    # The agent's: in a directory with tracked files, and in a new directory.
    write_tree(repo, {"src/app/.gitignore": "*\n", "src/app/backdoor.py": "x\n"})
    write_tree(repo, {"plugins/sub/.gitignore": "*\n", "plugins/sub/conftest.py": "x\n"})
    assert git.changed_paths(repo, "HEAD") == [".gitignore"]
    assert git.hidden_ignore_files(repo) == (
        ".venv/.gitignore", "plugins/sub/.gitignore", "src/app/.gitignore",
    )  # fmt: skip


def test_hunks_name_lines_of_exactly_the_path_given(repo: Path) -> None:
    write_tree(repo, {"a1.py": "x = 1\ny = 2\nz = 3\n", "a[1].py": "one\ntwo\n"})
    commit_all(repo, "two files")
    start = git.head_sha(repo)
    write_tree(repo, {"a1.py": "x = 1\nz = 3\nw = 4\n", "a[1].py": "one\n2\n"})
    tree = git.snapshot_tree(repo, start).tree
    assert git.changed_between(repo, start, tree) == ("a1.py", "a[1].py")
    # "a[1].py" as a glob would match a1.py too.
    assert git.hunks(repo, start, tree, "a[1].py") == (git.Hunk(2, 1, 2, 1),)
    # A removal is at the line after which it was; an addition after the last line.
    assert git.hunks(repo, start, tree, "a1.py") == (git.Hunk(2, 1, 1, 0), git.Hunk(3, 0, 3, 1))
    # The user's config cannot merge them (with the unchanged lines between).
    run_git(repo, "config", "diff.interHunkContext", "5")
    assert len(git.hunks(repo, start, tree, "a1.py")) == 2
