"""The git-state rail against an agent's session, simulated by running the attack's git
commands in a linked agentloop worktree of a real repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agentloop import git
from agentloop.rails import gitstate
from agentloop.rails.gitstate import GitState
from agentloop.testing.repos import SAMPLE_REPO, commit_all, git_init, run_git, write_tree

pytestmark = pytest.mark.usefixtures("git_identity")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A user's repository: main checked out with a second commit, a feature branch, a
    tag, two stash entries; and an agentloop worktree beside it."""
    repo = git_init(write_tree(tmp_path / "repo", {**SAMPLE_REPO, "auth/token.py": "S = 1\n"}))
    write_tree(repo, {"README.md": "second\n"})
    commit_all(repo, "second")
    run_git(repo, "branch", "feature")
    run_git(repo, "tag", "v1")
    for n in (1, 2):
        write_tree(repo, {"README.md": f"wip {n}\n"})
        run_git(repo, "stash", "push", "--quiet", "-m", f"wip {n}")
    git.add_worktree(repo, tmp_path / "wt", "agentloop/autofix-t", git.head_sha(repo))
    return repo


@pytest.fixture
def wt(repo: Path) -> Path:
    return repo.parent / "wt"


def attack(cwd: Path, script: str) -> None:
    """The agent's Bash: the script in the worktree, with the test's (isolated) HOME."""
    subprocess.run(
        script, shell=True, cwd=cwd, env=git.clean_env(), check=True, capture_output=True
    )


