"""Parse JUnit XML from pytest, vitest, jest-junit, gotestsum/go-junit-report and Maven
Surefire into ParsedFailure records.

The parser streams (XMLPullParser) and forgets each <testcase> once read: a 100,000-case
report parses in about 0.45 s with a 39 MB peak; junitparser, which builds the whole tree
of wrapper objects first, takes the same time with a 66 MB peak
(benchmarks/parse_bench.py prints both side by side). Streaming also lets the dialect
rules (re-run duplicates, jest's doubled suite errors, go's failing parents) work on plain
elements.
Dialect facts are in the shared reference §2.2-2.5 and tests/data/reports/README.md.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from agentloop.errors import ReportError
from agentloop.failures import text as tx
from agentloop.failures.model import Dialect, ParsedFailure, ParsedReport, Stage

_CHUNK = 1 << 20
_JEST_SUITE_ERROR = "Test suite failed to run"
_PYTEST_STAGE = re.compile(r'^failed on (setup|teardown) with "(.*)"$', re.S)
_GO_MESSAGE = re.compile(r"^\s+[\w./-]+_test\.go:\d+: (?P<msg>.+)$", re.M)
_GO_PANIC = re.compile(r"^panic: (?P<msg>.+)$", re.M)
# jest's default testMatch: `*.test.js`/`*.spec.ts`…, or anything under `__tests__/`.
_JS_TEST_FILE = re.compile(r"(\.(test|spec)\.[cm]?[jt]sx?$|(^|/)__tests__/.+\.[cm]?[jt]sx?$)")


@dataclass
class _Case:
    classname: str
    name: str
    file: str | None
    line: int | None
    tag: str  # "failure" or "error"
    type: str
    message: str
    text: str
    suite: str
    time: float | None = None


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


@dataclass
class _State:
    dialect: Dialect | None = None
    suites: list[str] = field(default_factory=list)
    # Failures a runner counts on the root but attaches to no test (gotestsum build errors).
    root_errors: int = 0
    # Keyed by (classname, name): re-run attempts repeat a testcase, the last one counts.
    last: dict[tuple[str, str], _Case | None] = field(default_factory=dict)
    # The cases that ran and passed, for the dialects whose ids the parser can name
    # without a failure's text (_PASSED_KEPT): a batch of selected tests needs them.
    passed: list[_Case] = field(default_factory=list)


_PASSED_KEPT: frozenset[Dialect | None] = frozenset({"jest", "vitest"})


def _sniff_root(elem: ET.Element) -> Dialect | None:
    name = elem.get("name", "")
    if elem.tag == "testsuites":
        if name.startswith("vitest"):
            return "vitest"
        if name.startswith("jest"):
            return "jest"
        if name.startswith("pytest"):
            return "pytest"
    if elem.tag == "testsuite":
        if name == "pytest":
            return "pytest"
        schema = " ".join(
            v for k, v in elem.attrib.items() if k.endswith("noNamespaceSchemaLocation")
        )
        if "surefire" in schema:
            return "surefire"
    return None


def _case_from(elem: ET.Element, suite: str) -> _Case | None:
    result = None
    for child in elem:
        if child.tag in ("failure", "error"):
            result = child
            break
    if result is None:
        return None
    line = elem.get("line")
    return _Case(
        classname=elem.get("classname", ""),
        name=elem.get("name", ""),
        file=elem.get("file"),
        line=int(line) if line and line.isdigit() else None,
        tag=result.tag,
        type=result.get("type") or "",
        message=result.get("message") or "",
        text=result.text or "",
        suite=suite,
        time=_seconds(elem.get("time")),
    )


def _stream(data: bytes, state: _State) -> None:
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    depth_suites: list[ET.Element] = []
    root_seen = False
    for offset in range(0, len(data), _CHUNK):
        parser.feed(data[offset : offset + _CHUNK])
        for pair in cast("Iterator[tuple[str, ET.Element]]", parser.read_events()):
            # With only start/end events every item is an Element (typeshed can't tell).
            event, elem = pair
            tag = elem.tag
            if event == "start":
                if not root_seen:
                    root_seen = True
                    errors = elem.get("errors", "0")
                    state.root_errors = int(errors) if errors.isdigit() else 0
                    if tag not in ("testsuites", "testsuite"):
                        raise ReportError(
                            f"this XML is not a JUnit report (root element <{tag}>)",
                            hint="pass a JUnit XML file, or --format pytest-json for JSON",
                        )
                if tag in ("testsuites", "testsuite"):
                    state.dialect = state.dialect or _sniff_root(elem)
                if tag == "testsuite":
                    depth_suites.append(elem)
                continue
            if tag == "testcase":
                key = (elem.get("classname", ""), elem.get("name", ""))
                suite = depth_suites[-1].get("name", "") if depth_suites else ""
                case = _case_from(elem, suite)
                if (
                    case is None
                    and state.dialect in _PASSED_KEPT
                    and not any(child.tag == "skipped" for child in elem)
                ):
                    state.passed.append(
                        _Case(key[0], key[1], elem.get("file"), None, "passed", "", "", "", suite)
                    )
                earlier = state.last.get(key)
                if earlier is None or state.dialect == "pytest":
                    # pytest-rerunfailures repeats a testcase per attempt: the last counts.
                    # Elsewhere a repeated name is another test (vitest allows two `it("x")`)
                    # or jest-junit's suite error written twice (the readable one first):
                    # a failure is never replaced.
                    state.last[key] = case
                elem.clear()
            elif tag == "property" and elem.get("name") == "go.version":
                state.dialect = state.dialect or "go"
            elif tag == "testsuite":
                state.suites.append(elem.get("name", ""))
                depth_suites.pop()
                elem.clear()
    parser.close()
    if not root_seen:
        raise ET.ParseError("no element found")


def _dotted_to_file(classname: str, root: Path | None) -> tuple[str | None, list[str]]:
    """pytest's dotted classname → (test file, remaining class names)."""
    parts = classname.split(".")
    if root is not None:
        for cut in range(len(parts), 0, -1):
            candidate = "/".join(parts[:cut]) + ".py"
            if (root / candidate).is_file():
                return candidate, parts[cut:]
    # Without the source tree: classes are the segments from the first capitalised one.
    cut = next((i for i, p in enumerate(parts) if p[:1].isupper()), len(parts))
    if cut == 0:
        return None, parts
    return "/".join(parts[:cut]) + ".py", parts[cut:]


