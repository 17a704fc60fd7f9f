"""`agentloop heal --dry-run`: read the unresolved Sentry issues of the last 24 hours and
show the triage (heal/triage.py): the root causes it would fix, in order, those it only
documents, those it skips and why, and whether the rate breaker tripped. Read-only: it
changes nothing in the repository or in Sentry and opens nothing on GitHub.

Without --dry-run it refuses (exit 2): reproducing, fixing and opening pull requests are
not built yet.

The table and the --json document (schemas/heal.schema.json) are built here, this command
being their only user; they print through `agentloop.output`. Issue titles are text an
outsider controls (an exception's message): they are scrubbed of personal data and secrets
(heal/scrub.py); titles, paths and function names print as plain text, never as rich
markup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from agentloop import __version__, errors, output
from agentloop.config import SentryConfig, load_config
from agentloop.errors import ConfigError, UsageError
from agentloop.heal.scrub import scrub_text
from agentloop.heal.triage import Group, Skipped, Triage, triage
from agentloop.integrations.sentry import TOKEN_VARIABLES, Sentry, token_variable

HEAL_SCHEMA_ID = "https://agentloop.dev/schemas/heal-1.json"
NOT_BUILT = (
    "not built yet: agentloop heal can only show its triage; reproducing, fixing and "
    "opening pull requests come later"
)


def heal(
    *,
    repo: Path,
    dry_run: bool,
    as_json: bool,
    environ: Mapping[str, str] | None = None,
    sentry: Sentry | None = None,
) -> int:
    if not dry_run:
        raise UsageError(NOT_BUILT, hint="use `agentloop heal --dry-run` to see the triage")
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    env = os.environ if environ is None else environ
    config, _ = load_config(repo.resolve(), environ=env)
    settings = config.sentry
    if settings.organization is None:
        raise ConfigError(
            "sentry.organization is not set: agentloop heal does not know which Sentry "
            "organization to read",
            hint="set `sentry: {organization: <slug>, projects: [<slug>]}` in agentloop.yaml "
            "(or AGENTLOOP_SENTRY__ORGANIZATION)",
        )
    if sentry is None:
        if token_variable(env) is None:
            raise ConfigError(
                "agentloop heal needs a Sentry token to read the issues",
                hint=f"set {TOKEN_VARIABLES[1]} (or {TOKEN_VARIABLES[0]}) to a token with the "
                "event:read, project:read and org:read scopes",
            )
        sentry = Sentry.from_env(settings.organization, env, base_url=settings.base_url)
    with output.progress(enabled=not as_json) as progress:
        progress(f"reading the unresolved Sentry issues of {settings.organization}")
        incidents = sentry.incidents(settings.projects)
    result = triage(
        incidents,
        rules=settings.severity_rules,
        exclude_paths=settings.exclude_paths,
        max_errors_per_hour=settings.max_errors_per_hour,
        max_fixes=settings.max_fixes,
    )
    if as_json:
        output.print_json(heal_doc(result, settings, issues=len(incidents)))
    else:
        print_triage(result, settings, issues=len(incidents))
    return errors.OK


# ---------------------------------------------------------------- --json


def _issue_doc(group_or_skip: Group | Skipped) -> list[dict[str, Any]]:
    return [
        {
            "id": i.issue.id,
            "short_id": i.issue.short_id,
            "title": scrub_text(i.issue.title),
            "permalink": i.issue.permalink,
            "events_24h": i.issue.last_day,
            "events_last_hour": i.issue.last_hour,
        }
        for i in group_or_skip.incidents
    ]


def _group_doc(group: Group) -> dict[str, Any]:
    frame = group.crash_frame
    return {
        "signature": str(group.signature),
        "exception": group.signature.exception,
        "where": group.signature.where,
        "function": group.signature.function,
        "severity": group.severity,
        "rule": group.rule,
        "score": group.score,
        "events_24h": group.events_24h,
        "events_last_hour": group.events_last_hour,
        "crash_frame": {
            "file": frame.filename or frame.abs_path,
            "line": frame.lineno,
            "function": frame.function,
        },
        "issues": _issue_doc(group),
    }


def heal_doc(result: Triage, settings: SentryConfig, *, issues: int) -> dict[str, Any]:
    return {
        "$schema": HEAL_SCHEMA_ID,
        "agentloop_version": __version__,
        "dry_run": True,
        "organization": settings.organization,
        "projects": list(settings.projects),
        "issues": issues,
        "decision": result.decision,
        "breaker": {
            "tripped": result.breaker_tripped,
            "errors_last_hour": result.errors_last_hour,
            "max_errors_per_hour": result.max_errors_per_hour,
        },
        "max_fixes": result.max_fixes,
        "selected": [_group_doc(g) for g in result.selected],
        "documented": [_group_doc(g) for g in result.documented],
        "skipped": [
            {
                "reason": s.reason,
                "signature": str(s.group.signature) if s.group else None,
                "severity": s.group.severity if s.group else None,
                "issues": _issue_doc(s),
            }
            for s in result.skipped
        ],
    }


# ---------------------------------------------------------------- the table


def _ids(item: Group | Skipped) -> str:
    return ", ".join(i.issue.short_id for i in item.incidents)


def _frame(group: Group) -> str:
    frame = group.crash_frame
    where = frame.filename or frame.abs_path or "?"
    line = f":{frame.lineno}" if frame.lineno else ""
    return f"{where}{line} in {frame.function or '?'}"


def print_triage(result: Triage, settings: SentryConfig, *, issues: int) -> None:
    out = output.out
    projects = ", ".join(settings.projects) or "every project"
    out.print(
        f"{issues} unresolved Sentry issue{'s' if issues != 1 else ''} of the last 24 hours "
        f"in {escape(str(settings.organization))} ({escape(projects)})"
    )
    if result.breaker_tripped:
        out.print(
            f"[bold red]rate breaker tripped:[/] {result.errors_last_hour} errors in the last "
            f"hour > {result.max_errors_per_hour}: fix nothing, alert a human (probably "
            "infrastructure)"
        )
    else:
        out.print(
            f"error rate: {result.errors_last_hour} in the last hour "
            f"(breaker at > {result.max_errors_per_hour})"
        )
    rows = [("fix", g) for g in result.selected] + [("document", g) for g in result.documented]
    if rows:
        table = Table(
            title="Root causes, in the order to fix them (frequency × severity)",
            title_justify="left",
        )
        table.add_column("#", justify="right", style="bold")
        table.add_column("action")
        table.add_column("sev")
        table.add_column("events 24h", justify="right")
        table.add_column("score", justify="right")
        table.add_column("issues", overflow="fold")
        table.add_column("crash frame", overflow="fold")
        table.add_column("exception", overflow="fold", ratio=1)
        for number, (action, group) in enumerate(rows, start=1):
            title = group.incidents[0].issue.title
            table.add_row(
                str(number),
                action,
                group.severity,
                str(group.events_24h),
                str(group.score),
                escape(_ids(group)),
                escape(_frame(group)),
                escape(scrub_text(title)),
            )
        out.print(table)
    if result.skipped:
        table = Table(title="Skipped", title_justify="left")
        table.add_column("issues", overflow="fold")
        table.add_column("reason", overflow="fold", ratio=1)
        for skip in result.skipped:
            table.add_row(escape(_ids(skip)), escape(skip.reason))
        out.print(table)
    verdict = {
        "fix": f"would fix {len(result.selected)} root cause"
        + ("s" if len(result.selected) != 1 else ""),
        "alert": "would fix nothing and open an alert issue",
        "nothing": "nothing to fix",
    }[result.decision]
    out.print(f"[bold]dry run:[/] {verdict}; nothing was changed or opened")
