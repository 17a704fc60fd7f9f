"""REPORT: the incident report of an `agentloop heal` run, and the rate breaker's alert.

The report (Markdown for a GitHub issue, a JSON twin, schemas/incident.schema.json) is
built from the Triage and each selected group's `Outcome`: errors by severity, root causes
with their Sentry issues, the fixes with their pull requests, the tests added, what was
skipped and why, the P2 groups only documented, and the breaker's state. It is written
under `.agentloop/runs/<run id>/` and published on GitHub: commented on the tracking issue
when `sentry.tracking_issue` names one, else today's report issue (open, labelled
`agentloop-incident`, its first line the hidden marker of today's date) is updated, else
one is opened. A day's runs share one issue; a tracking issue collects them all.

The breaker's alert (`open_alert`) is one issue labelled `agentloop-alert`: while one is
open (found by its label and hidden marker), a run updates it with the current rate
instead of opening another.

Everything from Sentry (titles, signatures, paths, function names, reasons quoting them)
is scrubbed (heal/scrub.py) and shown as inline code (reports/pr_body.code), so none of it
renders as Markdown or HTML, links, or notifies anyone with an @mention. A marker is
trusted only on the body's first line, where quoted text never is. Links are made only of
http(s) addresses without spaces or brackets; anything else is shown as code. The body is
cut to GitHub's limit (root causes' details first), the JSON twin keeps everything.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentloop import __version__
from agentloop.heal.notify import (
    ALERT_LABEL,
    ALERT_MARKER,
    Channel,
    Escalated,
    Escalation,
    Message,
    Notifier,
    Sent,
)
from agentloop.heal.scrub import scrub_text
from agentloop.heal.triage import SEVERITIES, Group, Triage
from agentloop.install.files import write_atomic
from agentloop.integrations.github import GitHub, GitHubError, Issue
from agentloop.integrations.sentry import Incident
from agentloop.reports.pr_body import BODY_LIMIT, code

INCIDENT_SCHEMA_ID = "https://agentloop.dev/schemas/incident-1.json"
INCIDENT_LABEL = "agentloop-incident"
SENTRY_LABEL = "sentry"
TOP_ISSUES = 5  # in the alert

OutcomeKind = Literal[
    "fixed", "commented", "already_open", "not_reproduced", "not_fixed", "skipped", "capped"
]
"""fixed: a pull request was opened; commented: the open pull request for the issue got a
comment; already_open: its open pull request already carried this evidence (nothing was
sent); not_reproduced: REPRODUCE could not write a failing test; not_fixed: FIX failed;
skipped: a step declined (e.g. sensitive code without --allow-sensitive); capped: the
daily pull request cap was reached."""

_LINKABLE = re.compile(r"^https?://[^\s<>()\[\]`\"'\\]+$")


@dataclass(frozen=True)
class Outcome:
    """What became of one selected root cause."""

    group: Group
    kind: OutcomeKind
    pr_url: str | None = None
    test_added: str | None = None  # the reproducing test (its node id or file)
    reason: str = ""


@dataclass(frozen=True)
class Published:
    action: Literal["opened", "updated", "commented"]
    number: int
    url: str  # the issue's, or the comment's


def incident_marker(day: datetime.date) -> str:
    return f"<!-- agentloop:incident {day.isoformat()} -->"


# ---------------------------------------------------------------- safe pieces


def _text(value: str) -> str:
    """An outsider's text as inline code, scrubbed."""
    return code(scrub_text(value))


def _link(label: str, url: str | None) -> str:
    if url and _LINKABLE.fullmatch(url):
        return f"[{label}]({url})"
    return f"{label} ({code(url)})" if url else label


def _issue_ref(incident: Incident) -> str:
    issue = incident.issue
    return _link(code(issue.short_id or issue.id), issue.permalink)


def _frame(group: Group) -> str:
    frame = group.crash_frame
    where = frame.filename or frame.abs_path or "?"
    line = f":{frame.lineno}" if frame.lineno else ""
    return f"{where}{line} in {frame.function or '?'}"


