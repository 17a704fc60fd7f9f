"""The waits every remote client here shares (integrations/retrying.py)."""

from __future__ import annotations

import pytest

from agentloop.integrations import retrying

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),  # never a negative sleep
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),  # an HTTP date, as RFC 9110 allows
        ("Fri, 15 Jan 2027 07:59:00 GMT", 0.0),  # already past
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_or_a_date(header: str | None, wait: float | None) -> None:
    assert retrying.retry_after(header, lambda: NOW) == wait


def test_backoff_doubles_with_jitter_below_the_doubled_base() -> None:
    for attempt in range(5):
        waits = {retrying.backoff(1.0, attempt) for _ in range(50)}
        assert all(2**attempt * 0.5 <= w <= 2**attempt for w in waits)
        assert len(waits) > 1  # jittered, so clients that failed together spread out
