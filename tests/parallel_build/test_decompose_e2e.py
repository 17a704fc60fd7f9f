"""`agentloop parallel-build "<request>" --plan-only` end to end: the real Claude Code CLI
bundled in claude-agent-sdk as the coordinator, against the scripted Messages API.

What only the real CLI can show: the coordinator session is offered the read tools and
nothing else (the tools in the API request the CLI makes), a write it tries anyway never
happens, and its final message, as the CLI reports it, becomes a manifest file that
validates. (The retries, the caps and the prompt's fences: test_decompose.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from agentloop.build import manifest as manifest_mod
from agentloop.build.decompose import READ_TOOLS
from agentloop.testing.build_fixture import BASE_FILES, MANIFEST_FILE, REQUEST, STREAMS
from agentloop.testing.build_fixture import manifest_text as fixture_manifest
from agentloop.testing.model_server import CWD, Match, ModelServer, Text, ToolUse, Turn, offline_env
from agentloop.testing.repos import git_init, run_cli, write_tree

from .test_decompose import COORDINATOR, WRITE_TOOLS, answer

WRITE_ID = "toolu_coordinator_write"


def test_the_real_coordinator_reads_and_its_manifest_validates(tmp_path: Path) -> None:
    files = {k: v for k, v in BASE_FILES.items() if k != MANIFEST_FILE}
    root = git_init(write_tree(tmp_path / "repo", files))
    script = [
        Turn(
            [
                ToolUse("Read", {"file_path": f"{CWD}/README.md"}),
                ToolUse("Write", {"file_path": f"{CWD}/planted.txt", "content": "x"}, id=WRITE_ID),
            ],
            match=Match(prompt=COORDINATOR, assistant_turns=0),
        ),
        Turn([Text(answer(fixture_manifest()))], match=Match(prompt=COORDINATOR)),
    ]
    with ModelServer(script) as server:
        done = run_cli(
            "parallel-build", REQUEST, "--plan-only", "--json", "--out", "plan.yaml",
            cwd=root, home=tmp_path / "home", timeout=120,
            extra_env=offline_env(tmp_path / "home", server.base_url),
        )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    doc = json.loads(done.stdout)
    assert (doc["manifest"], doc["command"]) == (
        "plan.yaml",
        "agentloop parallel-build --manifest plan.yaml",
    )
    plan = manifest_mod.load(root / "plan.yaml")
    assert [s.id for s in plan.streams] == list(STREAMS)
    assert plan.request == REQUEST
    # The model was offered the read tools only; the write it asked for did not happen.
    coordinator = [r for r in server.messages_requests() if COORDINATOR in r.conversation.prompt]
    offered = {t["name"] for t in coordinator[0].body.get("tools", ())}
    # (The CLI also sends a `DeferredToolPlaceholder`, a stand-in with no tool behind it.)
    assert set(READ_TOOLS) <= offered, offered
    assert not offered & WRITE_TOOLS, offered
    results = {r.tool_use_id: r for r in server.tool_results()}
    assert results[WRITE_ID].is_error, results[WRITE_ID]
    assert not (root / "planted.txt").exists()
    assert any("A todo app" in r.content for r in results.values())
