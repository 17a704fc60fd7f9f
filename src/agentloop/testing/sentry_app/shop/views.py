"""The request handlers: each takes the request's JSON and calls into the shop."""

from __future__ import annotations

from typing import Any

from . import cart, orders
from .payments import gateway
from .vendor import legacy_client


def checkout(body: dict[str, Any]) -> int:
    return cart.total(body["items"])


def preview(body: dict[str, Any]) -> int:
    # Another way into the same crash: Sentry makes it an issue of its own.
    subtotal = cart.total(body["items"])
    return subtotal


def refund(body: dict[str, Any]) -> int:
    return orders.refund(int(body["amount"]))


def search(body: dict[str, Any]) -> list[str]:
    return legacy_client.query(str(body["q"]))


def report(body: dict[str, Any]) -> float:
    return float(body["sum"]) / int(body["days"])


def pay(body: dict[str, Any]) -> int:
    return gateway.instalment(int(body["amount"]), int(body["instalments"]))
