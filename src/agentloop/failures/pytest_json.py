"""Parse pytest-json-report output (v1.5) into ParsedFailure records.

Facts verified with pytest 9.2 (see shared reference §2.1): `tests[].lineno` is 0-based,
`crash.path` is absolute and may be `<frozen os>`, `traceback[].path` is rootdir-relative
for project files and the last entry's message is the exception type. Collection errors
appear only in `collectors[]` (with `longrepr` text), never in `tests[]`.
"""

from __future__ import annotations

import json
from typing import Any

from agentloop.errors import ReportError
from agentloop.failures import text as tx
from agentloop.failures.model import Location, ParsedFailure, ParsedReport, Stage

_STAGES: tuple[Stage, ...] = ("setup", "call", "teardown")
# pytest's own exit codes.
_INTERRUPTED, _INTERNAL, _USAGE, _NO_TESTS = 2, 3, 4, 5
_SUBTESTS_UNSEEN = "failed in subtests this report does not describe"


def _dict(value: Any) -> dict[str, Any]:
    # Reports are input: a field of the wrong type is treated as absent, never trusted.
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _split_crash(message: str) -> tuple[str | None, str]:
    first, _, rest = message.partition("\n")
    head, sep, tail = first.partition(": ")
    if sep and head.replace(".", "").replace("_", "").isalnum() and head[:1].isupper():
        return head, (tail + ("\n" + rest if rest else "")).strip()
    return None, message.strip()


def _error(stage: dict[str, Any], longrepr: str) -> tuple[str, str]:
    crash = _dict(stage.get("crash"))
    named, message = _split_crash(str(crash.get("message") or ""))
    traceback = _list(stage.get("traceback"))
    last = str(_dict(traceback[-1]).get("message") or "") if traceback else ""
    from_text = tx.python_error(longrepr)
    if last.isidentifier():
        kind = last
    elif named:
        kind = named
    else:
        kind = from_text[0] if from_text else "Error"
    if not message and from_text:
        message = from_text[1]
    return kind, message


def _frames(stage: dict[str, Any], longrepr: str) -> tuple[Location, ...]:
    traceback = _list(stage.get("traceback"))
    found = tuple(
        Location(str(entry.get("path") or ""), int(entry["lineno"]))
        for entry in traceback
        if isinstance(entry, dict) and isinstance(entry.get("lineno"), int)
    )
    return found or tx.frames(longrepr)


def _test_failure(test: dict[str, Any]) -> ParsedFailure | None:
    outcome = test.get("outcome")
    if outcome not in ("failed", "error"):
        return None
    nodeid = str(test.get("nodeid") or "")
    if not nodeid:
        return None
    stage_name: Stage = "call"
    stage: dict[str, Any] = {}
    for when in _STAGES:
        candidate = test.get(when)
        if isinstance(candidate, dict) and candidate.get("outcome") == "failed":
            stage_name = when
            stage = candidate
            break
    longrepr = str(stage.get("longrepr") or "")
    if not stage:
        # Reported failed while every stage passed: with pytest 9, a unittest method whose
        # subTests failed (its last report is its own, passed call). Run by agentloop, the
        # probe supplies each subtest (failures.probe); a report read alone cannot.
        call = _dict(test.get("call"))
        longrepr = str(call.get("longrepr") or _SUBTESTS_UNSEEN)
    kind, message = _error(stage, longrepr)
    if not message and longrepr.strip():
        # No crash and no `E` line (`contains 2 failed subtests`): the text is the message.
        message = longrepr.strip().splitlines()[-1]
    path, _, name = nodeid.partition("::")
    lineno = test.get("lineno")
    durations = [_dict(test.get(when)).get("duration") for when in _STAGES]
    seconds = [d for d in durations if isinstance(d, int | float) and not isinstance(d, bool)]
    return ParsedFailure(
        dialect="pytest",
        test_id=nodeid,
        test_name=name or nodeid,
        file=path or None,
        line=lineno + 1 if isinstance(lineno, int) and not isinstance(lineno, bool) else None,
        error_type=kind,
        message=message,
        text=longrepr,
        stage=stage_name,
        frames=_frames(stage, longrepr),
        duration=sum(seconds) if seconds else None,
    )


