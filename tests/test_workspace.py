from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentloop import git, suites, workspace
from agentloop.commands.clean import clean
from agentloop.errors import WorkspaceError
from agentloop.testing.repos import (
    SAMPLE_REPO,
    SRC_LAYOUT_PYPROJECT,
    editable_install,
    git_init,
    run_git,
    write_tree,
)
from agentloop.workspace import (
    BRANCH_PREFIX,
    Places,
    RunState,
    Workspace,
    clean_leftovers,
    locked,
)

# The code under test commits in this process.
pytestmark = pytest.mark.usefixtures("git_identity")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_init(write_tree(tmp_path / "repo", SAMPLE_REPO))


@pytest.fixture
def busy_repo(repo: Path) -> Path:
    """A checkout in the middle of work: a stash, staged, unstaged, untracked and ignored
    files, and an executable script."""
    (repo / "README.md").write_text("stashed change\n")
    run_git(repo, "stash", "push", "--quiet", "-m", "the user's stash")
    (repo / "src/app/__init__.py").write_text("VALUE = 'staged'\n")
    run_git(repo, "add", "src/app/__init__.py")
    (repo / "README.md").write_text("unstaged change\n")
    (repo / "notes dir").mkdir()
    (repo / "notes dir" / "todo ü.txt").write_text("untracked\n")
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "debug.log").write_bytes(b"\xff ignored\n")
    # Stale stat data in the index: any git command that refreshes it (a plain `git
    # status`) would write the index back, and the snapshot would see it.
    os.utime(repo / "tests" / "test_app.py", (1_600_000_000, 1_600_000_000))
    return repo


def snapshot(checkout: Path) -> dict[str, Any]:
    """Everything of a checkout a user could notice changed: every file's bytes, mode and
    mtime (untracked and ignored ones too; a directory's mtime shows a file made and
    removed in it), the index, HEAD, the branch, status, stashes, config and the user's
    own branches."""
    files: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(checkout):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames) + dirnames:
            path = Path(dirpath) / name
            rel = path.relative_to(checkout).as_posix()
            stat = path.lstat()
            if path.is_symlink():
                files[rel] = ("link", os.readlink(path), stat.st_mtime_ns)
            elif path.is_file():
                files[rel] = ("file", stat.st_mode, stat.st_mtime_ns, path.read_bytes())
            else:
                files[rel] = ("dir", stat.st_mode, stat.st_mtime_ns)
    dot_git = checkout / ".git"
    heads = run_git(checkout, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
    return {
        "files": files,
        "index": (dot_git / "index").read_bytes(),
        "HEAD": (dot_git / "HEAD").read_bytes(),
        "config": (dot_git / "config").read_bytes(),
        "head": run_git(checkout, "rev-parse", "HEAD"),
        "branch": run_git(checkout, "branch", "--show-current"),
        "status": run_git(checkout, "status", "--porcelain=v1", "-z", "--untracked-files=all"),
        "stash": run_git(checkout, "stash", "list", "--format=%H %gs"),
        "branches": [line for line in heads.splitlines() if "refs/heads/agentloop/" not in line],
    }


def agentloop_branches(repo: Path) -> dict[str, str]:
    return git.branches(repo, BRANCH_PREFIX)


# ---------------------------------------------------------------- the default worktree


def worktree_of(repo: Path, run_id: str) -> Path:
    return Places.of(repo / ".git").worktree(run_id)


def test_a_run_gets_its_own_branch_and_a_worktree_outside_the_repository(repo: Path) -> None:
    base = git.head_sha(repo)
    with Workspace.open(repo, run_id="r1") as ws:
        # Not inside .git either: Claude Code refuses edits there.
        assert ws.path == worktree_of(repo, "r1").resolve()
        assert not ws.path.is_relative_to(repo.resolve())
        assert ws.root == ws.path
        assert ws.branch == "agentloop/autofix-r1"
        assert ws.base_sha == base
        assert git.current_branch(ws.path) == "agentloop/autofix-r1"
        assert (ws.path / "src/app/__init__.py").read_text() == "VALUE = 1\n"
        state = json.loads((repo / ".git/agentloop/runs/r1.json").read_text())
        assert state["pid"] == os.getpid()
        assert state["path"] == str(ws.path)
        assert state["branch"] == ws.branch
        assert state["base_sha"] == base
        assert state["created_at"].endswith("+00:00")
        # The worktree is invisible to the user's checkout.
        assert run_git(repo, "status", "--porcelain") == ""
    assert not ws.path.exists()
    assert agentloop_branches(repo) == {}
    assert not (repo / ".git/agentloop/runs/r1.json").exists()
    assert ws.closed is not None
    assert ws.closed.removed_worktree
    assert ws.closed.deleted_branch


def test_the_default_run_id_is_a_utc_timestamp_and_runs_in_the_same_second_differ(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = datetime.datetime(2026, 1, 15, 10, 30, tzinfo=datetime.timezone.utc)
    assert workspace.new_run_id(moment) == "20260115T103000Z"
    # Both runs start "in the same second", whatever the machine's clock does meanwhile.
    monkeypatch.setattr(workspace, "new_run_id", lambda: "20260115T103000Z")
    with Workspace.open(repo) as one, Workspace.open(repo) as two:
        assert one.run_id == "20260115T103000Z"
        assert two.run_id == "20260115T103000Z-2"
        assert one.branch == f"{BRANCH_PREFIX}{one.run_id}"


def test_a_run_id_already_used_is_refused(repo: Path) -> None:
    run_git(repo, "branch", "agentloop/autofix-taken")
    with pytest.raises(WorkspaceError, match="already used"), Workspace.open(repo, run_id="taken"):
        pass
    with (
        pytest.raises(WorkspaceError, match="cannot be a run id"),
        Workspace.open(repo, run_id="../x"),
    ):
        pass


def test_commits_keep_the_branch_and_the_worktree_goes(repo: Path) -> None:
    with Workspace.open(repo, run_id="fix") as ws:
        (ws.path / "src/app/__init__.py").write_text("VALUE = 2\n")
        sha = git.commit_all(ws.path, "fix VALUE")
        assert ws.commits() == [sha]
    assert not ws.path.exists()
    assert agentloop_branches(repo) == {"agentloop/autofix-fix": sha}
    assert ws.closed is not None
    assert ws.closed.commits == 1
    assert not ws.closed.deleted_branch


def test_a_project_inside_a_monorepo_keeps_its_place(repo: Path) -> None:
    write_tree(repo, {"packages/api/src/api/__init__.py": "", "packages/api/pyproject.toml": ""})
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "api")
    with Workspace.open(repo / "packages" / "api") as ws:
        assert ws.root == ws.path / "packages" / "api"
        assert ws.env()["PYTHONPATH"].split(os.pathsep)[:2] == [
            str(ws.root / "src"),
            str(ws.root),
        ]


def test_uncommitted_work_is_saved_before_the_worktree_goes(repo: Path, tmp_path: Path) -> None:
    def body(ws: Workspace) -> None:
        (ws.path / "README.md").write_text("half a fix\n")
        (ws.path / "new_module.py").write_text("NEW = 1\n")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), Workspace.open(repo, run_id="r") as ws:
        body(ws)
    assert ws.closed is not None
    patch = ws.closed.rescued
    assert patch == repo / ".git/agentloop/rescued/r.patch"
    assert patch.read_text().startswith("# agentloop: uncommitted work of run r")
    # The patch takes the work back onto the commit it was made on.
    again = tmp_path / "again"
    run_git(repo, "worktree", "add", "--quiet", "--detach", str(again), ws.base_sha)
    run_git(again, "apply", str(patch))
    assert (again / "README.md").read_text() == "half a fix\n"
    assert (again / "new_module.py").read_text() == "NEW = 1\n"


