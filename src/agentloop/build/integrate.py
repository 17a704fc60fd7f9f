"""INTEGRATE and COMMIT of a parallel build: the built streams merged into the build's
branch in dependency order, the full suites run once, one squashed commit, the streams'
worktrees and branches gone.

The integration branch (`agentloop/build-<run>`) is a `Workspace`'s: checked out in its
worktree, made from the base. A stream lands on it as one commit made in the object store
(`git merge-tree`, as the loop lands a parallel job's fix): the branch moves with
`advance_branch` and its worktree follows, so streams made from it later start from the
streams already merged. On a conflict:

- in a contract file (a `Contract.path`, or a file a contracts stream owns) the contract
  wins: the other side's change to that file is dropped before merging again, and the
  rest of the stream's change lands;
- in any other file (two streams wrote the same file: validation makes that impossible,
  but setup scripts and agents surprise) the coordinator gets one bounded session in a
  throwaway checkout of the merge with git's conflict markers. Only the conflicted files
  may change and no marker may be left; otherwise the stream is left out, its branch kept.

Then the full suites run once against the base's baseline; new failures get the autofix
loop (`loop.runner.autofix`, two attempts per task) in a workspace of its own made from the
integration tip, whose fixes fast-forward the integration branch. That loop may not change a
contract file either: the code is made to meet the contract, not the other way round.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from pathspec import PathSpec

from agentloop import detection, git, testrun
from agentloop import suites as suites_mod
from agentloop.agents.base import Agent, Guard, SessionLimits
from agentloop.agents.sandbox import Policy
from agentloop.build.model import Manifest, Stream, StreamReport
from agentloop.failures.model import Task
from agentloop.history import BuildRecord, History, RunStatus
from agentloop.loop.model import RunReport
from agentloop.loop.prompt import fence
from agentloop.loop.runner import LoopSettings, autofix
from agentloop.rails.paths import ForbiddenPaths
from agentloop.workspace import Workspace

Progress = Callable[[str], None]

MergeOutcome = Literal["merged", "contract_kept", "resolved", "failed", "not_built"]
"""`merged`: cleanly; `contract_kept`: after dropping its change to contract files;
`resolved`: by the fix-up session; `failed`: left out (its branch kept); `not_built`: the
stream did not get as far as integration."""

SUBJECT_WIDTH = 72
TRAILER = "Agentloop-Build"
# Only the ends: "=======" alone is also a heading underline in reStructuredText.
_MARKERS = ("<<<<<<< ", ">>>>>>> ")


@dataclass(frozen=True)
class StreamMerge:
    stream: str
    outcome: MergeOutcome
    branch: str | None
    commit: str | None  # the stream's tip that was merged
    landed: str | None = None  # its commit on the integration branch
    subjects: tuple[str, ...] = ()  # the stream's own commits, oldest first
    conflicts: tuple[str, ...] = ()  # every path that conflicted on the first try
    contract_kept: tuple[str, ...] = ()  # contract files whose stream change was dropped
    reason: str = ""

    @property
    def merged(self) -> bool:
        return self.outcome in ("merged", "contract_kept", "resolved")

    @property
    def matched_contract(self) -> bool:
        """Reached integration and changed no contract file it conflicted on: its code
        met the contract at the first integration."""
        return self.outcome != "not_built" and not self.contract_kept


@dataclass(frozen=True)
class Verification:
    # "suite::test" red after the merges and green in the base's baseline.
    new_failures: tuple[str, ...]
    # What of those was still red after the fix-up loop.
    remaining: tuple[str, ...]
    fixup: RunReport | None = None
    errors: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.new_failures)


@dataclass(frozen=True)
class Integration:
    run_id: str
    request: str
    branch: str
    base_sha: str
    tip: str
    streams: tuple[StreamMerge, ...]
    verification: Verification | None
    fixup_sessions: int = 0
    cost_usd: float = 0.0

    @property
    def conflicts(self) -> int:
        """Streams whose first merge conflicted."""
        return sum(1 for s in self.streams if s.conflicts)

    @property
    def failures(self) -> int:
        """Integration failures: conflicts, and a failed run of the full suites."""
        failed_suites = self.verification is not None and self.verification.failed
        return self.conflicts + int(failed_suites)


@dataclass(frozen=True)
class IntegrateSettings:
    # The one fix-up session per non-contract conflict.
    fixup_limits: SessionLimits = field(
        default_factory=lambda: SessionLimits(max_turns=30, max_budget_usd=2.0, timeout_s=900)
    )
    # The fix-up loop after a failed run of the full suites (attempts are capped at 2).
    autofix: LoopSettings = field(default_factory=LoopSettings)
    suite_timeout: float | None = None
    reruns: int = 0
    rerun_timeout: float = 120


class Integrator:
    """Merges streams into `ws`'s branch, one at a time (safe from several threads: the
    streams' executor may merge each as it finishes), then verifies once."""

    def __init__(
        self,
        ws: Workspace,
        manifest: Manifest,
        *,
        agent: Agent,
        discover: Callable[[Path], Sequence[suites_mod.Suite]],
        baseline_failing: Collection[tuple[str, str]],
        settings: IntegrateSettings | None = None,
        base_env: Mapping[str, str] | None = None,
        agent_env: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
        policy: Callable[[Path], Policy] | None = None,
        guard: Callable[[Path], Guard] | None = None,
        history: History | None = None,
        progress: Progress = lambda _message: None,
    ) -> None:
        self.ws, self.manifest, self.agent = ws, manifest, agent
        self.discover = discover
        self.baseline = frozenset(baseline_failing)
        self.settings = settings or IntegrateSettings()
        self.base_env, self.agent_env = base_env, agent_env
        self.policy, self.guard = policy, guard
        self.history, self.progress = history, progress
        self.top = ws.path
        self.tip = git.head_sha(ws.path)
        # What lies ignored in the integration worktree (the environment, what setup
        # made): kept each time the worktree is put at a new tip.
        self._keep = git.ignored_entries(ws.path)
        rel = ws.root.relative_to(ws.path).as_posix()
        self._prefix = "" if rel == "." else rel + "/"
        self._lock = threading.Lock()
        self.merges: list[StreamMerge] = []
        self.verification: Verification | None = None
        self.fixup_sessions = 0
        self.cost_usd = 0.0
        self._contract_files = frozenset(c.path for c in manifest.contracts)
        self._contract_owners = [s for s in manifest.streams if s.is_contracts]

    # ------------------------------------------------------------ merging

    def is_contract(self, path: str) -> bool:
        return path in self._contract_files or any(owns(s, path) for s in self._contract_owners)

    def keep_contracts(self, forbidden: ForbiddenPaths) -> ForbiddenPaths:
        """`forbidden` plus the contract files: the fix-up loop after the full suites makes
        the code meet the contract, never the contract meet the code (a red test is
        easiest to turn green by changing what it was written against). Only the
        positive globs: a contract stream's `!` glob would re-allow a forbidden path,
        and refusing too much costs one rejected attempt."""
        extra = [
            *sorted(self._contract_files),
            *(g for s in self._contract_owners for g in s.owns if not g.startswith("!")),
        ]
        return ForbiddenPaths.with_protected((*forbidden.patterns, *extra), root=forbidden.root)

    def merge(self, report: StreamReport) -> StreamMerge:
        """Land one built stream on the integration branch (or say why not)."""
        with self._lock:
            done = self._merge(report)
            self.merges.append(done)
        self.progress(f"stream {done.stream}: {done.outcome}{_why(done.reason)}")
        return done

    def _merge(self, report: StreamReport) -> StreamMerge:
        if report.outcome != "built" or report.commit is None:
            return StreamMerge(
                report.stream, "not_built", report.branch, report.commit,
                reason=report.reason or report.outcome,
            )  # fmt: skip
        stream = self.manifest.stream(report.stream)
        tip, theirs = self.tip, report.commit
        subjects = tuple(
            git.subject(self.top, c) for c in git.commits_between(self.top, tip, theirs)
        )
        first = git.merge_trees(self.top, tip, theirs)
        base = StreamMerge(stream.id, "merged", report.branch, theirs, subjects=subjects)
        if first.tree is not None:
            return self._land(base, first.tree)
        base = replace(base, conflicts=first.conflicts)
        contract = tuple(p for p in first.conflicts if self.is_contract(p))
        merge = first
        if contract:
            base = replace(base, outcome="contract_kept", contract_kept=contract)
            merge = self._contract_wins(stream, tip, theirs, contract)
            if merge.tree is not None:
                return self._land(base, merge.tree)
        left = tuple(p for p in merge.conflicts if not self.is_contract(p)) or merge.conflicts
        if merge.with_markers is None:
            return replace(base, outcome="failed", reason=f"conflict in {', '.join(left)}")
        tree, why = self._fixup(stream, tip, theirs, merge.with_markers, left)
        if tree is None:
            return replace(base, outcome="failed", reason=why)
        return self._land(replace(base, outcome="resolved", reason=why), tree)

    def _contract_wins(
        self, stream: Stream, tip: str, theirs: str, paths: Sequence[str]
    ) -> git.Merge:
        """Merge again with the losing side's version of `paths` replaced by the
        contract's: the integration branch's, or the stream's own when it is the contracts
        stream owning them. Both sides then agree on those files."""
        if stream.is_contracts and all(owns(stream, p) for p in paths):
            tree = git.tree_with_paths_from(self.top, git.tree_of(self.top, tip), theirs, paths)
            ours = git.commit_tree(self.top, tree, tip, "agentloop: the contract's version")
            return git.merge_trees(self.top, ours, theirs)
        tree = git.tree_with_paths_from(self.top, git.tree_of(self.top, theirs), tip, paths)
        rewritten = git.commit_tree(self.top, tree, theirs, "agentloop: the contract's version")
        return git.merge_trees(self.top, tip, rewritten)

    def _land(self, merge: StreamMerge, tree: str) -> StreamMerge:
        if tree == git.tree_of(self.top, self.tip):
            return replace(merge, landed=self.tip, reason=merge.reason or "already there")
        message = f"build: merge stream {merge.stream}\n\n" + "".join(
            f"- {s}\n" for s in merge.subjects
        )
        landed = git.commit_tree(self.top, tree, self.tip, message)
        git.advance_branch(self.top, self.ws.branch, landed, self.tip)
        git.restore_worktree(self.top, landed, self._keep)
        self.tip = landed
        return replace(merge, landed=landed)

    def _fixup(
        self, stream: Stream, tip: str, theirs: str, with_markers: str, paths: Sequence[str]
    ) -> tuple[str | None, str]:
        """One bounded session on the merge with conflict markers, in a throwaway checkout;
        (the resolved tree, why) or (None, why not)."""
        self.fixup_sessions += 1
        start = git.commit_tree(
            self.top, with_markers, tip, f"agentloop: stream {stream.id}'s conflicts"
        )
        checkout = self.ws.worktree(f"fixup-{stream.id}", commit=start)
        own = f"refs/heads/{self.ws.branch}"
        try:
            root = checkout / self._prefix if self._prefix else checkout
            env = self.ws.env(self.base_env, root=root)
            result = self.agent.run(
                self._prompt(stream, tip, theirs, paths),
                cwd=root,
                limits=self.settings.fixup_limits,
                env=self.agent_env(env) if self.agent_env else env,
                policy=self.policy(checkout) if self.policy else None,
                guard=self.guard(checkout) if self.guard else None,
            )
            self.cost_usd += result.cost_usd
            moved = git.rev_parse(self.top, own)
            if moved != tip:  # only agentloop moves the integration branch
                git.put_ref(self.top, own, tip, current=moved)
                return None, "the fix-up session moved the integration branch (put back)"
            if not result.ok:
                return None, f"the fix-up session ended with {result.outcome}"
            candidate = git.snapshot_tree(checkout, start)
            outside = sorted(set(candidate.changed) - set(paths))
            if outside:
                return None, (
                    "the fix-up session changed files outside the conflict: "
                    + ", ".join(outside[:5])
                )
            marked = [p for p in paths if _has_markers(git.show_file(checkout, candidate.tree, p))]
            if marked:
                return None, f"conflict markers left in {', '.join(marked)}"
            return candidate.tree, f"conflict in {', '.join(paths)} resolved by a fix-up session"
        finally:
            self.ws.drop_worktree(checkout)

    def _prompt(self, stream: Stream, tip: str, theirs: str, paths: Sequence[str]) -> str:
        contracts = "\n".join(
            f"- {c.name} ({c.kind}) in `{c.path}`" + (f": {c.description}" if c.description else "")
            for c in self.manifest.contracts
        )
        versions = []
        for path in paths:
            for label, rev in (("the integration branch", tip), (f"stream {stream.id}", theirs)):
                text = git.show_file(self.top, rev, path)
                versions.append(
                    fence(text if text is not None else "(no such file)", f"{path} on {label}")
                )
        template = Template(
            resources.files("agentloop.build").joinpath("prompts/fixup.md").read_text("utf-8")
        )
        return template.substitute(
            request=fence(self.manifest.request, "The feature request"),
            stream=stream.id,
            title=stream.title,
            paths=", ".join(paths),
            contracts=contracts or "(none declared)",
            versions="\n\n".join(versions),
        )

    # ------------------------------------------------------------ the full suites

    def verify(self) -> Verification:
        """The full suites once on the integration tip; new failures (against the base's
        baseline) get the autofix loop, two attempts each, and what stays red is said."""
        env = self.ws.env(self.base_env)
        found = list(self.discover(self.ws.root))
        self.progress("integration: running the full suites")
        result = testrun.failing_tests(
            self.ws.root, found, env=env, timeout=self.settings.suite_timeout
        )
        new = result.failing - self.baseline
        if not new:
            self.verification = Verification((), (), errors=result.errors)
            return self.verification
        shown = _ids(new)
        self.progress(f"integration: {len(new)} test(s) fail that passed on the base")
        found_now = detection.detect(
            self.ws.root, found, git=True, reruns=self.settings.reruns,
            rerun_timeout=self.settings.rerun_timeout, progress=self.progress, env=env,
        )  # fmt: skip
        tasks = [t for t in found_now.tasks if any((f.suite, f.test_id) in new for f in t.failures)]
        if not tasks:
            self.verification = Verification(shown, shown, errors=result.errors)
            return self.verification
        failing = result.failing | {
            (f.suite, f.test_id) for t in found_now.tasks for f in t.failures
        }
        report = self._autofix(tasks, failing)
        self.cost_usd += report.cost_usd
        remaining = tuple(t for t in report.final_failing if t in set(shown))
        self.verification = Verification(shown, remaining, fixup=report, errors=result.errors)
        return self.verification

    def _autofix(self, tasks: Sequence[Task], failing: Collection[tuple[str, str]]) -> RunReport:
        """The loop in a workspace of its own from the integration tip; its fixes then
        fast-forward the integration branch."""
        ws = self.ws
        project = ws.repo / ws.root.relative_to(ws.path)
        fixed_tip: str | None = None
        branch = ""
        with Workspace.open(
            project,
            base=self.tip,
            run_id=f"{ws.run_id}-fixup",
            branch_prefix=ws.branch.removesuffix(ws.run_id),
            setup=ws.setup,
            setup_timeout=ws.setup_timeout,
        ) as fx:
            branch = fx.branch
            report = autofix(
                fx,
                tasks,
                agent=self.agent,
                settings=replace(
                    self.settings.autofix,
                    max_attempts=2,
                    jobs=1,
                    forbidden=self.keep_contracts(self.settings.autofix.forbidden),
                ),
                found=list(self.discover(fx.root)),
                failing=failing,
                history=self.history,
                base_env=self.base_env,
                agent_env=self.agent_env,
                policy=self.policy,
                guard=self.guard,
                progress=self.progress,
            )
            if report.commits:
                fixed_tip = git.head_sha(fx.path)
        if fixed_tip is not None:
            git.advance_branch(self.top, ws.branch, fixed_tip, self.tip)
            git.restore_worktree(self.top, fixed_tip, self._keep)
            self.tip = fixed_tip
            # Its commits are on the integration branch now: the fix-up branch holds
            # nothing of its own.
            if git.branch_exists(ws.repo, branch):
                git.delete_branch(ws.repo, branch, expected_sha=fixed_tip)
        return report

    def result(self) -> Integration:
        return Integration(
            run_id=self.ws.run_id,
            request=self.manifest.request,
            branch=self.ws.branch,
            base_sha=self.ws.base_sha,
            tip=self.tip,
            streams=tuple(self.merges),
            verification=self.verification,
            fixup_sessions=self.fixup_sessions,
            cost_usd=self.cost_usd,
        )