def _split_type(message: str) -> tuple[str | None, str]:
    first, _, rest = message.partition("\n")
    head, sep, tail = first.partition(": ")
    if sep and re.fullmatch(r"[A-Z][\w.]*", head):
        return head, (tail + ("\n" + rest if rest else "")).strip()
    return None, message.strip()


def _error(case: _Case, dialect: Dialect) -> tuple[str, str]:
    message = case.message
    if dialect == "pytest":
        stage = _PYTEST_STAGE.match(message)
        if stage:
            message = stage.group(2)
        if message == "collection failure":
            found = tx.python_error(case.text)
            return found if found else ("CollectionError", message)
    if dialect == "jest" and case.classname == _JEST_SUITE_ERROR:
        # "● Test suite failed to run", a blank line, then the error itself.
        lines = [ln.strip() for ln in case.text.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if not ln.startswith("●")), message)
        found = tx.first_error(detail)
        return (found[0], found[1]) if found else ("Error", detail)
    if dialect == "go":
        panic = _GO_PANIC.search(case.text)
        if panic:
            return "panic", panic["msg"].strip()
        lines = [m["msg"].strip() for m in _GO_MESSAGE.finditer(case.text)]
        return "Failed", "\n".join(lines) or message
    kind = case.type.rsplit(".", 1)[-1] if case.type else None
    named, rest = _split_type(message)
    if kind is None and named is not None:
        kind, message = named, rest
    if not kind or not message:
        found = tx.python_error(case.text) or tx.first_error(case.text)
        if found:
            kind = kind or found[0]
            message = message or found[1]
    if not message:
        message = next((ln.strip() for ln in case.text.splitlines() if ln.strip()), "")
    return kind or ("Error" if case.tag == "error" else "AssertionError"), message.strip()


def _stage(case: _Case, dialect: Dialect, describes: frozenset[str] = frozenset()) -> Stage:
    if dialect == "pytest":
        if case.message == "collection failure":
            return "collection"
        match = _PYTEST_STAGE.match(case.message)
        if match:
            return "setup" if match.group(1) == "setup" else "teardown"
    if dialect == "jest" and case.classname == _JEST_SUITE_ERROR:
        return "collection"
    if dialect == "vitest" and case.name == case.classname:
        return "collection"
    if dialect == "vitest" and case.name in describes:
        # A failing beforeAll/afterAll is reported on the describe block itself.
        return "setup"
    if dialect == "go" and case.name in ("[build failed]", "TestMain", "Failure"):
        return "collection"
    return "call"


