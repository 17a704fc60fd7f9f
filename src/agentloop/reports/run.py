"""A run, rendered: the Markdown report and the JSON document (schemas/run.schema.json)."""

from __future__ import annotations

from typing import Any

from agentloop import __version__
from agentloop.loop.model import RunReport, TaskReport

RUN_SCHEMA_ID = "https://agentloop.dev/schemas/run-1.json"
NO_SANDBOX = (
    "NO SANDBOX (--no-sandbox): the agent's shell commands ran without the OS sandbox; "
    "only the guard hook, the permission rules and agentloop's checks after each attempt "
    "stood between them and your files"
)


def _approach(task: TaskReport) -> str:
    if task.fixed_by:
        return f"fixed by {task.fixed_by[:8]}"
    if task.commit:
        return f"commit {task.commit[:8]}"
    return task.reason


def _accepted(task: TaskReport) -> dict[str, Any]:
    """What the task's own fix changed: its files, and the diff of any test it changed."""
    fix = next((a for a in task.attempts if a.commit), None) if task.commit else None
    if fix is None:
        return {"files": [], "tests_diff": ""}
    return {"files": list(fix.changed), "tests_diff": fix.tests_diff}


def to_json(run: RunReport) -> dict[str, Any]:
    return {
        "$schema": RUN_SCHEMA_ID,
        "agentloop_version": __version__,
        "run_id": run.run_id,
        "branch": run.branch,
        "base_sha": run.base_sha,
        "commits": list(run.commits),
        "dry_run": run.dry_run,
        "sandboxed": run.sandboxed,
        "stopped_by": run.stopped_by,
        "regressions": list(run.regressions),
        "jobs": run.jobs,
        "caught": run.caught,
        "base_ref": run.base_ref,
        "baseline_failing": list(run.baseline_failing),
        "final_failing": list(run.final_failing),
        "tasks": [
            {
                "id": t.task.id,
                # Stable across runs for the same failure: what `agentloop pr` dedupes by.
                "fingerprint": t.task.fingerprint,
                "category": t.task.category,
                "crash_location": str(t.task.crash_location) if t.task.crash_location else None,
                "tests": [f.test_id for f in t.task.failures],
                "selectors": [
                    {"suite": f.suite, "test": f.test_id, "selector": f.selector}
                    for f in t.task.failures
                ],
                **_accepted(t),
                "outcome": t.outcome,
                "commit": t.commit,
                "fixed_by": t.fixed_by,
                "reason": t.reason,
                "suggestion": t.suggestion,
                "cost_usd": round(t.cost_usd, 6),
                "duration_s": round(t.duration_s, 3),
                "attempts": [
                    {
                        "number": a.number,
                        "outcome": a.outcome,
                        "agent_outcome": a.agent_outcome,
                        "reason": a.reason,
                        "changed": list(a.changed),
                        "tests_changed": list(a.tests_changed),
                        "cost_usd": round(a.cost_usd, 6),
                        "duration_s": round(a.duration_s, 3),
                        "turns": a.turns,
                        "tier": a.tier or None,
                        "job": a.job,
                        "started_s": round(a.started_s, 3),
                    }
                    for a in t.attempts
                ],
            }
            for t in run.tasks
        ],
        "totals": {
            "tasks": len(run.tasks),
            "fixed": run.fixed,
            "cost_usd": round(run.cost_usd, 6),
            "duration_s": round(run.duration_s, 3),
        },
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(run: RunReport) -> str:
    lines = [
        f"# agentloop run {run.run_id}",
        "",
        f"**{run.fixed}/{len(run.tasks)} fixed** · ${run.cost_usd:.2f} · "
        f"{run.duration_s:.0f}s · branch `{run.branch or '(removed: nothing to keep)'}`",
        "",
    ]
    if not run.sandboxed:
        lines += [f"> **{NO_SANDBOX}**", ""]
    if run.stopped_by:
        lines += [f"Stopped early: {run.stopped_by} reached.", ""]
    if run.regressions:
        lines += ["Reverted because they broke other tests: " + ", ".join(run.regressions), ""]
    caught = run.caught
    if any(caught.values()):
        lines += [
            f"Verification caught {caught['task']} attempt(s) with the task's own tests, "
            f"{caught['importers']} with the tests of code importing the change, and "
            f"{caught['full']} fix(es) with the full suites.",
            "",
        ]
    lines += [
        "| file | tests | category | attempts | outcome | approach | cost | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in run.tasks:
        where = str(t.task.crash_location) if t.task.crash_location else "?"
        lines.append(
            f"| `{_cell(where)}` | {len(t.task.failures)} | {t.task.category} | "
            f"{len(t.attempts)} | {t.outcome} | {_cell(_approach(t))} | ${t.cost_usd:.2f} | "
            f"{t.duration_s:.0f}s |"
        )
    changed_tests = [
        (t, a) for t in run.tasks for a in t.attempts if a.outcome == "fixed" and a.tests_changed
    ]
    if changed_tests:
        lines += ["", "## Tests changed by fixes", ""]
        for t, a in changed_tests:
            lines.append(
                f"- **`{_cell(t.task.id)}` changed tests:** "
                + ", ".join(f"`{_cell(p)}`" for p in a.tests_changed)
                + (f" (commit {t.commit[:8]}: its message has the diff)" if t.commit else "")
            )
    unfixed = [t for t in run.tasks if t.outcome != "fixed"]
    if unfixed:
        lines += ["", "## Not fixed", ""]
        for t in unfixed:
            lines.append(f"- `{_cell(t.task.id)}` ({t.task.category}): {_cell(t.reason)}")
            if t.suggestion:
                lines.append(f"  - suggested: {_cell(t.suggestion)}")
            for a in t.attempts:
                lines.append(f"  - attempt {a.number}: {a.outcome} — {_cell(a.reason)[:300]}")
    return "\n".join(lines) + "\n"
