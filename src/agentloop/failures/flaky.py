"""Which failing tests are flaky, which fail for good, and which fail only after others.

Each failing test (not a timeout, not a collection error: those would only hang or fail
again) is re-run `reruns` times without the rest of the suite:

- fails every time              → a real failure, kept for a task;
- passes some of the times      → flaky (both outcomes on the same code), set apart; but
  when the re-runs shared a process with other failing tests (agentloop.reruns batches
  them, every other pass in reverse order), one of those may have polluted it: it is run
  alone, and if it passes, checked as below;
- passes every time             → run once more after the tests that ran before it in the
  suite's process. Fails there  → order-dependent: test pollution, deterministic, a task,
  and the polluter is found by bisection over those predecessors. Passes there too → flaky.

The decisions live here; agentloop.reruns runs the processes (and checks the victims of
one polluter together: one polluter breaking 300 tests is one bisection, not 300).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from agentloop.failures.model import Failure

Verdict = Literal["kept", "flaky", "order"]


def candidates(failures: Sequence[Failure]) -> list[Failure]:
    """The failures worth re-running: they have a selector and would not just hang again."""
    return [f for f in failures if f.selector and f.category not in ("timeout", "collection_error")]


def verdict(passes: int, reruns: int) -> Verdict:
    if passes == 0:
        return "kept"
    return "order" if passes >= reruns else "flaky"


def bisect(suspects: Sequence[str], fails_after: Callable[[Sequence[str]], bool]) -> list[str]:
    """Halve the tests that ran before a victim, keeping the half after which it still
    fails, down to one test (the polluter). When neither half alone makes it fail, it
    takes tests from both: the smallest such run found is returned. `fails_after(run)`
    runs `run` then the victim in one process; the caller has seen the whole run fail.
    About 2·log2(n) runs."""
    run = list(suspects)
    while len(run) > 1:
        half = len(run) // 2
        # The later half first: pollution is usually close by (same module or class).
        later, earlier = run[half:], run[:half]
        if fails_after(later):
            run = later
        elif fails_after(earlier):
            run = earlier
        else:
            break
    return run