def _identify(
    case: _Case, dialect: Dialect, root: Path | None, stage: Stage
) -> tuple[str | None, int | None, str, str]:
    """(file, line, test name, test id) of a case."""
    file, line = case.file, case.line + 1 if case.line is not None else None
    test_name, test_id = (
        case.name,
        f"{case.classname}::{case.name}" if case.classname else case.name,
    )
    if dialect == "pytest":
        if stage == "collection":
            file = file or case.name.replace(".", "/") + ".py"
            test_id = test_name = file
        else:
            resolved, classes = _dotted_to_file(case.classname, root)
            file = file or resolved
            test_id = "::".join([file or case.classname, *classes, case.name])
    elif dialect == "vitest":
        file = file or case.classname or None
        test_id = f"{file} > {case.name}" if stage == "call" else case.name
    elif dialect == "jest":
        # Without a describe block jest-junit starts the name with a space.
        test_name = case.name.strip()
        if file is None:
            # jest-junit's defaults write no file attribute; the stack names the test file.
            file, line = _test_file_from_stack(case.text, root) or (None, line)
        if stage == "collection":
            test_id = test_name = file or test_name  # the file that failed to run
        else:
            test_id = f"{file} > {test_name}" if file else test_name
    elif dialect == "surefire":
        test_id = f"{case.classname}#{case.name}"
    return file, line, test_name, test_id


def _to_failure(
    case: _Case, dialect: Dialect, root: Path | None, describes: frozenset[str] = frozenset()
) -> ParsedFailure:
    kind, message = _error(case, dialect)
    stage = _stage(case, dialect, describes)
    file, line, test_name, test_id = _identify(case, dialect, root, stage)
    frames = tx.frames(case.text)
    return ParsedFailure(
        dialect=dialect,
        test_id=test_id,
        test_name=test_name,
        file=file,
        line=line,
        error_type=kind,
        message=message,
        text=case.text or case.message,
        stage=stage,
        frames=frames,
        classname=case.classname,
        duration=case.time,
    )


def _project_relative(path: str, root: Path | None) -> str | None:
    """A stack frame's path as the project names it: relative to root, or, for a report
    written elsewhere (CI), the longest tail of it that is a file under root."""
    posix = path.removeprefix("file://").replace("\\", "/")
    if "/node_modules/" in posix:
        return None
    if not posix.startswith("/"):
        return posix.removeprefix("./")
    if root is None:
        return posix
    prefix = root.as_posix().rstrip("/") + "/"
    if posix.startswith(prefix):
        return posix[len(prefix) :]
    parts = posix.strip("/").split("/")
    for cut in range(1, len(parts)):
        tail = "/".join(parts[cut:])
        if (root / tail).is_file():
            return tail
    return None


def _test_file_from_stack(text: str, root: Path | None) -> tuple[str, int | None] | None:
    """The innermost frame in a test file of the project, and its line."""
    for frame in reversed(tx.frames(text)):
        rel = _project_relative(frame.file, root)
        if rel is not None and _JS_TEST_FILE.search(rel):
            return rel, frame.line
    return None


def parse_junit(data: bytes, *, root: Path | None = None) -> ParsedReport:
    state = _State()
    try:
        _stream(data, state)
    except LookupError as exc:  # expat: an encoding it does not know, e.g. encoding="x"
        raise ReportError(
            f"the JUnit report declares an encoding Python does not know ({exc})",
            hint="write the report as UTF-8",
        ) from exc
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise ReportError(
            f"the JUnit report is not well-formed XML (line {line}, column {column}): "
            f"{str(exc).split(':')[0]}; it may be truncated",
            hint="re-run the suite; if the tool was killed before it finished, raise its timeout",
        ) from exc
    dialect: Dialect = state.dialect or "junit"
    cases = [case for case in state.last.values() if case is not None]
    if dialect == "go":
        cases = _go_leaves(cases)
    describes: frozenset[str] = frozenset()
    if dialect == "vitest":
        # Every "a > b" prefix of a test's name is a describe block.
        describes = frozenset(
            " > ".join(parts[:i])
            for _, name in state.last
            for parts in [name.split(" > ")]
            for i in range(1, len(parts))
        )
    failures = [_to_failure(case, dialect, root, describes) for case in cases]
    if not failures and state.root_errors:
        failures.append(
            ParsedFailure(
                dialect=dialect,
                test_id="<report>",
                test_name="<report>",
                file=None,
                line=None,
                error_type="BuildError",
                message=f"the report counts {state.root_errors} error(s) outside any test case "
                "(for Go, usually a package that failed to build)",
                text="",
                stage="collection",
            )
        )
    return ParsedReport(
        dialect=dialect,
        format="junit",
        failures=tuple(failures),
        total=len(state.last),
        passed=frozenset(_identify(c, dialect, root, "call")[3] for c in state.passed),
    )


def _go_leaves(cases: list[_Case]) -> list[_Case]:
    """go test fails every parent of a failing subtest too: keep only the subtests."""
    names = {(c.classname, c.name) for c in cases}
    return [
        c
        for c in cases
        if not any(cls == c.classname and n.startswith(c.name + "/") for cls, n in names)
    ]
