"""What the probe plugin (resources/pytest_probe) wrote during a pytest run: one JSON
event per line.

After every run its subtest failures replace what the report says of their test. pytest
9 reports a failed subtest (`unittest`'s `subTest`, the `subtests` fixture) as an extra
report for the same node id; pytest-json-report 1.5 keeps one entry per node id whose
`call` stage is the last report written: the test's own (`passed` for a unittest method,
`contains 2 failed subtests` for the fixture) and no message of any subtest. JUnit XML
keeps one <testcase> per test with a <failure> per subtest, and the parser reads the first.
Neither lists a subtest twice, and neither says which failure was whose.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from agentloop.failures import pytest_json
from agentloop.failures.model import ParsedFailure, ParsedReport

# What pytest makes the test itself say when only its subtests failed.
_ONLY_SUBTESTS = re.compile(r"^contains \d+ failed subtests?$")


def events(path: Path) -> list[dict[str, Any]]:
    """The events the probe wrote, in order; a line cut off by a kill is skipped."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            found.append(event)
    return found


def _where(event: dict[str, Any]) -> tuple[str | None, int | None]:
    line = event.get("line")  # 0-based, as pytest's report.location
    return (
        str(event.get("file") or "") or None,
        line + 1 if isinstance(line, int) and not isinstance(line, bool) else None,
    )


def _subtests(probe: list[dict[str, Any]]) -> dict[str, list[ParsedFailure]]:
    """Each failed subtest once, by the node id of its test. A plugin can make the probe
    see one report twice (xdist's workers and controller): same subtest, same text, one
    failure. Two subtests with the same description that failed differently both count;
    the second gets a number so their ids differ."""
    found: dict[str, list[ParsedFailure]] = {}
    seen: set[tuple[str, str, str]] = set()
    for event in probe:
        if event.get("event") != "failed" or "subtest" not in event:
            continue
        nodeid = str(event.get("nodeid") or "")
        description = str(event.get("subtest") or "(<subtest>)")
        longrepr = str(event.get("longrepr") or "")
        if not nodeid or (nodeid, description, longrepr) in seen:
            continue
        seen.add((nodeid, description, longrepr))
        taken = {f.test_id for f in found.get(nodeid, [])}
        unique, number = description, 1
        while f"{nodeid} {unique}" in taken:
            number += 1
            unique = f"{description} #{number}"
        file, line = _where(event)
        found.setdefault(nodeid, []).append(
            pytest_json.probe_failure(event, description=unique, file=file, line=line)
        )
    return found


def _failed_on_its_own(probe: list[dict[str, Any]]) -> dict[str, ParsedFailure]:
    """Tests whose own reports (not their subtests') failed: a fixture, a teardown, an
    assertion after the subtests; the first such failure of each."""
    own: dict[str, ParsedFailure] = {}
    for event in probe:
        longrepr = str(event.get("longrepr") or "").strip()
        if event.get("event") != "failed" or "subtest" in event or _ONLY_SUBTESTS.match(longrepr):
            continue
        nodeid = str(event.get("nodeid") or "")
        if nodeid not in own:
            file, line = _where(event)
            own[nodeid] = pytest_json.probe_failure(event, description=None, file=file, line=line)
    return own


def with_subtests(report: ParsedReport, probe: list[dict[str, Any]]) -> ParsedReport:
    """`report` with each failed subtest as a failure of its own, in place of its test's
    entry, which stays only when the test also failed on its own (or was still running
    at a kill)."""
    subtests = _subtests(probe)
    if not subtests:
        return report
    own = _failed_on_its_own(probe)
    merged: list[ParsedFailure] = []
    placed: set[str] = set()
    for failure in report.failures:
        node = failure.test_id
        if node not in subtests:
            merged.append(failure)
            continue
        if node not in placed:
            merged.extend(subtests[node])
            placed.add(node)
        if failure.timed_out:
            merged.append(failure)
        elif node in own:
            # JUnit XML's first <failure> of the test is a subtest's: the probe saw its own.
            seen = own.pop(node)
            merged.append(
                dataclasses.replace(
                    failure,
                    error_type=seen.error_type,
                    message=seen.message,
                    text=seen.text,
                    stage=seen.stage,
                    frames=seen.frames,
                )
            )
    for node, failures in subtests.items():
        if node not in placed:
            merged.extend(failures)
    return dataclasses.replace(report, failures=tuple(merged))