def owns(stream: Stream, path: str) -> bool:
    """Whether `path` (top-relative) is one of `stream`'s (gitignore-style globs, as the
    sandbox and the diff check read them)."""
    return PathSpec.from_lines("gitignore", stream.owns).match_file(path)


def merge_order(manifest: Manifest) -> list[Stream]:
    """The streams, dependencies first (the manifest's order among equals), contract
    streams before the others they do not depend on. Validation made the graph acyclic;
    a stream left in a cycle anyway comes last rather than never."""
    done: list[Stream] = []
    left = sorted(manifest.streams, key=lambda s: not s.is_contracts)
    while left:
        ready = [s for s in left if all(d in {x.id for x in done} for d in s.depends_on)]
        chosen = ready[0] if ready else left[0]
        done.append(chosen)
        left.remove(chosen)
    return done


def integrate(
    integrator: Integrator, built: Sequence[StreamReport], *, verify: bool = True
) -> Integration:
    """Merge `built` in dependency order, then run the full suites once (and fix up)."""
    by_id = {r.stream: r for r in built}
    for stream in merge_order(integrator.manifest):
        if stream.id in by_id:
            integrator.merge(by_id[stream.id])
    if verify and any(m.merged for m in integrator.merges):
        integrator.verify()
    return integrator.result()


