"""What `agentloop init` adds for the sandbox: Claude Code's sandbox and permission deny rules
in .claude/settings.json, agentloop's MCP server in .mcp.json (approved by name in the
settings), and the absolute agentloop the hooks run in .agentloop/command; merged with
the user's own, replaced in place on re-init, and taken out by --uninstall byte for byte.
Real git repositories, the real CLI (`python -m agentloop`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentloop import locks
from agentloop.install import files, mcpjson, settings
from agentloop.testing.repos import git_init, run_cli, write_tree
from agentloop.testing.trees import snapshot

USERS_SETTINGS = """\
{
  "sandbox": {"enabled": false, "filesystem": {"denyWrite": ["secrets", ".git"]}},
  "permissions": {"deny": ["Bash(rm -rf *)"], "allow": ["Bash(make test)", "mcp__agentloop"]},
  "enabledMcpjsonServers": ["github"]
}
"""
USERS_MCP = '{"mcpServers": {"github": {"command": "gh-mcp", "args": ["--stdio"]}}}'


def init(root: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("init", *args, cwd=root, home=home, timeout=120)


def settings_doc(root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((root / settings.PATH).read_text())
    return doc


def test_the_users_sandbox_mcp_servers_and_rules_survive_and_come_back_byte_for_byte(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = git_init(
        write_tree(
            tmp_path / "p",
            {
                ".claude/settings.json": USERS_SETTINGS,
                ".mcp.json": USERS_MCP,
                "auth/login.py": "x = 1\n",
            },
        )
    )
    before = snapshot(root)
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    # The user turned the sandbox off; init turns it on and says so.
    assert "sandbox.enabled was false; agentloop sets true" in done.stderr + done.stdout
    doc = settings_doc(root)
    assert settings.problem(doc) is None
    assert doc["sandbox"]["enabled"] is True
    deny_write = doc["sandbox"]["filesystem"]["denyWrite"]
    assert deny_write[:2] == ["secrets", ".git"]  # the user's, where they were
    assert deny_write.count(".git") == 1  # theirs already: not added twice
    assert "auth" in deny_write
    assert doc["permissions"]["deny"][0] == "Bash(rm -rf *)"
    # Init pre-approves nothing; and a build (it runs the project's code outside the
    # sandbox) is asked about every time, even past the user's allow of the whole server.
    assert doc["permissions"]["allow"] == ["Bash(make test)", "mcp__agentloop"]
    assert doc["permissions"]["ask"] == [
        "mcp__agentloop__parallel_build",
        "mcp__agentloop__heal_start",
    ]
    # The manifests a build starts from and its results: read-only to the agent's commands.
    assert ".agentloop/builds" in deny_write
    assert ".agentloop/heals" in deny_write  # a heal run's record and result, alike
    assert doc["enabledMcpjsonServers"] == ["github", "agentloop"]
    skill = root / ".claude/skills/parallel-build/SKILL.md"
    assert skill.read_bytes() == next(
        a.data for a in files.assets() if a.path.endswith("parallel-build/SKILL.md")
    )
    assert (
        ".claude/skills/parallel-build/SKILL.md"
        in json.loads((root / files.MANIFEST).read_text())["files"]
    )
    servers = json.loads((root / mcpjson.PATH).read_text())["mcpServers"]
    assert list(servers) == ["github", "agentloop"]
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert snapshot(root) == before


def test_reinit_follows_the_configuration_in_place(tmp_path: Path, isolated_home: Path) -> None:
    config = {"agentloop.yaml": "sandbox:\n  network: [a.org]\n"}
    root = git_init(write_tree(tmp_path / "p", config))
    assert init(root, isolated_home).returncode == 0
    doc = settings_doc(root)
    doc["permissions"]["deny"].append("Bash(curl *)")  # the user's, after ours
    (root / settings.PATH).write_text(json.dumps(doc, indent=2) + "\n")
    write_tree(
        root,
        {
            "agentloop.yaml": "sandbox:\n  network: [pypi.org]\n"
            "rails:\n  forbidden_paths: ['**/billing/**']\n  secret_paths: ['*.pem']\n",
            "billing/x.py": "b = 1\n",
        },
    )
    assert init(root, isolated_home).returncode == 0
    again = settings_doc(root)
    assert again["sandbox"]["network"]["allowedDomains"] == ["pypi.org"]
    assert "billing" in again["sandbox"]["filesystem"]["denyWrite"]
    assert "Edit(/**/auth/**)" not in again["permissions"]["deny"]
    assert "Read(/**/.env*)" not in again["permissions"]["deny"]
    assert "Read(/**/*.pem)" in again["permissions"]["deny"]
    # The user's rule stays, after the ours that stayed; new ones of ours come after it.
    deny = again["permissions"]["deny"]
    assert deny.index("Edit(/.git)") < deny.index("Bash(curl *)") < deny.index("Edit(/billing)")
    assert "agentloop is already installed" in init(root, isolated_home).stdout
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert settings_doc(root) == {"permissions": {"deny": ["Bash(curl *)"]}}


def test_the_hooks_run_the_agentloop_init_ran_as(tmp_path: Path, isolated_home: Path) -> None:
    root = git_init(write_tree(tmp_path / "p", {"README.md": "hi\n"}))
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    command = Path(os.path.realpath(Path(sys.executable).parent / "agentloop"))
    assert (root / ".agentloop/command").read_text() == f"{command}\n"
    assert f"created .agentloop/command ({command})" in done.stdout
    # Ours to remove: uninstall takes it with the rest.
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert not (root / ".agentloop").exists()


def test_a_server_of_the_users_named_agentloop_is_not_overwritten_without_force(
    tmp_path: Path, isolated_home: Path
) -> None:
    theirs = '{"mcpServers": {"agentloop": {"command": "my-agentloop"}}}\n'
    root = git_init(write_tree(tmp_path / "p", {".mcp.json": theirs}))
    refused = init(root, isolated_home)
    assert refused.returncode == 2
    assert ".mcp.json (a server of yours is named 'agentloop')" in refused.stderr
    assert (root / ".mcp.json").read_text() == theirs
    forced = init(root, isolated_home, "--force")
    assert forced.returncode == 0, forced.stderr
    assert mcpjson.ours(json.loads((root / ".mcp.json").read_text())["mcpServers"]["agentloop"])
    assert (root / files.BACKUPS / ".mcp.json").read_text() == theirs


def test_uninstall_lets_go_of_a_hold_a_killed_session_left(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = git_init(write_tree(tmp_path / "p", {"notes.md": "n\n"}))
    before = snapshot(root)
    assert init(root, isolated_home).returncode == 0
    locks.hold(root, "0b9f3c6e-5a44-4a59-9a55-3c3b1f7f0d11", ["notes.md"])
    assert (root / locks.LOCAL_SETTINGS).exists()
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert snapshot(root) == before
