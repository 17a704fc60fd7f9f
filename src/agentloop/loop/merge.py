"""Merge the results of runs made side by side (one `agentloop run --task` per job of a
GitHub Actions matrix) onto one branch: apply them in order, verify the full suites once,
drop what conflicts or regresses.

Each run arrives as its branch's tip (fetched from the run's bundle) and the tests its
fixes made pass. A run is applied whole, in the object store (`git merge-tree`, as the
loop lands a parallel job's fix), as one commit carrying the run's own message: the runs
were made from the same base, so their merge base is that base. A run that conflicts with
the runs before it is dropped, never half-applied. After the full suites, a run behind a
regression (a test red now that was green in the baseline, or a test another applied run
fixed) is dropped, newest first, as the loop's own VERIFY does, and the suites run again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentloop import git, suites, testrun

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Piece:
    """One run to apply: its position (the order given), its branch tip, the message of
    the commit it becomes, and the tests (suite, test id) its fixes made pass."""

    index: int
    tip: str
    message: str
    fixed_tests: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Merged:
    tip: str
    # (piece index, its commit on the merged branch), oldest first.
    applied: tuple[tuple[int, str], ...]
    # piece index → why it was left out ("conflict: a.py, b.py", "regressed: t1, t2").
    dropped: Mapping[int, str]
    # Pieces whose change the branch already held (the same fix, made twice): index →
    # the commit holding it.
    contained: Mapping[int, str]
    # (suite, test id) red after the final full-suite run.
    final_failing: frozenset[tuple[str, str]]
    # Tests ("suite::test") a dropped run broke, as first seen.
    regressions: tuple[str, ...]
    errors: tuple[str, ...] = field(default=())


def apply_pieces(
    top: Path, base: str, pieces: Sequence[Piece]
) -> tuple[str, dict[int, str], dict[int, str], dict[int, str]]:
    """Commit `pieces` one by one on `base` (objects only: no ref or checkout moves).
    Returns the tip, the commits made (index → sha), the conflicts (index → reason) and
    the pieces already held (index → the commit holding them)."""
    tip = base
    applied: dict[int, str] = {}
    conflicts: dict[int, str] = {}
    contained: dict[int, str] = {}
    for piece in pieces:
        merge = git.merge_trees(top, tip, piece.tip)
        if merge.tree is None:
            shown = ", ".join(merge.conflicts[:5]) or "the same lines"
            conflicts[piece.index] = f"conflict with the runs applied before it: {shown}"
            continue
        if merge.tree == git.tree_of(top, tip):
            contained[piece.index] = tip
            continue
        tip = git.commit_tree(top, merge.tree, tip, piece.message)
        applied[piece.index] = tip
    return tip, applied, conflicts, contained


def merge_runs(
    ws_top: Path,
    ws_root: Path,
    branch: str,
    base: str,
    pieces: Sequence[Piece],
    *,
    found: Sequence[suites.Suite],
    baseline_failing: Collection[tuple[str, str]],
    env: Mapping[str, str],
    keep: Sequence[str] = (),
    timeout: float | None = None,
    progress: Progress = lambda _message: None,
) -> Merged:
    """Apply `pieces` to the agentloop branch `branch` (checked out at `base` in
    `ws_top`), verify with the full suites `found`, and drop what regresses."""
    chosen = list(pieces)
    dropped: dict[int, str] = {}
    first_seen: list[str] = []
    current = base

    def build(selection: Sequence[Piece]) -> tuple[str, dict[int, str], dict[int, str]]:
        nonlocal current
        tip, applied, conflicts, contained = apply_pieces(ws_top, base, selection)
        git.advance_branch(ws_top, branch, tip, current)
        git.restore_worktree(ws_top, tip, keep)
        current = tip
        for index, reason in conflicts.items():
            progress(f"run {index + 1}: {reason}")
        dropped.update(conflicts)
        return tip, applied, contained

    def verify(
        held: Collection[Piece],
    ) -> tuple[frozenset[tuple[str, str]], set[str], tuple[str, ...]]:
        progress("verifying: running the full suites")
        result = testrun.failing_tests(ws_root, found, env=env, timeout=timeout)
        fixed = {t for piece in held for t in piece.fixed_tests}
        expected_red = set(baseline_failing) - fixed
        broken = {f"{suite}::{test}" for suite, test in result.failing - expected_red}
        return result.failing, broken, result.errors

    tip, applied, contained = build(chosen)
    held = [p for p in chosen if p.index in applied or p.index in contained]
    final, broken, errors = verify(held)
    first_seen = sorted(broken)
    for piece in reversed([p for p in chosen if p.index in applied]):
        if not broken:
            break
        progress(f"{len(broken)} test(s) regressed: trying without run {piece.index + 1}")
        trial = [p for p in chosen if p is not piece and p.index not in dropped]
        tip_t, applied_t, contained_t = build(trial)
        held_t = [p for p in trial if p.index in applied_t or p.index in contained_t]
        final_t, broken_t, errors_t = verify(held_t)
        if len(broken_t) < len(broken):
            shown = ", ".join(sorted(broken - broken_t)[:5])
            dropped[piece.index] = f"regressed: with it, {shown} failed"
            chosen = trial
            tip, applied, contained, final, broken, errors = (
                tip_t, applied_t, contained_t, final_t, broken_t, errors_t,
            )  # fmt: skip
        else:
            tip, applied, contained = build([p for p in chosen if p.index not in dropped])
    return Merged(
        tip=tip,
        applied=tuple(applied.items()),
        dropped=dropped,
        contained=contained,
        final_failing=final,
        regressions=tuple(first_seen),
        errors=tuple(errors),
    )
