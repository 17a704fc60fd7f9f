"""Read a report file from disk: existence, emptiness, encoding, format sniffing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from agentloop.errors import ReportError
from agentloop.failures.junit import parse_junit
from agentloop.failures.model import ParsedReport
from agentloop.failures.pytest_json import parse_pytest_json
from agentloop.failures.vitest_json import looks_like, parse_vitest_json

Format = Literal["pytest-json", "junit", "vitest-json"]
FORMATS: tuple[Format, ...] = ("pytest-json", "junit", "vitest-json")

# Characters XML 1.0 forbids; runners sometimes copy raw terminal output (ANSI escapes)
# into reports. Replaced only when a strict parse fails, so the fast path stays fast.
_XML_INVALID = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XML_DECL_ENCODING = re.compile(rb"^(<\?xml[^>]*?)\s+encoding=[\"'][^\"']*[\"']")


def sniff(data: bytes) -> Format | None:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"{":
        return "vitest-json" if looks_like(data) else "pytest-json"
    if head == b"<":
        return "junit"
    return None


def _lenient_xml(data: bytes) -> bytes:
    """UTF-8 (bad bytes replaced), without an encoding declaration that could contradict
    it, and without the control characters XML forbids."""
    data = data.decode("utf-8", errors="replace").encode("utf-8")
    data = _XML_DECL_ENCODING.sub(rb"\1", data, count=1)
    return _XML_INVALID.sub(b"?", data)


def parse_report(data: bytes, *, fmt: Format | None, name: str, root: Path | None) -> ParsedReport:
    if not data.strip():
        raise ReportError(
            f"{name} is empty", hint="check that the test command wrote its report there"
        )
    fmt = fmt or sniff(data)
    if fmt is None:
        raise ReportError(
            f"{name} is neither JSON nor XML, so agentloop cannot tell its format",
            hint="pass a pytest-json-report JSON, a vitest JSON or a JUnit XML file "
            "(--format pytest-json|vitest-json|junit)",
        )
    if fmt == "pytest-json":
        return parse_pytest_json(data.decode("utf-8", errors="replace"))
    if fmt == "vitest-json":
        return parse_vitest_json(data.decode("utf-8", errors="replace"), root=root)
    try:
        return parse_junit(data, root=root)
    except ReportError:
        cleaned = _lenient_xml(data)
        if cleaned == data:
            raise
        return parse_junit(cleaned, root=root)


def read_report(path: Path, *, fmt: Format | None, root: Path | None) -> ParsedReport:
    """One report file, or every *.xml in a directory (Surefire writes one per class)."""
    if path.is_dir():
        files = sorted(path.glob("*.xml"))
        if not files:
            raise ReportError(
                f"report directory {path} holds no .xml files", hint="pass the report file itself"
            )
        parts = [read_report(f, fmt=fmt, root=root) for f in files]
        return ParsedReport(
            dialect=parts[0].dialect,
            format=parts[0].format,
            failures=tuple(f for part in parts for f in part.failures),
            total=sum(part.total for part in parts),
            notes=tuple(n for part in parts for n in part.notes),
            passed=frozenset().union(*(part.passed for part in parts)),
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReportError(
            f"report {path} does not exist", hint="check the path, or run the suite first"
        ) from None
    except OSError as exc:
        raise ReportError(
            f"cannot read report {path}: {exc.strerror}", hint="check permissions"
        ) from None
    return parse_report(data, fmt=fmt, name=f"report {path}", root=root)