# ---------------------------------------------------------------- COMMIT


def commit_message(request: str, merges: Sequence[StreamMerge], run_id: str) -> str:
    """`feat: <request>` within 72 characters, the request whole when shortened, the
    streams with their commits' subjects, and the build's trailer."""
    words = " ".join(request.split())
    subject = f"feat: {words}"
    if len(subject) > SUBJECT_WIDTH:
        subject = subject[: SUBJECT_WIDTH - 1].rstrip() + "…"
    parts = [subject, ""]
    if subject != f"feat: {words}":
        parts += [textwrap.fill(words, SUBJECT_WIDTH), ""]
    parts.append("Streams:")
    for m in merges:
        state = "" if m.outcome == "merged" else f" ({_state(m)})"
        parts.append(f"- {m.stream}{state}")
        parts += [f"  - {s}" for s in m.subjects]
    left = [m for m in merges if not m.merged]
    if left:
        parts += ["", "Left out:"]
        parts += [f"- {m.stream}: {m.reason or m.outcome}" for m in left]
    parts += ["", f"{TRAILER}: {run_id}", ""]
    return "\n".join(parts)


def commit_build(ws: Workspace, integration: Integration) -> str | None:
    """One commit on the build's branch for everything integrated (None: nothing was);
    nothing is pushed."""
    if git.head_sha(ws.path) == ws.base_sha:
        return None
    merged = [m for m in integration.streams if m.merged]
    message = commit_message(
        integration.request,
        merged + [m for m in integration.streams if not m.merged],
        integration.run_id,
    )
    return git.squash(ws.path, ws.base_sha, message)


