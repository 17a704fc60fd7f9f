"""TRIAGE: which Sentry issues `agentloop heal` works on, as pure functions over the records
integrations/sentry.py returns (no network, no clock, no configuration file).

Root cause. Issues are grouped by a signature: the exception type and the crash frame, the
innermost in-app frame of the exception that was raised, named by its module (else its
file) and function, without a line number, so a deploy that shifts lines keeps the group.
Not the top N in-app frames: Sentry already splits one crash reached through two callers
into two issues (its grouping hashes the whole in-app stack), and those are one fix, one
task. The exception type stays in the signature because a KeyError and a TypeError in one
function are usually two bugs.

Excluded paths. A crash frame in an excluded path (installed packages, vendored code; git
wildmatch globs, case-insensitive, matched against the frame's filename and absolute path)
is not ours to fix: its group is skipped with the pattern as the reason. So is an issue
whose exception has no in-app frame at all, or whose latest event Sentry no longer has.

Severity. The first rule that matches an issue decides: the configured rules, then
DEFAULT_RULES (P0 fatal, unhandled crashes, data loss, auth bypass; P1 5xx and errors;
P2 warnings), else P2. A group takes its most severe issue's.

Order. By frequency × severity: events in the last 24 hours × WEIGHT (P0 3, P1 2, P2 1),
most first; ties by severity, then events, then the signature (a stable order).

Rate breaker. When the project's error rate, the events of Sentry's newest hourly bucket
summed over every listed issue (excluded ones too: an outage in a dependency is exactly
what it is for), exceeds `max_errors_per_hour`, the decision is "alert": nothing is
selected, every P0/P1 group is skipped with the breaker as the reason; a human should look,
it is probably infrastructure.

Otherwise P0/P1 groups are selected in order up to `max_fixes`, the rest skipped as over
the cap; P2 groups are only documented (the report lists them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pathspec import PathSpec, Pattern

from agentloop.config import Severity, SeverityRule
from agentloop.integrations.sentry import Frame, Incident, SentryEvent

WEIGHT: Mapping[Severity, int] = {"P0": 3, "P1": 2, "P2": 1}
SEVERITIES: tuple[Severity, ...] = ("P0", "P1", "P2")
Decision = Literal["fix", "alert", "nothing"]

DEFAULT_RULES: tuple[SeverityRule, ...] = (
    SeverityRule(severity="P0", name="fatal", level=("fatal",)),
    SeverityRule(severity="P0", name="crash: unhandled", handled=False),
    SeverityRule(
        severity="P0",
        name="data loss",
        type=r"(?:.*\.)?(?:IntegrityError|DataError|DataLoss\w*|Corrupt\w*)",
    ),
    SeverityRule(
        severity="P0",
        name="data loss or auth bypass",
        message=r"(?i)data loss|corrupt|auth\w*[ -]bypass|privilege escalation",
    ),
    SeverityRule(severity="P1", name="5xx", tags={"http.status_code": r"5\d\d"}),
    SeverityRule(severity="P2", name="warning", level=("warning", "info", "debug", "log")),
    SeverityRule(severity="P1", name="error: a feature is broken", level=("error",)),
)
FALLBACK = SeverityRule(severity="P2", name="no rule matched")


@dataclass(frozen=True)
class Signature:
    exception: str
    where: str  # module, else file
    function: str

    def __str__(self) -> str:
        return f"{self.exception} in {self.where}:{self.function}"


@dataclass(frozen=True)
class Group:
    """Issues with one root cause: one task."""

    signature: Signature
    incidents: tuple[Incident, ...]  # most frequent first
    severity: Severity
    rule: str  # the rule that gave the severity
    events_24h: int
    events_last_hour: int
    crash_frame: Frame

    @property
    def score(self) -> int:
        return self.events_24h * WEIGHT[self.severity]

    @property
    def short_ids(self) -> tuple[str, ...]:
        return tuple(i.issue.short_id for i in self.incidents)


@dataclass(frozen=True)
class Skipped:
    incidents: tuple[Incident, ...]
    reason: str
    group: Group | None = None  # None when no root cause could be told


@dataclass(frozen=True)
class Triage:
    decision: Decision
    errors_last_hour: int
    max_errors_per_hour: int
    max_fixes: int
    selected: tuple[Group, ...]  # P0/P1, in order, at most max_fixes
    documented: tuple[Group, ...]  # P2: for the report only
    skipped: tuple[Skipped, ...]

    @property
    def breaker_tripped(self) -> bool:
        return self.decision == "alert"


# -- severity ------------------------------------------------------------------------------


def _paths(frame: Frame) -> list[str]:
    return [p.lstrip("/") for p in (frame.filename, frame.abs_path) if p]


def _spec(patterns: Sequence[str]) -> PathSpec[Pattern]:
    return PathSpec.from_lines("gitignore", [p.lower() for p in patterns])


def excluded_by(frame: Frame, patterns: Sequence[str]) -> str | None:
    """The first pattern (git wildmatch, case-insensitive) the frame's file matches."""
    for pattern in patterns:
        spec = _spec([pattern])
        if any(spec.match_file(path.lower()) for path in _paths(frame)):
            return pattern
    return None


