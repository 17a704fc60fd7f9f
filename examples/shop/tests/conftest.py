import json
from pathlib import Path

import pytest

from shop.cart import Cart

DATA = Path(__file__).parent / "data"


@pytest.fixture
def cart():
    c = Cart()
    c.add("coffee beans", "12.50", qty=2)
    c.add("mug", "8.00")
    return c


@pytest.fixture
def catalog():
    # Planted fixture error: tests/data/catalog.json was never committed,
    # so every test using this fixture errors during setup.
    with open(DATA / "catalog.json", encoding="utf-8") as fh:
        return json.load(fh)
