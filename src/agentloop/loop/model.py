"""Typed records of a run: what each attempt did, how each task ended, the run itself."""

from __future__ import annotations

from dataclasses import dataclass

from agentloop.failures.model import Task
from agentloop.history import AttemptOutcome, TaskOutcome


@dataclass(frozen=True)
class AttemptReport:
    number: int
    outcome: AttemptOutcome
    # Why it was rejected (or "" when it fixed the task); reaches the next attempt's prompt.
    reason: str
    changed: tuple[str, ...]
    cost_usd: float
    duration_s: float
    turns: int
    agent_outcome: str
    # Test-surface files (tests, conftest, runner configuration) the attempt changed.
    tests_changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskReport:
    task: Task
    outcome: TaskOutcome
    attempts: tuple[AttemptReport, ...] = ()
    commit: str | None = None
    # The commit of another task's fix that made this task's tests pass.
    fixed_by: str | None = None
    reason: str = ""
    suggestion: str = ""

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    @property
    def duration_s(self) -> float:
        return sum(a.duration_s for a in self.attempts)


@dataclass(frozen=True)
class RunReport:
    run_id: str
    # None when no fix survived and the branch was removed.
    branch: str | None
    base_sha: str
    commits: tuple[str, ...]
    tasks: tuple[TaskReport, ...]
    duration_s: float
    cost_usd: float
    # Why the run ended before every task was tried: "max_runtime", "max_budget", or None.
    stopped_by: str | None
    regressions: tuple[str, ...] = ()
    dry_run: bool = False
    # False only with --no-sandbox: the agent's shell commands ran unconfined.
    sandboxed: bool = True

    @property
    def fixed(self) -> int:
        return sum(1 for t in self.tasks if t.outcome == "fixed")
