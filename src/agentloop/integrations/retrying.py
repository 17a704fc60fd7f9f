"""What every client of a remote service here retries by: the wait a server asks for
(`Retry-After`), and exponential backoff with jitter when it asks for none. One copy, so
GitHub's, Sentry's and the notification channels' clients wait alike."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable


def seconds(value: str | None) -> float | None:
    """A header holding a number (a count of seconds, an epoch time), or None."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def retry_after(value: str | None, clock: Callable[[], float] = time.time) -> float | None:
    """The seconds a `Retry-After` header asks for: a number, or an HTTP date (RFC 9110
    allows both); never negative; None when absent or unreadable."""
    number = seconds(value)
    if number is not None:
        return max(0.0, number)
    if value is None:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - clock())


def backoff(base_s: float, attempt: int) -> float:
    """The wait before retry `attempt` (0 for the first): `base_s` doubled each time, with
    jitter so many clients that failed together do not come back together."""
    return float(base_s * 2**attempt * random.uniform(0.5, 1.0))
