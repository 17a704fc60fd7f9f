from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentloop.testing.home import home_state, written
from agentloop.testing.repos import GIT_IDENTITY

# Shared assertions in the helper package report like assertions in test files.
pytest.register_assert_rewrite("agentloop.testing.detect")

REAL_HOME = Path(os.path.expanduser("~"))
SCHEMA = Path(__file__).resolve().parents[1] / "src/agentloop/schemas/detect.schema.json"


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test gets its own HOME; a test that writes into the real home fails."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("AGENTLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home / ".claude"))
    monkeypatch.setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    # Only what a test could write there (see agentloop.testing.home): the rest of the
    # machine keeps writing into the home directory while the suite runs.
    tmp_root = tmp_path_factory.getbasetemp()
    before = home_state(REAL_HOME, tmp_root)
    yield home
    changes = written(before, home_state(REAL_HOME, tmp_root))
    assert not changes, f"the test wrote into the real home directory {REAL_HOME}: {changes}"


@pytest.fixture(scope="session")
def detect_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    return schema


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """For code that commits in this process: the test HOME has no .gitconfig."""
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
