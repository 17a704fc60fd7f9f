"""A real run to open pull requests from: a project with two failing tasks, `agentloop
run` on it (the scripted in-process agent for the model) with one fix after a rejected
attempt (and a test changed on the way) and one task left unfixed; a local bare
repository as `origin`; the fake GitHub API serving that origin as o/r.

The run is made once per session (about 10 s) and copied for each test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentloop.integrations.github import GitHub
from agentloop.testing import repos
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.fake_github import FakeGitHub
from agentloop.testing.repos import GIT_IDENTITY, git_init, run_git
from agentloop.testing.runs import make_run

# Looks like a real token so a leak would be recognisable anywhere.
TOKEN = "ghs_PRtoken0123456789abcdefABCDEF0123"

PROJECT = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "calc/mul.py": "def mul(a, b):\n    return a + b\n",
    "tests/test_ops.py": "from calc import ops\n\n\ndef test_add():\n"
    "    assert ops.add(2, 3) == 5\n",
    "tests/test_mul.py": "from calc.mul import mul\n\n\ndef test_mul():\n"
    "    assert mul(2, 3) == 6\n",
    "agentloop.yaml": "rails: {allow_test_edits: true}\nrun: {max_attempts: 2}\n",
    # agentloop-bot opens the PRs on the fake: it owns calc/ too, and must not be asked.
    ".github/CODEOWNERS": "*  @fallback\ncalc/  @alice @agentloop-bot @o/calc-team @other/x\n",
}


def _wrong(cwd: Path) -> None:
    (cwd / "calc/ops.py").write_text("def add(a, b):\n    return a * b\n")


def _fix_and_add_a_test(cwd: Path) -> None:
    (cwd / "calc/ops.py").write_text("def add(a, b):\n    return a + b\n")
    test = cwd / "tests/test_ops.py"
    test.write_text(test.read_text() + "\n\ndef test_add_zero():\n    assert ops.add(0, 0) == 0\n")


def _nothing(cwd: Path) -> None:
    return None


@dataclass(frozen=True)
class World:
    root: Path  # the user's checkout, with the run's branch
    origin: Path  # bare repository: `origin` of root, and o/r on the fake
    run_dir: Path
    fake: FakeGitHub

    @property
    def run(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.run_dir / "run.json").read_text())
        return doc

    def client(self, repo: str, token: str, api_url: str) -> GitHub:
        # No waiting between retries in tests.
        return GitHub(repo, token, api_url=api_url, sleep=lambda _s: None)

    def remote_sha(self, branch: str) -> str | None:
        out = run_git(self.origin, "for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}")
        return out.strip() or None


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("pr-template")
    home = top / "home"
    with pytest.MonkeyPatch.context() as env:
        for name, value in GIT_IDENTITY.items():
            env.setenv(name, value)
        env.setenv("HOME", str(home))
        env.setenv("XDG_CACHE_HOME", str(home / ".cache"))
        env.setenv("CLAUDE_CONFIG_DIR", str(home / ".claude"))
        root = git_init(repos.pytest_project(top / "project", PROJECT))
        run_git(top, "clone", "-q", "--bare", str(root), str(top / "origin.git"))
        run_git(root, "remote", "add", "origin", str(top / "origin.git"))
        agent = ScriptedAgent(
            by_prompt={
                "test_ops.py": [_wrong, _fix_and_add_a_test],
                "test_mul.py": [_nothing, _nothing],
            }
        )
        run_dir = make_run(root, agent=agent)
    (top / "run_id").write_text(run_dir.name)
    return top


@pytest.fixture
def world(template: Path, tmp_path: Path, git_identity: None) -> Iterator[World]:
    top = tmp_path / "w"
    shutil.copytree(template, top, symlinks=True, ignore=shutil.ignore_patterns("home"))
    root, origin = top / "project", top / "origin.git"
    run_git(root, "remote", "set-url", "origin", str(origin))
    run_dir = root / ".agentloop" / "runs" / (top / "run_id").read_text()
    with FakeGitHub() as fake:
        fake.add_repo("o/r", origin=origin)
        yield World(root, origin, run_dir, fake)