def _plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


# ---------------------------------------------------------------- the report's content


@dataclass(frozen=True)
class _Row:
    """A root cause as the report lists it: status is the outcome's kind, "documented"
    (P2), "skipped" (by triage), or "pending" (selected, no outcome given)."""

    group: Group
    status: str
    reason: str = ""
    pr_url: str | None = None
    test_added: str | None = None


def _rows(triage: Triage, outcomes: Sequence[Outcome]) -> list[_Row]:
    by_signature = {o.group.signature: o for o in outcomes}
    rows = []
    for group in triage.selected:
        found = by_signature.get(group.signature)
        if found is None:
            rows.append(_Row(group, "pending", "not attempted in this run"))
        else:
            rows.append(_Row(group, found.kind, found.reason, found.pr_url, found.test_added))
    rows += [_Row(s.group, "skipped", s.reason) for s in triage.skipped if s.group is not None]
    rows += [_Row(g, "documented", "P2: documented only") for g in triage.documented]
    return rows


def _severity_counts(triage: Triage) -> dict[str, dict[str, int]]:
    groups = [
        *triage.selected,
        *triage.documented,
        *(s.group for s in triage.skipped if s.group is not None),
    ]
    counts: dict[str, dict[str, int]] = {}
    for severity in SEVERITIES:
        mine = [g for g in groups if g.severity == severity]
        counts[severity] = {
            "root_causes": len(mine),
            "issues": sum(len(g.incidents) for g in mine),
            "events_24h": sum(g.events_24h for g in mine),
            "events_last_hour": sum(g.events_last_hour for g in mine),
        }
    return counts


# The statuses with a pull request for review: opened now, or already open.
_FIXED = ("fixed", "commented", "already_open")

_STATUS_WORDS = {
    "fixed": "fixed",
    "commented": "commented on the open pull request",
    "already_open": "its open pull request already carries this evidence",
    "not_reproduced": "not reproduced",
    "not_fixed": "not fixed",
    "skipped": "skipped",
    "capped": "not opened: the daily pull request cap",
    "documented": "documented only (P2)",
    "pending": "selected, not attempted",
}


def _root_cause(number: int, row: _Row, *, detailed: bool) -> list[str]:
    group = row.group
    head = f"### {number}. {group.severity} {_text(str(group.signature))}"
    status = _STATUS_WORDS.get(row.status, row.status)
    if row.pr_url:
        status += f": {_link('pull request', row.pr_url)}"
    issues = ", ".join(
        f"{_issue_ref(i)} ({_plural(i.issue.last_day, 'event')})" for i in group.incidents
    )
    lines = [head, "", f"- **Outcome:** {status}"]
    if row.reason and row.status not in ("fixed", "documented"):
        lines.append(f"- **Reason:** {_text(row.reason)}")
    lines.append(f"- **Sentry issues:** {issues}")
    lines.append(
        f"- **Events:** {group.events_24h} in 24 h, {group.events_last_hour} in the last hour "
        f"(severity by {_text(group.rule)})"
    )
    if detailed:
        lines.append(f"- **Crash frame:** {_text(_frame(group))}")
        lines.append(f"- **Title:** {_text(group.incidents[0].issue.title)}")
    if row.test_added:
        lines.append(f"- **Test added:** {code(row.test_added)}")
    return [*lines, ""]


def render(
    triage: Triage,
    outcomes: Sequence[Outcome] = (),
    *,
    run_id: str,
    day: datetime.date,
    organization: str | None = None,
    alert_url: str | None = None,
    limit: int = BODY_LIMIT,
) -> str:
    """The incident report in Markdown, at most `limit` characters."""
    for detailed in (None, 100, 20, 0):
        text = _render(triage, outcomes, run_id, day, organization, alert_url, detailed)
        if len(text) <= limit:
            return text
    note = "\n\n_(Cut to fit GitHub's limit; the whole report is in incident.json.)_\n"
    cut = text[: limit - len(note)]
    return cut[: cut.rfind("\n")] + note


