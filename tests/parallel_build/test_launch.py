"""/parallel-build's MCP tools behind the transport (build/launch.py): `build_plan`
validates a manifest and saves it under .agentloop/builds/, `parallel_build` starts a build
only from there and only when it is valid, and `build_status` reports the detached build's
result. The build is a real background process on a real repository with real pytest,
the scripted agent standing in for the model (tests/parallel_build/scripted_agentloop.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agentloop import output
from agentloop.build import launch
from agentloop.commands import mcp
from agentloop.errors import AgentloopError
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import ForbiddenPaths
from agentloop.testing.repos import git_init, pytest_project

MANIFEST = """\
request: Orders carry a total
streams:
  - id: api
    title: The total
    template: api-endpoint
    prompt: Add total(prices) in api/total.py with a test.
    owns: ["api/**"]
"""
# Two problems the validator names: a cycle, and a stream reaching a forbidden path.
INVALID = """\
request: r
streams:
  - {id: a, title: a, template: custom, prompt: p, owns: ['a/**'], depends_on: [b]}
  - {id: b, title: b, template: custom, prompt: p, owns: ['auth/**'], depends_on: [a]}
"""
HELPER = [sys.executable, str(Path(__file__).with_name("scripted_agentloop.py"))]


def schema(name: str) -> dict[str, Any]:
    text = resources.files("agentloop.schemas").joinpath(name).read_text()
    return dict(json.loads(text))


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, git_identity: None) -> Path:
    return git_init(
        pytest_project(
            tmp_path / "repo",
            {"api/__init__.py": "", "tests/test_ok.py": "def test_ok():\n    assert True\n"},
        )
    )


def test_a_valid_manifest_is_saved_with_its_plan(repo: Path) -> None:
    planned = launch.plan(repo, MANIFEST, "order-total")
    assert planned.path == ".agentloop/builds/order-total.yaml"
    assert (repo / planned.path).read_text() == MANIFEST
    jsonschema.validate(planned.doc, schema("build-plan.schema.json"))
    assert planned.doc["waves"] == [["api"]]
    assert planned.doc["streams"][0]["owns"] == ["api/**"]


def test_an_invalid_manifest_is_refused_with_every_problem_and_nothing_saved(
    repo: Path,
) -> None:
    with pytest.raises(AgentloopError) as caught:
        launch.plan(repo, INVALID, "broken")
    message = caught.value.message
    assert message.startswith("the manifest: 2 problems in the manifest")
    assert "dependency cycle: a → b → a" in message
    assert "stream `b` owns auth/**, which reaches paths no stream may write" in message
    assert not (repo / launch.BUILDS).exists()
    with pytest.raises(launch.Refused, match="cannot name a manifest"):
        launch.plan(repo, MANIFEST, "../../escape")


def test_the_agent_cannot_write_a_manifest_where_a_build_starts_from(repo: Path) -> None:
    # Why build_plan saves it: the interactive guard refuses the agent's Write there (and
    # init's sandbox settings make the folder read-only to its commands).
    guard = make_guard(ForbiddenPaths.with_protected((), root=str(repo)), interactive=True)
    path = str(repo / launch.BUILDS / "mine.yaml")
    assert guard("Write", {"file_path": path, "content": MANIFEST}) is not None


@pytest.mark.parametrize(
    "where",
    ["build.yaml", ".agentloop/elsewhere.yaml", ".agentloop/builds/../b.yaml", "link.yaml"],
)
def test_a_build_starts_only_from_a_manifest_in_agentloops_builds_folder(
    repo: Path, where: str
) -> None:
    (repo / "build.yaml").write_text(MANIFEST)
    (repo / ".agentloop/builds").mkdir(parents=True)
    (repo / ".agentloop/elsewhere.yaml").write_text(MANIFEST)
    (repo / ".agentloop/b.yaml").write_text(MANIFEST)
    # A link inside the folder that points out of it counts as where it points.
    os.symlink(repo / "build.yaml", repo / ".agentloop/builds/link.yaml")
    name = ".agentloop/builds/link.yaml" if where == "link.yaml" else where
    with pytest.raises(launch.Refused, match=r"is not a manifest in \.agentloop/builds/"):
        launch.start(repo, name, command=HELPER)
    assert [p.name for p in (repo / ".agentloop/builds").iterdir()] == ["link.yaml"]


def test_no_build_starts_from_a_builds_folder_that_is_a_link(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.yaml").write_text(MANIFEST)
    (repo / ".agentloop").mkdir()
    os.symlink(elsewhere, repo / ".agentloop/builds")
    with pytest.raises(launch.Refused, match="is a symbolic link"):
        launch.start(repo, ".agentloop/builds/b.yaml", command=HELPER)
    assert [p.name for p in elsewhere.iterdir()] == ["b.yaml"]


def test_an_invalid_manifest_in_the_folder_starts_no_build(repo: Path) -> None:
    # One the user edited by hand since build_plan saved it.
    (repo / ".agentloop/builds").mkdir(parents=True)
    (repo / ".agentloop/builds/edited.yaml").write_text(INVALID)
    with pytest.raises(AgentloopError, match="dependency cycle: a → b → a"):
        launch.start(repo, ".agentloop/builds/edited.yaml", command=HELPER)
    assert [p.name for p in (repo / ".agentloop/builds").iterdir()] == ["edited.yaml"]


def test_a_started_build_runs_in_the_background_and_its_status_gives_the_result(
    repo: Path,
) -> None:
    before = git(repo, "rev-parse", "HEAD").strip()
    saved = launch.plan(repo, MANIFEST, "order-total").path
    # A start that failed half-way long ago holds up no later build.
    (repo / launch.BUILDS / "20260101T000000Z").mkdir()
    started = launch.start(repo, saved, command=HELPER)
    assert started.directory == f".agentloop/builds/{started.run}"
    with pytest.raises(launch.Refused, match=f"build {started.run} is still running here"):
        launch.start(repo, saved, command=HELPER)
    found = launch.status(repo, started.run, wait_s=90, poll_s=0.2)
    doc = output.build_status_doc(found)
    jsonschema.validate(doc, schema("build-status.schema.json"))
    assert doc["state"] == "finished", doc
    assert doc["exit_code"] == 0, doc
    assert [(s["id"], s["outcome"], s["merge"]) for s in doc["streams"]] == [
        ("api", "built", "merged")
    ]
    result = json.loads((repo / str(doc["result"])).read_text())
    jsonschema.validate(result, schema("build.schema.json"))
    # One local commit on the build branch, holding the stream's files; the user's
    # checkout and branch untouched; nothing pushed (there is no remote to push to).
    branch = doc["branch"]
    assert branch.startswith("agentloop/build-")
    assert git(repo, "rev-list", f"{before}..{branch}").split() == [doc["commit"]]
    assert git(repo, "show", "--name-only", "--format=", branch).split() == [
        "api/test_total.py",
        "api/total.py",
    ]
    assert git(repo, "rev-parse", "HEAD").strip() == before
    assert not (repo / "api/total.py").exists()
    assert branch in doc["next"]
    assert (repo / launch.BUILDS / started.run / "manifest.yaml").read_text() == MANIFEST
    # Its progress went to the log as lines (stderr was no terminal), for build_status.
    log = (repo / launch.BUILDS / started.run / "build.log").read_text()
    assert "baseline: running the suites on the base" in log, log


def test_the_status_of_a_build_that_died_or_never_was(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = launch.plan(repo, MANIFEST, "order-total").path
    # The server runs in a Claude Code session; the build is not part of it.
    monkeypatch.setenv("CLAUDE_CODE_SESSION_ID", "3c2b1a09-8f7e-4d6c-9b5a-0f1e2d3c4b5a")
    monkeypatch.setenv("CLAUDECODE", "1")
    dump = "import json, os; json.dump(sorted(os.environ), open('env.json', 'w'))"
    started = launch.start(repo, saved, command=[sys.executable, "-c", dump])
    assert launch.status(repo, started.run, wait_s=30, poll_s=0.05).state == "finished"
    seen = json.loads((repo / "env.json").read_text())
    assert "HOME" in seen
    assert not {"CLAUDE_CODE_SESSION_ID", "CLAUDECODE"} & set(seen)
    # A build killed before it could write anything: its pid is gone, no exit status.
    directory = repo / launch.BUILDS / started.run
    (directory / "exit").unlink()
    record = json.loads((directory / "run.json").read_text())
    record["pid"] = 2**22 + 1  # above any pid_max: no such process
    (directory / "run.json").write_text(json.dumps(record))
    ended = output.build_status_doc(launch.status(repo, started.run))
    assert (ended["state"], ended["result"], ended["branch"]) == ("ended", None, None)
    assert "stopped without a result" in ended["next"]
    with pytest.raises(launch.Refused, match="no build 'nope' was started here"):
        launch.status(repo, "nope")
    with pytest.raises(launch.Refused, match="no build"):
        launch.status(repo, "../../etc")


def test_the_tools_through_agentloops_mcp_server(repo: Path) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    server = mcp.server(repo)
    planned = asyncio.run(server.call_tool("build_plan", {"manifest": MANIFEST, "name": "t"}))
    text = planned.content[0].text
    assert json.loads(text)["saved"] == ".agentloop/builds/t.yaml"
    with pytest.raises(ToolError, match=r"no build started: build\.yaml is not a manifest in"):
        asyncio.run(server.call_tool("parallel_build", {"manifest": "build.yaml"}))
    with pytest.raises(ToolError, match="not valid: the manifest: 2 problems"):
        asyncio.run(server.call_tool("build_plan", {"manifest": INVALID, "name": "t"}))
