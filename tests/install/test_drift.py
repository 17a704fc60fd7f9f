"""agentloop's own repository runs what it ships: its .claude/ is what `agentloop init`
installs from the package, byte for byte. Edit src/agentloop/assets/claude/ and then run
`agentloop init` here (with --force if you edited .claude/ directly), never one without
the other."""

from __future__ import annotations

import json
from pathlib import Path

from agentloop.install import files, mcpjson, settings

REPO = Path(__file__).resolve().parents[2]
FIX = (
    "run `.venv/bin/agentloop init` at the repository root "
    "(add --force to take the package's version)"
)


def test_the_repositorys_claude_files_are_the_packages() -> None:
    for asset in files.assets():
        installed = REPO / asset.path
        assert installed.is_file(), f"{asset.path} is missing: {FIX}"
        assert installed.read_bytes() == asset.data, f"{asset.path} differs from the package: {FIX}"


def test_the_repositorys_settings_register_exactly_our_hooks() -> None:
    path = REPO / settings.PATH
    assert path.is_file(), f"{settings.PATH} is missing: {FIX}"
    doc = json.loads(path.read_text("utf-8"))
    assert settings.problem(doc) is None
    assert settings.ours(doc) == {h.event: [h.group()] for h in settings.HOOKS}, FIX
    # The sandbox is on for sessions in this repository too. (Its paths depend on the
    # checkout: a .venv holding agentloop is listed; nothing of this machine's is.)
    sandbox = doc.get("sandbox", {})
    assert sandbox.get("enabled") is True, FIX
    assert sandbox.get("allowUnsandboxedCommands") is False, FIX
    assert ".git" in sandbox["filesystem"]["denyWrite"], FIX
    assert mcpjson.NAME in doc.get("enabledMcpjsonServers", []), FIX
    assert str(REPO) not in path.read_text("utf-8")


def test_the_repositorys_mcp_json_registers_our_server() -> None:
    path = REPO / mcpjson.PATH
    assert path.is_file(), f"{mcpjson.PATH} is missing: {FIX}"
    servers = json.loads(path.read_text("utf-8"))["mcpServers"]
    assert servers[mcpjson.NAME] == mcpjson.server(), FIX


def test_no_marked_file_that_the_package_does_not_ship() -> None:
    shipped = {a.path for a in files.assets()}
    strays = sorted(
        path.relative_to(REPO).as_posix()
        for path in (REPO / files.CLAUDE_DIR).rglob("*")
        if path.is_file()
        and files.is_marked(path.read_bytes())
        and path.relative_to(REPO).as_posix() not in shipped
    )
    assert not strays, f"agentloop files the package no longer ships: {strays}"
