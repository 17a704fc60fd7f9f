"""/auto-fix-production's MCP tools behind the transport (heal/launch.py): `heal_triage`
runs the dry run and hands back its document or its error, `heal_start` refuses bad
arguments and starts a detached `agentloop heal --no-publish --json` without the Claude
Code session's variables, one at a time, and `heal_status` reports its result and the
publish command the human runs. `agentloop` is a small stand-in script here (what it ran
with, as its --json document): the real command's work is tested with the command."""

from __future__ import annotations

import asyncio
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agentloop import output
from agentloop.errors import AgentloopError
from agentloop.heal import launch as heal_launch
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import ForbiddenPaths
from agentloop.testing.repos import git_init, write_tree

RUN_DIR = ".agentloop/runs/20261130T162200Z"
# `agentloop` for the tests: records its arguments and environment in its --json document,
# writes the run directory `agentloop heal` would, waits for `release` when asked to (the
# one-at-a-time test), exits with AGENTLOOP_TEST_EXIT.
STAND_IN = f"""
import json, os, pathlib, sys, time
args = sys.argv[1:]
hold = os.environ.get("AGENTLOOP_TEST_HOLD")
deadline = time.monotonic() + 20
while hold and not pathlib.Path(hold).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
run_dir = pathlib.Path({RUN_DIR!r})
if "--dry-run" not in args:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "heal.json").write_text("{{}}")
code = int(os.environ.get("AGENTLOOP_TEST_EXIT", "0"))
doc = {{"args": args, "env": sorted(os.environ), "cwd": os.getcwd()}}
if code >= 2:
    doc = {{"error": {{"message": "sentry.organization is not set", "hint": "set it",
                      "exit_code": code}}}}
elif "--dry-run" not in args:
    doc["run_dir"] = os.environ.get("AGENTLOOP_TEST_RUN_DIR", str(run_dir))
print(json.dumps(doc))
print("reading the unresolved Sentry issues", file=sys.stderr)
sys.exit(code)
"""
COMMAND = [sys.executable, "-c", STAND_IN]
SESSION = {
    "CLAUDECODE": "1",
    "CLAUDE_CODE_SESSION_ID": "abc",
    "CLAUDE_CODE_ENTRYPOINT": "cli",
    "CLAUDE_PROJECT_DIR": "/somewhere",
}


def schema(name: str) -> dict[str, Any]:
    return dict(json.loads(resources.files("agentloop.schemas").joinpath(name).read_text()))


@pytest.fixture
def repo(tmp_path: Path, git_identity: None) -> Path:
    return git_init(write_tree(tmp_path / "repo", {"README.md": "shop\n"}))


def environ(**extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **SESSION, **extra}


def finished(repo: Path, run: str) -> heal_launch.HealStatus:
    found = heal_launch.status(repo, run, wait_s=30, poll_s=0.05)
    assert found.state == "finished", found
    return found


@pytest.mark.parametrize(
    ("allow_sensitive", "max_fixes", "why"),
    [
        (False, 0, "between 1 and 20"),
        (False, 21, "between 1 and 20"),
        (False, -3, "between 1 and 20"),
        (False, True, "whole number"),  # a bool is an int to Python
        (False, "5", "whole number"),
        ("yes", 5, "true or false"),
        (1, None, "true or false"),
    ],
)
def test_heal_start_refuses_bad_arguments_and_starts_nothing(
    repo: Path, allow_sensitive: Any, max_fixes: Any, why: str
) -> None:
    with pytest.raises(AgentloopError, match=why):
        heal_launch.start(
            repo, allow_sensitive=allow_sensitive, max_fixes=max_fixes, command=COMMAND
        )
    assert not (repo / heal_launch.HEALS).exists()


def test_a_started_heal_runs_detached_without_the_sessions_variables_and_reports(
    repo: Path,
) -> None:
    started = heal_launch.start(
        repo,
        allow_sensitive=True,
        max_fixes=3,
        command=COMMAND,
        environ=environ(SENTRY_AUTH_TOKEN="sntrys_x", ANTHROPIC_API_KEY="k"),
    )
    assert started.directory == f"{heal_launch.HEALS}/{started.run}"
    found = finished(repo, started.run)
    assert found.exit_code == 0
    result = found.result or {}
    # Always --no-publish; the user's choices as flags; on this project.
    assert result["args"] == [
        "heal", "-C", str(repo.resolve()), "--no-publish", "--json",
        "--allow-sensitive", "--max-fixes", "3",
    ]  # fmt: skip
    assert Path(result["cwd"]) == repo.resolve()
    # A run of its own, as from the user's terminal, with what it needs to read Sentry and
    # run the model; none of the Claude Code session's variables.
    assert not set(SESSION) & set(result["env"])
    assert {"SENTRY_AUTH_TOKEN", "ANTHROPIC_API_KEY"} <= set(result["env"])
    assert "reading the unresolved Sentry issues" in found.log_tail
    doc = output.heal_status_doc(found)
    jsonschema.validate(doc, schema("heal-status.schema.json"))
    assert doc["run_dir"] == RUN_DIR
    # Publishing is the human's command, printed, never run.
    assert doc["publish"] == f"agentloop heal --publish {RUN_DIR} --yes"
    assert doc["publish"] in doc["next"]


