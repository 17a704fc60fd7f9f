"""Where a failure crashed in the project's own code, and which kind of failure it is.

Rules are ordered; the first that matches wins (research: formats reference §3.3):
timeout > missing dependency > collection > stale mock > environment > fixture > type > logic.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from agentloop.failures.model import Category, Location, ParsedFailure

_VENDOR = ("site-packages/", "dist-packages/", "node_modules/", "/lib/python", "/.venv/", "/venv/")
_TEST_DIRS = {"tests", "test", "__tests__", "spec", "specs"}
_TEST_FILE = re.compile(
    r"(^test_.*\.py$|_test\.py$|^conftest\.py$|\.(test|spec)\.[cm]?[jt]sx?$|_test\.go$"
    r"|(Test|Tests|IT)\.(java|kt)$)"
)

_TIMEOUT = re.compile(
    r"(^Failed: Timeout|timed out|Exceeded timeout of|Test timeout|panic: test timed out)", re.I
)
# The runners' own per-test timeouts, as they appear in a failure's message (pytest-json and
# JUnit split pytest-timeout's `Failed: Timeout (>5.0s) from pytest-timeout.` into the type
# `Failed` and the rest). Never re-run: they would only hang again.
_RUNNER_TIMEOUT = re.compile(
    r"(^Timeout \(>[\d.]+s\) from pytest-timeout"  # pytest-timeout
    r"|Exceeded timeout of \d+ ?ms for a (test|hook)"  # jest
    r"|Test timed out in \d+ ?ms"  # vitest
    r"|Hook timed out in \d+ ?ms"  # vitest
    r"|Timeout of \d+ ?ms exceeded)"  # mocha
)
# go test -timeout kills the test binary; the report keeps the panic in the test's output.
_GO_TIMEOUT = re.compile(r"^panic: test timed out after", re.M)
_MISSING = re.compile(
    r"(No module named|Cannot find module|cannot find package|Failed to resolve import"
    r"|Cannot find package|no required module provides package)"
)
_MISSING_TYPES = {"ModuleNotFoundError"}
_MOCK = re.compile(
    r"(to be called once|expected call not found|Calls not found|Mock object has no attribute"
    r"|assert_called|assert_any_call|toHaveBeenCalled|to have been called"
    r"|has no attribute 'assert_)",
    re.I,
)
_ENV_TYPES = {
    "ConnectionRefusedError",
    "ConnectionError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "gaierror",
    "OperationalError",
    "SSLError",
    "PermissionError",
    "TimeoutError",
    "EnvironmentError",
}
_ENV_TEXT = re.compile(
    r"(ECONNREFUSED|EADDRINUSE|ENOTFOUND|EACCES|environment variable|Connection refused"
    r"|could not connect|getaddrinfo)",
    re.I,
)
_TYPE_TYPES = {
    "TypeError",
    "AttributeError",
    "NameError",
    "UnboundLocalError",
    "ReferenceError",
    "NullPointerException",
    "ClassCastException",
}
_TYPE_TEXT = re.compile(
    r"(is not a function|Cannot read propert|is not defined|is not a constructor"
    r"|cannot import name|undefined: |has no attribute|nil pointer dereference)"
)


def project_path(path: str, root: str | None = None) -> str | None:
    """`path` relative to the project, or None when it is not the project's own file."""
    if not path or path.startswith("<"):
        return None
    posix = path.replace("\\", "/")
    if posix.startswith("/"):
        if root is None:
            return None
        prefix = root.rstrip("/") + "/"
        if not posix.startswith(prefix):
            return None
        posix = posix[len(prefix) :]
    posix = posix.removeprefix("./")
    if posix.startswith("../") or any(marker in f"/{posix}" for marker in _VENDOR):
        return None
    return posix


def is_test_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(_TEST_FILE.search(parts[-1] if parts else "")) or any(
        part in _TEST_DIRS for part in parts[:-1]
    )


def _report_root(failure: ParsedFailure) -> str | None:
    """Where the project was when the report was written: the part of an absolute frame
    path in front of the test's own (relative) file. Lets a report made on another
    machine (CI) still name project files."""
    if not failure.file:
        return None
    suffix = "/" + failure.file.lstrip("./")
    for frame in failure.frames:
        if frame.file.startswith("/") and frame.file.endswith(suffix):
            return frame.file[: -len(suffix)]
    return None


def crash_location(failure: ParsedFailure, root: str | None = None) -> Location | None:
    """The deepest frame in the project's own, non-test code; failing that, the deepest
    frame in its tests; failing that, the test's own location."""
    own: list[Location] = []
    elsewhere = _report_root(failure)
    for frame in failure.frames:
        rel = project_path(frame.file, root)
        if rel is None and elsewhere is not None and elsewhere != root:
            rel = project_path(frame.file, elsewhere)
        if rel is not None:
            own.append(Location(rel, frame.line))
    for location in reversed(own):
        if not is_test_path(location.file):
            return location
    if own:
        return own[-1]
    if failure.file:
        return Location(failure.file, failure.line)
    return None


_MISSING_NAME = re.compile(
    r"(?:No module named|Cannot find module|Failed to resolve import)\s+['\"]([^'\"]+)['\"]"
)


def _own_module_missing(message: str, root: str | None) -> bool:
    """A missing module of the project itself (`./x`, or `pkg.x` where pkg is the
    project's own package) is a broken import, not a missing dependency."""
    match = _MISSING_NAME.search(message)
    if match is None:
        return False
    name = match.group(1)
    if name.startswith("."):
        return True
    if root is None:
        return False
    top = name.split(".")[0].split("/")[0]
    base = Path(root)
    return any(
        (base / prefix / top).is_dir() or (base / prefix / f"{top}.py").is_file()
        for prefix in ("", "src", "lib")
    )


def _from_environment(innermost: str, text: str) -> bool:
    """A KeyError raised by os.environ. Some pytest versions leave the `<frozen os>` frame
    out of the structured traceback, so the text is read too."""
    return (
        innermost in ("<frozen os>", "os.py")
        or innermost.endswith("/os.py")
        or "<frozen os>" in text
        or "os.environ[" in text
    )


def categorize(failure: ParsedFailure, root: str | None = None) -> Category:
    kind, message, text = failure.error_type, failure.message, failure.text
    haystack = f"{message}\n{text}"
    innermost = failure.frames[-1].file if failure.frames else ""
    if failure.timed_out or _TIMEOUT.search(message) or _RUNNER_TIMEOUT.search(message):
        return "timeout"
    if _GO_TIMEOUT.search(text):
        return "timeout"
    missing = (
        kind in _MISSING_TYPES
        or _MISSING.search(message)
        or (failure.stage == "collection" and _MISSING.search(text))
    )
    if missing and not _own_module_missing(f"{message}\n{text}", root):
        return "missing_dependency"
    if failure.stage == "collection":
        return "collection_error"
    if (
        innermost.endswith("mock.py")
        or _MOCK.search(haystack)
        or (kind == "AttributeError" and "Mock" in message)
    ):
        return "stale_mock"
    if (
        kind in _ENV_TYPES
        or (kind == "KeyError" and _from_environment(innermost, text))
        or _ENV_TEXT.search(message)
    ):
        return "env_mismatch"
    if failure.stage in ("setup", "teardown"):
        return "fixture_error"
    if kind in _TYPE_TYPES or _TYPE_TEXT.search(message):
        return "type_error"
    return "logic_bug"
