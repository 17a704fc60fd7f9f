"""Personal data and secrets leave Sentry events before anything of them is shown or
prompted: in messages, breadcrumbs, request data and tags."""

from __future__ import annotations

import pytest

from agentloop.heal.scrub import scrub_data, scrub_event, scrub_text, sensitive_key
from agentloop.integrations.sentry import Sentry
from agentloop.testing.fake_sentry import FakeSentry
from agentloop.testing.sentry_events import capture, post


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no user alice.smith+shop@example.co.uk here", "no user [email] here"),
        ("from 203.0.113.7 via 10.0.0.1", "from [ip] via [ip]"),
        ("login from 198.51.100.77. Then", "login from [ip]. Then"),
        ("version 1.2.3.4.5 stays", "version 1.2.3.4.5 stays"),
        ("peer 2001:db8::8a2e:370:7334 and ::1", "peer [ip] and [ip]"),
        ("Authorization: Bearer abcdef0123456789xyz", "Authorization: [redacted]"),
        ("sent Bearer abcdef0123456789xyz", "sent Bearer [token]"),
        ("Cookie: session=abc; csrftoken=def", "Cookie: [redacted]"),
        (
            "GET /cb?code=1&access_token=ya29.a0AfH6&x=2",
            "GET /cb?code=1&access_token=[redacted]&x=2",
        ),
        ('{"password": "hunter22"}', '{"password": "[redacted]"}'),
        ("key sntrys_eyJpYXQiOjE3MDAwMDAwMDB9abcdef", "key [token]"),
        ("gh token ghp_0123456789abcdefABCDEF0123456789abcd", "gh token [token]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl", "jwt [token]"),
        ("sha 3f786850e387550fdab836ed7e6dc881de23001b", "sha [token]"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    ("text"),
    [
        "KeyError: 'qty'",
        "cannot refund a negative amount: -3",
        "at 12:30:45 in shop/cart.py line 8",
        "version 3.11",
        "agentloop/testing/sentry_app/shop/orders.py:6 in refund",
        "/srv/app/releases/20261130/src/shop/checkout_and_payment_handlers.py",
        "test_a_long_descriptive_function_name_for_the_checkout_flow",
    ],
)
def test_ordinary_error_text_is_kept(text: str) -> None:
    assert scrub_text(text) == text


def test_sensitive_keys() -> None:
    assert all(
        sensitive_key(k)
        for k in ("Authorization", "X-Api-Key", "github_token", "sessionid", "Set-Cookie", "pwd")
    )
    assert not any(sensitive_key(k) for k in ("author", "tokens_used", "items", "qty", "path"))


def test_scrub_data_walks_mappings_and_lists() -> None:
    data = {"user": {"email": "bob@example.com", "password": "x"}, "ips": ["198.51.100.2"]}
    assert scrub_data(data) == {
        "user": {"email": "[email]", "password": "[redacted]"},
        "ips": ["[ip]"],
    }


def test_a_real_event_leaves_no_personal_data_or_secret(sleeps: list[float]) -> None:
    secret_body = {
        "items": [{"price": 3}],
        "card_token": "tok_live_4242",
        "email": "eve@example.org",
    }
    sdk_event = capture(
        "checkout",
        secret_body,
        request=post(
            "/checkout?ref=carol@example.net",
            secret_body,
            headers={"Authorization": "Bearer live-0123456789abcdef", "X-Api-Key": "k-42424242"},
            cookies="sessionid=s3cr3t-cookie-value",
            client_ip="192.0.2.55",
        ),
        breadcrumbs=[
            {"category": "auth", "message": "login dave@example.com from 192.0.2.55"},
            {"category": "http", "data": {"url": "/api?api_key=AKIAIOSFODNN7EXAMPLE"}},
        ],
        tags={"customer": "frank@example.com"},
    )
    token = "sntrys_FAKEtoken0123456789abcdefABCDEF0123"
    with FakeSentry(token=token) as fake:
        issue = fake.add_event(sdk_event)
        event = Sentry("acme", token, base_url=fake.url, sleep=sleeps.append).latest_event(issue)
    assert event is not None

    clean = repr(scrub_event(event))

    for secret in (
        "carol@example.net",
        "eve@example.org",
        "dave@example.com",
        "frank@example.com",
        "192.0.2.55",
        "tok_live_4242",
        "live-0123456789abcdef",
        "k-42424242",
        "s3cr3t-cookie-value",
        "AKIAIOSFODNN7EXAMPLE",
    ):
        assert secret in repr(event) or secret in repr(sdk_event), secret  # it was there…
        assert secret not in clean, secret  # …and is gone
    # What a fix needs stays.
    assert "KeyError" in clean
    assert "'qty'" in clean
    assert "shop/cart.py" in clean
