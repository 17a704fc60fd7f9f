"""Every human-facing line (rich, on a terminal) and every --json document.

Results go to stdout; progress, notes and errors go to stderr, so `--json` output can be
piped straight into another program.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table

from agentloop import __version__
from agentloop.failures.model import Failure, FlakyTest, Location, Task
from agentloop.reports.run import NO_SANDBOX

if TYPE_CHECKING:
    # Only the types: importing their modules at run time loads PyGithub, the test
    # integrity parsers and the detection stack (about 0.4 s in all), which every command,
    # and every Claude Code hook call, would pay at start.
    from agentloop.build.integrate import Integration
    from agentloop.build.launch import BuildStatus
    from agentloop.build.model import Manifest, StreamReport
    from agentloop.detection import Detection
    from agentloop.heal.launch import HealStatus
    from agentloop.install.model import InitReport
    from agentloop.loop.model import RunReport
    from agentloop.pull_request import Plan, PrOutcome
    from agentloop.rails.change import ChangeCheck
    from agentloop.session import Session

DETECT_SCHEMA_ID = "https://agentloop.dev/schemas/detect-1.json"
INIT_SCHEMA_ID = "https://agentloop.dev/schemas/init-1.json"
CHECK_SCHEMA_ID = "https://agentloop.dev/schemas/check-1.json"
BUILD_PLAN_SCHEMA_ID = "https://agentloop.dev/schemas/build-plan-1.json"

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


class Progress:
    """What long work is doing, on stderr: one status line, and one live line per job
    of a parallel run (its task, attempt and time so far). Silent when stderr is no
    terminal. Callable as `progress(message)`; jobs report through `job`."""

    def __init__(self) -> None:
        self._message = "starting…"
        self._jobs: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            self._message = message

    def job(self, number: int, text: str | None) -> None:
        """Job `number` now does `text` (None: it is idle, and its line goes)."""
        with self._lock:
            if text is None:
                self._jobs.pop(number, None)
            elif self._jobs.get(number, ("",))[0] != text:
                self._jobs[number] = (text, time.monotonic())

    def __rich__(self) -> Group:
        with self._lock:
            message, jobs = self._message, sorted(self._jobs.items())
        now = time.monotonic()
        lines: list[Any] = [Spinner("dots", text=escape(message))]
        for number, (text, since) in jobs:
            minutes, seconds = divmod(int(now - since), 60)
            lines.append(f"  [dim]job {number}[/] {escape(text)} [dim]{minutes}:{seconds:02d}[/]")
        return Group(*lines)


class LineProgress(Progress):
    """Progress as plain lines on stderr, one per change, each with the time: for a log
    file a machine tails (a build started in the background by the /parallel-build
    skill's MCP tool, whose `build_status` shows the log's tail)."""

    def __call__(self, message: str) -> None:
        with self._lock:
            if message == self._message:
                return
            self._message = message
            _stamped(message)

    def job(self, number: int, text: str | None) -> None:
        with self._lock:
            known = self._jobs.get(number, ("",))[0]
            if text is None:
                self._jobs.pop(number, None)
            elif known != text:
                self._jobs[number] = (text, time.monotonic())
                _stamped(f"job {number}: {text}")


def _stamped(line: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {line}\n")
    sys.stderr.flush()


# `lines`: progress as timestamped lines on stderr whether or not it is a terminal, and in
# --json mode too (stdout stays the document).
PROGRESS_ENV = "AGENTLOOP_PROGRESS"


@contextmanager
def progress(enabled: bool = True) -> Iterator[Progress]:
    """A status line on stderr while long work runs; silent when stderr is no terminal,
    unless AGENTLOOP_PROGRESS=lines asks for plain lines."""
    if os.environ.get(PROGRESS_ENV) == "lines":
        yield LineProgress()
        return
    if not enabled or not err.is_terminal:
        yield Progress()
        return
    board = Progress()
    with Live(board, console=err, refresh_per_second=4, transient=True):
        yield board


def print_text(text: str) -> None:
    """Plain text as it is (a reference page): no markup, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def print_config(root: Path, source: str | None, values: dict[str, Any]) -> None:
    import yaml

    where = f"from {source}" if source else "defaults (no agentloop.yaml or [tool.agentloop])"
    out.print(f"[bold]configuration of {escape(str(root))}[/] [dim]({escape(where)})[/]")
    sys.stdout.flush()
    print_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    note("every key with its default and meaning: `agentloop config --reference`")


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
        "duration_s": None if f.duration is None else round(f.duration, 3),
        "order_dependent": f.order_dependent,
        "polluter": f.polluter,
    }


