"""Every human-facing line (rich, on a terminal) and every --json document.

Results go to stdout; progress, notes and errors go to stderr, so `--json` output can be
piped straight into another program.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentloop import __version__
from agentloop.detection import Detection
from agentloop.failures.model import Failure, FlakyTest, Location, Task
from agentloop.loop.model import RunReport

DETECT_SCHEMA_ID = "https://agentloop.dev/schemas/detect-1.json"

out = Console(highlight=False)
if not out.is_terminal and "COLUMNS" not in os.environ:
    # Piped or in CI: rich would assume 80 columns; a log has room for the whole table.
    out = Console(highlight=False, width=120)
# Messages are single lines: never wrap them (logs and tests read them whole).
err = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str, hint: str | None, *, as_json: bool = False, code: int = 2) -> None:
    if as_json:
        doc = {"error": {"message": message, "hint": hint, "exit_code": code}}
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"[yellow]hint:[/] {escape(hint)}")


def note(message: str) -> None:
    err.print(f"[dim]note:[/] {escape(message)}")


@contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A status line on stderr while long work runs; silent when stderr is no terminal."""
    if not enabled or not err.is_terminal:
        yield lambda _message: None
        return
    with err.status("starting…") as status:
        yield lambda message: status.update(escape(message))


# ---------------------------------------------------------------- detect


def _location(location: Location | None) -> dict[str, Any] | None:
    return None if location is None else {"file": location.file, "line": location.line}


def failure_doc(f: Failure) -> dict[str, Any]:
    return {
        "id": f.id,
        "suite": f.suite,
        "runner": f.runner,
        "test_id": f.test_id,
        "file": f.file,
        "line": f.line,
        "test_name": f.test_name,
        "selector": f.selector,
        "cwd": f.cwd,
        "error_type": f.error_type,
        "message": f.message,
        "stack_trace": f.stack_trace,
        "crash_location": _location(f.crash_location),
        "stage": f.stage,
        "category": f.category,
    }


def _task_doc(position: int, task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "order": position,
        "category": task.category,
        "error_type": task.error_type,
        "message": task.message,
        "crash_location": _location(task.crash_location),
        "level": task.level,
        "failures": [failure_doc(f) for f in task.failures],
    }


def _flaky_doc(flaky: FlakyTest) -> dict[str, Any]:
    return {
        "kind": flaky.kind,
        "reruns": flaky.reruns,
        "passes": flaky.passes,
        "failure": failure_doc(flaky.failure),
    }


def detection_doc(d: Detection) -> dict[str, Any]:
    return {
        "$schema": DETECT_SCHEMA_ID,
        "agentloop_version": __version__,
        "root": str(d.root),
        "git": d.git,
        "summary": {
            "failures": d.failure_count,
            "tasks": len(d.tasks),
            "flaky": sum(1 for f in d.flaky if f.kind == "flaky"),
            "order_dependent": sum(1 for f in d.flaky if f.kind == "order_dependent"),
            "green": not d.tasks and not d.flaky,
        },
        "suites": [
            {
                "name": s.name,
                "format": s.format,
                "command": s.command,
                "cwd": s.cwd,
                "exit_code": s.exit_code,
                "duration_s": round(s.duration, 3),
                "timed_out": s.timed_out,
                "tests": s.tests,
            }
            for s in d.suites
        ],
        "tasks": [_task_doc(i, t) for i, t in enumerate(d.tasks, start=1)],
        "flaky": [_flaky_doc(f) for f in d.flaky],
        "notes": list(d.notes),
    }


def print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _first_line(text: str, width: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def summary_line(d: Detection) -> str:
    flaky = len(d.flaky)
    return f"{d.failure_count} failures in {len(d.tasks)} tasks ({flaky} flaky)"


def print_detection(d: Detection) -> None:
    for message in d.notes:
        note(message)
    if d.tasks:
        table = Table(
            title="Failures by root cause, in the order to fix them", title_justify="left"
        )
        table.add_column("task", justify="right", style="bold")
        table.add_column("tests", justify="right")
        table.add_column("category", overflow="fold")
        table.add_column("location", overflow="fold")
        table.add_column("message", min_width=20, overflow="fold", ratio=1)
        for number, task in enumerate(d.tasks, start=1):
            first = task.failures[0].test_id
            more = f" (+{len(task.failures) - 1} more)" if len(task.failures) > 1 else ""
            table.add_row(
                str(number),
                str(len(task.failures)),
                task.category,
                escape(str(task.crash_location) if task.crash_location else "?"),
                f"{escape(task.error_type)}: {escape(_first_line(task.message, 100))}\n"
                f"[dim]{escape(first)}{more}[/]",
            )
        out.print(table)
    if d.flaky:
        table = Table(title="Set apart: passed when re-run alone", title_justify="left")
        table.add_column("test")
        table.add_column("kind")
        table.add_column("passed", justify="right")
        for f in d.flaky:
            table.add_row(escape(f.failure.test_id), f.kind, f"{f.passes}/{f.reruns}")
        out.print(table)
    tests = sum(s.tests for s in d.suites)
    style = "green" if not d.tasks else "red"
    out.print(
        f"[bold {style}]{summary_line(d)}[/] [dim]({tests} tests in {len(d.suites)} suites)[/]"
    )


# ---------------------------------------------------------------- run


def print_run(run: RunReport) -> None:
    title = (
        "Plan (dry run): tasks in the order they would be tried"
        if run.dry_run
        else (f"agentloop run {run.run_id}")
    )
    table = Table(title=title, title_justify="left")
    for name in ("file", "tests", "category", "attempts", "outcome", "approach"):
        table.add_column(name, overflow="fold")
    table.add_column("cost", justify="right")
    table.add_column("time", justify="right")
    for t in run.tasks:
        where = str(t.task.crash_location) if t.task.crash_location else "?"
        approach = f"fixed by {t.fixed_by[:8]}" if t.fixed_by else (t.commit or "")[:8] or t.reason
        style = {"fixed": "green", "regressed": "yellow"}.get(t.outcome, "red")
        table.add_row(
            escape(where),
            str(len(t.task.failures)),
            t.task.category,
            str(len(t.attempts)),
            f"[{style}]{t.outcome}[/]" if not run.dry_run else "planned",
            escape(approach),
            f"${t.cost_usd:.2f}",
            f"{t.duration_s:.0f}s",
        )
    out.print(table)
    for t in run.tasks:
        if t.outcome not in ("fixed",) and not run.dry_run:
            out.print(f"[red]✗[/] {escape(t.task.id)}: {escape(t.reason)}")
            if t.suggestion:
                out.print(f"  [dim]suggested:[/] {escape(t.suggestion)}")
    if run.dry_run:
        return
    if run.stopped_by:
        note(f"stopped early: {run.stopped_by} reached")
    where = f"on branch {run.branch}" if run.branch else "no fix survived; the branch was removed"
    out.print(
        f"[bold]{run.fixed}/{len(run.tasks)} fixed[/] · ${run.cost_usd:.2f} · "
        f"{run.duration_s:.0f}s · {escape(where)} (nothing was pushed)"
    )