def test_discard_throws_away_an_attempt(repo: Path) -> None:
    with Workspace.open(repo) as ws:
        (ws.path / "README.md").write_text("attempt\n")
        (ws.path / "scratch.py").write_text("attempt\n")
        ws.discard()
        assert not git.is_dirty(ws.path)
    assert ws.closed is not None
    assert ws.closed.rescued is None


# ---------------------------------------------------------------- the user's checkout


def _end_normally(ws: Workspace) -> None:
    (ws.path / "README.md").write_text("work in the worktree\n")
    ws.discard()


def _end_with_a_commit(ws: Workspace) -> None:
    (ws.path / "README.md").write_text("a fix\n")
    (ws.path / "notes dir").mkdir()
    (ws.path / "notes dir" / "todo ü.txt").write_text("same name as the user's\n")
    git.commit_all(ws.path, "fix")


def _end_with_an_error(ws: Workspace) -> None:
    (ws.path / "README.md").write_text("half done\n")
    (ws.path / "debug.log").write_text("the worktree's own\n")
    raise RuntimeError("the loop crashed")


def _end_with_ctrl_c(ws: Workspace) -> None:
    (ws.path / "src/app/__init__.py").write_text("VALUE = 'interrupted'\n")
    git.commit_all(ws.path, "a fix")
    (ws.path / "README.md").write_text("mid-attempt\n")
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "body", [_end_normally, _end_with_a_commit, _end_with_an_error, _end_with_ctrl_c]
)
def test_the_users_checkout_is_untouched_byte_for_byte(busy_repo: Path, body: Any) -> None:
    before = snapshot(busy_repo)
    assert before["stash"]
    assert before["status"]
    try:
        with Workspace.open(busy_repo) as ws:
            # The worktree starts from HEAD: none of the user's uncommitted work is in it.
            assert (ws.path / "README.md").read_text() == "hello\n"
            assert not (ws.path / "notes dir").exists()
            assert snapshot(busy_repo) == before
            body(ws)
    except (RuntimeError, KeyboardInterrupt):
        pass
    assert snapshot(busy_repo) == before
    assert not ws.path.exists()


