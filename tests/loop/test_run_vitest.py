"""`agentloop run` on a real vitest project, sandbox and judge included: the worktree gets
its node_modules from `workspace.setup`, the agent's shell sees it read-only, and the
judge's worktree runs the original test against the fix through a link to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentloop.agents import sandbox
from agentloop.testing.model_server import CWD, Match, Text, ToolUse, Turn
from agentloop.testing.npm import make_vitest_project
from agentloop.testing.repos import git_init

from .test_run_e2e import git_out, run_agentloop, snapshot

_MISSING = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]
pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(bool(_MISSING), reason=f"needs node and npm on PATH; missing: {_MISSING}"),
    pytest.mark.skipif(
        sandbox.unavailable() is not None, reason=f"no OS sandbox: {sandbox.unavailable()}"
    ),
]
NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm"


def project(tmp_path: Path, test: str) -> Path:
    root = make_vitest_project(
        tmp_path / "web",
        {
            "src/math.js": "export const add = (a, b) => a - b\n",
            "test/math.test.js": test,
            ".gitignore": "node_modules/\n",
        },
        NPM_CACHE,
    )
    # The worktree gets the same node_modules (links into the shared install), as `npm ci`
    # would make it.
    (root / "agentloop.yaml").write_text(
        "workspace:\n"
        f"  setup: ['cp -a {root}/node_modules node_modules']\n"
        "detect:\n  flaky_reruns: 0\nrun:\n  max_attempts: 1\n"
    )
    return git_init(root)


TEST = (
    "import { add } from '../src/math.js'\n"
    "import { test, expect } from 'vitest'\n"
    "test('adds', () => expect(add(2, 3)).toBe(5))\n"
)


def script(*calls: ToolUse) -> list[Turn]:
    turns = [Turn([c], match=Match(assistant_turns=n)) for n, c in enumerate(calls)]
    return [*turns, Turn([Text("Done.")], match=Match(assistant_turns=len(calls)))]


def test_an_honest_js_fix_is_judged_and_committed(tmp_path: Path) -> None:
    root = project(tmp_path, TEST)
    before = snapshot(root)
    turns = script(
        ToolUse("Edit", {"file_path": f"{CWD}/src/math.js", "old_string": "a - b",
                         "new_string": "a + b"}),
        ToolUse("Bash", {"command": "node_modules/.bin/vitest run 2>&1 | tail -4"}),
    )  # fmt: skip
    done, doc, server = run_agentloop(root, tmp_path / "home", turns)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert snapshot(root) == before
    (task,) = doc["tasks"]
    assert task["outcome"] == "fixed", task
    assert "a + b" in git_out(root, "show", f"{doc['branch']}:src/math.js")
    # The agent ran vitest inside the sandbox.
    assert "1 passed" in server.tool_results()[-1].content


def test_a_js_fake_fix_in_the_test_is_not_a_fix(tmp_path: Path) -> None:
    root = project(tmp_path, TEST)
    mock = (
        "import { vi } from 'vitest'\n"
        "vi.mock('../src/math.js', () => ({ add: (a, b) => a + b }))\n"
        "import { add } from '../src/math.js'\n"
    )
    turns = script(
        ToolUse("Edit", {"file_path": f"{CWD}/test/math.test.js",
                         "old_string": "import { add } from '../src/math.js'\n",
                         "new_string": mock}),
        ToolUse("Bash", {"command": "node_modules/.bin/vitest run 2>&1 | tail -4"}),
    )  # fmt: skip
    done, doc, server = run_agentloop(root, tmp_path / "home", turns)
    assert done.returncode == 1, (done.stdout, done.stderr)
    # The fake made the test pass where the agent ran it...
    assert "1 passed" in server.tool_results()[-1].content
    # ... and is not a fix: the integrity check names the mock of the code under test.
    (task,) = doc["tasks"]
    assert task["outcome"] == "unfixed", task
    (attempt,) = task["attempts"]
    assert attempt["outcome"] == "rejected_integrity", attempt
    assert "src/math.js" in attempt["reason"]
    assert doc["commits"] == []
