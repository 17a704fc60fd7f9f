"""Set flaky tests apart: re-run each failing test alone, `reruns` times.

- fails every time          → a real failure, kept for a task;
- passes some of the times  → `flaky` (both outcomes on the same code);
- passes every time alone   → `order_dependent`: it fails only next to other tests.
Timeouts and collection errors are not re-run: they would only hang or fail again.
"""

from __future__ import annotations

from collections.abc import Callable

from agentloop.failures.model import Failure, FlakyKind, FlakyTest

# (failure) -> True when the test passed when re-run alone.
Rerun = Callable[[Failure], bool]
Progress = Callable[[str], None]


def split_flaky(
    failures: list[Failure], *, reruns: int, rerun: Rerun, progress: Progress
) -> tuple[list[Failure], list[FlakyTest]]:
    if reruns <= 0:
        return failures, []
    kept: list[Failure] = []
    flaky: list[FlakyTest] = []
    candidates = [
        f for f in failures if f.selector and f.category not in ("timeout", "collection_error")
    ]
    checked = {f.id for f in candidates}
    for number, failure in enumerate(candidates, start=1):
        progress(f"re-running failing tests alone ({number}/{len(candidates)}): {failure.test_id}")
        passes = sum(1 for _ in range(reruns) if rerun(failure))
        if passes == 0:
            kept.append(failure)
        else:
            kind: FlakyKind = "order_dependent" if passes == reruns else "flaky"
            flaky.append(FlakyTest(failure=failure, kind=kind, reruns=reruns, passes=passes))
    kept.extend(f for f in failures if f.id not in checked)
    order = {f.id: i for i, f in enumerate(failures)}
    kept.sort(key=lambda f: order[f.id])
    return kept, flaky
