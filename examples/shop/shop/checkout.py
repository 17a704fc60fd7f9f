"""Checkout: shipping, invoices and order confirmation e-mails."""

from shop import mailer, money
from shop.cart import Cart

FREE_SHIPPING_FROM = 5000  # orders of 50.00 or more ship for free
SHIPPING_FEE = 495


def shipping_cost(subtotal_cents: int) -> int:
    if subtotal_cents > FREE_SHIPPING_FROM:  # BUG (planted): should be >=
        return 0
    return SHIPPING_FEE


def order_total(cart: Cart) -> int:
    """Consumer total: prices already include VAT."""
    subtotal = cart.subtotal()
    return subtotal + shipping_cost(subtotal)


def invoice_total(cart: Cart) -> int:
    """Business-customer total: net prices plus VAT, plus shipping."""
    return cart.total_with_tax() + shipping_cost(cart.subtotal())


# Orders placed since start-up. Module-level state: every test that places an order
# leaves one behind here.
PLACED: list[int] = []


def orders_placed() -> int:
    return len(PLACED)


def place_order(cart: Cart, email: str) -> int:
    """Charge the cart and e-mail a confirmation. Returns the total in cents."""
    total = order_total(cart)
    PLACED.append(total)
    mailer.send(
        email,
        "Your order",
        f"Thanks! You paid {money.format_cents(total)}.",
        reply_to="orders@shop.example",
    )
    return total
