"""An in-process agent for tests of the loop's outcome logic: no model, no CLI.

Its "session" is a Python function of the session's working directory, so a test can make
any change a real agent could (edit files, run git, leave junk) in milliseconds; the real
CLI end-to-end tests sit on top of these. Sessions are taken in order, whichever job asks
(or, with `by_prompt`, picked by a text the prompt contains, for jobs in parallel); each
may sleep, to stand for the model's time, and may say what it cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentloop.agents.base import Guard, SessionLimits, SessionResult
from agentloop.agents.sandbox import Policy

# A session may return its final message (a coordinator's manifest), else it says nothing.
Session = Callable[[Path], str | None]


@dataclass(frozen=True)
class Call:
    """One session as the agent saw it: when it ran (monotonic seconds) and with what."""

    prompt: str
    cwd: Path
    limits: SessionLimits
    started: float
    ended: float
    policy: Policy | None = None
    guard: Guard | None = None
    # The environment the session's commands would see.
    env: Mapping[str, str] = field(default_factory=dict)


class ScriptedAgent:
    def __init__(
        self,
        *sessions: Session,
        cost_usd: float = 0.01,
        by_prompt: Mapping[str, list[Session]] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.sessions = list(sessions)
        self.by_prompt = {key: list(value) for key, value in (by_prompt or {}).items()}
        self.cost_usd, self.delay_s = cost_usd, delay_s
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    @property
    def prompts(self) -> list[str]:
        return [c.prompt for c in self.calls]

    @property
    def policies(self) -> list[Policy | None]:
        return [c.policy for c in self.calls]

    def _next(self, prompt: str) -> Session | None:
        with self._lock:
            for key, sessions in self.by_prompt.items():
                if key in prompt and sessions:
                    return sessions.pop(0)
            return self.sessions.pop(0) if self.sessions else None

    def cancel(self) -> None:
        self._cancelled.set()

    def run(
        self,
        prompt: str,
        *,
        cwd: Path,
        limits: SessionLimits,
        env: Mapping[str, str],
        policy: Policy | None = None,
        guard: Guard | None = None,
    ) -> SessionResult:
        started = time.monotonic()
        session = self._next(prompt)
        # The model's time; the session's wall-clock limit cuts it short, as agentloop's
        # watchdog does a real session's, and `cancel` ends it as ^C does.
        timeout = limits.timeout_s if limits.timeout_s is not None else float("inf")
        if self._cancelled.wait(min(self.delay_s, timeout)):
            raise KeyboardInterrupt
        timed_out = self.delay_s > timeout
        text = session(cwd) if session is not None and not timed_out else None
        with self._lock:
            self.calls.append(
                Call(
                    prompt,
                    cwd,
                    limits,
                    started,
                    time.monotonic(),
                    policy=policy,
                    guard=guard,
                    env=dict(env),
                )
            )
        return SessionResult(
            outcome="timeout" if timed_out else "success",
            subtype="success",
            is_error=False,
            terminal_reason="completed",
            num_turns=1,
            # A real session can spend up to its limit and no more (near enough).
            cost_usd=min(self.cost_usd, limits.max_budget_usd or self.cost_usd),
            duration_s=time.monotonic() - started,
            text=text or "",
        )
