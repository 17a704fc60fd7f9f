"""Low-level money helpers. Amounts are always integer cents.

Every other module in the shop imports this one, so a bug here shows up
in many tests at once.
"""

from decimal import ROUND_HALF_UP, Decimal

VAT_RATE = 0.20  # BUG (planted): should be Decimal("0.20"); Decimal * float raises TypeError


def parse_amount(text: str) -> int:
    """Parse a price such as "12.50" into cents (1250)."""
    return int((Decimal(text) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_cents(cents: int, currency: str = "EUR") -> str:
    """Format 1250 as "12.50 EUR"."""
    return f"{cents // 100}.{cents % 100:02d} {currency}"


def split(cents: int, parts: int) -> list[int]:
    """Split an amount into `parts` shares that differ by at most one cent."""
    base, remainder = divmod(cents, parts)
    return [base + 1 if i < remainder else base for i in range(parts)]


def add_tax(cents: int, rate=VAT_RATE) -> int:
    """Return the gross amount for a net amount in cents."""
    gross = Decimal(cents) * (1 + rate)
    return int(gross.quantize(Decimal(1), rounding=ROUND_HALF_UP))