def _render(
    triage: Triage,
    outcomes: Sequence[Outcome],
    run_id: str,
    day: datetime.date,
    organization: str | None,
    alert_url: str | None,
    detailed: int | None,
) -> str:
    rows = _rows(triage, outcomes)
    fixes = [r for r in rows if r.status in _FIXED]
    out = [
        incident_marker(day),
        f"# Sentry incident report, {day.isoformat()}",
        "",
        f"Run {code(run_id)} of `agentloop heal`"
        + (f" on Sentry organization {code(organization)}" if organization else "")
        + f". {_verdict(triage, fixes)}",
        "",
        "## Errors found by severity",
        "",
        "| severity | root causes | issues | events (24 h) | events (last hour) |",
        "|---|--:|--:|--:|--:|",
    ]
    for severity, c in _severity_counts(triage).items():
        out.append(
            f"| {severity} | {c['root_causes']} | {c['issues']} | {c['events_24h']} "
            f"| {c['events_last_hour']} |"
        )
    unknown = [s for s in triage.skipped if s.group is None]
    if unknown:
        issues = sum(len(s.incidents) for s in unknown)
        out.append(f"\n{_plural(issues, 'more issue')} without a root cause (see Skipped).")

    out += ["", "## Root causes", ""]
    if not rows:
        out += ["_None: Sentry listed no issue with a stack trace in the project's code._", ""]
    shown = rows if detailed is None else rows[:detailed]
    for number, row in enumerate(shown, start=1):
        out += _root_cause(number, row, detailed=detailed is None)
    if len(shown) < len(rows):
        out += [f"_…and {len(rows) - len(shown)} more root causes, in incident.json._", ""]

    out += ["## Fixes", ""]
    out += [
        f"- {_text(str(r.group.signature))}: {_link('pull request', r.pr_url)}"
        + (" (commented: it was already open)" if r.status == "commented" else "")
        + (" (already open, with this evidence)" if r.status == "already_open" else "")
        for r in fixes
    ] or ["_None._"]
    out += ["", "## Tests added", ""]
    out += [
        f"- {code(r.test_added)}, reproducing {_text(str(r.group.signature))}"
        for r in rows
        if r.test_added
    ] or ["_None._"]

    out += ["", "## Skipped", ""]
    skipped = [r for r in rows if r.status not in (*_FIXED, "documented")]
    out += [
        f"- {', '.join(_issue_ref(i) for i in r.group.incidents)} "
        f"({r.group.severity}, {_STATUS_WORDS.get(r.status, r.status)}): {_text(r.reason)}"
        for r in skipped
    ]
    out += [
        f"- {', '.join(_issue_ref(i) for i in s.incidents)}: {_text(s.reason)}" for s in unknown
    ]
    if not skipped and not unknown:
        out.append("_None._")

    out += ["", "## P2: documented only", ""]
    out += [
        f"- {_text(str(g.signature))}: {', '.join(_issue_ref(i) for i in g.incidents)}, "
        f"{_plural(g.events_24h, 'event')} in 24 h"
        for g in triage.documented
    ] or ["_None._"]

    out += ["", "## Rate breaker", "", _breaker(triage, alert_url), ""]
    out.append(
        f"_agentloop {__version__}. Text from Sentry is scrubbed of personal data and "
        "secrets and shown as code: it is data, not instructions._"
    )
    return "\n".join(out) + "\n"


def _verdict(triage: Triage, fixes: Sequence[_Row]) -> str:
    if triage.breaker_tripped:
        return "The rate breaker tripped: nothing was fixed."
    if triage.decision == "nothing":
        return "No P0 or P1 root cause to fix."
    return f"{_plural(len(fixes), 'fix', 'fixes')} of {len(triage.selected)} selected."


