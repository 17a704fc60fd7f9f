"""TRIAGE over real sentry-sdk events read back through the client from the loopback fake:
grouping by crash frame, severity, order, exclusions, the rate breaker and the cap."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from agentloop.config import DEFAULT_EXCLUDED_FRAMES, SeverityRule
from agentloop.heal.triage import triage
from agentloop.integrations.sentry import Incident, Sentry
from agentloop.testing.fake_sentry import FakeSentry
from agentloop.testing.sentry_events import capture

Event = dict[str, Any]


def read(fake: FakeSentry, client: Sentry, *added: tuple[Event, int] | Event) -> list[Incident]:
    """Serve each event (with its count of events, all in the newest hour) and read the
    incidents back as `agentloop heal` does."""
    for item in added:
        event, count = item if isinstance(item, tuple) else (item, 1)
        fake.add_event(event, count=count)
    return client.incidents(["shop"])


def ids(groups: Sequence[Any]) -> list[tuple[str, ...]]:
    return [tuple(i.issue.title for i in g.incidents) for g in groups]


def test_two_issues_crashing_in_one_place_are_one_root_cause(
    fake: FakeSentry, client: Sentry, events: dict[str, Event]
) -> None:
    found = read(fake, client, (events["checkout"], 5), (events["preview"], 3))
    assert len(found) == 2  # Sentry keeps them apart: their stacks differ

    result = triage(found)

    [group] = result.selected
    assert len(group.incidents) == 2
    assert str(group.signature) == ("KeyError in agentloop.testing.sentry_app.shop.cart:<genexpr>")
    assert group.events_24h == 8
    assert [i.issue.last_day for i in group.incidents] == [5, 3]  # most frequent first
    assert group.crash_frame.lineno == 8


def test_the_signature_survives_a_deploy_that_shifts_lines(
    fake: FakeSentry, client: Sentry, events: dict[str, Event]
) -> None:
    shifted = copy.deepcopy(events["checkout"])
    for frame in shifted["exception"]["values"][-1]["stacktrace"]["frames"]:
        frame["lineno"] += 12
    result = triage(read(fake, client, events["checkout"], shifted))
    [group] = result.selected  # one root cause although the crash lines differ
    lines = [i.event.crash.frames[-1].lineno for i in group.incidents if i.event and i.event.crash]
    assert sorted(lines) == [8, 20]


def test_another_exception_in_the_same_function_is_another_root_cause(
    fake: FakeSentry, client: Sentry
) -> None:
    zero = capture("report", {"sum": 1, "days": 0})  # ZeroDivisionError
    bad = capture("report", {"sum": "x", "days": 1})  # ValueError, same frame
    result = triage(read(fake, client, zero, bad))
    assert len(result.selected) == 2


def test_severity_p0_crash_before_p1_error_and_p2_only_documented(
    fake: FakeSentry, client: Sentry, events: dict[str, Event]
) -> None:
    found = read(
        fake,
        client,
        (events["checkout"], 10),  # handled error: P1
        (events["refund_crash"], 10),  # unhandled: P0
        (events["report_warning"], 50),  # warning: P2, however frequent
    )

    result = triage(found)

    assert [(g.severity, g.rule) for g in result.selected] == [
        ("P0", "crash: unhandled"),
        ("P1", "error: a feature is broken"),
    ]
    assert [g.severity for g in result.documented] == ["P2"]
    assert result.decision == "fix"


def test_order_is_frequency_times_severity(
    fake: FakeSentry, client: Sentry, events: dict[str, Event]
) -> None:
    found = read(
        fake,
        client,
        (events["refund_crash"], 10),  # P0: 10 x 3 = 30
        (events["checkout"], 20),  # P1: 20 x 2 = 40
    )
    result = triage(found)
    assert [(g.severity, g.score) for g in result.selected] == [("P1", 40), ("P0", 30)]


def test_configured_rules_come_before_the_built_in_ones(
    fake: FakeSentry, client: Sentry, events: dict[str, Event]
) -> None:
    found = read(fake, client, (events["checkout"], 1), (events["refund_crash"], 1))
    rules = [
        SeverityRule(severity="P0", name="checkout is money", path="**/shop/cart.py"),
        SeverityRule(severity="P2", type="ValueError", message="negative amount"),
    ]
    result = triage(found, rules=rules)
    assert [(g.signature.exception, g.severity, g.rule) for g in result.selected] == [
        ("KeyError", "P0", "checkout is money")
    ]
    [documented] = result.documented
    assert documented.rule == "configured rule: type ValueError; message negative amount"


def test_a_crash_in_an_excluded_path_is_skipped_with_the_pattern(
    fake: FakeSentry, client: Sentry, events: dict[str, Event]
) -> None:
    found = read(fake, client, (events["search"], 7), (events["checkout"], 1))

    result = triage(found, exclude_paths=DEFAULT_EXCLUDED_FRAMES)

    assert ids(result.selected) == [("KeyError: 'qty'",)]
    [skipped] = result.skipped
    assert skipped.reason == (
        "crash frame agentloop/testing/sentry_app/shop/vendor/legacy_client.py is in "
        "excluded path **/vendor/**"
    )
    assert skipped.group is not None


def test_an_issue_without_an_event_or_in_app_frame_is_skipped_with_a_reason(
    fake: FakeSentry, client: Sentry, events: dict[str, Event]
) -> None:
    third_party = copy.deepcopy(events["checkout"])
    for frame in third_party["exception"]["values"][-1]["stacktrace"]["frames"]:
        frame["in_app"] = False
    found = read(fake, client, third_party)
    found.append(Incident(found[0].issue, None))
    result = triage(found)
    assert [s.reason for s in result.skipped] == [
        "no in-app frame: the crash is in third-party code",
        "Sentry kept no event of this issue",
    ]
    assert result.decision == "nothing"


@pytest.mark.parametrize(("last_hour", "tripped"), [(100, False), (101, True)])
def test_the_rate_breaker_trips_above_max_errors_per_hour(
    fake: FakeSentry,
    client: Sentry,
    events: dict[str, Event],
    last_hour: int,
    tripped: bool,
) -> None:
    # 60 in the newest hour here, the rest there; 500 more earlier in the day count not.
    fake.add_event(events["checkout"], count=560, last_hour=60)
    fake.add_event(events["refund_crash"], count=last_hour - 60)
    found = client.incidents(["shop"])

    result = triage(found, max_errors_per_hour=100)

    assert result.errors_last_hour == last_hour
    assert result.breaker_tripped is tripped
    if tripped:
        assert result.decision == "alert"
        assert result.selected == ()
        assert {s.reason for s in result.skipped} == {
            "rate breaker: 101 errors in the last hour > 100"
        }
    else:
        assert result.decision == "fix"
        assert len(result.selected) == 2


def test_the_cap_selects_five_and_skips_the_rest_in_order(fake: FakeSentry, client: Sentry) -> None:
    crashes = [
        ("checkout", {"items": [{"price": 1}]}),  # KeyError in cart
        ("checkout", {}),  # KeyError in views.checkout
        ("preview", {}),  # KeyError in views.preview
        ("search", {}),  # KeyError in views.search
        ("refund", {"amount": -1}),  # ValueError in orders.refund
        ("refund", {"amount": "x"}),  # ValueError in views.refund
        ("report", {"sum": "x", "days": 1}),  # ValueError in views.report
    ]
    for count, (view, body) in enumerate(crashes, start=1):
        fake.add_event(capture(view, body), count=count)
    found = client.incidents(["shop"])

    result = triage(found, max_fixes=5)

    assert len({g.signature for g in (*result.selected,)}) == 5
    assert [g.events_24h for g in result.selected] == [7, 6, 5, 4, 3]
    assert [s.reason for s in result.skipped] == ["over the cap of sentry.max_fixes (5)"] * 2
    assert [s.group.events_24h for s in result.skipped if s.group] == [2, 1]
