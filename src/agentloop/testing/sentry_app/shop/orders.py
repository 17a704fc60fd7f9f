from __future__ import annotations


def refund(amount: int) -> int:
    if amount < 0:
        raise ValueError(f"cannot refund a negative amount: {amount}")
    return amount