@dataclass(frozen=True)
class StreamCleanup:
    stream: str
    branch: str | None
    removed_worktree: bool = False
    rescued: Path | None = None  # the worktree's uncommitted work, saved before removal
    deleted_branch: bool = False
    kept: str = ""  # why the branch stays


def clean_streams(
    ws: Workspace, reports: Sequence[StreamReport], *, keep: Collection[str] = ()
) -> tuple[StreamCleanup, ...]:
    """Remove each stream's worktree (its uncommitted work saved first) and branch; the
    branches of the streams in `keep` (left out of the build) stay, to be looked at."""
    done = []
    # The run's own stream worktrees only (execute may have dropped some already).
    worktrees = {b: p for p, b in ws.extra if b is not None}
    for report in reports:
        branch = report.branch
        if branch is None:
            done.append(StreamCleanup(report.stream, None))
            continue
        path = worktrees.get(branch)
        keeps = report.stream in keep or not branch.startswith(git.BRANCH_PREFIX)
        rescued = ws.drop_worktree(path, keep_branch=True) if path is not None else None
        tip = git.rev_parse(ws.repo, f"refs/heads/{branch}")
        if keeps:
            why = "left out of the build" if report.stream in keep else "not agentloop's"
            done.append(StreamCleanup(report.stream, branch, path is not None, rescued, kept=why))
            continue
        if tip is not None:
            git.delete_branch(ws.repo, branch, expected_sha=tip)
        done.append(
            StreamCleanup(report.stream, branch, path is not None, rescued, tip is not None)
        )
    return tuple(done)


