from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentloop.integrations.github import GitHub
from agentloop.testing.fake_github import FakeGitHub
from agentloop.testing.repos import commit_all, git_init, run_git, write_tree

# Looks like a real token so a leak would be recognisable anywhere.
TOKEN = "ghs_FAKEtoken0123456789abcdefABCDEF0123"


@dataclass(frozen=True)
class Checkout:
    """A user's clone whose `origin` is the bare repository the fake serves."""

    path: Path
    origin: Path

    def push_branch(self, branch: str, files: dict[str, str]) -> str:
        run_git(self.path, "switch", "-q", "-C", branch, "main")
        write_tree(self.path, files)
        commit_all(self.path, f"work on {branch}")
        run_git(self.path, "push", "-q", "origin", f"{branch}:refs/heads/{branch}")
        run_git(self.path, "switch", "-q", "main")
        return run_git(self.path, "rev-parse", branch).strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    work = write_tree(tmp_path / "work", {"app.py": "VALUE = 1\n"})
    git_init(work)
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(work), str(origin))
    run_git(work, "remote", "add", "origin", str(origin))
    return Checkout(work, origin)


@pytest.fixture
def fake(checkout: Checkout) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_repo("o/r", origin=checkout.origin)
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeGitHub, sleeps: list[float]) -> GitHub:
    return GitHub(
        "o/r", TOKEN, api_url=fake.api_url, sleep=sleeps.append, token_source="GITHUB_TOKEN"
    )