def test_a_failing_setup_removes_what_it_made(repo: Path) -> None:
    before = snapshot(repo)
    with (
        pytest.raises(WorkspaceError) as err,
        Workspace.open(
            repo, run_id="s", setup=["echo preparing", "echo 'no such tool' >&2; exit 3"]
        ),
    ):
        pytest.fail("the body must not run")
    assert "exit 3" in err.value.message
    assert "no such tool" in err.value.message
    assert err.value.hint is not None
    assert "workspace.setup" in err.value.hint
    assert snapshot(repo) == before
    assert not worktree_of(repo, "s").exists()
    assert agentloop_branches(repo) == {}


def test_setup_runs_in_the_fresh_worktree_with_its_environment(repo: Path) -> None:
    setup = ['printf "%s|%s" "$PWD" "$PYTHONPATH" > setup.out']
    with Workspace.open(repo, setup=setup) as ws:
        cwd, pythonpath = (ws.path / "setup.out").read_text().split("|")
        assert Path(cwd).resolve() == ws.path
        assert pythonpath.split(os.pathsep)[0] == str(ws.path / "src")
    assert not (repo / "setup.out").exists()


def test_a_setup_that_hangs_is_killed(repo: Path) -> None:
    start = time.monotonic()
    with (
        pytest.raises(WorkspaceError, match="timed out"),
        Workspace.open(repo, setup=["sleep 60"], setup_timeout=1),
    ):
        pass
    assert time.monotonic() - start < 15


# ---------------------------------------------------------------- in place


def test_in_place_refuses_a_dirty_checkout(repo: Path) -> None:
    (repo / "notes.txt").write_text("untracked counts: clean -fd would delete it\n")
    before = snapshot(repo)
    with pytest.raises(WorkspaceError) as err, Workspace.open(repo, in_place=True):
        pass
    assert "notes.txt" in err.value.message
    assert err.value.hint is not None
    assert "stash" in err.value.hint
    assert snapshot(repo) == before


def test_in_place_works_on_its_own_branch_and_goes_back(repo: Path) -> None:
    (repo / "debug.log").write_text("ignored files are not dirt\n")
    main = git.head_sha(repo)
    with Workspace.open(repo, in_place=True, run_id="ip") as ws:
        assert ws.path == repo.resolve()
        assert git.current_branch(repo) == "agentloop/autofix-ip"
        (repo / "README.md").write_text("fixed in place\n")
        fix = git.commit_all(repo, "fix")
        (repo / "leftover.py").write_text("an attempt in flight\n")
        (repo / "src/app/__init__.py").write_text("VALUE = 'in flight'\n")
    assert git.current_branch(repo) == "main"
    assert git.head_sha(repo) == main
    assert (repo / "README.md").read_text() == "hello\n"
    assert not git.is_dirty(repo)
    assert (repo / "debug.log").exists()
    assert agentloop_branches(repo) == {"agentloop/autofix-ip": fix}
    assert ws.closed is not None
    assert ws.closed.rescued is not None
    assert "+an attempt in flight" in ws.closed.rescued.read_text()


def test_in_place_from_a_detached_head_goes_back_to_it(repo: Path) -> None:
    run_git(repo, "switch", "--quiet", "--detach", "HEAD")
    sha = git.head_sha(repo)
    with Workspace.open(repo, in_place=True):
        assert git.current_branch(repo) is not None
    assert git.current_branch(repo) is None
    assert git.head_sha(repo) == sha
    assert agentloop_branches(repo) == {}


def test_not_a_repository(tmp_path: Path) -> None:
    with (
        pytest.raises(WorkspaceError, match="not inside a git repository"),
        Workspace.open(tmp_path),
    ):
        pass


# ---------------------------------------------------------------- the editable-install trap


def test_env_puts_the_worktree_first_and_drops_repository_variables(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(repo / "src"), "/opt/extra"]))
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    with Workspace.open(repo) as ws:
        env = ws.env()
        assert env["PYTHONPATH"].split(os.pathsep) == [
            str(ws.path / "src"),
            str(ws.path),
            str(repo / "src"),
            "/opt/extra",
        ]
        assert "GIT_DIR" not in env


def test_env_uses_a_venv_that_setup_made_in_the_worktree(repo: Path) -> None:
    setup = ['mkdir -p .venv/bin && ln -s "$(command -v python3)" .venv/bin/python']
    with Workspace.open(repo, setup=setup) as ws:
        env = ws.env()
        assert env["VIRTUAL_ENV"] == str(ws.path / ".venv")
        assert env["PATH"].split(os.pathsep)[0] == str(ws.path / ".venv" / "bin")


