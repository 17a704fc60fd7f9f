from shop.cart import Cart


def test_item_count(cart):
    assert cart.item_count() == 3


def test_subtotal(cart):
    assert cart.subtotal() == 3300


def test_total_with_tax(cart):
    assert cart.total_with_tax() == 3960


def test_cart_from_catalog(catalog):
    c = Cart()
    item = catalog["mug"]
    c.add("mug", item["price"])
    assert c.subtotal() == 800