def rule_matches(rule: SeverityRule, incident: Incident) -> bool:
    event = incident.event
    crash = event.crash if event is not None else None
    level = (event.level if event is not None else "") or incident.issue.level
    if rule.level and level not in rule.level:
        return False
    if rule.type is not None and (crash is None or not re.fullmatch(rule.type, crash.type)):
        return False
    if rule.message is not None:
        text = " ".join(filter(None, (crash.value if crash else "", incident.issue.title)))
        if not re.search(rule.message, text):
            return False
    if rule.handled is not None:
        handled = crash.handled if crash is not None else None
        if handled is None:
            handled = not incident.issue.unhandled
        if handled != rule.handled:
            return False
    for key, pattern in rule.tags.items():
        value = event.tag(key) if event is not None else None
        if value is None or not re.fullmatch(pattern, value):
            return False
    if rule.path is not None:
        frames = crash.frames if crash is not None else ()
        spec = _spec([rule.path])
        paths = [p.lower() for f in frames if f.in_app for p in _paths(f)]
        if not any(spec.match_file(p) for p in paths):
            return False
    return True


def classify(incident: Incident, rules: Sequence[SeverityRule] = ()) -> SeverityRule:
    """The rule that decides the incident's severity: the configured `rules` first."""
    for rule in (*rules, *DEFAULT_RULES):
        if rule_matches(rule, incident):
            return rule
    return FALLBACK


def _rule_name(rule: SeverityRule) -> str:
    if rule.name:
        return rule.name
    parts = [
        f"{label} {value}"
        for label, value in (
            ("type", rule.type),
            ("message", rule.message),
            ("level", ",".join(rule.level) or None),
            ("path", rule.path),
            ("handled", None if rule.handled is None else str(rule.handled).lower()),
        )
        if value
    ]
    parts += [f"tag {k}={v}" for k, v in rule.tags.items()]
    return "configured rule: " + "; ".join(parts) if parts else "configured rule"


# -- grouping ------------------------------------------------------------------------------


def crash_frame(event: SentryEvent) -> Frame | None:
    """The innermost in-app frame of the exception that was raised."""
    crash = event.crash
    if crash is None:
        return None
    return next((f for f in reversed(crash.frames) if f.in_app), None)


def signature(event: SentryEvent) -> Signature | None:
    frame = crash_frame(event)
    crash = event.crash
    if frame is None or crash is None:
        return None
    where = frame.module or frame.filename or frame.abs_path or "?"
    return Signature(crash.type, where, frame.function or "?")


def triage(
    incidents: Sequence[Incident],
    *,
    rules: Sequence[SeverityRule] = (),
    exclude_paths: Sequence[str] = (),
    max_errors_per_hour: int = 100,
    max_fixes: int = 5,
) -> Triage:
    skipped: list[Skipped] = []
    # Each member with its crash frame (the latest event's innermost in-app frame).
    by_signature: dict[Signature, list[tuple[Incident, Frame]]] = {}
    for incident in incidents:
        event = incident.event
        if event is None:
            skipped.append(Skipped((incident,), "Sentry kept no event of this issue"))
            continue
        if event.crash is None or not event.crash.frames:
            skipped.append(Skipped((incident,), "no stack trace in the latest event"))
            continue
        sig, frame = signature(event), crash_frame(event)
        if sig is None or frame is None:
            skipped.append(
                Skipped((incident,), "no in-app frame: the crash is in third-party code")
            )
            continue
        by_signature.setdefault(sig, []).append((incident, frame))

    groups = [_group(sig, members, rules) for sig, members in by_signature.items()]
    groups.sort(
        key=lambda g: (-g.score, SEVERITIES.index(g.severity), -g.events_24h, str(g.signature))
    )
    errors_last_hour = sum(i.issue.last_hour for i in incidents)
    tripped = errors_last_hour > max_errors_per_hour

    selected: list[Group] = []
    documented: list[Group] = []
    for group in groups:
        pattern = excluded_by(group.crash_frame, exclude_paths)
        if pattern is not None:
            path = group.crash_frame.filename or group.crash_frame.abs_path
            skipped.append(
                Skipped(group.incidents, f"crash frame {path} is in excluded path {pattern}", group)
            )
        elif group.severity == "P2":
            documented.append(group)
        elif tripped:
            skipped.append(
                Skipped(
                    group.incidents,
                    f"rate breaker: {errors_last_hour} errors in the last hour > "
                    f"{max_errors_per_hour}",
                    group,
                )
            )
        elif len(selected) >= max_fixes:
            skipped.append(
                Skipped(group.incidents, f"over the cap of sentry.max_fixes ({max_fixes})", group)
            )
        else:
            selected.append(group)
    decision: Decision = "alert" if tripped else ("fix" if selected else "nothing")
    return Triage(
        decision=decision,
        errors_last_hour=errors_last_hour,
        max_errors_per_hour=max_errors_per_hour,
        max_fixes=max_fixes,
        selected=tuple(selected),
        documented=tuple(documented),
        skipped=tuple(skipped),
    )


def _group(
    sig: Signature, members: list[tuple[Incident, Frame]], rules: Sequence[SeverityRule]
) -> Group:
    members.sort(key=lambda pair: (-pair[0].issue.last_day, pair[0].issue.short_id))
    decided = [(classify(incident, rules), incident, frame) for incident, frame in members]
    # The most severe member decides (the most frequent among equals: sorted above).
    rule, _, frame = min(decided, key=lambda item: SEVERITIES.index(item[0].severity))
    incidents = tuple(incident for incident, _ in members)
    return Group(
        signature=sig,
        incidents=incidents,
        severity=rule.severity,
        rule=_rule_name(rule),
        events_24h=sum(i.issue.last_day for i in incidents),
        events_last_hour=sum(i.issue.last_hour for i in incidents),
        crash_frame=frame,
    )
