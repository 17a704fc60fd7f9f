"""Reading failure text that runners print: stack frames and the raised error.

Reports disagree on structure but agree on text: pytest's longrepr, Python tracebacks,
Node stacks (`at fn (file:line:col)`, vitest's `❯ file:line:col`), Go's `file_test.go:12:`
and Java's `at pkg.Cls.m(File.java:12)`. Frames come back outermost first.
"""

from __future__ import annotations

import re

from agentloop.failures.model import Location

_PY_LONGREPR_FRAME = re.compile(r"^(?P<path>[^\s:][^:\n]*?\.py):(?P<line>\d+): ", re.M)
_PY_TRACEBACK_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)', re.M)
_NODE_FRAME = re.compile(
    r"^\s*(?:at (?:.*?\()?|❯ (?:\S+ )?)(?:file://)?(?P<path>[^\s()]+?):(?P<line>\d+)(?::\d+)?\)?\s*$",
    re.M,
)
_GO_FRAME = re.compile(r"^\s+(?P<path>[\w./-]+\.go):(?P<line>\d+)", re.M)
_JAVA_FRAME = re.compile(
    r"^\s*at (?:[\w.-]+/)?(?P<method>[\w$.<>]+)"
    r"\((?P<path>[\w$]+\.(?:java|kt|scala)):(?P<line>\d+)\)",
    re.M,
)
# Frames of the JDK and the test frameworks are never the project's own code.
_JAVA_VENDOR = re.compile(
    r"^(java|javax|jdk|sun|com\.sun|org\.junit|junit|org\.opentest4j|org\.apache\.maven"
    r"|org\.gradle|kotlin|org\.hamcrest|org\.assertj|org\.mockito)\."
)

# `E   TypeError: message` in pytest's longrepr; the last such block is the raised error.
_PY_E_LINE = re.compile(r"^E\s+(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$", re.M)
_ERROR_LINE = re.compile(
    r"^\s*(?:Uncaught )?"
    r"(?P<type>(?:[A-Za-z_$][\w.$]*)?(?:Error|Exception|Exit|Interrupt|Failure|Failed|Fault)"
    r"|panic|AssertionError)(?::\s?(?P<msg>.*))?$",
    re.M,
)


def frames(text: str) -> tuple[Location, ...]:
    """Stack frames found in `text`, outermost first."""
    py = [(m["path"], int(m["line"])) for m in _PY_LONGREPR_FRAME.finditer(text)]
    if not py:
        py = [(m["path"], int(m["line"])) for m in _PY_TRACEBACK_FRAME.finditer(text)]
    if py:
        return tuple(Location(p, n) for p, n in py)
    # Java, Node and Go print the innermost frame first. Java first: a Node `at` line
    # pattern would also match Java frames, JDK and framework ones included.
    java = [(m["method"], Location(m["path"], int(m["line"]))) for m in _JAVA_FRAME.finditer(text)]
    if java:
        return tuple(reversed([loc for method, loc in java if not _JAVA_VENDOR.match(method)]))
    node = [Location(m["path"], int(m["line"])) for m in _NODE_FRAME.finditer(text)]
    if node:
        return tuple(reversed(node))
    return tuple(Location(m["path"], int(m["line"])) for m in _GO_FRAME.finditer(text))


def python_error(text: str) -> tuple[str, str] | None:
    """The (type, message) pytest reports with `E   ` lines, if any."""
    matches = list(_PY_E_LINE.finditer(text))
    if not matches:
        return None
    # A multi-line message continues on following `E` lines; the type is on the first line
    # of the last block that starts with an identifier followed by a colon or line end.
    for match in reversed(matches):
        kind = match["type"]
        if kind[0].isupper() or "." in kind:
            tail = text[match.end() :].splitlines()
            extra = []
            for line in tail[1:]:
                if not line.startswith("E "):
                    break
                extra.append(line[1:].strip())
            message = "\n".join([match["msg"] or "", *extra]).strip()
            return kind.rsplit(".", 1)[-1] if kind.startswith("builtins.") else kind, message
    return None


def first_error(text: str) -> tuple[str, str] | None:
    """The first `SomethingError: message` line of `text`, if any."""
    match = _ERROR_LINE.search(text)
    if match is None:
        return None
    return match["type"], (match["msg"] or "").strip()


def trim(text: str, *, max_lines: int = 60, max_chars: int = 6000) -> str:
    """Keep a stack trace readable: its head and its tail, where the error is."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    if len(lines) > max_lines:
        keep = max_lines // 2
        lines = [*lines[:keep], f"... ({len(lines) - 2 * keep} lines trimmed) ...", *lines[-keep:]]
    out = "\n".join(lines).rstrip()
    if len(out) > max_chars:
        half = max_chars // 2
        out = f"{out[:half]}\n... (trimmed) ...\n{out[-half:]}"
    return out