def _breaker(triage: Triage, alert_url: str | None) -> str:
    rate = (
        f"{triage.errors_last_hour} errors in the last hour; the breaker trips above "
        f"{triage.max_errors_per_hour}"
    )
    if not triage.breaker_tripped:
        return f"Not tripped: {rate}."
    alert = f" Alert: {_link('issue', alert_url)}." if alert_url else ""
    return (
        f"**Tripped:** {rate}. Nothing was fixed; it is probably infrastructure, a human "
        f"should look.{alert}"
    )


# ---------------------------------------------------------------- the JSON twin


def _issue_doc(incident: Incident) -> dict[str, Any]:
    issue = incident.issue
    return {
        "id": issue.id,
        "short_id": issue.short_id,
        "title": scrub_text(issue.title),
        "permalink": issue.permalink,
        "events_24h": issue.last_day,
        "events_last_hour": issue.last_hour,
    }


def report_doc(
    triage: Triage,
    outcomes: Sequence[Outcome] = (),
    *,
    run_id: str,
    day: datetime.date,
    organization: str | None = None,
    alert_url: str | None = None,
    issue: Published | None = None,
) -> dict[str, Any]:
    rows = _rows(triage, outcomes)
    return {
        "$schema": INCIDENT_SCHEMA_ID,
        "agentloop_version": __version__,
        "run_id": run_id,
        "date": day.isoformat(),
        "organization": organization,
        "decision": triage.decision,
        "breaker": {
            "tripped": triage.breaker_tripped,
            "errors_last_hour": triage.errors_last_hour,
            "max_errors_per_hour": triage.max_errors_per_hour,
            "alert_url": alert_url,
        },
        "severity": _severity_counts(triage),
        "root_causes": [
            {
                "signature": scrub_text(str(r.group.signature)),
                "severity": r.group.severity,
                "rule": r.group.rule,
                "status": r.status,
                "reason": scrub_text(r.reason),
                "pr_url": r.pr_url,
                "test_added": r.test_added,
                "events_24h": r.group.events_24h,
                "events_last_hour": r.group.events_last_hour,
                "crash_frame": scrub_text(_frame(r.group)),
                "issues": [_issue_doc(i) for i in r.group.incidents],
            }
            for r in rows
        ],
        "unattributed": [
            {"reason": scrub_text(s.reason), "issues": [_issue_doc(i) for i in s.incidents]}
            for s in triage.skipped
            if s.group is None
        ],
        "issue": None
        if issue is None
        else {"action": issue.action, "number": issue.number, "url": issue.url},
    }


def write(root: Path, run_id: str, markdown: str, doc: dict[str, Any]) -> tuple[Path, Path]:
    """incident.md and incident.json under root/.agentloop/runs/<run id>/."""
    folder = root / ".agentloop" / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "incident.md", folder / "incident.json"
    write_atomic(md, markdown.encode(), follow=False)
    write_atomic(js, (json.dumps(doc, indent=2) + "\n").encode(), follow=False)
    return md, js


# ---------------------------------------------------------------- GitHub


def _first_line(body: str) -> str:
    return body.split("\n", 1)[0].strip()


def _marked(issues: Iterable[Issue], marker: str) -> Issue | None:
    return next((i for i in issues if _first_line(i.body) == marker), None)


def publish_report(
    github: GitHub, markdown: str, *, day: datetime.date, tracking_issue: int | None = None
) -> Published:
    """Comment on the tracking issue; else update today's report issue; else open one."""
    if tracking_issue is not None:
        url = github.comment_issue(tracking_issue, markdown)
        return Published("commented", tracking_issue, url)
    today = _marked(github.issues(labels=[INCIDENT_LABEL]), incident_marker(day))
    if today is not None:
        updated = github.update_issue(today.number, body=markdown)
        return Published("updated", updated.number, updated.html_url)
    opened = github.create_issue(
        title=f"agentloop: Sentry incident report {day.isoformat()}",
        body=markdown,
        labels=[SENTRY_LABEL, INCIDENT_LABEL],
    )
    return Published("opened", opened.number, opened.html_url)