def _task_doc(position: int, task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "fingerprint": task.fingerprint,
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
            "flaky": len(d.flaky),
            "order_dependent": sum(f.order_dependent for t in d.tasks for f in t.failures),
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
                "not_run": s.not_run,
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


def _pollution(task: Task) -> str:
    """Order-dependent failures of a task: what makes them fail, and how to see it."""
    lines = []
    for f in task.failures:
        if not f.order_dependent:
            continue
        cause = (
            f"fails after {escape(f.polluter)}"
            if f.polluter
            else "fails only after earlier tests (no single one found)"
        )
        lines.append(
            f"\n[yellow]order-dependent[/]: {escape(f.test_id)} passes alone, {cause}"
            + (f"\n[dim]reproduce: {escape(f.selector)}[/]" if f.selector else "")
        )
    return "".join(lines)


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
        # `agentloop run --task` takes either the number or the id.
        table.add_column("task", justify="right", style="bold")
        table.add_column("id", no_wrap=True, style="dim")
        table.add_column("tests", justify="right")
        table.add_column("category", overflow="fold")
        table.add_column("location", overflow="fold")
        table.add_column("message", min_width=20, overflow="fold", ratio=1)
        for number, task in enumerate(d.tasks, start=1):
            first = task.failures[0].test_id
            more = f" (+{len(task.failures) - 1} more)" if len(task.failures) > 1 else ""
            table.add_row(
                str(number),
                task.id,
                str(len(task.failures)),
                task.category,
                escape(str(task.crash_location) if task.crash_location else "?"),
                f"{escape(task.error_type)}: {escape(_first_line(task.message, 100))}\n"
                f"[dim]{escape(first)}{more}[/]" + _pollution(task),
            )
        out.print(table)
    if d.flaky:
        table = Table(title="Set apart as flaky: passed some re-runs", title_justify="left")
        table.add_column("test")
        table.add_column("kind")
        table.add_column("passed", justify="right")
        for f in d.flaky:
            table.add_row(escape(f.failure.test_id), f.kind, f"{f.passes}/{f.reruns}")
        out.print(table)
    tests = sum(s.tests for s in d.suites)
    not_run = sum(s.not_run or 0 for s in d.suites)
    never = f", {not_run} never ran" if not_run else ""
    style = "green" if not d.tasks else "red"
    out.print(
        f"[bold {style}]{summary_line(d)}[/] "
        f"[dim]({tests} tests in {len(d.suites)} suites{never})[/]"
    )


# ---------------------------------------------------------------- init

_INIT_STYLE = {
    "created": "green",
    "updated": "cyan",
    "merged": "cyan",
    "restored": "cyan",
    "removed": "magenta",
    "kept": "yellow",
    "unchanged": "dim",
}


def init_doc(report: InitReport) -> dict[str, Any]:
    return {
        "$schema": INIT_SCHEMA_ID,
        "agentloop_version": __version__,
        "root": str(report.root),
        "command": "uninstall" if report.uninstall else "install",
        "changed": report.wrote,
        "files": [{"path": r.path, "action": r.action, "detail": r.detail} for r in report.results],
        "notes": list(report.notes),
        "warnings": list(report.warnings),
    }


def print_init(report: InitReport) -> None:
    """One line per file, then what it amounts to."""
    for r in report.results:
        style = _INIT_STYLE[r.action]
        detail = f" [dim]({escape(r.detail)})[/]" if r.detail else ""
        # One line per file, however long: logs and scripts read them whole.
        out.print(f"[{style}]{r.action:>9}[/] {escape(r.path)}{detail}", soft_wrap=True)
    for message in report.notes:
        note(message)
    for message in report.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(message)}")
    where = escape(str(report.root))
    if report.uninstall:
        if not report.results and not report.wrote:
            return
        if report.kept:
            out.print(
                f"[bold yellow]agentloop is uninstalled from {where}, except what is kept "
                "above[/] [dim](nothing of yours was deleted)[/]"
            )
        else:
            out.print(f"[bold green]agentloop is uninstalled from {where}[/]")
    elif report.wrote:
        out.print(
            f"[bold green]agentloop is installed in {where}[/] "
            "[dim](type /autofix in Claude Code; `agentloop init --uninstall` removes it)[/]"
        )
    else:
        out.print(f"[bold]agentloop is already installed in {where}; nothing changed[/]")


