"""`agentloop` with the in-process scripted agent behind `parallel-build`: the command
build/launch.py starts in the background in tests/parallel_build/test_launch.py, so the
detached build is a real process, a real build on a real repository, without a model.
Its one scripted session writes what the test's manifest has the `api` stream own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import agentloop.commands.parallel_build as command
from agentloop import cli
from agentloop.testing.agents import ScriptedAgent

TOTAL = "def total(prices):\n    return sum(prices)\n"
TEST = "from api.total import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n"


def _api(cwd: Path) -> None:
    (cwd / "api").mkdir(exist_ok=True)
    (cwd / "api/total.py").write_text(TOTAL)
    (cwd / "api/test_total.py").write_text(TEST)


_real = command.parallel_build


def _scripted(**kwargs: Any) -> int:
    return _real(**kwargs, agent=ScriptedAgent(by_prompt={"Your stream: api (": [_api]}))


if __name__ == "__main__":
    command.parallel_build = _scripted
    sys.exit(cli.main(sys.argv[1:]))
