"""`agentloop init --workflows` on real git repositories through the real CLI: the GitHub
Actions workflows land in .github/workflows/ as the package ships them, beside the user's
own; a later init keeps them up to date but never takes an edit of the user's; uninstall
takes out exactly what init put in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from agentloop.install import files, settings
from agentloop.testing.repos import git_init, run_cli, write_tree
from agentloop.testing.trees import snapshot

WORKFLOWS = {w.path: w.data for w in files.workflows()}
AUTOFIX = ".github/workflows/autofix.yml"
MATRIX = ".github/workflows/autofix-matrix.yml"
PRODUCTION = ".github/workflows/auto-fix-production.yml"
USERS_CI = "name: ci\non: push\njobs: {}\n"


def init(root: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("init", *args, cwd=root, home=home, timeout=120)


def repo(root: Path, tree: dict[str, str] | None = None) -> Path:
    return git_init(write_tree(root, tree or {"README.md": "hello\n"}))


def test_the_package_ships_its_workflows_marked() -> None:
    assert sorted(WORKFLOWS) == [PRODUCTION, MATRIX, AUTOFIX]
    for path, data in WORKFLOWS.items():
        assert files.is_marked(data), path


def test_workflows_install_beside_the_users_own_and_uninstall_leaves_no_trace(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p", {"README.md": "hello\n", ".github/workflows/ci.yml": USERS_CI})
    before = snapshot(root)
    done = init(root, isolated_home, "--workflows")
    assert done.returncode == 0, done.stderr
    for path, data in WORKFLOWS.items():
        assert (root / path).read_bytes() == data
        assert (root / path).stat().st_mode & 0o777 == 0o644
        assert f"created {path}" in done.stdout
    assert (root / ".github/workflows/ci.yml").read_text() == USERS_CI
    # What the user must do on GitHub is said at once.
    assert "ANTHROPIC_API_KEY" in done.stderr
    assert "create and approve pull requests" in done.stderr
    # The agent's sessions may not write the workflows (forbidden by default).
    deny = json.loads((root / settings.PATH).read_text())["sandbox"]["filesystem"]["denyWrite"]
    assert ".github/workflows" in deny
    undone = init(root, isolated_home, "--uninstall")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert snapshot(root) == before


def test_uninstall_removes_the_github_folder_init_created(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    before = snapshot(root)
    assert init(root, isolated_home, "--workflows").returncode == 0
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert snapshot(root) == before
    assert not (root / ".github").exists()


def test_plain_init_installs_no_workflow_but_keeps_installed_ones(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    assert init(root, isolated_home).returncode == 0
    assert not (root / ".github").exists()
    assert init(root, isolated_home, "--workflows").returncode == 0
    again = init(root, isolated_home)
    assert again.returncode == 0, again.stderr
    assert f"unchanged {AUTOFIX}" in again.stdout
    assert "already installed" in again.stdout
    # A workflow the user deleted stays deleted, until they ask for the workflows again.
    (root / MATRIX).unlink()
    dropped = init(root, isolated_home)
    assert dropped.returncode == 0, dropped.stderr
    assert not (root / MATRIX).exists()
    assert MATRIX not in json.loads((root / files.MANIFEST).read_text())["files"]
    back = init(root, isolated_home, "--workflows")
    assert f"created {MATRIX}" in back.stdout
    assert (root / MATRIX).read_bytes() == WORKFLOWS[MATRIX]


def test_an_edited_workflow_is_the_users_and_survives_init_and_uninstall(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    assert init(root, isolated_home, "--workflows").returncode == 0
    mine = WORKFLOWS[AUTOFIX].replace(b'python-version: "3.12"', b'python-version: "3.11"')
    assert mine != WORKFLOWS[AUTOFIX]
    (root / AUTOFIX).write_bytes(mine)
    # The template says to edit it: that is no conflict that stops every later init.
    for args in ((), ("--workflows",)):
        kept = init(root, isolated_home, *args)
        assert kept.returncode == 0, kept.stderr
        assert f"kept {AUTOFIX}" in kept.stdout
        assert (root / AUTOFIX).read_bytes() == mine
    undone = init(root, isolated_home, "--uninstall")
    assert undone.returncode == 1
    assert f"kept {AUTOFIX}" in undone.stdout
    assert (root / AUTOFIX).read_bytes() == mine
    assert not (root / MATRIX).exists()


def test_force_takes_the_packages_workflow_and_keeps_a_copy(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    assert init(root, isolated_home, "--workflows").returncode == 0
    mine = WORKFLOWS[AUTOFIX] + b"# mine\n"
    (root / AUTOFIX).write_bytes(mine)
    forced = init(root, isolated_home, "--workflows", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (root / AUTOFIX).read_bytes() == WORKFLOWS[AUTOFIX]
    assert (root / files.BACKUPS / AUTOFIX).read_bytes() == mine
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert (root / AUTOFIX).read_bytes() == mine


def test_the_users_own_workflow_of_that_name_is_refused_without_force(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p", {AUTOFIX: USERS_CI})
    before = snapshot(root)
    refused = init(root, isolated_home, "--workflows")
    assert refused.returncode == 2
    assert AUTOFIX in refused.stderr
    assert "not installed by agentloop init" in refused.stderr
    assert snapshot(root) == before
    assert init(root, isolated_home, "--workflows", "--force").returncode == 0
    assert (root / files.BACKUPS / AUTOFIX).read_text() == USERS_CI
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert snapshot(root) == before


def test_uninstall_without_a_record_names_a_workflow_of_ours(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p", {AUTOFIX: WORKFLOWS[AUTOFIX].decode()})
    refused = init(root, isolated_home, "--uninstall")
    assert refused.returncode == 2
    assert AUTOFIX in refused.stderr


def test_workflows_and_uninstall_do_not_mix(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p")
    done = init(root, isolated_home, "--uninstall", "--workflows")
    assert done.returncode == 2
    assert "--workflows" in done.stderr
    assert "hint:" in done.stderr
