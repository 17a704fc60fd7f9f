"""Parse vitest's JSON reporter (`--reporter=json`, vitest 4) into ParsedFailure records.

Why JSON and not vitest's JUnit: the JUnit reporter keeps only the stack frames vitest
judges to be the project's and may trim them to the test line, so an error raised in
`src/` is located in the test; the JSON reporter keeps the whole Node stack
(`at parse (/abs/src/math.js:2:54)`). Facts verified with vitest 4.1.12:

- `testResults[]` is one entry per test file: `name` is its absolute path, `message` the
  file's own error (an import that fails, `Failed to load url`, a top-level `beforeAll`
  that throws), and `assertionResults[]` its tests (`ancestorTitles`, `title`, `status`
  passed|failed|skipped|pending|todo, `failureMessages`: `Type: message` + the stack).
- An assertion's diff is not in `failureMessages`; the test line is not either (no
  `location` unless the project sets `includeTaskLocation`): it comes from the stack.
- A `beforeAll`/`afterAll` of a describe block that throws leaves its file `failed` with
  an empty `message` and its tests `skipped`: the error itself is not in the report. When
  agentloop runs vitest it also writes the JUnit report, which names the block and its
  error, and holds each assertion's diff (`merge_junit`); a JSON report on its own gives
  one setup failure for the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from agentloop.errors import ReportError
from agentloop.failures import text as tx
from agentloop.failures.model import Location, ParsedFailure, ParsedReport

# vitest's own separator in a test's full name (its JUnit reporter and its terminal);
# the selector code splits on it (suites._name_pattern).
SEPARATOR = " > "
_TYPED = re.compile(r"^(?P<type>[A-Z][\w.$]*): ?(?P<msg>.*)$", re.S)
_STACK_LINE = re.compile(r"^\s+at ", re.M)
# Placeholder message for a file vitest marks failed without saying why.
NO_MESSAGE = "vitest marked this file failed without a message (usually a describe-level hook)"


def _list(value: Any) -> list[Any]:
    # A report is input: a field of the wrong type is treated as absent, never trusted.
    return value if isinstance(value, list) else []


def looks_like(data: bytes) -> bool:
    """Whether a JSON document is vitest's report: it opens with vitest's counters."""
    return b'"numTotalTestSuites"' in data[:4096] and b'"testResults"' in data


def _relative(path: str, root: Path | None) -> str:
    posix = path.replace("\\", "/")
    if root is not None:
        prefix = root.as_posix().rstrip("/") + "/"
        if posix.startswith(prefix):
            return posix[len(prefix) :]
    return posix


def _error(failure_text: str) -> tuple[str, str]:
    """`TypeError: x is not a function\\n    at …` → (TypeError, x is not a function)."""
    head = _STACK_LINE.split(failure_text, maxsplit=1)[0].strip()
    match = _TYPED.match(head)
    if match:
        return match["type"], match["msg"].strip()
    return "Error", head


def _test_line(frames: tuple[Location, ...], test_file: str) -> int | None:
    """The test's own line: the deepest frame in its file (the stack runs outermost first,
    and the innermost frame in the test file is the statement that failed)."""
    for frame in reversed(frames):
        if frame.file.replace("\\", "/").endswith("/" + test_file) or frame.file == test_file:
            return frame.line
    return None


def _file_failure(file: str, message: str) -> ParsedFailure:
    kind, text = _error(message)
    return ParsedFailure(
        dialect="vitest",
        test_id=file,
        test_name=file,
        file=file,
        line=None,
        error_type=kind if message else "HookError",
        message=text or NO_MESSAGE,
        text=message,
        # A file that cannot run at all is re-run whole (suites.selector), like a
        # collection error; an unexplained failure is most often a hook (setup).
        stage="collection" if message else "setup",
        frames=tx.frames(message),
    )


def _name(test: dict[str, Any]) -> str:
    titles = [t for t in _list(test.get("ancestorTitles")) if isinstance(t, str)]
    return SEPARATOR.join([*titles, str(test.get("title", ""))])


def _test_failure(file: str, test: dict[str, Any]) -> ParsedFailure:
    name = _name(test)
    messages = [m for m in _list(test.get("failureMessages")) if isinstance(m, str)]
    # A retried test repeats its failure; the last attempt counts.
    text = messages[-1] if messages else ""
    kind, message = _error(text) if text else ("Error", "failed without a message")
    frames = tx.frames(text)
    location = test.get("location")
    given = location.get("line") if isinstance(location, dict) else None
    line = given if isinstance(given, int) and given > 0 else _test_line(frames, file)
    ms = test.get("duration")  # milliseconds
    seconds = ms / 1000 if isinstance(ms, int | float) and not isinstance(ms, bool) else None
    return ParsedFailure(
        dialect="vitest",
        test_id=f"{file}{SEPARATOR}{name}",
        test_name=name,
        file=file,
        line=line,
        error_type=kind,
        message=message,
        text=text,
        stage="call",
        frames=frames,
        classname=file,
        duration=seconds if seconds is not None and seconds >= 0 else None,
    )


def parse_vitest_json(data: str, *, root: Path | None = None) -> ParsedReport:
    try:
        report = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"the vitest JSON report is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); it may be truncated",
            hint="re-run the suite; if it was killed, raise its timeout",
        ) from exc
    results = report.get("testResults") if isinstance(report, dict) else None
    if not isinstance(results, list):
        raise ReportError(
            "this JSON is not a vitest report (no `testResults` list)",
            hint="produce it with `vitest run --reporter=json --outputFile.json=FILE`",
        )
    failures: list[ParsedFailure] = []
    passed: set[str] = set()
    total = 0
    for entry in results:
        if not isinstance(entry, dict):
            continue
        file = _relative(str(entry.get("name") or ""), root)
        tests = [t for t in _list(entry.get("assertionResults")) if isinstance(t, dict)]
        total += len(tests)
        passed.update(f"{file}{SEPARATOR}{_name(t)}" for t in tests if t.get("status") == "passed")
        failed = [_test_failure(file, t) for t in tests if t.get("status") == "failed"]
        message = str(entry.get("message") or "")
        if entry.get("status") == "failed" and (message or not failed):
            # Counted like vitest's JUnit report counts it: one case for the file's error.
            total += 1
            failures.append(_file_failure(file, message))
        failures.extend(failed)
    return ParsedReport(
        dialect="vitest",
        format="vitest-json",
        failures=tuple(failures),
        total=total,
        passed=frozenset(passed),
    )


def _diff(junit_text: str) -> str:
    """The assertion's diff in vitest's JUnit text: the lines between the error line and
    the first `❯ file:line` frame (`- Expected`, `+ Received`, …)."""
    lines = junit_text.strip("\n").splitlines()[1:]
    body: list[str] = []
    for line in lines:
        if line.lstrip().startswith("❯ "):
            break
        body.append(line)
    return "\n".join(body).strip("\n")


def merge_junit(report: ParsedReport, junit: ParsedReport) -> ParsedReport:
    """Add what only vitest's JUnit report knows: a describe block's hook that threw
    (stage setup, named after the block), which replaces the JSON report's message-less
    failure of its file; and an assertion's diff, put under the JSON failure's message
    (the JSON keeps the stack, the JUnit the diff)."""
    diffs = {f.test_id: _diff(f.text) for f in junit.failures if f.stage == "call"}
    hooks = [f for f in junit.failures if f.stage == "setup"]
    covered = {f.file for f in hooks}
    kept: list[ParsedFailure] = []
    for failure in report.failures:
        if failure.stage == "setup" and failure.message == NO_MESSAGE and failure.file in covered:
            continue
        diff = diffs.get(failure.test_id)
        if diff and diff not in failure.text:
            head, sep, stack = failure.text.partition("\n")
            kept.append(replace(failure, text=f"{head}\n\n{diff}\n{sep and stack}"))
        else:
            kept.append(failure)
    dropped = len(report.failures) - len(kept)
    return ParsedReport(
        dialect=report.dialect,
        format=report.format,
        failures=(*kept, *hooks),
        total=report.total - dropped + len(hooks),
        notes=report.notes,
        passed=report.passed,
    )
