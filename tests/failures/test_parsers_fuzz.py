"""Whatever bytes a report holds, the parsers return records or raise ReportError (which
the CLI turns into one line and exit 2): never another exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentloop.errors import ReportError
from agentloop.failures.reports import parse_report

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"
SAMPLES = [p.read_bytes() for p in sorted(REPORTS.rglob("*.xml"))]
JSON_SAMPLE = (
    b'{"exitcode": 1, "root": "/p", "collectors": [{"nodeid": "t.py", "outcome": "failed",'
    b' "longrepr": "E   ModuleNotFoundError: No module named \'x\'"}], "tests": [{"nodeid":'
    b' "t.py::test_a", "lineno": 3, "outcome": "failed", "call": {"outcome": "failed",'
    b' "crash": {"path": "/p/t.py", "lineno": 4, "message": "assert 1 == 2"},'
    b' "traceback": [{"path": "t.py", "lineno": 4, "message": "AssertionError"}],'
    b' "longrepr": "t.py:4: AssertionError"}}]}'
)


def parse_or_refuse(data: bytes) -> None:
    try:
        report = parse_report(data, fmt=None, name="fuzzed report", root=None)
    except ReportError as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert refused.message
        return
    for failure in report.failures:
        assert isinstance(failure.test_id, str)
        assert failure.stage in ("collection", "setup", "call", "teardown")


fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    parse_or_refuse(data)


@fast
@given(st.sampled_from([*SAMPLES, JSON_SAMPLE]), st.integers(0, 10_000), st.binary(max_size=8))
def test_truncated_or_corrupted_real_reports(data: bytes, cut: int, junk: bytes) -> None:
    cut = cut % (len(data) + 1)
    parse_or_refuse(data[:cut])
    parse_or_refuse(data[:cut] + junk + data[cut:])


@fast
@given(
    st.dictionaries(
        st.sampled_from(["exitcode", "tests", "collectors", "root", "summary"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=12,
        ),
    )
)
def test_json_of_the_wrong_shape(doc: dict[str, object]) -> None:
    import json

    parse_or_refuse(json.dumps(doc).encode())


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_VITEST_TEST = st.dictionaries(
    st.sampled_from(["ancestorTitles", "title", "status", "failureMessages", "location"]),
    st.just("failed") | _JSON_VALUES,
)
_VITEST_FILE = st.dictionaries(
    st.sampled_from(["name", "status", "message", "assertionResults"]),
    st.just("failed") | st.lists(_VITEST_TEST, max_size=3) | _JSON_VALUES,
)


@fast
@given(st.lists(_VITEST_FILE, max_size=3) | _JSON_VALUES)
def test_vitest_json_of_the_wrong_shape(results: object) -> None:
    import json

    # vitest's counters first, as vitest writes them: sniffed as a vitest report.
    parse_or_refuse(json.dumps({"numTotalTestSuites": 1, "testResults": results}).encode())
