"""The Sentry client against the loopback fake serving real sentry-sdk events. Nothing
sleeps: the client's `sleep` is a list that records what it was asked to wait."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from agentloop.errors import SERVICE, ConfigError
from agentloop.integrations.sentry import Sentry, SentryError
from agentloop.testing.fake_sentry import FakeSentry

from .conftest import TOKEN

ISSUES = r"/api/0/organizations/acme/issues/"
LATEST = r"/api/0/organizations/acme/issues/\d+/events/latest/"


def _one_line(error: SentryError) -> None:
    assert "\n" not in error.message
    assert error.hint is not None
    assert "\n" not in error.hint
    assert error.exit_code == SERVICE
    assert TOKEN not in error.message + error.hint


def test_issues_are_read_across_pages_following_the_link_cursor(
    fake: FakeSentry, client: Sentry, events: dict[str, dict[str, Any]]
) -> None:
    for name in ("checkout", "preview", "refund_crash", "search", "report_warning"):
        fake.add_event(events[name], count=10)

    issues = client.unresolved_issues(["shop"])

    assert len(issues) == 5
    pages = fake.requests_to(ISSUES)
    # Two per page: three pages, the last one's next link saying results="false".
    assert [r.query.get("cursor") for r in pages] == [None, ("0:2:0",), ("0:4:0",)]
    first = pages[0].query
    assert first["project"] == ("4501",)  # the slug resolved to its id
    assert first["query"] == ("is:unresolved",)
    assert first["statsPeriod"] == ("24h",)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)


def test_a_next_link_to_another_host_lends_only_its_cursor(
    fake: FakeSentry, client: Sentry, events: dict[str, dict[str, Any]]
) -> None:
    fake.add_event(events["checkout"])
    fake.add_event(events["preview"])
    elsewhere = (
        "<https://collector.invalid/api/0/organizations/acme/issues/?cursor=0:1:0>; "
        'rel="next"; results="true"; cursor="0:1:0"'
    )
    fake.fail(ISSUES, 200, body=[], headers={"Link": elsewhere})

    assert len(client.unresolved_issues()) == 1  # the second page, from the fake

    second = fake.requests_to(ISSUES)[-1]
    assert second.query["cursor"] == ("0:1:0",)
    assert second.query["query"] == ("is:unresolved",)  # the same search, asked here


def test_the_latest_event_carries_the_exception_frames_request_and_breadcrumbs(
    fake: FakeSentry, client: Sentry, events: dict[str, dict[str, Any]]
) -> None:
    issue_id = fake.add_event(events["checkout"], count=4, last_hour=1)

    [issue] = client.unresolved_issues()
    assert (issue.id, issue.count, issue.last_hour, issue.last_day) == (issue_id, 4, 1, 4)
    assert issue.title == "KeyError: 'qty'"
    event = client.latest_event(issue.id)

    assert event is not None
    assert event.crash is not None
    assert (event.crash.type, event.crash.value, event.crash.handled) == ("KeyError", "'qty'", True)
    crash = event.crash.frames[-1]
    assert crash.filename is not None
    assert crash.filename.endswith("shop/cart.py")
    assert (crash.function, crash.lineno, crash.in_app) == ("<genexpr>", 8, True)
    assert crash.context_line is not None
    assert 'item["qty"]' in crash.context_line
    assert [f.function for f in event.crash.frames if f.in_app] == [
        "checkout",
        "total",
        "<genexpr>",
    ]
    # The test helper that called the view is not the shop's code.
    assert not event.crash.frames[0].in_app
    assert event.request is not None
    assert event.request.url == "https://shop.example.com/checkout"
    assert event.request.data == {"items": [{"price": 3}]}
    assert [b.message for b in event.breadcrumbs] == ["GET /cart for alice@example.com"]
    assert event.tag("environment") == "production"


def test_a_429_waits_as_long_as_retry_after_says_then_succeeds(
    fake: FakeSentry, client: Sentry, sleeps: list[float], events: dict[str, dict[str, Any]]
) -> None:
    fake.add_event(events["checkout"])
    fake.fail(ISSUES, 429, headers={"Retry-After": "7", "X-Sentry-Rate-Limit-Remaining": "0"})

    assert len(client.unresolved_issues()) == 1
    assert sleeps == [7.0]
    assert len(fake.requests_to(ISSUES)) == 2


def test_a_429_without_retry_after_waits_for_the_windows_reset(
    fake: FakeSentry, client: Sentry, sleeps: list[float]
) -> None:
    # The client's clock reads 1,000,000: the window resets 12 s later.
    fake.fail(ISSUES, 429, headers={"X-Sentry-Rate-Limit-Reset": "1000012"})
    assert client.unresolved_issues() == []
    assert sleeps == [12.0]


def test_a_used_up_window_is_waited_out_before_the_next_request(
    fake: FakeSentry, client: Sentry, sleeps: list[float], events: dict[str, dict[str, Any]]
) -> None:
    fake.add_event(events["checkout"])
    # The client's clock reads 1,000,000: the spent window resets 3 s later.
    fake.rate_limit_remaining = 0
    fake.rate_limit_reset = 1_000_003
    [issue] = client.unresolved_issues()
    assert sleeps == []

    client.latest_event(issue.id)

    # The list's answer said the window was spent: the next request waited, and no 429 came.
    assert sleeps == [3.0]
    assert len(fake.requests) == 2


def test_server_errors_and_resets_are_retried_with_growing_backoff(
    fake: FakeSentry, client: Sentry, sleeps: list[float], events: dict[str, dict[str, Any]]
) -> None:
    issue_id = fake.add_event(events["checkout"])
    fake.fail(LATEST, 502)
    fake.disconnect(LATEST)
    fake.fail(LATEST, 503)

    event = client.latest_event(issue_id)

    assert event is not None
    assert event.crash is not None
    assert len(fake.requests_to(LATEST)) == 4
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0
    assert 2.0 <= sleeps[2] <= 4.0


def test_a_server_error_that_lasts_is_one_line_naming_the_endpoint_after_bounded_tries(
    fake: FakeSentry, client: Sentry, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # requests/urllib3 log here: the token must not appear
    fake.fail(ISSUES, 500, times=None)

    with pytest.raises(SentryError) as caught:
        client.unresolved_issues()

    _one_line(caught.value)
    assert caught.value.message.startswith(
        "Sentry failed GET /api/0/organizations/acme/issues/ (500: fake failure 500) after 5 tries"
    )
    assert len(fake.requests_to(ISSUES)) == 5  # retries=4
    assert len(sleeps) == 4
    assert TOKEN not in caplog.text


def test_the_wait_budget_bounds_the_retries(fake: FakeSentry, sleeps: list[float]) -> None:
    client = Sentry("acme", TOKEN, base_url=fake.url, sleep=sleeps.append, max_wait_s=30)
    fake.fail(ISSUES, 429, headers={"Retry-After": "120"})
    with pytest.raises(SentryError) as caught:
        client.unresolved_issues()
    assert "429" in caught.value.message
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "hint_says"),
    [
        (401, "SENTRY_AUTH_TOKEN is missing, expired or wrong"),
        (403, "`event:read` scope"),
        (404, "check sentry.organization (acme)"),
    ],
)
def test_refusals_are_not_retried_and_say_what_to_fix(
    fake: FakeSentry, client: Sentry, sleeps: list[float], status: int, hint_says: str
) -> None:
    fake.fail(ISSUES, status, body={"detail": "You do not have permission"})
    with pytest.raises(SentryError) as caught:
        client.unresolved_issues()
    _one_line(caught.value)
    assert caught.value.message == (
        f"Sentry answered {status} to GET /api/0/organizations/acme/issues/: "
        "You do not have permission"
    )
    assert caught.value.hint is not None
    assert hint_says in caught.value.hint
    assert sleeps == []


def test_a_wrong_token_is_refused_by_the_fake_as_by_sentry(fake: FakeSentry) -> None:
    client = Sentry("acme", "sntrys_wrong", base_url=fake.url, sleep=lambda _s: None)
    with pytest.raises(SentryError) as caught:
        client.unresolved_issues()
    assert caught.value.status == 401


def test_an_unknown_project_is_named(fake: FakeSentry, client: Sentry) -> None:
    with pytest.raises(SentryError) as caught:
        client.unresolved_issues(["shop", "admin"])
    assert "has no project admin" in caught.value.message


def test_the_token_comes_from_the_environment_and_never_shows() -> None:
    with pytest.raises(ConfigError):
        Sentry.from_env("acme", {})
    client = Sentry.from_env("acme", {"SENTRY_AUTH_TOKEN": TOKEN})
    assert TOKEN not in repr(client) + str(vars(client).get("base_url"))


def test_the_client_only_reads() -> None:
    """heal --dry-run promises to change nothing in Sentry: the client has no call that
    could (the fake would answer one with 501, so this reads the source instead)."""
    import inspect

    from agentloop.integrations import sentry

    source = inspect.getsource(sentry)
    assert "._http.get(" in source
    for verb in ("post", "put", "patch", "delete", "request"):
        assert f"._http.{verb}(" not in source, verb
