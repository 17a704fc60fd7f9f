"""`agentloop merge-results DIR...`: the last job of a matrix (see `agentloop plan
--matrix`). Applies the runs' branches in the order given, verifies the full suites once,
drops what conflicts or regresses, and leaves a run directory of its own (run.json +
run.bundle) for `agentloop pr`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentloop import __version__, errors, git, output, suites
from agentloop.config import load_config
from agentloop.errors import UsageError
from agentloop.loop.merge import Merged, Piece, merge_runs
from agentloop.loop.message import fingerprint_trailer
from agentloop.reports.run import RUN_SCHEMA_ID
from agentloop.workspace import Workspace

BRANCH_PREFIX = "agentloop/merge-"


@dataclass(frozen=True)
class _Run:
    folder: Path
    doc: dict[str, Any]
    bundle: Path | None


def _load(given: Path) -> _Run:
    path = given / "run.json" if given.is_dir() else given
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{path} does not exist",
            hint="pass the run directories the matrix jobs uploaded (each holds run.json)",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not a run's JSON: {exc}", hint="pass run.json files") from None
    if not isinstance(doc, dict) or doc.get("$schema") != RUN_SCHEMA_ID:
        raise UsageError(
            f"{path} is not an `agentloop run` document ($schema {RUN_SCHEMA_ID})",
            hint="pass the run.json that `agentloop run` wrote under .agentloop/runs/<run-id>/",
        )
    if doc.get("dry_run"):
        raise UsageError(f"{path} is a dry run: it fixed nothing", hint="leave it out")
    bundle = path.parent / "run.bundle"
    if doc.get("commits") and not bundle.is_file():
        raise UsageError(
            f"{path.parent} has commits in run.json but no run.bundle",
            hint="upload the whole run directory (.agentloop/runs/<run-id>/) from each job",
        )
    return _Run(path.parent, doc, bundle if doc.get("commits") else None)


def merge_results(*, repo: Path, runs: Sequence[Path], as_json: bool) -> int:
    root = repo.resolve()
    if git.find_toplevel(root) is None:
        raise UsageError(
            f"{root} is not a git repository", hint="run it in the repository's checkout"
        )
    if not runs:
        raise UsageError("no run directories given", hint="agentloop merge-results runs/*/")
    loaded = [_load(p) for p in runs]
    bases = {r.doc["base_sha"] for r in loaded}
    if len(bases) != 1:
        raise UsageError(
            f"the runs started from {len(bases)} different commits "
            f"({', '.join(sorted(b[:10] for b in bases))}); they can only be merged from one",
            hint="run every matrix job on the same commit (actions/checkout of github.sha)",
        )
    (base,) = bases
    if git.rev_parse(root, f"{base}^{{commit}}") is None:
        raise UsageError(
            f"the runs' base commit {base[:12]} is not in this repository",
            hint="check out the commit the matrix ran on (fetch-depth: 0 or that sha)",
        )
    config, _ = load_config(root)
    started = time.monotonic()
    pieces: list[Piece] = []
    with output.progress(not as_json) as progress:
        for index, run in enumerate(loaded):
            if run.bundle is None:
                continue
            tip = git.fetch_bundle(root, run.bundle, run.doc["branch"])
            pieces.append(
                Piece(
                    index=index,
                    tip=tip,
                    message=_message(root, base, tip),
                    fixed_tests=frozenset(
                        (s["suite"], s["test"])
                        for t in run.doc["tasks"]
                        if t["outcome"] == "fixed" and t["commit"]
                        for s in t["selectors"]
                    ),
                )
            )
        git.ignore_locally(root, ".agentloop/")
        baseline = {
            tuple(test.split("::", 1)) for r in loaded for test in r.doc["baseline_failing"]
        }
        with Workspace.open(
            root,
            base=base,
            branch_prefix=BRANCH_PREFIX,
            setup=config.workspace.setup,
            setup_timeout=config.workspace.setup_timeout,
            secrets=config.rails.secret_paths,
        ) as ws:
            found = suites.discover(ws.root, config)
            merged = merge_runs(
                ws.path,
                ws.root,
                ws.branch,
                base,
                pieces,
                found=found,
                baseline_failing={(s, t) for s, t in baseline},
                env=ws.env(),
                keep=git.ignored_entries(ws.path),
                timeout=config.detect.rerun_timeout,
                progress=progress,
            )
            doc = _document(ws.run_id, ws.branch, base, loaded, merged, time.monotonic() - started)
        folder = root / ".agentloop" / "runs" / ws.run_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        if doc["commits"]:
            git.create_bundle(root, folder / "run.bundle", ws.branch, base)
    if as_json:
        output.print_json(doc)
    else:
        output.print_merge(doc, folder)
    fixed, total = doc["totals"]["fixed"], doc["totals"]["tasks"]
    return errors.OK if fixed == total else errors.FAILURES_FOUND


def _message(root: Path, base: str, tip: str) -> str:
    """The run's own commit message, or for several commits their subjects and trailers."""
    commits = git.commits_between(root, base, tip)
    if len(commits) == 1:
        return git.message(root, commits[0])
    subjects = "\n".join(f"- {git.subject(root, sha)}" for sha in commits)
    trailers = "\n".join(
        line
        for sha in commits
        for line in git.message(root, sha).splitlines()
        if line.startswith(fingerprint_trailer(""))
    )
    return f"agentloop: {len(commits)} fixes\n\n{subjects}\n\n{trailers}\n"


