from unittest import mock

from shop import checkout
from shop.cart import Cart


def test_shipping_charged_below_threshold():
    assert checkout.shipping_cost(4999) == checkout.SHIPPING_FEE


def test_free_shipping_at_threshold():
    cart = Cart()
    cart.add("espresso machine", "50.00")
    total = checkout.order_total(cart)
    assert total == 5000  # 50.00 qualifies for free shipping


def test_invoice_total_for_business_customer(cart):
    # 33.00 net + 20% VAT = 39.60, plus 4.95 shipping
    assert checkout.invoice_total(cart) == 3960 + 495


def test_place_order_sends_confirmation(cart):
    with mock.patch("shop.mailer.send") as send:
        checkout.place_order(cart, "ann@example.com")
    # Stale mock: written before mailer.send() grew the reply_to keyword.
    send.assert_called_once_with("ann@example.com", "Your order", mock.ANY)


def test_no_orders_placed_yet():
    # Order-dependent: passes alone, but fails after test_place_order_sends_confirmation
    # has left an order in checkout.PLACED (shared module state, never reset).
    assert checkout.orders_placed() == 0
