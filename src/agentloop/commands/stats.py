"""`agentloop stats`: how well the autofix loop has done, from the run ledger, and what
humans did with its pull requests (`--prs` reads them from GitHub into the ledger first);
with `--builds`, how parallel builds went (speed-up over the serial estimate, integration
failures, contract accuracy).

The tables and the --json document are built here because this command is their only
user; they print through `agentloop.output` like every other line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from agentloop import __version__, errors, git, output
from agentloop.config import load_config
from agentloop.errors import ConfigError, UsageError
from agentloop.git import GitError
from agentloop.history import (
    BuildMetrics,
    BuildRecord,
    History,
    Ledger,
    Metrics,
    PullMetrics,
    PullRecord,
    RunRecord,
    Stats,
    build_metrics,
    compute,
    ledger_path,
)
from agentloop.pulls import LABEL, read_outcomes

STATS_SCHEMA_ID = "https://agentloop.dev/schemas/stats-1.json"
NO_RUNS = "no runs recorded yet"
NO_BUILDS = "no parallel builds recorded yet"
# The runs and pull requests tables keep to the latest ones; --json has them all.
RUNS_SHOWN = 20
PULLS_SHOWN = 20

_SLUG = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
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


def stats(
    *,
    repo: Path,
    as_json: bool,
    since: str | None = None,
    prs: bool = False,
    github_repo: str | None = None,
    environ: Mapping[str, str] | None = None,
    builds: bool = False,
) -> int:
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    start = None if since is None else parse_since(since, now=datetime.now(timezone.utc))
    path = ledger_path(repo.resolve())
    notes: list[str] = []
    if prs:
        name, read = read_pulls(
            repo.resolve(),
            github_repo=github_repo,
            environ=os.environ if environ is None else environ,
            quiet=as_json,
        )
        notes.append(f"read {len(read)} {pulls_noun(len(read))} labelled {LABEL} of {name}")
    if path.exists():
        with History.open(path) as history:
            ledger = history.ledger(since=start)
        records, what, empty = (
            (ledger.builds, "builds", NO_BUILDS) if builds else (ledger.runs, "runs", NO_RUNS)
        )
        if not records:
            notes.append(empty if start is None else f"no {what} since {start:%Y-%m-%d %H:%M} UTC")
    else:
        # Reading must not create the ledger: `stats` in the wrong directory would leave
        # an empty .agentloop/ behind.
        ledger = Ledger()
        notes.append(NO_BUILDS if builds else NO_RUNS)
    result = compute(ledger)
    if as_json:
        doc = stats_doc(result, ledger=path, since=start, notes=notes)
        if builds:
            doc["builds"] = builds_doc(ledger.builds)
        output.print_json(doc)
    elif builds:
        print_builds(ledger.builds, since=start, notes=notes)
    else:
        print_stats(result, since=start, notes=notes)
    return errors.OK


def read_pulls(
    root: Path, *, github_repo: str | None, environ: Mapping[str, str], quiet: bool
) -> tuple[str, tuple[PullRecord, ...]]:
    """Read the auto-fix pull requests of the project's GitHub repository and record
    them in its ledger (creating it if need be); what was recorded, and the repository."""
    # Imported here: plain `stats` reads the ledger only and needs no HTTP client.
    from agentloop.integrations.github import (
        DEFAULT_API_URL,
        TOKEN_VARIABLES,
        GitHub,
        token_variable,
    )

    # The token first: without one, nothing else is worth finding out.
    if token_variable(environ) is None:
        raise ConfigError(
            "agentloop stats --prs needs a GitHub token to read the pull requests",
            hint=f"set {TOKEN_VARIABLES[0]} (or {' or '.join(TOKEN_VARIABLES[1:])}) to a "
            "token that can read the repository's pull requests and commits",
        )
    config, _ = load_config(root, environ=environ)
    # GitHub's names ignore case: one spelling keys the ledger, so `Acme/Shop` from the
    # flag and `acme/shop` from GITHUB_REPOSITORY are one repository, not two.
    name = _github_repo(root, github_repo, config.github.repo, environ).lower()
    api_url = config.github.api_url or environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    client = GitHub.from_env(name, environ, api_url=api_url)
    path = ledger_path(root)
    with History.open(path) as history:
        known = {r.pull.number: r.pull for r in history.pulls(repo=name)}
    with output.progress(enabled=not quiet) as progress:
        progress(f"reading the pull requests of {name} labelled {LABEL}")
        outcomes = read_outcomes(client, name, known=known, progress=progress)
    # A second short open: the ledger is not held while GitHub answers.
    with History.open(path) as history:
        return name, history.record_pulls(outcomes)


def _github_repo(
    root: Path, flag: str | None, configured: str | None, environ: Mapping[str, str]
) -> str:
    """--github-repo, else github.repo, else GITHUB_REPOSITORY, else the origin remote's
    URL (the order `agentloop pr` uses)."""
    from agentloop.integrations.github import repo_from_remote_url

    for source, value in (
        ("--github-repo", flag),
        ("github.repo", configured),
        ("GITHUB_REPOSITORY", environ.get("GITHUB_REPOSITORY")),
    ):
        if value:
            if not _SLUG.fullmatch(value):
                raise UsageError(
                    f"{source} {value!r} is not owner/name", hint="e.g. --github-repo octo/shop"
                )
            return value
    try:
        url = git.remote_url(root, "origin")
    except GitError:
        url = ""
    found = repo_from_remote_url(url) if url else None
    if found is None:
        where = "has no origin remote" if not url else f"origin is {git.redact_url(url)}"
        raise UsageError(
            f"cannot tell which GitHub repository to read: {root} {where}",
            hint="pass --github-repo owner/name, or set github.repo in agentloop.yaml",
        )
    return found


def pulls_noun(count: int) -> str:
    return "pull request" if count == 1 else "pull requests"


# ---------------------------------------------------------------- --json


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def pull_metrics_doc(m: PullMetrics) -> dict[str, Any]:
    return {
        "prs": m.prs,
        "open": m.open,
        "merged": m.merged,
        "closed": m.closed,
        "reverted": m.reverted,
        "accepted": m.accepted,
        "changed_by_human": m.changed_by_human,
        "acceptance_rate": _round(m.acceptance_rate, 4),
        "median_time_to_merge_s": _round(m.median_time_to_merge_s, 3),
    }


def pull_doc(record: PullRecord) -> dict[str, Any]:
    pull = record.pull
    return {
        "repo": pull.repo,
        "number": pull.number,
        "url": pull.url,
        "title": pull.title,
        "state": pull.state,
        "categories": list(record.categories),
        "run_id": pull.run_id,
        "fingerprints": list(pull.fingerprints),
        "created_at": pull.created_at.isoformat(),
        "merged_at": _time(pull.merged_at),
        "closed_at": _time(pull.closed_at),
        "time_to_merge_s": _round(pull.time_to_merge_s, 3),
        "commits": len(pull.commits),
        "human_commits": pull.human_commits,
        "human_authors": list(pull.human_authors),
        "reverted_by": pull.reverted_by,
        "checked_at": record.checked_at.isoformat(),
    }


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


def build_metrics_doc(m: BuildMetrics) -> dict[str, Any]:
    return {
        "builds": m.builds,
        "streams": m.streams,
        "wall_s": round(m.wall_s, 3),
        "serial_s": round(m.serial_s, 3),
        "speedup": _round(m.speedup, 3),
        "integration_failures": m.integration_failures,
        "failed_builds": m.failed_builds,
        "failure_rate": _round(m.failure_rate, 4),
        "integrated": m.integrated,
        "contract_matched": m.contract_matched,
        "contract_accuracy": _round(m.contract_accuracy, 4),
    }


def _speedup(build: BuildRecord) -> float | None:
    return build.serial_s / build.wall_s if build.wall_s else None


def build_doc(build: BuildRecord) -> dict[str, Any]:
    return {
        "run_id": build.run_id,
        "request": build.request,
        "status": build.status,
        "started_at": build.started_at.isoformat(),
        "finished_at": _time(build.finished_at),
        "streams": build.streams,
        "merged": build.merged,
        "wall_s": _round(build.wall_s, 3),
        "serial_s": round(build.serial_s, 3),
        "speedup": _round(_speedup(build), 3),
        "conflicts": build.conflicts,
        "failed_suites": build.failed_suites,
        "integrated": build.integrated,
        "contract_matched": build.contract_matched,
        "commit": build.commit_sha,
    }


def builds_doc(builds: tuple[BuildRecord, ...]) -> dict[str, Any]:
    return {
        "overall": build_metrics_doc(build_metrics(builds)),
        "builds": [build_doc(b) for b in builds],
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
        "by_category": [
            {"category": c, "metrics": metrics_doc(m), "pull_requests": pull_metrics_doc(pm)}
            for (c, m), (_, pm) in zip(s.by_category, s.pulls_by_category, strict=True)
        ],
        "by_week": [{"week": w, "metrics": metrics_doc(m)} for w, m in s.by_week],
        "by_run": [_run_doc(run, m) for run, m in s.by_run],
        "pull_requests": {
            "overall": pull_metrics_doc(s.pulls_overall),
            "pulls": [pull_doc(r) for r in s.pulls],
        },
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
_ACCEPTED = (
    "accepted: auto-fix pull requests merged and not reverted, of those merged or closed "
    "(open ones are undecided); agentloop stats --prs reads them from GitHub"
)
_PULLS_CAPTION = (
    "closed: without merging. human: merged after a human pushed commits to it. "
    "accepted: merged and not reverted, of merged + closed. to merge: median, from opening"
)


def _metrics_table(
    title: str, first: str, *, caption: str | None = None, accepted: bool = False
) -> Table:
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column(first, overflow="fold")
    table.add_column("runs", justify="right")
    table.add_column("tasks", justify="right")
    table.add_column("fixed", justify="right")
    if accepted:
        table.add_column("accepted", justify="right")
    table.add_column("regressed", justify="right")
    table.add_column("attempts/fix", justify="right")
    table.add_column("time/fix", justify="right")
    table.add_column("cost/fix", justify="right")
    table.add_column("cost", justify="right")
    return table


def _accepted(m: PullMetrics) -> str:
    return _percent(m.accepted, m.merged + m.closed)


def _metrics_row(
    table: Table,
    name: str,
    m: Metrics,
    *,
    style: str | None = None,
    pulls: PullMetrics | None = None,
) -> None:
    apf = "–" if m.attempts_per_fix is None else f"{m.attempts_per_fix:.2f}"
    apf += f" (n={m.fixes_with_attempts})"
    accepted = [] if pulls is None else [_accepted(pulls)]
    table.add_row(
        escape(name),
        str(m.runs),
        str(m.tasks),
        _percent(m.fixed, m.tasks),
        *accepted,
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
    if not s.by_run and not s.pulls:
        return
    scope = "" if since is None else f" since {since:%Y-%m-%d %H:%M} UTC"
    # The humans' verdict beside the loop's own, per category, once there is one.
    accepted = bool(s.pulls)
    caption = f"{_CAPTION}\n{_ACCEPTED}" if accepted else _CAPTION
    table = _metrics_table(
        f"Fix results{scope}, overall and by category", "category", caption=caption,
        accepted=accepted,
    )  # fmt: skip
    _metrics_row(table, "all", s.overall, style="bold", pulls=s.pulls_overall if accepted else None)
    for (category, m), (_, pm) in zip(s.by_category, s.pulls_by_category, strict=True):
        _metrics_row(table, category, m, pulls=pm if accepted else None)
    output.out.print(table)
    if s.by_run:
        _print_runs(s)
    if s.pulls:
        _print_pulls(s, scope=scope)
    o, pm = s.overall, s.pulls_overall
    line = (
        f"[bold]{o.fixed}/{o.tasks} tasks fixed[/] [dim]in {o.runs} runs, {o.attempts} "
        f"attempts, {_usd(o.cost_usd)}[/]"
    )
    if s.pulls:
        line += (
            f"; [bold]{pm.accepted}/{pm.merged + pm.closed} pull requests accepted[/] "
            f"[dim]({pm.open} open)[/]"
        )
    output.out.print(line)


def _pull_counts_row(table: Table, name: str, m: PullMetrics, *, style: str | None = None) -> None:
    table.add_row(
        escape(name),
        str(m.prs),
        str(m.open),
        str(m.merged),
        str(m.closed),
        _percent(m.changed_by_human, m.merged),
        _percent(m.reverted, m.merged),
        _accepted(m),
        _seconds(m.median_time_to_merge_s),
        style=style,
    )


def _print_pulls(s: Stats, *, scope: str) -> None:
    table = Table(
        title=f"Auto-fix pull requests opened{scope}, by category",
        title_justify="left",
        caption=_PULLS_CAPTION,
        caption_justify="left",
    )
    table.add_column("category", overflow="fold")
    for name in ("PRs", "open", "merged", "closed", "human", "reverted", "accepted", "to merge"):
        table.add_column(name, justify="right")
    _pull_counts_row(table, "all", s.pulls_overall, style="bold")
    for category, m in s.pulls_by_category:
        if m.prs:
            _pull_counts_row(table, category, m)
    output.out.print(table)

    table = Table(title="Latest auto-fix pull requests", title_justify="left")
    table.add_column("PR", justify="right")
    for name in ("opened (UTC)", "state", "category"):
        table.add_column(name, overflow="fold")
    table.add_column("to merge", justify="right")
    for name in ("human commits", "reverted by", "title"):
        table.add_column(name, overflow="fold")
    shown = sorted(s.pulls, key=lambda r: r.pull.created_at)[-PULLS_SHOWN:]
    for record in shown:
        pull = record.pull
        humans = "–" if not pull.human_commits else (
            f"{pull.human_commits} ({', '.join(pull.human_authors)})"
        )  # fmt: skip
        table.add_row(
            f"#{pull.number}",
            f"{pull.created_at:%Y-%m-%d %H:%M}",
            pull.state,
            escape(", ".join(record.categories)),
            _seconds(pull.time_to_merge_s),
            escape(humans),
            "–" if pull.reverted_by is None else pull.reverted_by[:12],
            escape(pull.title),
        )
    output.out.print(table)
    if len(s.pulls) > len(shown):
        output.note(
            f"{len(s.pulls) - len(shown)} earlier pull requests not shown; --json lists all"
        )


def _print_runs(s: Stats) -> None:
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


# ---------------------------------------------------------------- --builds

_BUILDS_CAPTION = (
    "serial: the sum of the streams' own times (one after another); speed-up = serial / wall. "
    "failures: streams whose first merge conflicted, plus a failed full-suite run after the "
    "merges. contract: streams merged with no conflict in a contract file, of those integrated"
)


def _ratio_x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _against_serial(speedup: float | None) -> str:
    # A small feature's builds can take longer than their streams one after another
    # (the base's suites run first, the full suites last): "0.68x faster" said the
    # opposite of what happened.
    if speedup is not None and speedup < 1:
        return f"{_ratio_x(speedup)}: slower than serial"
    return f"{_ratio_x(speedup)} faster than serial"


def print_builds(
    builds: tuple[BuildRecord, ...], *, since: datetime | None, notes: list[str]
) -> None:
    for message in notes:
        output.note(message)
    if not builds:
        return
    scope = "" if since is None else f" since {since:%Y-%m-%d %H:%M} UTC"
    table = Table(
        title=f"Parallel builds{scope}", title_justify="left", caption=_BUILDS_CAPTION,
        caption_justify="left",
    )  # fmt: skip
    for name in ("build", "started (UTC)", "status"):
        table.add_column(name, overflow="fold")
    for name in ("streams", "merged", "wall", "serial", "speed-up", "failures", "contract"):
        table.add_column(name, justify="right")
    table.add_column("request", overflow="fold")
    shown = builds[-RUNS_SHOWN:]
    for b in shown:
        table.add_row(
            escape(b.run_id),
            f"{b.started_at:%Y-%m-%d %H:%M}",
            escape(b.status),
            str(b.streams),
            str(b.merged),
            _seconds(b.wall_s),
            _seconds(b.serial_s),
            _ratio_x(_speedup(b)),
            str(b.integration_failures),
            _percent(b.contract_matched, b.integrated),
            escape(b.request if len(b.request) <= 60 else b.request[:59] + "…"),
        )
    output.out.print(table)
    if len(builds) > len(shown):
        output.note(f"{len(builds) - len(shown)} earlier builds not shown; --json lists all")
    m = build_metrics(builds)
    output.out.print(
        f"[bold]{_against_serial(m.speedup)}[/] [dim]({_seconds(m.wall_s)} wall, "
        f"{_seconds(m.serial_s)} serial estimate)[/]; integration failed in "
        f"[bold]{_percent(m.failed_builds, m.builds)}[/] builds; contract accuracy "
        f"[bold]{_percent(m.contract_matched, m.integrated)}[/] streams"
    )