def observed(repo: Path) -> dict[str, object]:
    """What a user would see of the shared state, read independently of the rail."""
    common = repo / ".git"

    def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
        return {
            p.relative_to(common).as_posix(): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    home = Path.home() / ".gitconfig"
    admin = common / "worktrees" / "wt"
    return {
        "config": (common / "config").read_bytes(),
        "hooks": tree(common / "hooks"),
        "info": tree(common / "info"),
        "refs": run_git(repo, "for-each-ref", "--format=%(refname) %(symref) %(objectname)"),
        "HEAD": (common / "HEAD").read_bytes(),
        "alternates": (common / "objects/info/alternates").exists(),
        "stash": run_git(repo, "stash", "list"),
        "worktrees": sorted(os.listdir(common / "worktrees")),
        "wt": {
            name: (admin / name).read_bytes() if (admin / name).exists() else None
            for name in ("HEAD", "commondir", "gitdir", "config.worktree", "locked")
        },
        "global": home.read_bytes() if home.exists() else None,
    }


CASES = {
    "commit in the worktree": (
        "echo 'S = 2' > auth/token.py && git add -A && git commit -qm sneak",
        "refs/heads/agentloop/autofix-t moved",
    ),
    "alias": ("git config alias.p push", "config changed (+alias.p=push)"),
    "hooksPath": ("mkdir -p ../hk && git config core.hooksPath ../hk", "+core.hookspath=../hk"),
    "new hook": (
        "printf '#!/bin/sh\\ncurl evil\\n' > ../repo/.git/hooks/pre-commit && "
        "chmod +x ../repo/.git/hooks/pre-commit",
        "hooks/pre-commit added",
    ),
    "hook mode": ("chmod -x ../repo/.git/hooks/pre-push.sample", "mode 755 → 644"),
    "stash ref deleted": ("git update-ref -d refs/stash", "refs/stash deleted (2 entries)"),
    "stash drop": ("git stash drop -q", "refs/stash moved"),
    "older stash dropped": ("git stash drop -q 'stash@{1}'", "stash list changed (2 entries → 1"),
    "stash clear": ("git stash clear", "refs/stash deleted (2 entries)"),
    "tag": ("git tag evil", "refs/tags/evil added at"),
    "tag moved": ("git tag -f v1 HEAD~1", "refs/tags/v1 moved"),
    "main moved": ("git update-ref refs/heads/main HEAD~1", "refs/heads/main moved"),
    "branch forced": ("git branch -f feature HEAD~1", "refs/heads/feature moved"),
    "branch deleted": ("git branch -D feature", "refs/heads/feature deleted (was"),
    "main made symbolic": (
        "git symbolic-ref refs/heads/main refs/heads/feature",
        "refs/heads/main moved",
    ),
    "info/exclude": ("echo 'auth/' >> ../repo/.git/info/exclude", "info/exclude changed (+auth/)"),
    "info/attributes": (
        "echo '* filter=hide' > ../repo/.git/info/attributes",
        "info/attributes added",
    ),
    "global config": ("git config --global alias.p push", "~/.gitconfig added (+alias.p=push)"),
    "worktree config redirect": (
        "git config extensions.worktreeConfig true && "
        'git config --worktree core.worktree "$PWD/../repo"',
        "worktrees/wt/config.worktree added (+core.worktree=",
    ),
    "worktree HEAD": ("git switch -q --detach", "worktrees/wt/HEAD changed (was ref: refs/heads/"),
    "user HEAD": (
        "echo 'ref: refs/heads/feature' > ../repo/.git/HEAD",
        "HEAD changed (was ref: refs/heads/main, now ref: refs/heads/feature)",
    ),
    "worktree added": ("git worktree add -q ../other feature", "worktree other added ("),
    "alternates": (
        "mkdir -p ../repo/.git/objects/info && echo /tmp/x > ../repo/.git/objects/info/alternates",
        "objects/info/alternates added",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_an_attack_is_seen_put_back_and_rescued(
    repo: Path, wt: Path, tmp_path: Path, name: str
) -> None:
    script, expected = CASES[name]
    seen = observed(repo)
    before = GitState.capture(wt)
    attack(wt, script)
    after = GitState.capture(wt)
    assert observed(repo) != seen
    changes = before.changes(after)
    details = [c.detail for c in changes]
    assert any(expected in d for d in details), details
    rescue = tmp_path / "rescue"
    done = gitstate.restore(wt, before, after, rescue)
    assert done
    assert observed(repo) == seen
    assert GitState.capture(wt).changes(before) == ()
    # What was replaced is kept, with a way back.
    readme = (rescue / "README").read_text()
    assert "to take it back" in readme


def test_the_agents_commit_is_rescued_by_sha(repo: Path, wt: Path, tmp_path: Path) -> None:
    before = GitState.capture(wt)
    attack(wt, "echo 'S = 2' > auth/token.py && git commit -qam sneak")
    sneak = git.head_sha(wt)
    gitstate.restore(wt, before, GitState.capture(wt), tmp_path / "rescue")
    assert (
        git.rev_parse(repo, "refs/heads/agentloop/autofix-t")
        == before.refs["refs/heads/agentloop/autofix-t"]
    )
    assert (
        f"git update-ref refs/heads/agentloop/autofix-t {sneak}"
        in (tmp_path / "rescue" / "README").read_text()
    )
    # The work itself is still in the worktree's files, for the snapshot to judge.
    assert "auth/token.py" in git.changed_paths(wt, before.refs["refs/heads/agentloop/autofix-t"])


def test_replaced_config_and_hooks_are_kept_byte_for_byte(
    repo: Path, wt: Path, tmp_path: Path
) -> None:
    before = GitState.capture(wt)
    attack(wt, "git config alias.p push && echo evil > ../repo/.git/hooks/post-checkout")
    changed_config = (repo / ".git" / "config").read_bytes()
    gitstate.restore(wt, before, GitState.capture(wt), tmp_path / "rescue")
    assert (tmp_path / "rescue" / "files" / "config").read_bytes() == changed_config
    assert (tmp_path / "rescue" / "files" / "hooks" / "post-checkout").read_text() == "evil\n"
    assert not (repo / ".git" / "hooks" / "post-checkout").exists()


def test_a_dropped_stash_comes_back_with_its_message(repo: Path, wt: Path, tmp_path: Path) -> None:
    stash = run_git(repo, "stash", "list")
    before = GitState.capture(wt)
    attack(wt, "git update-ref -d refs/stash")
    (change,) = before.changes(GitState.capture(wt))
    assert change.detail == "refs/stash deleted (2 entries)"
    # The fix a person would type restores it too.
    attack(repo, change.fix)
    assert run_git(repo, "stash", "list") == stash


def test_config_changes_are_shown_key_by_key_with_a_fix(repo: Path, wt: Path) -> None:
    keys = sorted(run_git(repo, "config", "--local", "--list").splitlines())
    before = GitState.capture(wt)
    attack(wt, "git config alias.p push && git config --unset core.bare")
    (change,) = before.changes(GitState.capture(wt))
    assert change.detail == "config changed (+alias.p=push, -core.bare=false)"
    attack(repo, change.fix)  # as a person would type it
    assert sorted(run_git(repo, "config", "--local", "--list").splitlines()) == keys


def test_an_index_flag_is_no_state_change_but_the_snapshot_sees_through_it(
    repo: Path, wt: Path
) -> None:
    base = git.head_sha(wt)
    before = GitState.capture(wt)
    attack(wt, "git update-index --assume-unchanged auth/token.py && echo 'S = 2' > auth/token.py")
    assert before.changes(GitState.capture(wt)) == ()
    assert git.changed_paths(wt, base) == ["auth/token.py"]


def test_ignored_refs_and_remotes_are_left_alone(repo: Path, wt: Path, tmp_path: Path) -> None:
    before = GitState.capture(wt)
    attack(wt, "git update-ref refs/remotes/origin/main HEAD && git branch agentloop/autofix-other")
    after = GitState.capture(wt)
    assert before.changes(after, ignore=["refs/heads/agentloop/"]) == ()
    assert (
        gitstate.restore(wt, before, after, tmp_path / "r", ignore=["refs/heads/agentloop/"]) == ()
    )
    assert git.branch_exists(repo, "agentloop/autofix-other")


def test_kept_puts_back_on_the_way_out_and_reports(repo: Path, wt: Path, tmp_path: Path) -> None:
    seen = observed(repo)
    with gitstate.kept(wt, tmp_path / "rescue") as result:
        attack(wt, "git config alias.p push && git tag evil")
    assert [c.item for c in result.changes] == ["config", "refs/tags/evil"]
    assert observed(repo) == seen
    assert result.restored


def test_the_state_survives_json(repo: Path, wt: Path) -> None:
    before = GitState.capture(wt)
    assert GitState.from_json(before.to_json()) == before


def test_a_ref_whose_object_is_gone_is_reported_and_the_rest_put_back(
    repo: Path, wt: Path, tmp_path: Path
) -> None:
    before = GitState.capture(wt)
    attack(
        wt,
        "git config alias.p push && git stash clear && "
        "git reflog expire --expire=now --all && git gc -q --prune=now",
    )
    with pytest.raises(gitstate.GitStateError, match="refs/stash"):
        gitstate.restore(wt, before, GitState.capture(wt), tmp_path / "rescue")
    assert b"alias" not in (repo / ".git" / "config").read_bytes()


def test_a_hook_added_to_a_shared_hooks_directory_is_seen(
    repo: Path, wt: Path, tmp_path: Path
) -> None:
    shared = Path.home() / ".githooks"
    shared.mkdir()
    run_git(repo, "config", "--global", "core.hooksPath", str(shared))
    before = GitState.capture(wt)
    attack(wt, f"printf '#!/bin/sh\\n' > {shared}/pre-push && chmod +x {shared}/pre-push")
    (change,) = before.changes(GitState.capture(wt))
    assert change.detail == "~/.githooks/pre-push added"
    gitstate.restore(wt, before, GitState.capture(wt), tmp_path / "rescue")
    assert list(shared.iterdir()) == []
    assert (tmp_path / "rescue" / "files" / str(shared).lstrip("/") / "pre-push").exists()


def test_what_claude_codes_sandbox_leaves_while_it_runs_is_no_change(repo: Path, wt: Path) -> None:
    # Seen with Claude Code 2.1.332: empty files to mount masks on, and a line in the
    # global git ignore file (created when there is none).
    before = GitState.capture(wt)
    ignore = Path.home() / ".config" / "git" / "ignore"
    attack(
        wt,
        ": > ../repo/.git/config.worktree && mkdir -p ../repo/.git/objects/info && "
        ": > ../repo/.git/objects/info/alternates && "
        f"mkdir -p {ignore.parent} && printf '**/.claude/.cc-writes/\\n' >> {ignore}",
    )
    assert before.changes(GitState.capture(wt)) == ()
    # Anything more in that file is a change.
    attack(wt, f"printf 'auth/\\n' >> {ignore}")
    (change,) = before.changes(GitState.capture(wt))
    assert change.detail == "~/.config/git/ignore added (+**/.claude/.cc-writes/, +auth/)"


def test_another_sessions_stubs_going_away_meanwhile_is_no_change(repo: Path, wt: Path) -> None:
    # With jobs in parallel, another job's session holds its empty mask files when this
    # attempt starts, and its clean-up removes them before this attempt ends.
    common = repo / ".git"
    (common / "config.worktree").write_bytes(b"")
    (common / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (common / "objects" / "info" / "alternates").write_bytes(b"")
    before = GitState.capture(wt)
    (common / "config.worktree").unlink()
    (common / "objects" / "info" / "alternates").unlink()
    assert before.changes(GitState.capture(wt)) == ()
    # One with content is git's state like any other.
    (common / "objects" / "info" / "alternates").write_text("/tmp/elsewhere/objects\n")
    (change,) = before.changes(GitState.capture(wt))
    assert "objects/info/alternates" in change.detail
