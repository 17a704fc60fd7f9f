"""`agentloop stats`: how well the autofix loop has done, from the run ledger.

The tables and the --json document are built here because this command is their only
user; they print through `agentloop.output` like every other line.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from agentloop import __version__, errors, output
from agentloop.errors import UsageError
from agentloop.history import History, Ledger, Metrics, RunRecord, Stats, compute, ledger_path

STATS_SCHEMA_ID = "https://agentloop.dev/schemas/stats-1.json"
NO_RUNS = "no runs recorded yet"
# The runs table keeps to the latest ones; --json has them all.
RUNS_SHOWN = 20

_AGE = re.compile(r"(\d+)\s*([hdw])")
_AGE_UNIT = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime) -> datetime:
    """An age (`36h`, `7d`, `4w`) back from now, a date, or a time; naive means UTC."""
    text = text.strip()
    age = _AGE.fullmatch(text)
    if age:
        return now - timedelta(**{_AGE_UNIT[age[2]]: int(age[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither an age nor a date",
            hint="use an age (36h, 7d, 4w), a date (2025-01-31) or a UTC time (2025-01-31T12:00)",
        ) from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=timezone.utc)


def stats(*, repo: Path, as_json: bool, since: str | None = None) -> int:
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    start = None if since is None else parse_since(since, now=datetime.now(timezone.utc))
    path = ledger_path(repo.resolve())
    notes: list[str] = []
    if path.exists():
        with History.open(path) as history:
            ledger = history.ledger(since=start)
        if not ledger.runs:
            notes.append(NO_RUNS if start is None else f"no runs since {start:%Y-%m-%d %H:%M} UTC")
    else:
        # Reading must not create the ledger: `stats` in the wrong directory would leave
        # an empty .agentloop/ behind.
        ledger = Ledger()
        notes.append(NO_RUNS)
    result = compute(ledger)
    if as_json:
        output.print_json(stats_doc(result, ledger=path, since=start, notes=notes))
    else:
        print_stats(result, since=start, notes=notes)
    return errors.OK


# ---------------------------------------------------------------- --json


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def metrics_doc(m: Metrics) -> dict[str, Any]:
    return {
        "runs": m.runs,
        "tasks": m.tasks,
        "fixed": m.fixed,
        "unfixed": m.unfixed,
        "regressed": m.regressed,
        "unfinished": m.unfinished,
        "skipped": m.skipped,
        "attempts": m.attempts,
        "fixes_with_attempts": m.fixes_with_attempts,
        "verified": m.verified,
        "cost_usd": round(m.cost_usd, 4),
        "fix_rate": _round(m.fix_rate, 4),
        "attempts_per_fix": _round(m.attempts_per_fix, 3),
        "regression_rate": _round(m.regression_rate, 4),
        "median_time_per_fix_s": _round(m.median_time_per_fix_s, 3),
        "median_cost_per_fix_usd": _round(m.median_cost_per_fix_usd, 4),
    }


def _run_doc(run: RunRecord, m: Metrics) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "started_at": run.started_at.isoformat(),
        "finished_at": None if run.finished_at is None else run.finished_at.isoformat(),
        "branch": run.branch,
        "base_sha": run.base_sha,
        "status": run.status,
        "tasks_total": run.tasks_total,
        "duration_s": _round(run.duration_s, 3),
        "metrics": metrics_doc(m),
    }


def stats_doc(
    s: Stats, *, ledger: Path, since: datetime | None, notes: list[str]
) -> dict[str, Any]:
    return {
        "$schema": STATS_SCHEMA_ID,
        "agentloop_version": __version__,
        "ledger": str(ledger),
        "since": None if since is None else since.isoformat(),
        "overall": metrics_doc(s.overall),
        "by_category": [{"category": c, "metrics": metrics_doc(m)} for c, m in s.by_category],
        "by_week": [{"week": w, "metrics": metrics_doc(m)} for w, m in s.by_week],
        "by_run": [_run_doc(run, m) for run, m in s.by_run],
        "notes": notes,
    }


# ---------------------------------------------------------------- tables


def _percent(part: int, whole: int) -> str:
    return "–" if not whole else f"{part}/{whole} {100 * part / whole:.0f}%"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.2f}"


_CAPTION = (
    "regressed: of the fixes that went through verification. per fix: fixed tasks with "
    "attempts of their own (n); time and cost are medians, the task's failed attempts included"
)


def _metrics_table(title: str, first: str, *, caption: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column(first, overflow="fold")
    table.add_column("runs", justify="right")
    table.add_column("tasks", justify="right")
    table.add_column("fixed", justify="right")
    table.add_column("regressed", justify="right")
    table.add_column("attempts/fix", justify="right")
    table.add_column("time/fix", justify="right")
    table.add_column("cost/fix", justify="right")
    table.add_column("cost", justify="right")
    return table


def _metrics_row(table: Table, name: str, m: Metrics, *, style: str | None = None) -> None:
    apf = "–" if m.attempts_per_fix is None else f"{m.attempts_per_fix:.2f}"
    apf += f" (n={m.fixes_with_attempts})"
    table.add_row(
        escape(name),
        str(m.runs),
        str(m.tasks),
        _percent(m.fixed, m.tasks),
        _percent(m.regressed, m.verified),
        apf,
        _seconds(m.median_time_per_fix_s),
        _usd(m.median_cost_per_fix_usd),
        _usd(m.cost_usd),
        style=style,
    )


def print_stats(s: Stats, *, since: datetime | None, notes: list[str]) -> None:
    for message in notes:
        output.note(message)
    if not s.by_run:
        return
    scope = "" if since is None else f" since {since:%Y-%m-%d %H:%M} UTC"
    table = _metrics_table(
        f"Fix results{scope}, overall and by category", "category", caption=_CAPTION
    )
    _metrics_row(table, "all", s.overall, style="bold")
    for category, m in s.by_category:
        _metrics_row(table, category, m)
    output.out.print(table)

    table = _metrics_table("By ISO week (of the run's start)", "week")
    for week, m in s.by_week:
        _metrics_row(table, week, m)
    output.out.print(table)

    table = Table(title="Runs", title_justify="left")
    for name in ("run", "started (UTC)", "branch", "status"):
        table.add_column(name, overflow="fold")
    for name in ("fixed", "attempts", "cost", "time"):
        table.add_column(name, justify="right")
    shown = s.by_run[-RUNS_SHOWN:]
    for run, m in shown:
        table.add_row(
            escape(run.run_id),
            f"{run.started_at:%Y-%m-%d %H:%M}",
            escape(run.branch),
            escape(run.status),
            _percent(m.fixed, m.tasks),
            str(m.attempts),
            _usd(m.cost_usd),
            _seconds(run.duration_s),
        )
    output.out.print(table)
    if len(s.by_run) > len(shown):
        output.note(f"{len(s.by_run) - len(shown)} earlier runs not shown; --json lists all")
    o = s.overall
    output.out.print(
        f"[bold]{o.fixed}/{o.tasks} tasks fixed[/] [dim]in {o.runs} runs, {o.attempts} "
        f"attempts, {_usd(o.cost_usd)}[/]"
    )
