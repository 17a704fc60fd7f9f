"""A finished run read back from its `run.json` (the document `agentloop run --json`
prints), as typed records: what `agentloop pr` builds a pull request from.

The file may come from another machine (an artifact uploaded by the job that ran the
agent), so it is checked field by field and every problem is named; nothing in it is
trusted to be well-formed Markdown, a safe ref name or a short string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentloop.errors import UsageError

RUN_FILE = "run.json"
BUNDLE_FILE = "run.bundle"

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
# A fingerprint lands in an HTML comment of a PR body and in a commit trailer: nothing
# that could end the comment (`-->`) or the line.
_FINGERPRINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=-]{0,127}")


@dataclass(frozen=True)
class Selector:
    suite: str
    test: str
    selector: str


@dataclass(frozen=True)
class AttemptDoc:
    number: int
    outcome: str
    reason: str
    tier: str | None
    changed: tuple[str, ...]
    tests_changed: tuple[str, ...]
    cost_usd: float
    duration_s: float
    turns: int


@dataclass(frozen=True)
class TaskDoc:
    id: str
    category: str
    crash_location: str | None
    tests: tuple[str, ...]
    outcome: str
    commit: str | None
    fixed_by: str | None
    reason: str
    cost_usd: float
    duration_s: float
    attempts: tuple[AttemptDoc, ...]
    fingerprint: str
    files: tuple[str, ...]
    tests_diff: str
    selectors: tuple[Selector, ...]

    @property
    def fixed(self) -> bool:
        return self.outcome == "fixed"

    @property
    def rejected(self) -> tuple[AttemptDoc, ...]:
        return tuple(a for a in self.attempts if a.outcome != "fixed")


@dataclass(frozen=True)
class RunDoc:
    run_id: str
    agentloop_version: str
    branch: str | None
    base_sha: str
    base_ref: str | None
    commits: tuple[str, ...]
    dry_run: bool
    stopped_by: str | None
    regressions: tuple[str, ...]
    # None when the run did not record them (a run.json older than the field).
    baseline_failing: tuple[str, ...] | None
    final_failing: tuple[str, ...] | None
    tasks: tuple[TaskDoc, ...]
    cost_usd: float
    duration_s: float

    @property
    def fixed(self) -> tuple[TaskDoc, ...]:
        return tuple(t for t in self.tasks if t.fixed)

    @property
    def unfixed(self) -> tuple[TaskDoc, ...]:
        return tuple(t for t in self.tasks if not t.fixed)

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """The fixed tasks' fingerprints, each once, in task order: what dedupes."""
        return tuple(dict.fromkeys(t.fingerprint for t in self.fixed))


