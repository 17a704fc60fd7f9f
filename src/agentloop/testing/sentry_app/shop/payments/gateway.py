from __future__ import annotations


def instalment(amount_cents: int, instalments: int) -> int:
    # Sensitive code with a bug (agentloop's heal needs --allow-sensitive to fix it): no
    # instalments at all is a ZeroDivisionError here.
    return amount_cents // instalments
