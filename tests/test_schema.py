"""The published JSON Schema and the records agree on every enumeration."""

from __future__ import annotations

from typing import Any, get_args

from agentloop.failures.model import CATEGORIES, Dialect, FlakyKind, Stage
from agentloop.failures.reports import FORMATS


def test_enumerations_match_the_records(detect_schema: dict[str, Any]) -> None:
    defs = detect_schema["$defs"]
    assert tuple(defs["category"]["enum"]) == CATEGORIES
    failure = defs["failure"]["properties"]
    assert tuple(failure["stage"]["enum"]) == get_args(Stage)
    assert tuple(failure["runner"]["enum"]) == get_args(Dialect)
    assert tuple(defs["flaky"]["properties"]["kind"]["enum"]) == get_args(FlakyKind)
    suite = detect_schema["properties"]["suites"]["items"]["properties"]
    assert tuple(suite["format"]["enum"]) == FORMATS
