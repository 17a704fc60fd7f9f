import pytest

from shop import money


def test_parse_amount():
    assert money.parse_amount("12.50") == 1250
    assert money.parse_amount("0.015") == 2


def test_format_cents():
    assert money.format_cents(1205) == "12.05 EUR"


@pytest.mark.parametrize(
    "cents, parts, expected",
    [
        pytest.param(1000, 2, [500, 500], id="eur 10/2"),
        pytest.param(1000, 3, [334, 333, 333], id="eur 10/3"),
    ],
)
def test_split(cents, parts, expected):
    assert money.split(cents, parts) == expected
    assert sum(money.split(cents, parts)) == cents


def test_add_tax():
    assert money.add_tax(1000) == 1200
