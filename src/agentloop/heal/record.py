"""The record of an `agentloop heal` run: `heal.json` in `.agentloop/runs/<run id>/`
(schemas/heal-run.schema.json), beside `heal.bundle` (the fix/sentry-* branches).

It holds what the publishing job needs and nothing more, since that job may run elsewhere
(a second CI job with the uploaded run directory and a GitHub token, no model key, no
Sentry token): the triage (each root cause with its Sentry issues and crash frame, the
breaker's state), and each selected root cause's outcome: the reproduction's evidence, the
fix (what the PR step checks and shows, heal.pr.SentryFix), or why not. `load` rebuilds
the triage's records from it for REPORT and PR.

No event is kept: the record is an artifact anyone with access to the CI run can read, and
an event is production's data. Every text from Sentry in it (titles, culprits, reasons
quoting an exception) is scrubbed (heal/scrub.py) on the way in; a crash frame keeps its
file, line and function, not its source line.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from agentloop import __version__
from agentloop.config import Severity
from agentloop.errors import UsageError
from agentloop.heal.pr import SentryFix, SentryRef, Suites
from agentloop.heal.reproduce import Run, Verdict
from agentloop.heal.scrub import scrub_text
from agentloop.heal.triage import Decision, Group, Signature, Skipped, Triage
from agentloop.install.files import write_atomic
from agentloop.integrations.sentry import Frame, Incident, SentryIssue

HEAL_RUN_SCHEMA_ID = "https://agentloop.dev/schemas/heal-run-1.json"
RECORD_FILE = "heal.json"
BUNDLE_FILE = "heal.bundle"

Status = Literal["fixed", "not_reproduced", "not_fixed"]


@dataclass(frozen=True)
class Evidence:
    """The reproduction test and its runs on the base commit (REPRODUCE)."""

    test_file: str | None
    test_id: str | None
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class GroupResult:
    """What became of one selected root cause. `kind` is the step's own word for why not
    (reproduce.SkipKind, fix.SkipKind), "" when fixed."""

    group: Group
    status: Status
    reason: str = ""
    kind: str = ""
    evidence: Evidence | None = None
    fix: SentryFix | None = None
    cost_usd: float = 0.0


@dataclass(frozen=True)
class HealRun:
    run_id: str
    created: datetime.datetime
    organization: str | None
    projects: tuple[str, ...]
    issues: int  # unresolved issues Sentry listed
    base_sha: str | None
    base_ref: str | None
    allow_sensitive: bool
    triage: Triage
    results: tuple[GroupResult, ...]
    bundle: str | None  # BUNDLE_FILE when there is a fix
    cost_usd: float
    duration_s: float

    @property
    def fixes(self) -> tuple[SentryFix, ...]:
        return tuple(r.fix for r in self.results if r.fix is not None)

    @property
    def unfixed(self) -> tuple[GroupResult, ...]:
        return tuple(r for r in self.results if r.status != "fixed")


# ---------------------------------------------------------------- to the document


def _dt(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _issue(issue: SentryIssue) -> dict[str, Any]:
    return {
        "id": issue.id,
        "short_id": issue.short_id,
        "title": scrub_text(issue.title),
        "culprit": scrub_text(issue.culprit),
        "level": issue.level,
        "status": issue.status,
        "project": issue.project,
        "count": issue.count,
        "user_count": issue.user_count,
        "first_seen": _dt(issue.first_seen),
        "last_seen": _dt(issue.last_seen),
        "permalink": issue.permalink,
        "hourly": list(issue.hourly),
        "unhandled": issue.unhandled,
    }


def _frame(frame: Frame) -> dict[str, Any]:
    return {
        "filename": frame.filename,
        "abs_path": frame.abs_path,
        "function": frame.function,
        "module": frame.module,
        "lineno": frame.lineno,
        "in_app": frame.in_app,
    }


def group_doc(group: Group) -> dict[str, Any]:
    sig = group.signature
    return {
        "signature": {
            "exception": scrub_text(sig.exception),
            "where": scrub_text(sig.where),
            "function": scrub_text(sig.function),
        },
        "severity": group.severity,
        "rule": group.rule,
        "events_24h": group.events_24h,
        "events_last_hour": group.events_last_hour,
        "crash_frame": _frame(group.crash_frame),
        "issues": [_issue(i.issue) for i in group.incidents],
    }


def triage_doc(triage: Triage) -> dict[str, Any]:
    return {
        "decision": triage.decision,
        "errors_last_hour": triage.errors_last_hour,
        "max_errors_per_hour": triage.max_errors_per_hour,
        "max_fixes": triage.max_fixes,
        "selected": [group_doc(g) for g in triage.selected],
        "documented": [group_doc(g) for g in triage.documented],
        "skipped": [
            {
                "reason": scrub_text(s.reason),
                "group": group_doc(s.group) if s.group is not None else None,
                "issues": [_issue(i.issue) for i in s.incidents],
            }
            for s in triage.skipped
        ],
    }


def run_doc(run: Run) -> dict[str, Any]:
    return {
        "number": run.number,
        "verdict": run.verdict,
        "test_id": run.test_id,
        "exception": run.exception,
        "crash": run.crash,
        "functions": list(run.functions),
        "message": run.message,
        "output": run.output,
        "duration_s": round(run.duration_s, 3),
    }


def fix_doc(fix: SentryFix) -> dict[str, Any]:
    return {
        "issues": [
            {
                "issue_id": r.issue_id,
                "short_id": r.short_id,
                "title": scrub_text(r.title),
                "culprit": scrub_text(r.culprit),
                "permalink": r.permalink,
                "events_24h": r.events_24h,
            }
            for r in fix.issues
        ],
        "severity": fix.severity,
        "signature": scrub_text(fix.signature),
        "branch": fix.branch,
        "commit": fix.commit,
        "base_sha": fix.base_sha,
        "base_ref": fix.base_ref,
        "files": list(fix.files),
        "diff_stat": fix.diff_stat,
        "test_file": fix.test_file,
        "test_id": fix.test_id,
        "fail_before": [run_doc(r) for r in fix.fail_before],
        "test_passed": fix.test_passed,
        "suites": {
            "tests": fix.suites.tests,
            "failing_before": list(fix.suites.failing_before),
            "failing_after": list(fix.suites.failing_after),
        },
        "cause": scrub_text(fix.cause),
        "attempts": fix.attempts,
        "cost_usd": round(fix.cost_usd, 4),
        "duration_s": round(fix.duration_s, 3),
        "sensitive_allowed": fix.sensitive_allowed,
    }


def result_doc(result: GroupResult) -> dict[str, Any]:
    ev = result.evidence
    return {
        "signature": scrub_text(str(result.group.signature)),
        "severity": result.group.severity,
        "short_ids": list(result.group.short_ids),
        "status": result.status,
        "kind": result.kind,
        "reason": scrub_text(result.reason),
        "reproduction": None
        if ev is None
        else {
            "test_file": ev.test_file,
            "test_id": ev.test_id,
            "runs": [run_doc(r) for r in ev.runs],
        },
        "fix": fix_doc(result.fix) if result.fix is not None else None,
        "cost_usd": round(result.cost_usd, 4),
    }


def to_doc(run: HealRun) -> dict[str, Any]:
    return {
        "$schema": HEAL_RUN_SCHEMA_ID,
        "agentloop_version": __version__,
        "run_id": run.run_id,
        "created": run.created.isoformat(),
        "organization": run.organization,
        "projects": list(run.projects),
        "issues": run.issues,
        "base_sha": run.base_sha,
        "base_ref": run.base_ref,
        "allow_sensitive": run.allow_sensitive,
        "triage": triage_doc(run.triage),
        "results": [result_doc(r) for r in run.results],
        "bundle": run.bundle,
        "cost_usd": round(run.cost_usd, 4),
        "duration_s": round(run.duration_s, 3),
    }


def write(folder: Path, run: HealRun) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORD_FILE
    write_atomic(path, (json.dumps(to_doc(run), indent=2) + "\n").encode(), follow=False)
    return path


# ---------------------------------------------------------------- from the document


def _when(value: Any) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else None


def _issue_of(doc: Mapping[str, Any]) -> SentryIssue:
    return SentryIssue(
        id=str(doc["id"]),
        short_id=str(doc["short_id"]),
        title=str(doc["title"]),
        culprit=str(doc.get("culprit") or ""),
        level=str(doc.get("level") or "error"),
        status=str(doc.get("status") or "unresolved"),
        project=str(doc.get("project") or ""),
        count=int(doc.get("count") or 0),
        user_count=int(doc.get("user_count") or 0),
        first_seen=_when(doc.get("first_seen")),
        last_seen=_when(doc.get("last_seen")),
        permalink=str(doc.get("permalink") or ""),
        hourly=tuple(int(n) for n in doc.get("hourly") or ()),
        unhandled=bool(doc.get("unhandled")),
    )


def _incidents(docs: Sequence[Mapping[str, Any]]) -> tuple[Incident, ...]:
    return tuple(Incident(_issue_of(d), None) for d in docs)


def _group_of(doc: Mapping[str, Any]) -> Group:
    sig, frame = doc["signature"], doc["crash_frame"]
    return Group(
        signature=Signature(str(sig["exception"]), str(sig["where"]), str(sig["function"])),
        incidents=_incidents(doc["issues"]),
        severity=cast(Severity, doc["severity"]),
        rule=str(doc["rule"]),
        events_24h=int(doc["events_24h"]),
        events_last_hour=int(doc["events_last_hour"]),
        crash_frame=Frame(
            filename=frame.get("filename"),
            abs_path=frame.get("abs_path"),
            function=frame.get("function"),
            module=frame.get("module"),
            lineno=frame.get("lineno"),
            in_app=bool(frame.get("in_app", True)),
        ),
    )


def _triage_of(doc: Mapping[str, Any]) -> Triage:
    return Triage(
        decision=cast(Decision, doc["decision"]),
        errors_last_hour=int(doc["errors_last_hour"]),
        max_errors_per_hour=int(doc["max_errors_per_hour"]),
        max_fixes=int(doc["max_fixes"]),
        selected=tuple(_group_of(g) for g in doc["selected"]),
        documented=tuple(_group_of(g) for g in doc["documented"]),
        skipped=tuple(
            Skipped(
                _incidents(s["issues"]),
                str(s["reason"]),
                _group_of(s["group"]) if s.get("group") else None,
            )
            for s in doc["skipped"]
        ),
    )


def _run_of(doc: Mapping[str, Any]) -> Run:
    return Run(
        number=int(doc["number"]),
        verdict=cast(Verdict, doc["verdict"]),
        test_id=doc.get("test_id"),
        exception=doc.get("exception"),
        crash=doc.get("crash"),
        functions=tuple(doc.get("functions") or ()),
        message=str(doc.get("message") or ""),
        output=str(doc.get("output") or ""),
        duration_s=float(doc.get("duration_s") or 0.0),
    )


def _fix_of(doc: Mapping[str, Any]) -> SentryFix:
    suites = doc["suites"]
    return SentryFix(
        issues=tuple(
            SentryRef(
                str(r["issue_id"]),
                str(r["short_id"]),
                str(r["title"]),
                str(r["culprit"]),
                str(r["permalink"]),
                int(r["events_24h"]),
            )
            for r in doc["issues"]
        ),
        severity=cast(Severity, doc["severity"]),
        signature=str(doc["signature"]),
        branch=str(doc["branch"]),
        commit=str(doc["commit"]),
        base_sha=str(doc["base_sha"]),
        base_ref=doc.get("base_ref"),
        files=tuple(doc["files"]),
        diff_stat=str(doc.get("diff_stat") or ""),
        test_file=str(doc["test_file"]),
        test_id=str(doc["test_id"]),
        fail_before=tuple(_run_of(r) for r in doc["fail_before"]),
        test_passed=bool(doc["test_passed"]),
        suites=Suites(
            int(suites["tests"]),
            tuple(suites["failing_before"]),
            tuple(suites["failing_after"]),
        ),
        cause=str(doc.get("cause") or ""),
        attempts=int(doc.get("attempts") or 0),
        cost_usd=float(doc.get("cost_usd") or 0.0),
        duration_s=float(doc.get("duration_s") or 0.0),
        sensitive_allowed=bool(doc.get("sensitive_allowed")),
    )


def find(given: Path) -> Path:
    """The heal.json `given` names: a run directory or the file itself."""
    for candidate in (given / RECORD_FILE, given):
        if candidate.is_file() and candidate.name == RECORD_FILE:
            return candidate.resolve()
    raise UsageError(
        f"no {RECORD_FILE} in {given}",
        hint="pass the run directory `agentloop heal --no-publish` wrote "
        "(.agentloop/runs/<run id>/, with heal.json and heal.bundle)",
    )


def load(path: Path) -> HealRun:
    """The run `path` (a heal.json) records; a file that is not one is a UsageError."""
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("$schema") != HEAL_RUN_SCHEMA_ID:
            raise ValueError(f"$schema is {doc.get('$schema')!r}")
        triage = _triage_of(doc["triage"])
        if len(doc["results"]) > len(triage.selected):
            raise ValueError("more results than selected root causes")
        results = []
        # One result per selected root cause, in the triage's order.
        for group, r in zip(triage.selected, doc["results"], strict=False):
            rep = r.get("reproduction")
            evidence = (
                Evidence(
                    rep.get("test_file"), rep.get("test_id"), tuple(_run_of(x) for x in rep["runs"])
                )
                if rep
                else None
            )
            results.append(
                GroupResult(
                    group,
                    cast(Status, r["status"]),
                    str(r.get("reason") or ""),
                    str(r.get("kind") or ""),
                    evidence,
                    _fix_of(r["fix"]) if r.get("fix") else None,
                    float(r.get("cost_usd") or 0.0),
                )
            )
        return HealRun(
            run_id=str(doc["run_id"]),
            created=datetime.datetime.fromisoformat(doc["created"]),
            organization=doc.get("organization"),
            projects=tuple(doc.get("projects") or ()),
            issues=int(doc.get("issues") or 0),
            base_sha=doc.get("base_sha"),
            base_ref=doc.get("base_ref"),
            allow_sensitive=bool(doc.get("allow_sensitive")),
            triage=triage,
            results=tuple(results),
            bundle=doc.get("bundle"),
            cost_usd=float(doc.get("cost_usd") or 0.0),
            duration_s=float(doc.get("duration_s") or 0.0),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{path} is not the record of an agentloop heal run: {exc}",
            hint="pass the run directory `agentloop heal --no-publish` wrote, unedited",
        ) from None
