# Planted collection error: shop.promotions was planned but never written,
# so importing this module fails before any test in it can run.
from shop.promotions import Coupon


def test_coupon_takes_ten_percent():
    assert Coupon("SAVE10").apply(1000) == 900
