from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentloop.heal.triage import Group, triage
from agentloop.integrations.sentry import Sentry
from agentloop.testing import repos
from agentloop.testing.fake_sentry import FakeSentry
from agentloop.testing.sentry_events import APP_ROOT, capture, post

# Looks like a real Sentry token so a leak would be recognisable anywhere.
TOKEN = "sntrys_FAKEtoken0123456789abcdefABCDEF0123"

CART = {"items": [{"price": 3}]}  # no "qty": the KeyError in shop/cart.py
EXISTING_TEST = """\
from shop import views


def test_checkout_totals_the_items():
    assert views.checkout({"items": [{"price": 2, "qty": 3}]}) == 6
"""


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


@pytest.fixture
def project(tmp_path: Path, git_identity: None) -> Path:
    """The shop that raised the events, as a project of its own with a tests/ folder."""
    root = tmp_path / "repo"
    shutil.copytree(APP_ROOT / "shop", root / "shop", ignore=shutil.ignore_patterns("__pycache__"))
    repos.pytest_project(root, {"tests/test_views.py": EXISTING_TEST})
    # Hypothesis's plugin costs 0.7 s of each pytest start here, and the steps start several.
    with (root / "pyproject.toml").open("a") as config:
        config.write('addopts = "-p no:hypothesispytest"\n')
    return repos.git_init(root)


GroupOf = Callable[[dict[str, Any]], Group]


@pytest.fixture
def group_of(fake: FakeSentry, client: Sentry) -> GroupOf:
    """The triage group of one real event served as a new issue (seen 4 times)."""

    def make(event: dict[str, Any]) -> Group:
        fake.add_event(event, count=4)
        [group] = triage(client.incidents(["shop"])).selected
        return group

    return make


@pytest.fixture
def checkout_group(group_of: GroupOf, events: dict[str, dict[str, Any]]) -> Group:
    """KeyError in shop/cart.py's generator expression, reached through views.checkout."""
    return group_of(events["checkout"])
