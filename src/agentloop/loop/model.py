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
    # Which tier of verification caught it: "task" (its own tests) or "importers" (the
    # tests of code importing the change); "" when no test run did.
    tier: str = ""
    # When it started, in seconds from the run's start, and which job ran it.
    started_s: float = 0.0
    job: int = 1
    # The fix's commit on the run's branch, when this attempt's fix was accepted.
    commit: str | None = None
    # What the task's tests still failed with (normalised); two alike end the task.
    fingerprint: str = ""
    # Another task's commit that already holds this attempt's change (two jobs made the
    # same fix at once): the task is fixed by it, with no commit of its own.
    fixed_by: str | None = None
    # The diff of the test files an accepted fix changed ("" when it changed none): a
    # reviewer sees it plainly, in the report and the pull request.
    tests_diff: str = ""


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
    # Tasks fixed at the same time at most.
    jobs: int = 1
    # The branch the run started from (None when detached): a pull request's base.
    base_ref: str | None = None
    # Tests ("suite::test id") red in the baseline, and red after the final full-suite
    # run: the delta a reviewer judges the fixes by (red before is not blamed on them).
    baseline_failing: tuple[str, ...] = ()
    final_failing: tuple[str, ...] = ()

    @property
    def caught(self) -> dict[str, int]:
        """How many rejections each tier of verification caught: the task's own tests
        and the importers' tests after attempts, the full suites at the end."""
        tiers = {"task": 0, "importers": 0, "full": 0}
        for task in self.tasks:
            for attempt in task.attempts:
                if attempt.tier in tiers:
                    tiers[attempt.tier] += 1
            if task.outcome == "regressed":
                tiers["full"] += 1
        return tiers

    @property
    def fixed(self) -> int:
        return sum(1 for t in self.tasks if t.outcome == "fixed")
