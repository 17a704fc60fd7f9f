"""The run's money, shared by every job: a session's budget is reserved before it starts.

A session is given a spending limit (Claude Code's `--max-budget-usd`) and may spend up to
it. Counting only what finished sessions spent would let N sessions started together each
take the whole remainder, and the run overspend its cap N times over. So a session first
reserves its limit; what is reserved counts as spent until the session ends and its
actual cost replaces the reservation. The sum of the limits of the sessions in flight
plus what was spent never exceeds the cap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# Claude Code refuses a budget of 0; a reservation smaller than this is no session.
MIN_SESSION_USD = 0.01


@dataclass(frozen=True)
class Reservation:
    usd: float


class Budget:
    def __init__(self, cap_usd: float, *, per_session_usd: float) -> None:
        self.cap_usd, self.per_session_usd = cap_usd, per_session_usd
        self._spent = 0.0
        self._reserved = 0.0
        self._lock = threading.Condition()

    @property
    def spent_usd(self) -> float:
        with self._lock:
            return self._spent

    def exhausted(self) -> bool:
        """True when what was spent has reached the cap (reservations aside)."""
        with self._lock:
            return self._spent >= self.cap_usd

    def reserve(self, stop: threading.Event | None = None) -> Reservation | None:
        """A session's limit, held until `settle`; None when the cap is reached. While
        sessions in flight hold what is left, wait for one to settle (it usually spends
        less than its limit) rather than call the run over budget."""
        with self._lock:
            while True:
                left = self.cap_usd - self._spent - self._reserved
                usd = min(self.per_session_usd, left)
                if usd >= MIN_SESSION_USD:
                    self._reserved += usd
                    return Reservation(usd)
                if self._reserved <= 0 or (stop is not None and stop.is_set()):
                    return None
                self._lock.wait(0.2)

    def settle(self, reservation: Reservation, cost_usd: float) -> None:
        """The session is over: its cost replaces its reservation. A session reports what
        it spent even past its limit (the CLI checks between turns), and it counts."""
        with self._lock:
            self._reserved -= reservation.usd
            self._spent += cost_usd
            self._lock.notify_all()