# ---------------------------------------------------------------- run


def print_run(run: RunReport) -> None:
    title = (
        "Plan (dry run): tasks in the order they would be tried"
        if run.dry_run
        else (f"agentloop run {run.run_id}")
    )
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True, style="dim")  # what --task takes
    for name in ("file", "tests", "category", "attempts", "outcome", "approach"):
        table.add_column(name, overflow="fold")
    table.add_column("cost", justify="right")
    table.add_column("time", justify="right")
    for t in run.tasks:
        where = str(t.task.crash_location) if t.task.crash_location else "?"
        approach = f"fixed by {t.fixed_by[:8]}" if t.fixed_by else (t.commit or "")[:8] or t.reason
        style = {"fixed": "green", "regressed": "yellow"}.get(t.outcome, "red")
        table.add_row(
            t.task.id,
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
        changed = [p for a in t.attempts if a.outcome == "fixed" for p in a.tests_changed]
        if changed:
            out.print(
                f"[bold yellow]![/] {escape(t.task.id)}: fixed WITH TEST CHANGES "
                f"({escape(', '.join(changed))}); the commit message has the diff"
            )
        if t.outcome not in ("fixed",) and not run.dry_run:
            out.print(f"[red]✗[/] {escape(t.task.id)}: {escape(t.reason)}")
            if t.suggestion:
                out.print(f"  [dim]suggested:[/] {escape(t.suggestion)}")
    if run.dry_run:
        return
    if not run.sandboxed:
        out.print(f"[bold red]{escape(NO_SANDBOX)}[/]")
    caught = run.caught
    if any(caught.values()):
        out.print(
            "[dim]verification caught:[/] "
            f"{caught['task']} by the task's tests, {caught['importers']} by the tests of "
            f"code importing the change, {caught['full']} by the full suites"
        )
    if run.stopped_by:
        note(f"stopped early: {run.stopped_by} reached")
    where = f"on branch {run.branch}" if run.branch else "no fix survived; the branch was removed"
    out.print(
        f"[bold]{run.fixed}/{len(run.tasks)} fixed[/] · ${run.cost_usd:.2f} · "
        f"{run.duration_s:.0f}s · {escape(where)} (nothing was pushed)"
    )


# ---------------------------------------------------------------- check


def check_doc(
    c: ChangeCheck, *, repository: Path, base: str, base_sha: str, patterns: Sequence[str]
) -> dict[str, Any]:
    violations: list[dict[str, Any]] = [
        {
            "kind": "forbidden_path",
            "path": v.path,
            "test": None,
            "detail": v.detail,
            "pattern": v.named_pattern,
        }
        for v in c.forbidden
    ]
    violations += [
        {"kind": v.kind, "path": v.path, "test": v.test, "detail": v.detail, "pattern": None}
        for v in c.integrity
    ]
    violations += [
        {"kind": v.kind, "path": v.path, "test": None, "detail": v.detail, "pattern": None}
        for v in c.session
    ]
    return {
        "$schema": CHECK_SCHEMA_ID,
        "agentloop_version": __version__,
        "ok": c.ok,
        "repository": str(repository),
        "base": base_sha,
        "base_ref": base,
        "changed": list(c.changed),
        "forbidden_paths": list(patterns),
        "test_integrity": c.integrity_checked,
        "violations": violations,
    }


def _line(text: str) -> None:
    # One line each, never wrapped: a model reads this output as much as a person does.
    out.print(text, soft_wrap=True)


def print_check(c: ChangeCheck, *, base: str, base_sha: str) -> None:
    since = escape(f"{base} ({base_sha[:8]})" if base != base_sha else base_sha[:8])
    files = f"{len(c.changed)} changed file{'s' if len(c.changed) != 1 else ''}"
    if c.ok:
        unchecked = (
            "" if c.integrity_checked else " (tests not checked: rails.allow_test_edits is true)"
        )
        if c.changed:
            _line(f"[bold green]rails kept:[/] {files} checked against {since}{unchecked}")
        else:
            _line(f"[bold green]rails kept:[/] no changes since {since}")
        return
    problems = f"{c.problems} problem{'s' if c.problems != 1 else ''}"
    _line(f"[bold red]rails broken:[/] {problems} in {files} since {since}")
    for p in c.forbidden:
        _line(f"[red]forbidden path[/]  {escape(str(p))}")
    for i in c.integrity:
        _line(f"[red]test integrity[/]  {escape(str(i))} [dim]({i.kind})[/]")
    for v in c.session:
        what = "user work lost" if v.kind == "user_work_lost" else "git state"
        _line(f"[red]{what}[/]  {escape(v.path)}: {escape(v.detail)}")
    todo = []
    if c.forbidden:
        paths = ", ".join(dict.fromkeys(p.path for p in c.forbidden))
        todo.append(
            f"undo the changes to {paths} (`git checkout {base} -- <path>`; delete it if new)"
        )
    if c.integrity:
        tests = ", ".join(dict.fromkeys(i.path for i in c.integrity))
        todo.append(
            f"restore the tests in {tests} as they were at {base} and fix the code under test"
            " instead"
        )
    if c.session:
        todo.append(
            "put back what this /autofix session lost or moved, as each line above says "
            "(the user's work and git's state are not yours to change)"
        )
    _line(f"[yellow]to fix:[/] {escape('; '.join(todo))}")


# ---------------------------------------------------------------- /autofix sessions


def _clock(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%H:%M UTC")


def print_session_start(s: Session, forbidden: Sequence[str], source: str | None) -> None:
    """Plain text, no markup: the /autofix skill puts this into the model's instructions."""
    minutes = s.max_runtime / 60
    lines = [
        f"Session {s.id} started at {_clock(s.started_at)}; limits from "
        f"{source or 'agentloop defaults (no agentloop.yaml)'}:",
        f"- at most {s.max_attempts} attempts per failing task "
        "(an attempt is one FIX followed by one `agentloop detect --json`)",
        f"- {minutes:g} minutes in all: stop fixing at {_clock(s.started_at + s.max_runtime)}",
        "- forbidden paths: " + ", ".join(forbidden),
    ]
    if s.user_files:
        shown = ", ".join(s.user_files[:20]) + (" …" if len(s.user_files) > 20 else "")
        lines.append(f"- the user's uncommitted files (not yours, never touch them): {shown}")
    else:
        lines.append("- the working tree was clean when the session started")
    sys.stdout.write("\n".join(lines) + "\n")


def print_session_status(s: Session, now: float) -> None:
    state = "active" if s.active else "stopped"
    left = max(0.0, s.time_left(now))
    _line(
        f"/autofix session {escape(s.id)}: {state}, {len(s.verifications)} verification(s), "
        f"{left / 60:.0f} min left"
    )
    last = s.last
    if last is None:
        _line("no `agentloop detect` yet")
    elif last.green:
        _line("[green]last verification: green[/]")
    else:
        _line(f"[red]last verification: {len(last.failing)} failing task(s)[/]")
        for task in last.failing:
            used = s.attempts(task.id)
            _line(
                f"  {escape(task.id)}  attempts {used}/{s.max_attempts}  "
                f"{escape(', '.join(task.tests[:3]))}"
            )


def session_doc(
    s: Session, forbidden: Sequence[str] | None, source: str | None, now: float
) -> dict[str, Any]:
    last = s.last
    return {
        "id": s.id,
        "active": s.active,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "max_attempts": s.max_attempts,
        "max_runtime": s.max_runtime,
        "time_left": max(0.0, s.time_left(now)),
        "config_source": source,
        "forbidden_paths": list(forbidden) if forbidden is not None else None,
        "user_files": list(s.user_files),
        "verifications": len(s.verifications),
        "green": None if last is None else last.green,
        "failing": [
            {"id": t.id, "tests": list(t.tests), "attempts": s.attempts(t.id)}
            for t in (last.failing if last else ())
        ],
    }


# ---------------------------------------------------------------- pr

PR_SCHEMA_ID = "https://agentloop.dev/schemas/pr-1.json"


def ask(question: str) -> bool:
    """Yes or no, asked on the terminal (stderr); no is the default."""
    from rich.prompt import Confirm

    return Confirm.ask(escape(question), console=err, default=False)


def print_pr_plan(plan: Plan) -> None:
    """What `agentloop pr` is about to push, before it asks."""
    err.print(f"[bold]{escape(plan.title)}[/]", soft_wrap=True)
    err.print(
        f"branch {escape(plan.branch)} → {escape(plan.remote)} ({escape(plan.remote_url)}), "
        f"{len(plan.commits)} commit(s):",
        soft_wrap=True,
    )
    for line in plan.commits:
        err.print(f"  {escape(line)}", soft_wrap=True)
    if plan.reviewers:
        who = [*plan.reviewers.users, *(f"team:{t}" for t in plan.reviewers.teams)]
        err.print(f"reviewers ({plan.reviewers.source}): {escape(', '.join(who))}", soft_wrap=True)


def pr_doc(outcome: PrOutcome) -> dict[str, Any]:
    return {
        "$schema": PR_SCHEMA_ID,
        "agentloop_version": __version__,
        "action": outcome.action,
        "run_id": outcome.run_id,
        "message": outcome.message,
        "hint": outcome.hint,
        "repo": outcome.repo,
        "base": outcome.base,
        "branch": outcome.branch,
        "pushed": outcome.pushed,
        "url": outcome.url,
        "number": outcome.number,
        "title": outcome.title,
        "body": outcome.body,
        "commits": list(outcome.commits),
        "covered_by": list(outcome.covered_by),
        "reviewers": list(outcome.reviewers),
        "refused_reviewers": list(outcome.refused_reviewers),
    }


def print_pr(outcome: PrOutcome) -> None:
    if outcome.action == "dry_run":
        # The body as GitHub would get it, on stdout, then what would be pushed.
        print_text(f"# {outcome.title}\n\n{outcome.body or ''}")
        note(f"would push {len(outcome.commits)} commit(s) from {outcome.branch}:")
        for line in outcome.commits:
            err.print(f"  {escape(line)}", soft_wrap=True)
    style = {"opened": "green", "commented": "cyan", "covered": "cyan"}.get(outcome.action, "")
    text = escape(outcome.message)
    _line(f"[bold {style}]{text}[/]" if style else text)
    if outcome.reviewers:
        _line(f"[dim]review requested from {escape(', '.join(outcome.reviewers))}[/]")
    for refused in outcome.refused_reviewers:
        err.print(f"[bold yellow]warning:[/] review request refused: {escape(refused)}")


def print_merge(doc: dict[str, Any], folder: Path) -> None:
    """`agentloop merge-results`: each task as the merged branch has it, then where it is."""
    table = Table(title=f"agentloop merge-results {doc['run_id']}", title_justify="left")
    for name in ("task", "tests", "outcome", "commit", "reason"):
        table.add_column(name, overflow="fold")
    for t in doc["tasks"]:
        style = {"fixed": "green", "regressed": "yellow"}.get(t["outcome"], "red")
        table.add_row(
            escape(t["id"]),
            str(len(t["tests"])),
            f"[{style}]{t['outcome']}[/]",
            (t["commit"] or t["fixed_by"] or "")[:8],
            escape(t["reason"] if t["outcome"] != "fixed" else ""),
        )
    out.print(table)
    totals = doc["totals"]
    out.print(f"[bold]{totals['fixed']}/{totals['tasks']} fixed[/]")
    if doc["regressions"]:
        out.print(f"regressed and left out: {escape(', '.join(doc['regressions'][:10]))}")
    if doc["branch"]:
        out.print(
            f"branch [bold]{escape(doc['branch'])}[/] (not pushed); run.json and run.bundle in "
            f"{escape(str(folder))}: `agentloop pr` opens the pull request"
        )
    else:
        out.print("nothing to merge: no run's fix survived")


def build_plan_doc(
    plan: Manifest, waves: Sequence[Sequence[str]], *, jobs: int, source: str, command: str
) -> dict[str, Any]:
    """`agentloop parallel-build --plan-only --json` (schema: build-plan)."""
    from agentloop.build.manifest import as_data

    wave_of = {stream_id: n for n, wave in enumerate(waves, 1) for stream_id in wave}
    data = as_data(plan)
    for stream in data["streams"]:
        stream["wave"] = wave_of[stream["id"]]
    return {
        "$schema": BUILD_PLAN_SCHEMA_ID,
        "agentloop_version": __version__,
        "manifest": source,
        "command": command,
        "jobs": jobs,
        "waves": [list(wave) for wave in waves],
        **data,
    }


def print_build_plan(
    plan: Manifest, waves: Sequence[Sequence[str]], *, jobs: int, source: str, command: str
) -> None:
    """`agentloop parallel-build --plan-only`: the streams wave by wave, and `command`,
    the one that builds the plan."""
    from agentloop.build.templates import TEMPLATES

    contracts = f"; {len(plan.contracts)} contract(s)" if plan.contracts else ""
    out.print(f"[bold]plan[/] {escape(source)}: {escape(_first_line(plan.request, 100))}")
    out.print(
        f"{len(plan.streams)} stream(s) in {len(waves)} wave(s), up to {jobs} at once"
        f"{contracts}; valid: ownership, dependencies, contracts, rails"
    )
    for number, wave in enumerate(waves, 1):
        together = (
            f" (at once, {jobs} at a time)"
            if len(wave) > jobs
            else (" (at once)" if len(wave) > 1 else "")
        )
        out.print(f"\n[bold]wave {number}[/]: {escape(', '.join(wave))}{together}")
        for stream_id in wave:
            stream = plan.stream(stream_id)
            guide = TEMPLATES[stream.template]
            out.print(
                f"  [bold]{escape(stream.id)}[/] {escape(stream.title)} "
                f"[dim]({stream.template}: {escape(guide.delivers)})[/]"
            )
            out.print(f"    owns: {escape(', '.join(stream.owns))}")
            if stream.depends_on:
                out.print(f"    after: {escape(', '.join(stream.depends_on))}")
            written = [c for c in plan.contracts if c.path in _owned(plan, stream.id)]
            for c in written:
                out.print(f"    writes contract {escape(c.name)} ({c.kind}): {escape(c.path)}")
            used = plan.contracts_of(stream)
            if used:
                out.print(f"    uses contracts: {escape(', '.join(c.name for c in used))}")
            tests = ", ".join(stream.tests) if stream.tests else f"(hint) {guide.tests_hint}"
            out.print(f"    tests: {escape(tests)}")
    out.print(f"\nedit {escape(source)} if you like, then build it with:")
    # Unwrapped, so it can be copied as one line.
    out.print(f"  {escape(command)}", soft_wrap=True)


def _owned(plan: Manifest, stream_id: str) -> set[str]:
    """The contract paths `stream_id` owns."""
    from agentloop.build.validate import owner_of_contracts

    return {path for path, owner in owner_of_contracts(plan).items() if owner == stream_id}


def print_plan(groups: Sequence[dict[str, Any]]) -> None:
    """`agentloop plan`: the tasks in groups that can be fixed apart, one job each."""
    table = Table(title="Independent groups of tasks (one job each)", title_justify="left")
    for name in ("job", "tasks", "tests", "files reached"):
        table.add_column(name, overflow="fold")
    for number, group in enumerate(groups, 1):
        table.add_row(
            str(number),
            escape(group["task"]),
            str(group["tests"]),
            escape(", ".join(group["files"][:5]) + (" …" if len(group["files"]) > 5 else "")),
        )
    out.print(table)


BUILD_SCHEMA_ID = "https://agentloop.dev/schemas/build-1.json"


def build_doc(
    result: Integration,
    reports: Sequence[StreamReport],
    *,
    branch: str | None,
    commit: str | None,
    wall_s: float,
) -> dict[str, Any]:
    """`agentloop parallel-build --json` (schemas/build.schema.json)."""
    merges = {m.stream: m for m in result.streams}
    verification = result.verification
    return {
        "$schema": BUILD_SCHEMA_ID,
        "agentloop_version": __version__,
        "run_id": result.run_id,
        "request": result.request,
        "base_sha": result.base_sha,
        "branch": branch,
        "commit": commit,
        "streams": [
            {
                "id": r.stream,
                "outcome": r.outcome,
                "merge": merges[r.stream].outcome if r.stream in merges else None,
                "attempts": r.attempts,
                "cost_usd": round(r.cost_usd, 6),
                "started_s": round(r.started_s, 3),
                "finished_s": round(r.finished_s, 3),
                "reason": r.reason or (merges[r.stream].reason if r.stream in merges else ""),
                "violations": list(r.violations),
                "conflicts": list(merges[r.stream].conflicts) if r.stream in merges else [],
                "contract_kept": (
                    list(merges[r.stream].contract_kept) if r.stream in merges else []
                ),
            }
            for r in reports
        ],
        "integration": {
            "merged": [m.stream for m in result.streams if m.merged],
            "conflicts": result.conflicts,
            "fixup_sessions": result.fixup_sessions,
            "new_failures": list(verification.new_failures) if verification else [],
            "remaining": list(verification.remaining) if verification else [],
        },
        "wall_s": round(wall_s, 3),
        "serial_estimate_s": round(sum(r.duration_s for r in reports), 3),
    }


def print_build(doc: dict[str, Any]) -> None:
    """A parallel build: each stream, then the integration and where the commit is."""
    table = Table(title=f"agentloop parallel-build {doc['run_id']}", title_justify="left")
    for name in ("stream", "outcome", "merge", "attempts", "time", "cost", "note"):
        table.add_column(name, overflow="fold")
    for s in doc["streams"]:
        style = "green" if s["outcome"] == "built" else "red"
        note = s["reason"] or (
            f"contract kept: {', '.join(s['contract_kept'])}" if s["contract_kept"] else ""
        )
        table.add_row(
            escape(s["id"]),
            f"[{style}]{s['outcome']}[/]",
            escape(s["merge"] or ""),
            str(s["attempts"]),
            f"{s['finished_s'] - s['started_s']:.0f}s",
            f"${s['cost_usd']:.2f}",
            escape(note),
        )
    out.print(table)
    integration = doc["integration"]
    if integration["remaining"]:
        out.print(
            f"[red]still failing after the fix-up:[/] {escape(', '.join(integration['remaining']))}"
        )
    out.print(
        f"wall {doc['wall_s']:.0f}s against {doc['serial_estimate_s']:.0f}s of stream time "
        "(the serial estimate)"
    )
    if doc["commit"]:
        out.print(
            f"one commit {doc['commit'][:10]} on [bold]{escape(doc['branch'] or '')}[/] "
            "(not pushed)"
        )
    else:
        out.print("nothing was committed")


BUILD_STATUS_SCHEMA_ID = "https://agentloop.dev/schemas/build-status-1.json"


def build_status_doc(status: BuildStatus) -> dict[str, Any]:
    """What the MCP tool build_status answers (schemas/build-status.schema.json): the
    run's state, and once it finished, the result in short (the whole document is in
    `result`)."""
    result = status.result or {}
    error, listed, merged = result.get("error"), result.get("streams"), result.get("integration")
    failed: dict[str, Any] | None = error if isinstance(error, dict) else None
    streams: list[Any] = listed if isinstance(listed, list) else []
    integration: dict[str, Any] = merged if isinstance(merged, dict) else {}
    if status.state == "running":
        next_step = "still running: ask build_status again"
    elif status.state == "ended":
        next_step = "it stopped without a result (killed?): see the log"
    elif failed is not None:
        next_step = "it did not build: see the error"
    elif result.get("commit"):
        next_step = (
            f"review `git show {result.get('branch')}`; nothing was pushed, merge or push "
            "it yourself when it is right"
        )
    else:
        next_step = "nothing was committed: see the streams' reasons and the log"
    return {
        "$schema": BUILD_STATUS_SCHEMA_ID,
        "run": status.run,
        "state": status.state,
        "elapsed_s": status.elapsed_s,
        "exit_code": status.exit_code,
        "log": f"{status.directory}/build.log",
        "result": f"{status.directory}/build.json" if status.state == "finished" else None,
        "branch": result.get("branch"),
        "commit": result.get("commit"),
        "streams": [
            {
                "id": s.get("id"),
                "outcome": s.get("outcome"),
                "merge": s.get("merge"),
                "reason": s.get("reason", ""),
            }
            for s in streams
            if isinstance(s, dict)
        ],
        "remaining": list(integration.get("remaining", [])),
        "error": failed,
        "log_tail": status.log_tail,
        "next": next_step,
    }


# ---------------------------------------------------------------- agentloop serve

SERVE_SCHEMA_ID = "https://agentloop.dev/schemas/serve-1.json"


def print_json_line(doc: dict[str, Any]) -> None:
    """One document on one line, flushed: a long-running command's --json is a stream
    another program reads line by line while it runs."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def serve_listening_doc(
    *,
    url: str,
    routes: dict[str, str | None],
    target: str,
    repository: str | None,
    inbox: Path,
    recovered: int,
    pending: int,
) -> dict[str, Any]:
    return {
        "$schema": SERVE_SCHEMA_ID,
        "agentloop_version": __version__,
        "event": "listening",
        "url": url,
        "routes": routes,
        "target": target,
        "repository": repository,
        "inbox": str(inbox),
        "recovered": recovered,
        "pending": pending,
    }


def serve_stopped_doc(counts: dict[str, int], seconds: float) -> dict[str, Any]:
    return {
        "$schema": SERVE_SCHEMA_ID,
        "agentloop_version": __version__,
        "event": "stopped",
        "seconds": round(seconds, 3),
        "deliveries": counts,
    }


def print_serve_listening(doc: dict[str, Any]) -> None:
    where = (
        f"dispatching sentry-issue to {doc['repository']}"
        if doc["target"] == "github"
        else "queueing local runs"
    )
    err.print(f"[bold]agentloop serve[/] listening on {escape(doc['url'])}, {escape(where)}")
    for source, path in doc["routes"].items():
        state = f"{doc['url']}{path}" if path else "off (no secret set)"
        err.print(f"  {source:<7} {escape(state)}")
    err.print(f"  inbox   {escape(doc['inbox'])} ({doc['pending']} pending)")
    if doc["recovered"]:
        err.print(
            f"[yellow]note:[/] {doc['recovered']} dispatch(es) a crash interrupted will be sent "
            "again (they carry their delivery id: the workflow can tell)"
        )


def print_serve_stopped(doc: dict[str, Any]) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in doc["deliveries"].items() if n)
    took = f"{doc['seconds']:.0f}s"
    err.print(f"[bold]agentloop serve[/] stopped after {took} ({counts or 'no deliveries'})")


_SERVE_STYLE = {
    "accepted": "green",
    "recorded": "green",
    "dispatched": "bold green",
    "queued": "bold green",
    "ignored": "dim",
    "duplicate": "yellow",
    "retrying": "yellow",
    "rejected": "red",
    "failed": "bold red",
    "recovered": "yellow",
}


def serve_event_line(
    kind: str, source: str, delivery: str | None, status: int | None, issue: str | None, detail: str
) -> str:
    """One delivery's progress, for humans: time, HTTP status (when it was an answer),
    source, delivery id, what happened."""
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    parts = [stamp, str(status) if status is not None else "   ", f"{source:<6}"]
    parts.append(delivery or "-")
    style = _SERVE_STYLE.get(kind, "")
    parts.append(f"[{style}]{kind}[/]" if style else kind)
    if issue:
        parts.append(f"issue {escape(issue)}")
    if detail:
        parts.append(escape(detail))
    return " ".join(parts)


def print_serve_event(
    kind: str, source: str, delivery: str | None, status: int | None, issue: str | None, detail: str
) -> None:
    err.print(serve_event_line(kind, source, delivery, status, issue, detail))


HEAL_STATUS_SCHEMA_ID = "https://agentloop.dev/schemas/heal-status-1.json"


def heal_status_doc(status: HealStatus) -> dict[str, Any]:
    """What the MCP tool heal_status answers (schemas/heal-status.schema.json): the run's
    state, and once it finished its whole --json document (`result`), its run directory
    and the command that publishes it, which the human runs."""
    result = dict(status.result) if status.result is not None else None
    error = (result or {}).get("error")
    publish = status.publish_command
    if status.state == "running":
        next_step = "still running: ask heal_status again"
    elif status.state == "ended":
        next_step = "it stopped without a result (killed?): see the log"
    elif isinstance(error, dict) or result is None:
        next_step = "it did not run: see the error and the log"
    elif publish:
        next_step = (
            "review the fix/sentry-* branches (`git log -p <branch>`); nothing was pushed. "
            f"To open the pull requests and the report, run yourself: {publish}"
        )
    else:
        next_step = "nothing to publish: see the result"
    return {
        "$schema": HEAL_STATUS_SCHEMA_ID,
        "run": status.run,
        "state": status.state,
        "elapsed_s": status.elapsed_s,
        "exit_code": status.exit_code,
        "log": f"{status.directory}/heal.log",
        "run_dir": status.run_dir,
        "publish": publish,
        "result": result,
        "log_tail": status.log_tail,
        "next": next_step,
    }
