from __future__ import annotations

from typing import Any


def total(items: list[dict[str, Any]]) -> int:
    # The bug the tests' incidents share: an item without "qty" is a KeyError here.
    return sum(item["price"] * item["qty"] for item in items)