def probe_failure(
    event: dict[str, Any], *, description: str | None, file: str | None, line: int | None
) -> ParsedFailure:
    """A failure from what the probe plugin saw: the report's crash and traceback (shaped
    as pytest-json-report shapes a stage) and its longrepr text. With a `description`,
    one subtest of the test (`node [msg] (k=v)`)."""
    nodeid = str(event.get("nodeid") or "")
    longrepr = str(event.get("longrepr") or "")
    kind, message = _error(event, longrepr)
    path, _, name = nodeid.partition("::")
    when = event.get("when")
    stage: Stage = when if when in _STAGES and description is None else "call"
    suffix = f" {description}" if description is not None else ""
    return ParsedFailure(
        dialect="pytest",
        test_id=f"{nodeid}{suffix}",
        test_name=f"{name or nodeid}{suffix}",
        file=file or path or None,
        line=line,
        error_type=kind,
        message=message or (longrepr.strip().splitlines()[-1] if longrepr.strip() else ""),
        text=longrepr,
        stage=stage,
        frames=_frames(event, longrepr),
        parent=nodeid if description is not None else "",
    )


def text_failure(nodeid: str, longrepr: str, *, stage: Stage = "collection") -> ParsedFailure:
    """A failure known only from pytest's text: a failed collector, or a report line the
    probe plugin saved before a suite was killed."""
    kind, message = tx.python_error(longrepr) or tx.first_error(longrepr) or ("Error", "")
    if not message:
        message = longrepr.strip().splitlines()[-1] if longrepr.strip() else f"{stage} failed"
    path, _, name = nodeid.partition("::")
    return ParsedFailure(
        dialect="pytest",
        test_id=nodeid,
        test_name=nodeid if stage == "collection" else (name or nodeid),
        file=path or None,
        line=None,
        error_type=kind if stage != "collection" or kind != "Error" else "CollectionError",
        message=message,
        text=longrepr,
        stage=stage,
        frames=tx.frames(longrepr),
    )


def parse_pytest_json(data: str) -> ParsedReport:
    try:
        report = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"the pytest-json report is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); it may be truncated",
            hint="re-run the suite; if it was killed, raise its timeout",
        ) from exc
    if not isinstance(report, dict) or "tests" not in report:
        raise ReportError(
            "this JSON is not a pytest-json-report report (no `tests` key)",
            hint="produce it with `pytest --json-report --json-report-file=FILE`",
        )
    failures: list[ParsedFailure] = []
    tests = report["tests"]
    if not isinstance(tests, list):
        raise ReportError(
            "this pytest-json report's `tests` is not a list",
            hint="produce it with `pytest --json-report --json-report-file=FILE`",
        )
    for collector in _list(report.get("collectors")):
        if isinstance(collector, dict) and collector.get("outcome") == "failed":
            failures.append(
                text_failure(str(collector.get("nodeid", "")), str(collector.get("longrepr", "")))
            )
    for test in tests:
        if isinstance(test, dict):
            failure = _test_failure(test)
            if failure is not None:
                failures.append(failure)
    notes: list[str] = []
    exitcode = report.get("exitcode")
    if exitcode in (_INTERNAL, _USAGE) or (exitcode == _INTERRUPTED and not failures):
        raise ReportError(
            f"pytest exited {exitcode} without running the tests (internal or usage error)",
            hint="run the suite's command by hand to see pytest's own message",
        )
    if exitcode == _NO_TESTS:
        notes.append("pytest collected no tests")
    return ParsedReport(
        dialect="pytest",
        format="pytest-json",
        failures=tuple(failures),
        total=len(tests),
        notes=tuple(notes),
    )