def test_an_editable_install_of_the_checkout_imports_the_worktrees_code(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the offline build backend")
    project = git_init(
        write_tree(
            tmp_path / "tiny",
            {
                "pyproject.toml": SRC_LAYOUT_PYPROJECT,
                "src/tinypkg/__init__.py": "def answer():\n    return 42\n",
                "tests/test_answer.py": """\
                    import unittest
                    import tinypkg

                    class T(unittest.TestCase):
                        def test_answer(self):
                            print("imported", tinypkg.__file__)
                            self.assertEqual(tinypkg.answer(), 42)
                """,
            },
        )
    )
    # No network: pip and hatchling come from agentloop's own environment, for the
    # install step only; the venv ends up with nothing but the editable tinypkg.
    python = editable_install(project, tmp_path / "venv")
    plain = {k: v for k, v in git.clean_env().items() if k != "PYTHONPATH"}

    def run_tests(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "unittest", "discover", "-s", "tests", "-v"],
            cwd=cwd, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip

    with Workspace.open(project) as ws:
        # The agent's change breaks the function, in the worktree only.
        (ws.path / "src/tinypkg/__init__.py").write_text("def answer():\n    return 41\n")
        wrong = run_tests(ws.root, plain)
        assert wrong.returncode == 0, "the trap: the installed copy is the user's checkout"
        assert str(project / "src" / "tinypkg") in wrong.stdout + wrong.stderr
        right = run_tests(ws.root, ws.env(plain))
        assert right.returncode != 0
        assert str(ws.path / "src" / "tinypkg") in right.stdout + right.stderr
        assert "41 != 42" in right.stderr


# ---------------------------------------------------------------- the checkout's environment

ENV_REPO = {
    **SAMPLE_REPO,
    ".gitignore": "*.log\n.venv/\nnode_modules/\n_version.py\n.env*\nsettings.local.json\n",
    ".claude/settings.json": "{}\n",
    "package.json": '{"name": "app", "private": true, "workspaces": ["packages/*"]}\n',
    "packages/local/package.json": '{"name": "@app/local"}\n',
    "packages/local/index.js": "module.exports = 'the checkout'\n",
}


def give_environment(repo: Path, store: Path) -> None:
    """What a user's checkout holds ignored: a venv that ignores itself (as uv makes it)
    and a node_modules with a tool's cache, a scope, an npm workspace package and a
    package linked from a shared store (as pnpm makes it)."""
    venv = repo / ".venv"
    write_tree(venv, {"pyvenv.cfg": "home = /usr/bin\n", ".gitignore": "*\n"})
    write_tree(venv / "lib/python3/site-packages", {"dep.py": "X = 1\n"})
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    modules = repo / "node_modules"
    write_tree(
        modules,
        {
            "leftpad/index.js": "module.exports = 'pad'\n",
            "@types/node/index.d.ts": "export {}\n",
            ".vite/vitest/results.json": "{}\n",
        },
    )
    (modules / ".bin").mkdir()
    (modules / ".bin" / "leftpad").symlink_to("../leftpad/index.js")
    (modules / "@app").mkdir()
    (modules / "@app" / "local").symlink_to("../../packages/local")
    write_tree(store, {"stored/index.js": "module.exports = 'stored'\n"})
    (modules / "stored").symlink_to(store / "stored")
    # Generated beside the code (hatch-vcs), and what is no code's input.
    write_tree(
        repo,
        {
            "src/app/_version.py": "__version__ = '1.0'\n",
            "src/app/debug.log": "noise\n",
            "src/app/.env.local": "API_KEY=sk-live-not-for-the-worktree\n",
            ".claude/settings.local.json": '{"permissions": {"allow": ["Bash"]}}\n',
        },
    )


@pytest.fixture
def env_repo(tmp_path: Path) -> Path:
    repo = git_init(write_tree(tmp_path / "repo", ENV_REPO))
    give_environment(repo, tmp_path / "store")
    return repo


def test_the_worktree_gets_the_checkouts_ignored_environment(env_repo: Path) -> None:
    repo = env_repo
    with Workspace.open(repo) as ws:
        assert ws.linked == (".venv", "node_modules", "src/app/_version.py")
        # A copy: what is written to it in the worktree stays there.
        version = ws.path / "src/app/_version.py"
        assert not version.is_symlink()
        assert version.read_text() == "__version__ = '1.0'\n"
        for absent in ("src/app/debug.log", "src/app/.env.local", ".claude/settings.local.json"):
            assert not (ws.path / absent).exists(), absent
        modules = ws.path / "node_modules"
        # A real directory, ignored by `node_modules/` as in the checkout (a link of that
        # name would be a new file of the agent's change).
        assert modules.is_dir()
        assert not modules.is_symlink()
        assert os.readlink(modules / "leftpad") == str(repo / "node_modules" / "leftpad")
        assert (modules / ".bin" / "leftpad").read_text() == "module.exports = 'pad'\n"
        assert (modules / "stored" / "index.js").read_text() == "module.exports = 'stored'\n"
        assert (modules / "@types" / "node").resolve() == (repo / "node_modules/@types/node")
        # The npm workspace package is the worktree's own copy, not the checkout's.
        assert (modules / "@app" / "local").resolve() == (ws.path / "packages/local").resolve()
        # Caches start empty in the worktree: its tools write there, not into the user's.
        assert not (modules / ".vite").exists()
        venv = ws.path / ".venv"
        # git reads no linked .gitignore: uv's self-ignoring venv needs a copy.
        assert not (venv / ".gitignore").is_symlink()
        assert (venv / ".gitignore").read_text() == "*\n"
        assert (venv / "bin" / "python").resolve() == Path(sys.executable).resolve()
        # detect's choice of interpreter in the checkout, relative as there.
        assert suites._python_for(ws.root) == ".venv/bin/python"
        env = ws.env()
        assert env["VIRTUAL_ENV"] == str(venv)
        assert env["PATH"].split(os.pathsep)[0] == str(venv / "bin")
        # Nothing of it is part of a change: ignored exactly as in the checkout.
        assert run_git(ws.path, "status", "--porcelain", "--untracked-files=all") == ""
        assert {".venv/", "node_modules/"} <= set(git.ignored_entries(ws.path))
        # The judge's worktree gets the same, pointing at its own workspace packages.
        judge = ws.detached_worktree("judge")
        assert (judge / "node_modules/leftpad").resolve() == (repo / "node_modules/leftpad")
        assert (judge / "node_modules/@app/local").resolve() == (judge / "packages/local")
        assert (judge / ".venv/bin/python").exists()
        assert run_git(judge, "status", "--porcelain", "--untracked-files=all") == ""


def test_what_setup_makes_stays_and_only_the_rest_is_linked(env_repo: Path) -> None:
    with Workspace.open(env_repo, setup=["mkdir -p node_modules/own"]) as ws:
        assert ws.linked == (".venv", "src/app/_version.py")
        assert os.listdir(ws.path / "node_modules") == ["own"]


def test_only_what_the_checkout_ignores_is_linked_but_its_venv(tmp_path: Path) -> None:
    # A venv outside the project's root and a node_modules with no package.json beside
    # it are not what detect would use; an unignored node_modules is the user's to commit.
    repo = git_init(write_tree(tmp_path / "repo", {**SAMPLE_REPO, ".gitignore": "*.log\n"}))
    write_tree(repo, {"tools/.venv/bin/python": "", "node_modules/x/index.js": ""})
    with Workspace.open(repo) as ws:
        assert ws.linked == ()
        assert not (ws.path / "node_modules").exists()
    # A venv nobody ignored (`python -m venv` before 3.13) is the one detect uses: its
    # mirror ignores itself, so it is no part of a change.
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(sys.executable)
    with Workspace.open(repo) as ws:
        assert ws.linked == (".venv",)
        assert run_git(ws.path, "status", "--porcelain", "--untracked-files=all") == ""
        assert ".venv/" in git.ignored_entries(ws.path)


def files_of(*folders: Path) -> dict[str, Any]:
    """Every file, link and directory under `folders` as the user has them."""
    return {str(folder): snapshot_files(folder) for folder in folders}


def snapshot_files(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                found[str(path)] = ("link", os.readlink(path))
            elif path.is_file():
                found[str(path)] = ("file", path.read_bytes())
            else:
                found[str(path)] = ("dir",)
    return found


@pytest.mark.parametrize("how", ["close", "rm -rf in the worktree", "rm -rf the worktree"])
def test_removing_a_worktree_never_deletes_through_its_links(
    env_repo: Path, tmp_path: Path, how: str
) -> None:
    repo = env_repo
    before = files_of(repo / ".venv", repo / "node_modules", tmp_path / "store")
    with Workspace.open(repo) as ws:
        if how == "rm -rf in the worktree":
            # As a user's script or a test's teardown would: the mirrors' links go, their
            # targets stay.
            subprocess.run(["rm", "-rf", "node_modules", ".venv"], cwd=ws.path, check=True)
        if how == "rm -rf the worktree":
            ws.detached_worktree("judge")
            subprocess.run(["rm", "-rf", str(ws.path)], check=True)
    assert ws.closed is not None
    assert ws.close_error is None
    assert not ws.path.exists()
    assert files_of(repo / ".venv", repo / "node_modules", tmp_path / "store") == before


def test_clean_removes_a_killed_runs_links_not_what_they_lead_to(
    env_repo: Path, tmp_path: Path, start_run: Any
) -> None:
    repo = env_repo
    before = files_of(repo / ".venv", repo / "node_modules", tmp_path / "store")
    kill(start_run(repo, "killed", "judge"))
    assert (worktree_of(repo, "killed") / "node_modules" / "leftpad").is_symlink()
    report = clean_leftovers(repo, dry_run=False)
    assert report.errors == []
    assert not worktree_of(repo, "killed").exists()
    assert not worktree_of(repo, "killed.judge").exists()
    assert files_of(repo / ".venv", repo / "node_modules", tmp_path / "store") == before


def test_env_puts_the_worktrees_copy_of_every_editable_folder_first(tmp_path: Path) -> None:
    # Code in lib/ (a .pth names it: pip, uv, hatch) and in lib2/ (setuptools' finder
    # maps its package): neither is src/ nor the root.
    repo = git_init(
        write_tree(
            tmp_path / "repo",
            {
                "lib/pkg/__init__.py": "",
                "lib2/other/__init__.py": "",
                ".gitignore": ".venv/\n",
            },
        )
    )
    site = repo / ".venv/lib/python3.11/site-packages"
    write_tree(
        site,
        {
            "__editable__.pkg-0.pth": f"{repo}/lib\n",
            "__editable___other_0_finder.py": (
                "import sys\n"
                f"MAPPING: dict[str, str] = {{'other': '{repo}/lib2/other'}}\n"
                "NAMESPACES: dict[str, list[str]] = {}\n"
            ),
            "__editable__.other-0.pth": "import __editable___other_0_finder\n",
            "tools.pth": "/opt/elsewhere\n",
        },
    )
    (repo / ".venv/bin").mkdir()
    (repo / ".venv/bin/python").symlink_to(sys.executable)
    with Workspace.open(repo) as ws:
        path = ws.env({"PATH": "/usr/bin"})["PYTHONPATH"].split(os.pathsep)
        assert path == [str(ws.path / "lib"), str(ws.path / "lib2"), str(ws.path)]
        judge = ws.detached_worktree("judge")
        path = ws.env({"PATH": "/usr/bin"}, root=judge)["PYTHONPATH"].split(os.pathsep)
        assert path == [str(judge / "lib"), str(judge / "lib2"), str(judge)]


# ---------------------------------------------------------------- killed runs and clean

CHILD = """\
import os, pathlib, sys, time
from agentloop import git
from agentloop.workspace import Workspace

repo, ready, mode = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
with Workspace.open(repo, run_id=sys.argv[4]) as ws:
    if mode in ("dirty", "commit"):
        (ws.path / "README.md").write_text("half a fix\\n")
        (ws.path / "untracked.py").write_text("NEW = 1\\n")
    if mode == "commit":
        git.commit_all(ws.path, "a fix")
        (ws.path / "README.md").write_text("more\\n")
    if mode == "judge":
        judge = ws.detached_worktree("judge")
        (judge / "README.md").write_text("a candidate being judged\\n")
    ready.write_text(str(ws.path))
    time.sleep(120)
"""


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Any]:
    """Start a real agentloop process holding a workspace open; yield a starter that
    returns it once the workspace is made."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    started: list[subprocess.Popen[bytes]] = []

    def start(repo: Path, run_id: str, mode: str = "clean") -> subprocess.Popen[bytes]:
        ready = tmp_path / f"ready-{run_id}"
        child = subprocess.Popen(
            [sys.executable, str(script), str(repo), str(ready), mode, run_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started.append(child)
        deadline = time.monotonic() + 60
        while not ready.exists():
            if child.poll() is not None:
                pytest.fail(f"the run died: {child.communicate()[1].decode()}")
            assert time.monotonic() < deadline, "the run never got its workspace"
            time.sleep(0.05)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
        child.communicate()


def kill(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def test_ctrl_c_in_a_real_process_cleans_up_on_the_way_out(repo: Path, start_run: Any) -> None:
    before = snapshot(repo)
    child = start_run(repo, "int", "dirty")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert b"KeyboardInterrupt" in err
    assert snapshot(repo) == before
    assert agentloop_branches(repo) == {}
    assert not worktree_of(repo, "int").exists()
    assert (repo / ".git/agentloop/rescued/int.patch").exists()
    assert list((repo / ".git/agentloop/runs").iterdir()) == []


def test_clean_removes_what_killed_runs_left_and_leaves_live_runs_alone(
    busy_repo: Path, start_run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = busy_repo
    user_wt = repo.parent / "users-worktree"
    run_git(repo, "worktree", "add", "--quiet", "-b", "feature", str(user_wt))
    run_git(repo, "branch", "agentloop-lookalike")
    before = snapshot(repo)
    dirty = start_run(repo, "dirty", "dirty")
    committed = start_run(repo, "committed", "commit")
    plain = start_run(repo, "plain", "clean")
    live = start_run(repo, "live", "clean")
    for child in (dirty, committed, plain):
        kill(child)
    places = Places.of(repo / ".git")
    assert len(list(places.runs.glob("*.json"))) == 4

    # A dry run says what it would do and does nothing.
    assert clean(repo=repo, dry_run=True, as_json=True) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] is True
    assert {item["run_id"] for item in planned["cleaned"]} == {"dirty", "committed", "plain"}
    assert [run["run_id"] for run in planned["alive"]] == ["live"]
    assert len(list(places.runs.glob("*.json"))) == 4
    assert (places.worktrees / "dirty").exists()
    assert not places.rescued.exists()

    assert clean(repo=repo, dry_run=False, as_json=True) == 0
    done = {item["run_id"]: item for item in json.loads(capsys.readouterr().out)["cleaned"]}
    # Uncommitted work, untracked files included, is saved before its worktree goes.
    patch = Path(done["dirty"]["rescued_patch"])
    assert "+half a fix" in patch.read_text()
    assert "+NEW = 1" in patch.read_text()
    assert done["dirty"]["removed_worktree"]
    assert done["dirty"]["deleted_branch"]
    assert Path(done["committed"]["rescued_patch"]).read_text().count("+more") == 1
    assert done["committed"]["commits"] == 1
    assert not done["committed"]["deleted_branch"]
    assert "1 commit" in done["committed"]["kept"]
    assert done["plain"]["rescued_patch"] is None
    assert done["plain"]["deleted_branch"]
    assert sorted(p.name for p in places.worktrees.iterdir()) == ["live"]
    assert sorted(agentloop_branches(repo)) == [
        "agentloop/autofix-committed",
        "agentloop/autofix-live",
    ]
    assert [p.name for p in places.runs.glob("*.json")] == ["live.json"]
    # Nothing of the user's: checkout, stash, branches, their own worktree.
    assert snapshot(repo) == before
    assert user_wt.exists()
    assert git.current_branch(user_wt) == "feature"

    # The live run is still fine, and finishes on its own terms.
    assert live.poll() is None
    assert clean(repo=repo, dry_run=False, as_json=False) == 0
    out = capsys.readouterr()
    assert "left alone: run live is running" in out.err
    assert "kept: branch agentloop/autofix-committed has 1 commit" in out.out


def test_clean_finishes_runs_whose_state_file_was_lost(repo: Path, start_run: Any) -> None:
    child = start_run(repo, "lost", "dirty")
    kill(child)
    places = Places.of(repo / ".git")
    places.state_file("lost").unlink()
    # A branch of ours nobody speaks for, with and without commits of its own.
    run_git(repo, "branch", "agentloop/autofix-stray")
    run_git(repo, "switch", "--quiet", "-c", "agentloop/autofix-work")
    (repo / "x.txt").write_text("x\n")
    run_git(repo, "add", "x.txt")
    run_git(repo, "commit", "--quiet", "-m", "work")
    run_git(repo, "switch", "--quiet", "main")
    # A directory in ours that git does not know: left alone.
    (places.worktrees / "mystery").mkdir()
    (places.worktrees / "mystery" / "data").write_text("?\n")
    (places.worktrees / "empty").mkdir()
    report = clean_leftovers(repo, dry_run=False)
    assert report.errors == []
    items = {(item.run_id, item.branch): item for item in report.items}
    lost = items[("lost", "agentloop/autofix-lost")]
    assert lost.removed_worktree
    assert lost.rescued is not None
    assert "+NEW = 1" in lost.rescued.read_text()
    assert lost.deleted_branch
    assert items[(None, "agentloop/autofix-stray")].deleted_branch
    work = items[(None, "agentloop/autofix-work")]
    assert not work.deleted_branch
    assert work.kept is not None
    assert "1 commit" in work.kept
    assert items[("mystery", None)].kept is not None
    assert items[("empty", None)].removed_worktree
    assert (places.worktrees / "mystery" / "data").exists()
    assert not (places.worktrees / "empty").exists()
    assert sorted(agentloop_branches(repo)) == ["agentloop/autofix-work"]


def test_clean_puts_a_killed_in_place_run_back(repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "in_place.py"
    script.write_text(
        textwrap.dedent(
            """\
            import os, pathlib, sys
            from agentloop.workspace import Workspace

            repo = pathlib.Path(sys.argv[1])
            with Workspace.open(repo, in_place=True, run_id="ip"):
                (repo / "README.md").write_text("in flight\\n")
                os._exit(9)  # no finally: as if killed
            """
        )
    )
    main = git.head_sha(repo)
    done = subprocess.run([sys.executable, str(script), str(repo)], check=False)
    assert done.returncode == 9
    assert git.current_branch(repo) == "agentloop/autofix-ip"
    report = clean_leftovers(repo, dry_run=False)
    assert [item.restored for item in report.items] == ["main"]
    assert git.current_branch(repo) == "main"
    assert git.head_sha(repo) == main
    assert not git.is_dirty(repo)
    assert report.items[0].rescued is not None
    assert "+in flight" in report.items[0].rescued.read_text()
    assert agentloop_branches(repo) == {}


def test_clean_unregisters_a_dead_runs_worktree_deleted_by_hand(repo: Path, start_run: Any) -> None:
    kill(start_run(repo, "gone", "dirty"))
    shutil.rmtree(worktree_of(repo, "gone"))
    report = clean_leftovers(repo, dry_run=False)
    assert report.errors == []
    [item] = report.items
    assert (item.removed_worktree, item.deleted_branch, item.rescued) == (True, True, None)
    assert [wt.path for wt in git.list_worktrees(repo)] == [repo.resolve()]
    assert agentloop_branches(repo) == {}


def test_the_lock_keeps_a_second_process_out(repo: Path) -> None:
    places = Places.of(repo / ".git")
    with locked(places):
        start = time.monotonic()
        with pytest.raises(WorkspaceError) as err, locked(places, timeout=0.3):
            pass
        assert time.monotonic() - start >= 0.3
        assert err.value.hint is not None
    with locked(places, timeout=0.3):
        pass


def test_clean_with_nothing_to_do(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert clean(repo=repo, dry_run=False, as_json=False) == 0
    assert "nothing to clean" in capsys.readouterr().out


def test_clean_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as err:
        clean(repo=tmp_path, dry_run=False, as_json=False)
    assert err.value.hint is not None


def test_run_state_round_trips(tmp_path: Path) -> None:
    state = RunState(
        run_id="r",
        pid=1,
        path="/p",
        branch="agentloop/autofix-r",
        base_sha="0" * 40,
        created_at="now",
        repo="/p",
    )
    assert RunState.from_json(state.to_json()) == state
    # A newer agentloop's extra fields do not stop an older clean.
    data = json.loads(state.to_json()) | {"future": 1}
    assert RunState.from_json(json.dumps(data)) == state


def test_clean_removes_a_killed_runs_judge_worktree_and_spares_a_live_ones(
    repo: Path, start_run: Any
) -> None:
    places = Places.of(repo / ".git")
    dead = start_run(repo, "dead", "judge")
    live = start_run(repo, "alive", "judge")
    kill(dead)
    assert clean(repo=repo, dry_run=False, as_json=True) == 0
    left = sorted(p.name for p in places.worktrees.iterdir())
    assert left == ["alive", "alive.judge"]
    # A judge's checkout holds no one's work: no patch is saved for it.
    assert not (places.rescued / "dead.judge.patch").exists()
    assert live.poll() is None


# ---------------------------------------------------------------- worktrees for any purpose


def test_a_workspace_from_another_commit_on_another_loops_branch(repo: Path) -> None:
    first = run_git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("later\n")
    run_git(repo, "commit", "-qam", "later")
    with Workspace.open(repo, base=first, branch_prefix="agentloop/build-") as ws:
        assert ws.branch == f"agentloop/build-{ws.run_id}"
        assert ws.base_sha == first
        assert run_git(ws.path, "rev-parse", "HEAD").strip() == first
        assert (ws.path / "README.md").read_text() != "later\n"
    # Nothing committed there: the branch goes with the worktree.
    assert run_git(repo, "branch", "--list", "agentloop/*") == ""
    with pytest.raises(WorkspaceError, match="not a commit"), Workspace.open(repo, base="nope"):
        pass
    with (
        pytest.raises(ValueError, match="under agentloop/"),
        Workspace.open(repo, branch_prefix="feature/"),
    ):
        pass


def test_a_jobs_worktree_is_on_its_own_branch_and_both_go_with_the_run(repo: Path) -> None:
    with Workspace.open(repo, setup=["touch made-by-setup"]) as ws:
        (ws.path / "README.md").write_text("a fix\n")
        run_git(ws.path, "commit", "-qam", "a fix")
        tip = run_git(ws.path, "rev-parse", "HEAD").strip()
        job = ws.worktree("job1", commit=tip, branch=f"{ws.branch}.job1")
        assert run_git(job, "rev-parse", "HEAD").strip() == tip
        assert run_git(job, "branch", "--show-current").strip() == f"{ws.branch}.job1"
        # workspace.setup ran there too.
        assert (job / "made-by-setup").exists()
        with pytest.raises(ValueError, match="agentloop/"):
            ws.worktree("job2", branch="main")
        branch = ws.branch
    assert not job.exists()
    # The run's branch has its fix and stays; the job's branch is gone.
    assert run_git(repo, "branch", "--list", "agentloop/*").split() == [branch]


def test_clean_removes_a_leftover_branch_of_any_agentloop_loop(repo: Path) -> None:
    run_git(repo, "branch", "agentloop/build-x.job1")
    report = clean_leftovers(repo, dry_run=False)
    assert any(
        item.branch == "agentloop/build-x.job1" and item.deleted_branch for item in report.items
    )
    assert run_git(repo, "branch", "--list", "agentloop/*") == ""