# ---------------------------------------------------------------- metrics


def build_record(
    integration: Integration,
    reports: Sequence[StreamReport],
    *,
    started_at: datetime,
    finished_at: datetime,
    wall_s: float,
    commit: str | None,
    status: RunStatus = "completed",
) -> BuildRecord:
    """The ledger's row of one build: the serial estimate is the sum of the streams'
    own times; contract accuracy counts the streams that reached integration."""
    reached = [m for m in integration.streams if m.outcome != "not_built"]
    return BuildRecord(
        run_id=integration.run_id,
        request=integration.request,
        streams=len(reports),
        started_at=started_at,
        finished_at=finished_at,
        wall_s=wall_s,
        serial_s=sum(r.duration_s for r in reports),
        merged=sum(1 for m in integration.streams if m.merged),
        conflicts=integration.conflicts,
        failed_suites=int(integration.verification is not None and integration.verification.failed),
        integrated=len(reached),
        contract_matched=sum(1 for m in reached if m.matched_contract),
        commit_sha=commit,
        status=status,
    )


def _has_markers(text: str | None) -> bool:
    return text is not None and any(line.startswith(_MARKERS) for line in text.splitlines())


def _ids(tests: Collection[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(sorted(f"{suite}::{test}" for suite, test in tests))


def _state(m: StreamMerge) -> str:
    if m.outcome == "contract_kept":
        return "the contract kept in " + ", ".join(m.contract_kept)
    if m.outcome == "resolved":
        return "conflict resolved: " + ", ".join(m.conflicts)
    return m.outcome


def _why(reason: str) -> str:
    return f" ({reason})" if reason else ""
