from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentloop.integrations.sentry import Sentry
from agentloop.testing.fake_sentry import FakeSentry
from agentloop.testing.sentry_events import capture, post

# Looks like a real Sentry token so a leak would be recognisable anywhere.
TOKEN = "sntrys_FAKEtoken0123456789abcdefABCDEF0123"

CART = {"items": [{"price": 3}]}  # no "qty": the KeyError in shop/cart.py


@pytest.fixture(scope="session")
def events() -> dict[str, dict[str, Any]]:
    """Real sentry-sdk events of the fixture shop, each from one raised exception."""
    return {
        # Two ways into one crash (cart.total's KeyError): two Sentry issues, one cause.
        "checkout": capture(
            "checkout",
            CART,
            request=post(
                "/checkout",
                CART,
                headers={"X-Api-Key": "k-12345678"},
                cookies="session=abcdef0123456789",
            ),
            breadcrumbs=[{"category": "http", "message": "GET /cart for alice@example.com"}],
            user={"email": "alice@example.com", "ip_address": "198.51.100.23"},
        ),
        "preview": capture("preview", CART, request=post("/preview", CART)),
        "refund_crash": capture("refund", {"amount": -3}, handled=False),
        "search": capture("search", {"q": "shoes"}),
        "report_warning": capture("report", {"sum": 1, "days": 0}, level="warning"),
    }


@pytest.fixture
def fake() -> Iterator[FakeSentry]:
    with FakeSentry(token=TOKEN, page_size=2) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeSentry, sleeps: list[float]) -> Sentry:
    return Sentry(
        "acme",
        TOKEN,
        base_url=fake.url,
        sleep=sleeps.append,
        clock=lambda: 1_000_000.0,
        token_source="SENTRY_AUTH_TOKEN",
    )