def _document(
    run_id: str,
    branch: str,
    base: str,
    runs: Sequence[_Run],
    merged: Merged,
    duration: float,
) -> dict[str, Any]:
    """A run document (schemas/run.schema.json) for the merged branch: every run's tasks,
    each as the merge left it."""
    commit_of = dict(merged.applied)
    final = {f"{s}::{t}" for s, t in merged.final_failing}
    tasks: list[dict[str, Any]] = []
    for index, run in enumerate(runs):
        for given in run.doc["tasks"]:
            task = dict(given)
            red = [s for s in task["selectors"] if f"{s['suite']}::{s['test']}" in final]
            if index in merged.dropped and task["outcome"] == "fixed":
                task.update(
                    outcome="regressed"
                    if merged.dropped[index].startswith("regressed")
                    else "unfixed",
                    commit=None,
                    fixed_by=None,
                    reason=f"left out of the merge: {merged.dropped[index]}",
                )
            elif task["outcome"] == "fixed" and red:
                task.update(
                    outcome="unfixed",
                    commit=None,
                    fixed_by=None,
                    reason="its tests fail in the merged branch's full-suite run",
                )
            elif task["outcome"] == "fixed":
                landed = commit_of.get(index) or merged.contained.get(index)
                if task["commit"]:
                    task["commit"] = landed
                else:
                    task["fixed_by"] = landed
            elif not red and task["outcome"] in ("unfixed", "skipped"):
                task.update(
                    outcome="fixed",
                    fixed_by=merged.tip,
                    reason=f"its tests pass with the other runs' fixes ({task['outcome']} "
                    f"before: {task['reason']})",
                    suggestion="",
                )
            tasks.append(task)
    commits = [sha for _, sha in merged.applied]
    return {
        "$schema": RUN_SCHEMA_ID,
        "agentloop_version": __version__,
        "run_id": run_id,
        "branch": branch if commits else None,
        "base_sha": base,
        "commits": commits,
        "dry_run": False,
        "sandboxed": all(r.doc["sandboxed"] for r in runs),
        "stopped_by": next((r.doc["stopped_by"] for r in runs if r.doc["stopped_by"]), None),
        "regressions": list(merged.regressions),
        "jobs": len(runs),
        "caught": _caught(runs, merged),
        "base_ref": next((r.doc.get("base_ref") for r in runs if r.doc.get("base_ref")), None),
        "baseline_failing": sorted({t for r in runs for t in r.doc["baseline_failing"]}),
        "final_failing": sorted(final),
        "tasks": tasks,
        "totals": {
            "tasks": len(tasks),
            "fixed": sum(1 for t in tasks if t["outcome"] == "fixed"),
            "cost_usd": round(sum(r.doc["totals"]["cost_usd"] for r in runs), 6),
            "duration_s": round(duration, 3),
        },
    }


def _caught(runs: Sequence[_Run], merged: Merged) -> dict[str, int]:
    caught = {"task": 0, "importers": 0, "full": 0}
    for run in runs:
        for tier, count in run.doc["caught"].items():
            caught[tier] = caught.get(tier, 0) + count
    caught["full"] += sum(1 for why in merged.dropped.values() if why.startswith("regressed"))
    return caught
