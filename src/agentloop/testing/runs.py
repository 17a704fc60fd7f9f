"""A real finished run for tests of what comes after it (`agentloop pr`): `agentloop run`
in-process on a real repository, with the scripted in-process agent for the model, so
its branch, commits, run.json and run.bundle are the real thing.

`run.json` and `run.bundle` are written by `agentloop run` itself where it does; for an
agentloop whose run does not yet, `complete_run_files` writes them from the run's --json
document and the repository, with the fields `agentloop pr` reads.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentloop import git
from agentloop.failures.model import short_hash
from agentloop.reports.run_doc import BUNDLE_FILE, RUN_FILE
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.repos import run_git


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
    complete_run_files(root, doc, folder)
    return folder


def complete_run_files(root: Path, doc: dict[str, Any], folder: Path) -> None:
    """run.json and run.bundle in `folder`, unless the run wrote them."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / RUN_FILE).is_file():
        tasks = doc["tasks"]
        for task in tasks:
            commit = task["commit"]
            files = list(git.changed_between(root, f"{commit}^", commit)) if commit else []
            changed = sorted({p for a in task["attempts"] for p in a["tests_changed"]})
            task.setdefault("fingerprint", short_hash("fingerprint", task["id"]))
            task.setdefault("files", files)
            task.setdefault(
                "tests_diff", git.tree_diff(root, f"{commit}^", commit, changed) if changed else ""
            )
            task.setdefault(
                "selectors",
                [
                    {"suite": "pytest", "test": t, "selector": f"python -m pytest {t}"}
                    for t in task["tests"]
                ],
            )
        doc.setdefault("base_ref", run_git(root, "branch", "--show-current").strip() or None)
        doc.setdefault("baseline_failing", [t for task in tasks for t in task["tests"]])
        doc.setdefault(
            "final_failing",
            [t for task in tasks if task["outcome"] != "fixed" for t in task["tests"]],
        )
        (folder / RUN_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    if doc["branch"] and not (folder / BUNDLE_FILE).is_file():
        run_git(
            root, "bundle", "create", "-q", str(folder / BUNDLE_FILE),
            f"refs/heads/{doc['branch']}", f"^{doc['base_sha']}",
        )  # fmt: skip
