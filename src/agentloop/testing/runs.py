"""A real finished run for tests of what comes after it (`agentloop pr`): `agentloop run`
in-process on a real repository, with the scripted in-process agent for the model, so
its branch, commits, run.json and run.bundle are the real thing.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentloop.reports.run_doc import BUNDLE_FILE, RUN_FILE
from agentloop.testing.agents import ScriptedAgent


def make_run(
    root: Path,
    *sessions: Callable[[Path], None],
    agent: ScriptedAgent | None = None,
    **options: Any,
) -> Path:
    """Run `agentloop run --json` on `root` with `sessions` as the agent's (or `agent`);
    the run's directory (run.json, run.bundle)."""
    from agentloop.commands.run import run

    settings: dict[str, Any] = {
        "in_place": False, "max_turns": None, "max_attempts": None, "max_runtime": None,
        "max_budget_usd": None, "forbid": [], "task_ids": [], "dry_run": False,
        "squash": False, "sandboxed": False, "jobs": 1, **options,
    }  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        run(repo=root, as_json=True, agent=agent or ScriptedAgent(*sessions), **settings)
    doc = json.loads(printed.getvalue())
    folder = root / ".agentloop" / "runs" / str(doc["run_id"])
    if doc["branch"]:
        assert (folder / BUNDLE_FILE).is_file(), f"the run wrote no {BUNDLE_FILE} in {folder}"
    assert (folder / RUN_FILE).is_file(), f"the run wrote no {RUN_FILE} in {folder}"
    return folder