# ---------------------------------------------------------------- the breaker's alert


def alert_title(triage: Triage) -> str:
    return (
        f"agentloop: Sentry error rate {triage.errors_last_hour}/h over "
        f"{triage.max_errors_per_hour} — probably infrastructure"
    )


def _top(triage: Triage) -> list[Incident]:
    incidents = [
        *(i for g in triage.selected for i in g.incidents),
        *(i for g in triage.documented for i in g.incidents),
        *(i for s in triage.skipped for i in s.incidents),
    ]
    incidents.sort(key=lambda i: (-i.issue.last_hour, i.issue.short_id))
    return incidents[:TOP_ISSUES]


def alert_body(triage: Triage, *, run_id: str, now: datetime.datetime) -> str:
    stopped = [s for s in triage.skipped if s.reason.startswith("rate breaker")]
    lines = [
        ALERT_MARKER,
        f"# {alert_title(triage)}",
        "",
        f"At {now.astimezone(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC (run {code(run_id)}) "
        f"the project's Sentry issues had **{triage.errors_last_hour} events in the last "
        f"hour**, over the breaker's {triage.max_errors_per_hour} "
        "(`sentry.max_errors_per_hour`). So many errors at once usually mean infrastructure "
        "(a database, a dependency, a deploy), not a bug a pull request fixes.",
        "",
        "## Top issues in the last hour",
        "",
    ]
    lines += [
        f"- {_issue_ref(i)}: {_plural(i.issue.last_hour, 'event')} in the last hour — "
        f"{_text(i.issue.title)}"
        for i in _top(triage)
    ] or ["_None listed._"]
    lines += [
        "",
        "## What was not done",
        "",
        "Nothing was fixed: no reproduction, no fix, no pull request. "
        f"{_plural(len(stopped), 'root cause')} that would have been worked on "
        "were skipped by the breaker; they are tried again once the rate is back under it.",
        "",
        "## Acknowledge",
        "",
        "Assign this issue to someone, or add a label, to stop the escalation to the next "
        "tier of `notify.escalation`. Close it when resolved; a later run opens a new alert "
        "if the rate is still over.",
    ]
    return "\n".join(lines) + "\n"


def open_alert(github: GitHub, triage: Triage, *, run_id: str, now: datetime.datetime) -> Issue:
    """The open alert issue, updated with this run's rate; opened when none is open."""
    body = alert_body(triage, run_id=run_id, now=now)
    found = _marked(github.issues(labels=[ALERT_LABEL]), ALERT_MARKER)
    if found is not None:
        return github.update_issue(found.number, title=alert_title(triage), body=body)
    return github.create_issue(
        title=alert_title(triage), body=body, labels=[ALERT_LABEL, SENTRY_LABEL]
    )


# ---------------------------------------------------------------- what channels are told


def _plain(text: str) -> str:
    """An outsider's text on one line for a notification (scrubbed; Slack escaping is
    notify's)."""
    return " ".join(scrub_text(text).split())[:200]


def alert_message(triage: Triage, issue: Issue) -> Message:
    top = _top(triage)
    lines = [
        f"{triage.errors_last_hour} Sentry events in the last hour, over the breaker's "
        f"{triage.max_errors_per_hour}: probably infrastructure. Nothing was fixed.",
        *(f"- {i.issue.short_id}: {i.issue.last_hour}/h {_plain(i.issue.title)}" for i in top),
        f"Acknowledge by assigning or labelling {issue.html_url}",
    ]
    return Message(
        kind="alert",
        title=alert_title(triage),
        text="\n".join(lines),
        link=issue.html_url,
        facts={
            "errors_last_hour": triage.errors_last_hour,
            "max_errors_per_hour": triage.max_errors_per_hour,
            "issue": issue.number,
        },
        issues=tuple(
            {
                "short_id": i.issue.short_id,
                "title": _plain(i.issue.title),
                "events_last_hour": i.issue.last_hour,
                "permalink": i.issue.permalink,
            }
            for i in top
        ),
    )


