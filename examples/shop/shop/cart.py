"""Shopping cart. Uses shop.money for all arithmetic."""

from dataclasses import dataclass, field

from shop import money


@dataclass
class Line:
    name: str
    unit_cents: int
    qty: int = 1

    @property
    def cents(self) -> int:
        return self.unit_cents * self.qty


@dataclass
class Cart:
    lines: list[Line] = field(default_factory=list)

    def add(self, name: str, price: str, qty: int = 1) -> None:
        """Add `qty` units of an item priced like "2.50"."""
        self.lines.append(Line(name, money.parse_amount(price), qty))

    def item_count(self) -> int:
        return sum(line.qty for line in self.lines)

    def subtotal(self) -> int:
        return sum(line.cents for line in self.lines)

    def total_with_tax(self) -> int:
        return money.add_tax(self.subtotal())