class _Reader:
    """Field access that collects every problem with a path, for one clear message."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def get(self, doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
            *, default: Any = ..., nullable: bool = False) -> Any:  # fmt: skip
        if key not in doc:
            if default is not ...:
                return default
            self.problems.append(f"{where}{key}: missing")
            return None
        value = doc[key]
        if value is None and nullable:
            return None
        # bool is an int: a count given as true is no count.
        wrong_bool = isinstance(value, bool) and bool not in _kinds(kind)
        if wrong_bool or not isinstance(value, kind):
            self.problems.append(f"{where}{key}: expected {_name(kind)}, got {_what(value)}")
            return None
        return value

    def strings(self, doc: Mapping[str, Any], key: str, where: str, *, default: Any = ...
                ) -> tuple[str, ...] | None:  # fmt: skip
        value = self.get(doc, key, list, where, default=default, nullable=default is None)
        if value is None or value is default:
            return value if value is None else tuple(value)
        if not all(isinstance(item, str) for item in value):
            self.problems.append(f"{where}{key}: expected a list of strings")
            return ()
        return tuple(value)

    def sha(self, doc: Mapping[str, Any], key: str, where: str, *, nullable: bool = False
            ) -> str | None:  # fmt: skip
        value = self.get(doc, key, str, where, nullable=nullable)
        if value is not None and not _SHA.fullmatch(value):
            self.problems.append(f"{where}{key}: not a commit sha: {value[:60]!r}")
            return None
        return value  # type: ignore[no-any-return]


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "an object"}  # fmt: skip
    return " or ".join(names.get(k, k.__name__) for k in _kinds(kind))


def _what(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip


_NUMBER = (int, float)


def _attempt(r: _Reader, doc: Mapping[str, Any], where: str) -> AttemptDoc:
    return AttemptDoc(
        number=r.get(doc, "number", int, where) or 0,
        outcome=r.get(doc, "outcome", str, where) or "",
        reason=r.get(doc, "reason", str, where, default="") or "",
        tier=r.get(doc, "tier", str, where, default=None, nullable=True),
        changed=r.strings(doc, "changed", where, default=()) or (),
        tests_changed=r.strings(doc, "tests_changed", where, default=()) or (),
        cost_usd=float(r.get(doc, "cost_usd", _NUMBER, where, default=0.0) or 0.0),
        duration_s=float(r.get(doc, "duration_s", _NUMBER, where, default=0.0) or 0.0),
        turns=r.get(doc, "turns", int, where, default=0) or 0,
    )


def _selectors(r: _Reader, doc: Mapping[str, Any], where: str) -> tuple[Selector, ...]:
    items = r.get(doc, "selectors", list, where, default=[]) or []
    found = []
    for index, item in enumerate(items):
        at = f"{where}selectors[{index}]."
        if not isinstance(item, dict):
            r.problems.append(f"{at[:-1]}: expected an object, got {_what(item)}")
            continue
        found.append(
            Selector(
                suite=r.get(item, "suite", str, at) or "",
                test=r.get(item, "test", str, at) or "",
                selector=r.get(item, "selector", str, at, default="", nullable=True) or "",
            )
        )
    return tuple(found)


def _task(r: _Reader, doc: Mapping[str, Any], where: str) -> TaskDoc:
    outcome = r.get(doc, "outcome", str, where) or ""
    fingerprint = r.get(doc, "fingerprint", str, where, default="", nullable=True) or ""
    if outcome == "fixed" and not _FINGERPRINT.fullmatch(fingerprint):
        r.problems.append(
            f"{where}fingerprint: "
            + (f"not a fingerprint: {fingerprint[:60]!r}" if fingerprint else "missing")
        )
    attempts = r.get(doc, "attempts", list, where, default=[]) or []
    return TaskDoc(
        id=r.get(doc, "id", str, where) or "",
        category=r.get(doc, "category", str, where) or "",
        crash_location=r.get(doc, "crash_location", str, where, default=None, nullable=True),
        tests=r.strings(doc, "tests", where) or (),
        outcome=outcome,
        commit=r.sha(doc, "commit", where, nullable=True),
        fixed_by=r.sha(doc, "fixed_by", where, nullable=True),
        reason=r.get(doc, "reason", str, where, default="") or "",
        cost_usd=float(r.get(doc, "cost_usd", _NUMBER, where, default=0.0) or 0.0),
        duration_s=float(r.get(doc, "duration_s", _NUMBER, where, default=0.0) or 0.0),
        attempts=tuple(
            _attempt(r, a, f"{where}attempts[{i}].")
            if isinstance(a, dict)
            else _attempt(r, {}, f"{where}attempts[{i}].")
            for i, a in enumerate(attempts)
        ),
        fingerprint=fingerprint,
        files=r.strings(doc, "files", where, default=()) or (),
        tests_diff=r.get(doc, "tests_diff", str, where, default="", nullable=True) or "",
        selectors=_selectors(r, doc, where),
    )


def parse(doc: object, *, source: str = RUN_FILE) -> RunDoc:
    """The run in `doc` (parsed JSON); UsageError naming every field that is wrong."""
    if not isinstance(doc, dict):
        raise UsageError(
            f"{source} is not a run of agentloop: expected an object, got {_what(doc)}",
            hint="pass the run.json that `agentloop run` wrote under .agentloop/runs/<run-id>/",
        )
    if "error" in doc and "run_id" not in doc:
        error = doc["error"] if isinstance(doc["error"], dict) else {}
        raise UsageError(
            f"{source} records a run that failed: {str(error.get('message', '?'))[:200]}",
            hint="there is nothing to open a pull request from; fix the run and run it again",
        )
    r = _Reader()
    totals = r.get(doc, "totals", dict, "", default={}) or {}
    tasks = r.get(doc, "tasks", list, "") or []
    run = RunDoc(
        run_id=r.get(doc, "run_id", str, "") or "",
        agentloop_version=r.get(doc, "agentloop_version", str, "", default="?") or "?",
        branch=r.get(doc, "branch", str, "", nullable=True),
        base_sha=r.sha(doc, "base_sha", "") or "",
        base_ref=r.get(doc, "base_ref", str, "", default=None, nullable=True),
        commits=tuple(c for c in r.strings(doc, "commits", "") or () if _SHA.fullmatch(c)),
        dry_run=bool(r.get(doc, "dry_run", bool, "", default=False)),
        stopped_by=r.get(doc, "stopped_by", str, "", default=None, nullable=True),
        regressions=r.strings(doc, "regressions", "", default=()) or (),
        baseline_failing=r.strings(doc, "baseline_failing", "", default=None),
        final_failing=r.strings(doc, "final_failing", "", default=None),
        tasks=tuple(
            _task(r, t, f"tasks[{i}].") if isinstance(t, dict) else _task(r, {}, f"tasks[{i}].")
            for i, t in enumerate(tasks)
        ),
        cost_usd=float(r.get(totals, "cost_usd", _NUMBER, "totals.", default=0.0) or 0.0),
        duration_s=float(r.get(totals, "duration_s", _NUMBER, "totals.", default=0.0) or 0.0),
    )
    if run.branch is not None and (
        not run.branch.startswith("agentloop/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", run.branch)
    ):
        r.problems.append(f"branch: not a branch agentloop makes: {run.branch[:80]!r}")
    if run.run_id and not _RUN_ID.fullmatch(run.run_id):
        r.problems.append(f"run_id: not a run id: {run.run_id[:60]!r}")
    if r.problems:
        shown = "; ".join(r.problems[:5]) + (
            f"; and {len(r.problems) - 5} more" if len(r.problems) > 5 else ""
        )
        raise UsageError(
            f"{source} is not a usable run of agentloop: {shown}",
            hint="pass the run.json that `agentloop run` wrote (an agentloop as new as this "
            "one writes every field `agentloop pr` needs)",
        )
    return run


def load(path: Path) -> RunDoc:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"{path} does not exist", hint="pass a run id, a run directory or a run.json"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} cannot be read: {exc}", hint="pass a readable run.json") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="pass the run.json that `agentloop run` wrote (it may have been cut short)",
        ) from None
    return parse(doc, source=str(path))