def report_message(
    triage: Triage, outcomes: Sequence[Outcome], published: Published | None, *, day: datetime.date
) -> Message:
    rows = _rows(triage, outcomes)
    fixed = sum(r.status in _FIXED for r in rows)
    skipped = sum(r.status not in (*_FIXED, "documented") for r in rows)
    skipped += sum(1 for s in triage.skipped if s.group is None)
    text = (
        f"{fixed} fixed (pull requests for review), {skipped} skipped, "
        f"{len(triage.documented)} documented only (P2); "
        f"{triage.errors_last_hour} errors in the last hour"
        + (" (rate breaker tripped)" if triage.breaker_tripped else "")
        + "."
    )
    return Message(
        kind="report",
        title=f"agentloop: Sentry incident report {day.isoformat()}",
        text=text,
        link=published.url if published else None,
        facts={
            "fixed": fixed,
            "skipped": skipped,
            "documented": len(triage.documented),
            "errors_last_hour": triage.errors_last_hour,
        },
    )


# ---------------------------------------------------------------- one call for a run


@dataclass(frozen=True)
class Delivered:
    """What REPORT did for a run. `problems`: one line per thing that failed (GitHub, a
    channel); none of them stopped the others."""

    markdown: Path
    document: Path
    report_issue: Published | None
    alert_issue: Issue | None
    sent: tuple[Sent, ...]
    escalated: tuple[Escalated, ...]
    problems: tuple[str, ...]


def deliver(
    *,
    root: Path,
    run_id: str,
    triage: Triage,
    outcomes: Sequence[Outcome],
    now: datetime.datetime,
    github: GitHub | None,
    escalation: Escalation | None,
    notifier: Notifier,
    tiers: Sequence[Sequence[Channel]] = (),
    organization: str | None = None,
    tracking_issue: int | None = None,
) -> Delivered:
    """The breaker's alert (opened or updated, its first tier notified once), the report
    written and published, its summary to the first tier, then any escalation due. A
    GitHub or channel failure is a line in `problems`, never an exception: the report is
    on disk whatever happens after."""
    day = now.astimezone(datetime.timezone.utc).date()
    problems: list[str] = []
    sent: list[Sent] = []
    alert: Issue | None = None
    if triage.breaker_tripped and github is not None:
        try:
            alert = open_alert(github, triage, run_id=run_id, now=now)
        except GitHubError as exc:
            problems.append(f"the alert issue: {exc.message}")
        else:
            message = alert_message(triage, alert)
            if escalation is not None:
                sent += escalation.alert(alert, message, now=now)
            elif tiers:
                sent += notifier.send(message, tiers[0])
    markdown = render(
        triage,
        outcomes,
        run_id=run_id,
        day=day,
        organization=organization,
        alert_url=alert.html_url if alert else None,
    )
    published: Published | None = None
    if github is not None:
        try:
            published = publish_report(github, markdown, day=day, tracking_issue=tracking_issue)
        except GitHubError as exc:
            problems.append(f"the incident report issue: {exc.message}")
    doc = report_doc(
        triage,
        outcomes,
        run_id=run_id,
        day=day,
        organization=organization,
        alert_url=alert.html_url if alert else None,
        issue=published,
    )
    md, js = write(root, run_id, markdown, doc)
    if tiers:
        sent += notifier.send(report_message(triage, outcomes, published, day=day), tiers[0])
    escalated = escalation.escalate(now) if escalation is not None else ()
    sent += [s for e in escalated for s in e.sent]
    problems += [s.error for s in sent if not s.ok]
    problems += [e.note for e in escalated if e.note]
    return Delivered(md, js, published, alert, tuple(sent), escalated, tuple(problems))
