"""`agentloop clean`: remove what killed runs left behind (worktrees, branches, state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from agentloop import errors, output
from agentloop.workspace import CleanReport, Cleanup, clean_leftovers


def _shown(path: Path | None, top: Path) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(top))
    except ValueError:
        return str(path)


def _lines(item: Cleanup, top: Path, dry_run: bool) -> list[str]:
    will = "would " if dry_run else ""
    run = (
        f" (run {item.run_id}" + (f", pid {item.pid})" if item.pid else ")") if item.run_id else ""
    )
    lines: list[str] = []
    if item.rescued is not None:
        lines.append(
            f"{'would save' if dry_run else 'saved'} the uncommitted work of "
            f"{_shown(item.worktree, top) or 'the checkout'} to {_shown(item.rescued, top)}"
        )
    if item.restored is not None:
        lines.append(f"{will}check out {item.restored} again in {top}{run}")
    if item.removed_worktree:
        lines.append(f"{will}remove worktree {_shown(item.worktree, top)}{run}")
    if item.deleted_branch:
        lines.append(f"{will}delete branch {item.branch}")
    if item.kept:
        lines.append(f"kept: {item.kept}")
    return lines


def clean_doc(report: CleanReport) -> dict[str, Any]:
    def path(p: Path | None) -> str | None:
        return None if p is None else str(p)

    return {
        "repo": str(report.repo),
        "dry_run": report.dry_run,
        "cleaned": [
            {
                "run_id": item.run_id,
                "worktree": path(item.worktree),
                "branch": item.branch,
                "pid": item.pid,
                "rescued_patch": path(item.rescued),
                "removed_worktree": item.removed_worktree,
                "deleted_branch": item.deleted_branch,
                "restored": item.restored,
                "commits": item.commits,
                "kept": item.kept,
            }
            for item in report.items
        ],
        "alive": [
            {
                "run_id": state.run_id,
                "pid": state.pid,
                "path": state.path,
                "branch": state.branch,
                "created_at": state.created_at,
            }
            for state in report.alive
        ],
        "errors": list(report.errors),
    }


def clean(*, repo: Path, dry_run: bool, as_json: bool) -> int:
    report = clean_leftovers(repo, dry_run=dry_run)
    if as_json:
        output.print_json(clean_doc(report))
    else:
        for state in report.alive:
            output.note(f"left alone: run {state.run_id} is running (pid {state.pid})")
        for item in report.items:
            for line in _lines(item, report.repo, dry_run):
                output.out.print(escape(line))
        for message in report.errors:
            output.err.print(f"[bold red]error:[/] {escape(message)}")
        if not report.items and not report.errors:
            output.out.print("nothing to clean")
        if report.items and any(item.rescued for item in report.items) and not dry_run:
            output.note("a saved patch goes back with: git apply <patch> (see its header)")
    return errors.FAILURES_FOUND if report.errors else errors.OK