def test_defaults_leave_the_choices_to_the_configuration(repo: Path) -> None:
    started = heal_launch.start(repo, command=COMMAND, environ=environ())
    args = (finished(repo, started.run).result or {})["args"]
    assert args == ["heal", "-C", str(repo.resolve()), "--no-publish", "--json"]


def test_one_heal_at_a_time_and_status_waits_for_the_end(repo: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    first = heal_launch.start(
        repo, command=COMMAND, environ=environ(AGENTLOOP_TEST_HOLD=str(release))
    )
    assert heal_launch.status(repo, first.run).state == "running"
    with pytest.raises(AgentloopError, match=f"heal run {first.run} is still running"):
        heal_launch.start(repo, command=COMMAND, environ=environ())
    running = output.heal_status_doc(heal_launch.status(repo, first.run))
    jsonschema.validate(running, schema("heal-status.schema.json"))
    assert running["result"] is None
    assert running["publish"] is None
    release.touch()
    assert finished(repo, first.run).exit_code == 0
    second = heal_launch.start(repo, command=COMMAND, environ=environ())
    assert second.run != first.run


def test_a_failed_heal_has_no_publish_command(repo: Path) -> None:
    started = heal_launch.start(repo, command=COMMAND, environ=environ(AGENTLOOP_TEST_EXIT="4"))
    found = finished(repo, started.run)
    assert found.exit_code == 4
    doc = output.heal_status_doc(found)
    jsonschema.validate(doc, schema("heal-status.schema.json"))
    assert doc["publish"] is None
    assert "did not run" in doc["next"]


@pytest.mark.parametrize(
    "named",
    [
        "../../etc",
        "/tmp/x",
        ".agentloop/runs/../../x",
        "runs/20261130T162200Z",
        "/p/.agentloop/runs/../runs/20261130T162200Z",
        ".agentloop/runs/20261130T162200Z; rm -rf ~",
    ],
)
def test_only_a_run_directory_of_agentloops_becomes_a_publish_command(
    repo: Path, named: str
) -> None:
    started = heal_launch.start(
        repo, command=COMMAND, environ=environ(AGENTLOOP_TEST_RUN_DIR=named)
    )
    found = finished(repo, started.run)
    assert found.run_dir is None
    assert found.publish_command is None


def test_the_run_directory_as_the_command_names_it_absolute(repo: Path) -> None:
    # `agentloop heal --json` names its run directory by its absolute path.
    named = str(repo.resolve() / RUN_DIR)
    started = heal_launch.start(
        repo, command=COMMAND, environ=environ(AGENTLOOP_TEST_RUN_DIR=named)
    )
    found = finished(repo, started.run)
    assert found.run_dir == named
    assert found.publish_command == f"agentloop heal --publish {named} --yes"


def test_status_of_a_run_never_started(repo: Path) -> None:
    for run in ("20261130T000000Z", "../builds", ""):
        with pytest.raises(AgentloopError, match="no heal run"):
            heal_launch.status(repo, run)


def test_the_agent_cannot_forge_a_heal_runs_result(repo: Path) -> None:
    # The folder the status reads is agentloop's state: the guard keeps the agent's file
    # tools out of it (the sandbox keeps its commands out: test_init_sandbox).
    guard = make_guard(ForbiddenPaths.with_protected((), root=str(repo)), interactive=True)
    target = str(repo / heal_launch.HEALS / "20261130T000000Z" / "heal.json")
    assert guard("Write", {"file_path": target, "content": "{}"}) is not None


def test_the_triage_is_the_dry_runs_document_or_its_error(repo: Path) -> None:
    doc = heal_launch.triage(repo, command=COMMAND, environ=environ(SENTRY_AUTH_TOKEN="t"))
    assert doc["args"] == ["heal", "-C", str(repo.resolve()), "--dry-run", "--json"]
    assert not set(SESSION) & set(doc["env"])
    assert not (repo / ".agentloop" / "runs").exists()  # read-only: no run directory
    with pytest.raises(AgentloopError, match=r"failed \(exit 2\): sentry.organization") as exc:
        heal_launch.triage(repo, command=COMMAND, environ=environ(AGENTLOOP_TEST_EXIT="2"))
    assert exc.value.hint == "set it"


def test_the_tools_through_agentloops_mcp_server(repo: Path) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    from agentloop.commands import mcp
    from agentloop.install import mcpjson

    server = mcp.server(repo)
    tools = {t.name for t in asyncio.run(server.list_tools())}
    assert {"heal_triage", mcpjson.HEAL_TOOL, "heal_status"} <= tools
    # Starting one runs the project's code outside the sandbox: init has Claude Code ask.
    assert f"mcp__agentloop__{mcpjson.HEAL_TOOL}" in mcpjson.ASK
    for bad in ({"max_fixes": 0}, {"max_fixes": 99}, {"allow_sensitive": True, "max_fixes": -1}):
        with pytest.raises(ToolError, match="no heal run started: max_fixes"):
            asyncio.run(server.call_tool(mcpjson.HEAL_TOOL, bad))
    assert not (repo / heal_launch.HEALS).exists()
    with pytest.raises(ToolError, match="no heal run 'nope'"):
        asyncio.run(server.call_tool("heal_status", {"run": "nope"}))
