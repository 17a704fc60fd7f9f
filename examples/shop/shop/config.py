"""Runtime configuration read from the environment."""

import os


def currency() -> str:
    """The shop currency; meant to default to EUR when SHOP_CURRENCY is unset."""
    return os.environ["SHOP_CURRENCY"]  # BUG (planted): no default, KeyError when unset


def shop_name() -> str:
    return os.environ.get("SHOP_NAME", "Example Shop")
