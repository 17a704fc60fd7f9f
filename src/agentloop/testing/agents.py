"""An in-process agent for tests of the loop's outcome logic: no model, no CLI.

Its "session" is a Python function of the session's working directory, so a test can make
any change a real agent could (edit files, run git, leave junk) in milliseconds; the real
CLI end-to-end tests sit on top of these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from agentloop.agents.base import SessionLimits, SessionResult
from agentloop.agents.sandbox import Policy

Session = Callable[[Path], None]


class ScriptedAgent:
    def __init__(self, *sessions: Session, cost_usd: float = 0.01) -> None:
        self.sessions = list(sessions)
        self.cost_usd = cost_usd
        self.prompts: list[str] = []
        self.policies: list[Policy | None] = []

    def run(
        self,
        prompt: str,
        *,
        cwd: Path,
        limits: SessionLimits,
        env: Mapping[str, str],
        policy: Policy | None = None,
    ) -> SessionResult:
        self.prompts.append(prompt)
        self.policies.append(policy)
        if self.sessions:
            self.sessions.pop(0)(cwd)
        return SessionResult(
            outcome="success",
            subtype="success",
            is_error=False,
            terminal_reason="completed",
            num_turns=1,
            cost_usd=self.cost_usd,
            duration_s=0.0,
        )
