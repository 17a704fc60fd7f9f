"""The autofix loop, top to bottom: DETECT's baseline checks → FIX → VERIFY → COMMIT.

`autofix` is the whole run on a workspace: it takes the tasks DETECT found, fixes them
(several at once with `jobs` > 1, each job in a worktree of its own), verifies the result
with the full suites once, squashes if asked, and returns the run's report. The command
(`commands/run.py`) only wires it and prints.

Rails are enforced by agentloop itself after every attempt (the agent's guard hook is only
a first line). Limits are checked in one place (`_check_caps`), and the budget is reserved
before each session (`Budget`), so jobs in parallel cannot spend more than the cap. An
attempt (`Attempt`) ends accepted or put back, in exactly one `AttemptOutcome`, written to
the ledger as it ends.

Verification comes in tiers, cheapest first, and the report says which caught what:
- `task`: after an attempt, the task's own tests, in one runner process, in the judge's
  checkout of the candidate (`Judge`);
- `importers`: once those pass, the tests of the modules that import what the fix changed;
- `full`: the full suites, once, after every task (a fix behind a regression is dropped).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentloop import git, proc, testrun
from agentloop import suites as suites_mod
from agentloop.agents import sandbox
from agentloop.agents.base import Agent, Guard, PermissionDenial, SessionLimits, SessionResult
from agentloop.agents.sandbox import Policy
from agentloop.failures import imports
from agentloop.failures.group import normalize_message
from agentloop.failures.model import Task
from agentloop.history import (
    AttemptOutcome,
    AttemptRecord,
    History,
    RunStatus,
    TaskRecord,
    utc_now,
)
from agentloop.loop.attempt import Attempt, Rejected
from agentloop.loop.budget import Budget
from agentloop.loop.jobs import CapReached, Later, reach, run_jobs
from agentloop.loop.judge import Judge, Verdict
from agentloop.loop.message import commit_message, fingerprint_trailer, test_change_note
from agentloop.loop.model import AttemptReport, RunReport, TaskReport
from agentloop.loop.prompt import EarlierAttempt, build_prompt
from agentloop.rails.paths import ForbiddenPaths
from agentloop.rails.testinfra import is_test_surface

if TYPE_CHECKING:
    from agentloop.workspace import Workspace

__all__ = ["AutofixLoop", "CapReached", "LoopSettings", "autofix"]

Progress = Callable[[str], None]
# One live line per job: (job number, what it does now), or None when it is idle.
Board = Callable[[int, "str | None"], None]

_AGENT_OUTCOMES: Mapping[str, AttemptOutcome] = {
    "max_turns": "max_turns",
    "budget": "budget",
    "timeout": "timeout",
}

# Sessions that did not finish what they were asked: whatever they changed is not a fix,
# even when it happens to make the task's tests pass.
_BROKEN_SESSIONS = frozenset({"api_error", "error", "crashed"})


@dataclass(frozen=True)
class LoopSettings:
    max_attempts: int = 3
    max_runtime_s: float = 1200
    max_budget_usd: float = 10.0
    budget_per_attempt_usd: float = 2.0
    limits: SessionLimits = field(default_factory=SessionLimits)
    forbidden: ForbiddenPaths = field(default_factory=ForbiddenPaths)
    allow_test_edits: bool = False
    rerun_timeout: float = 120
    # Commands such as `ruff check .` or `mypy src`: a fix may not add to their findings.
    checks: tuple[str, ...] = ()
    check_timeout: float = 300
    # Tasks fixed at the same time, each in a worktree of its own (1: in the run's).
    jobs: int = 1


def autofix(
    ws: Workspace,
    tasks: Sequence[Task],
    *,
    agent: Agent,
    settings: LoopSettings,
    found: Sequence[suites_mod.Suite],
    failing: Collection[tuple[str, str]],
    history: History | None = None,
    squash: bool = False,
    base_env: Mapping[str, str] | None = None,
    agent_env: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
    policy: Callable[[Path], Policy] | None = None,
    guard: Callable[[Path], Guard] | None = None,
    started: float | None = None,
    progress: Progress = lambda _message: None,
    board: Board = lambda _job, _text: None,
    later: Later | None = None,
) -> RunReport:
    """The run on `ws`: fix `tasks` (and those `later` finds meanwhile), verify against
    `failing` (the baseline's failing tests, (suite, test id)) with the full suites
    `found`, commit; the run's report."""
    loop = AutofixLoop.in_workspace(
        ws,
        agent=agent,
        settings=settings,
        history=history,
        base_env=base_env,
        agent_env=agent_env,
        started=started,
        progress=progress,
        board=board,
        policy=policy,
        guard=guard,
        found=found,
        failing=failing,
    )
    if history is not None:
        history.start_run(ws.run_id, branch=ws.branch, base_sha=ws.base_sha, tasks_total=len(tasks))
    status: RunStatus = "failed"
    try:
        # DETECT gave the tasks; what the checks report before any fix is the bar.
        loop.baseline_checks()
        # FIX, with tiers 1 and 2 of VERIFY after each attempt.
        reports, stopped_by = loop.fix(tasks, later=later)
        # VERIFY, tier 3: the full suites once; the fix behind a regression is dropped.
        regressed, broken = loop.verify(reports) if loop.state.commits else (set(), [])
        final = {task_id: sha for sha, task_id in loop.state.commits}
        reports = [_after_verify(r, regressed, final) for r in reports]
        # Closed tasks whose tests fail again, and tasks tried (or skipped) before the fix
        # that also fixed them, as the final verification found them.
        reports = [loop.as_verified(r) for r in reports]
        # COMMIT: the fixes are on the run's branch; one commit if asked.
        if squash:
            reports = loop.squash(reports)
        for r in reports:
            if r.outcome in ("fixed", "regressed"):
                loop.record_task(r, verified=True)
        report = loop.report(
            reports,
            stopped_by=stopped_by,
            branch=ws.branch if loop.state.commits else None,
            regressions=broken,
        )
        status = "completed"
        return report
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if history is not None:
            history.finish_run(ws.run_id, status=status)


@dataclass(frozen=True)
class _BothTiers:
    task_passed: bool
    # Tests of code importing the change that fail now and passed in the baseline.
    broken: list[str]


class _AlreadyLanded(Exception):
    def __init__(self, sha: str) -> None:
        super().__init__(sha)
        self.sha = sha


@dataclass
class _State:
    commits: list[tuple[str, str]] = field(default_factory=list)  # (sha, task id)


@dataclass
class _Slot:
    """Where one job works: the run's own worktree (one job), or a worktree of its own
    on a branch of its own, whose accepted fixes are applied to the run's branch."""

    number: int
    top: Path
    root: Path
    branch: str
    own: bool
    env: dict[str, str]
    judge: Judge


class AutofixLoop:
    def __init__(
        self,
        ws: Workspace,
        *,
        agent: Agent,
        settings: LoopSettings,
        history: History | None,
        base_env: Mapping[str, str] | None = None,
        agent_env: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
        progress: Progress = lambda _message: None,
        board: Board = lambda _job, _text: None,
        policy: Callable[[Path], Policy] | None = None,
        guard: Callable[[Path], Guard] | None = None,
        found: Sequence[suites_mod.Suite] = (),
        failing: Collection[tuple[str, str]] = (),
    ) -> None:
        self.ws = ws
        self.top, self.root, self.base_sha, self.run_id = ws.path, ws.root, ws.base_sha, ws.run_id
        self.branch = ws.branch
        self.agent, self.settings = agent, settings
        self._base_env = base_env
        self.env = ws.env(base_env)
        # The agent's sessions get their worktree's environment through `agent_env`
        # (which blanks the secrets); the test runs agentloop makes itself keep
        # everything the suites may need.
        self._agent_env = agent_env
        self.history, self.clock, self.progress, self.board = history, clock, progress, board
        # What each session may write, read and reach, and its guard: made afresh for
        # each session, for the worktree it works in (the paths it names exist then).
        self.policy, self.guard = policy, guard
        self.found, self.failing = tuple(found), frozenset(failing)
        # The runtime cap counts from the start of the run, the baseline included.
        self.start = clock() if started is None else started
        self.budget = Budget(
            settings.max_budget_usd, per_session_usd=settings.budget_per_attempt_usd
        )
        self.state = _State()
        self._check_baseline: dict[str, Counter[str]] | None = None
        # The project's path inside the checkout: git speaks top-relative paths, the
        # failure records project-relative ones.
        rel = ws.root.relative_to(ws.path).as_posix()
        self._prefix = "" if rel == "." else rel + "/"
        # Jobs: one slot each, made on first use; the run's branch and worktree are
        # changed by one job at a time; ^C and a failing job stop them all.
        self._slots: dict[int, _Slot] = {}
        self._slots_lock = threading.Lock()
        self._integrating = threading.Lock()
        self._stop = threading.Event()
        self._graph: Mapping[str, set[str]] = {}
        self._importers: Mapping[str, set[str]] = {}
        # Where the run's branch is: its base, then each fix landed (see `_tip`); and what
        # lies ignored in the run's worktree before any session (the environment, what
        # setup made): with jobs in worktrees of their own, the run's worktree is put
        # back to exactly that before agentloop runs tests there.
        self._run_tip = ws.base_sha
        self._run_keep = git.ignored_entries(ws.path)
        # The tests of each task fixed by a commit of its own when VERIFY began: they
        # must pass while that commit is on the branch.
        self._fixed_tests: dict[str, frozenset[tuple[str, str]]] = {}
        # What failed in the last full run of the suites (VERIFY's).
        self._final: frozenset[tuple[str, str]] | None = None

    @classmethod
    def in_workspace(cls, ws: Workspace, **options: object) -> AutofixLoop:
        """The loop wired to a run's workspace (its worktree, base, rescue folder, the
        environment of each checkout made from `base_env`); see `__init__`."""
        return cls(ws, **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------ FIX

    def fix(
        self, tasks: Sequence[Task], *, later: Later | None = None
    ) -> tuple[list[TaskReport], str | None]:
        """Try every task, and those `later` finds meanwhile, up to `jobs` at once; their
        reports, in order, and the cap that stopped the run."""
        self._graph = imports.import_graph(self.root)
        # Tier 2 and the side-effect check ask, after every fix, who imports what changed.
        self._importers = imports.importers(self._graph)
        stubs = sandbox.git_stubs(self.top)
        try:
            return self._run_jobs(tasks, later)
        finally:
            if self.settings.jobs > 1:
                for path in sandbox.git_stubs(self.top) - stubs:
                    path.unlink(missing_ok=True)

    def _run_jobs(
        self, tasks: Sequence[Task], later: Later | None
    ) -> tuple[list[TaskReport], str | None]:
        known = list(tasks)
        reaches = {t.id: reach(t, self._graph) for t in tasks}

        def arrived(task: Task) -> None:
            self.progress(f"task {task.id}: order-dependent, found beside the first fixes")
            reaches[task.id] = reach(task, self._graph)
            known.append(task)

        width = self.settings.jobs if later is not None else min(self.settings.jobs, len(tasks))
        return run_jobs(
            tasks,
            jobs=max(1, width),
            reaches=reaches,
            work=self._work,
            close=lambda fixed, waiting: self._closed_by(fixed, known, waiting),
            finished=self.record_task,
            stop=self._stop,
            cancel=self._cancel,
            later=later,
            arrived=arrived,
        )

    def _cancel(self) -> None:
        self.agent.cancel()

    def _work(self, job: int, task: Task) -> TaskReport:
        slot = self._slot(job)
        try:
            return self._fix_task(slot, task)
        finally:
            self.board(job, None)

    def _slot(self, job: int) -> _Slot:
        with self._slots_lock:
            slot = self._slots.get(job)
        if slot is not None:
            return slot
        if self.settings.jobs <= 1:
            top, branch, own = self.top, self.branch, True
        else:
            self.board(job, "preparing its worktree")
            branch = f"{self.branch}.job{job}"
            with self._integrating:
                tip = self._tip()
            top = self.ws.worktree(f"job{job}", commit=tip, branch=branch)
            own = False
        root = top / self._prefix if self._prefix else top
        env = self.ws.env(self._base_env, root=root)
        slot = _Slot(
            number=job,
            top=top,
            root=root,
            branch=branch,
            own=own,
            env=env,
            judge=Judge(
                top=top,
                project=self._prefix.rstrip("/"),
                open_worktree=lambda: self.ws.detached_worktree(f"judge{job}"),
                env_for=lambda r: self.ws.env(self._base_env, root=r),
                timeout=self.settings.rerun_timeout,
            ),
        )
        with self._slots_lock:
            self._slots[job] = slot
        return slot

    def _check_caps(self) -> float:
        """Seconds left in the run; raises CapReached when a cap is used up."""
        if self._stop.is_set():  # ^C, or another job failed: the run is over
            raise KeyboardInterrupt
        left = self.settings.max_runtime_s - (self.clock() - self.start)
        if left <= 0:
            raise CapReached("max_runtime")
        if self.budget.exhausted():
            raise CapReached("max_budget")
        return left

    def _fix_task(self, slot: _Slot, task: Task) -> TaskReport:
        attempts: list[AttemptReport] = []
        fingerprints: list[str] = []
        for number in range(1, self.settings.max_attempts + 1):
            try:
                left = self._check_caps()
            except CapReached as cap:
                # A task the cap stops before its first attempt was skipped, not tried.
                unfixed = self._unfixed(task, attempts, f"{cap.cap} reached") if attempts else None
                raise CapReached(cap.cap, unfixed) from None
            attempt = self._attempt(slot, task, number, attempts, left)
            repeated = bool(attempt.fingerprint) and attempt.fingerprint in fingerprints
            if repeated:
                attempt = dataclasses.replace(attempt, outcome="no_progress")
            attempts.append(attempt)
            self._record_attempt(task, attempt)
            if attempt.commit is not None:
                return TaskReport(task, "fixed", tuple(attempts), commit=attempt.commit)
            if attempt.fixed_by is not None:
                return TaskReport(task, "fixed", tuple(attempts), fixed_by=attempt.fixed_by)
            if (
                attempt.outcome == "timeout"
                and self.clock() - self.start >= self.settings.max_runtime_s
            ):
                raise CapReached(
                    "max_runtime", self._unfixed(task, attempts, "max_runtime reached")
                )
            if repeated:
                return self._unfixed(
                    task, attempts, "two attempts left the same failure: no progress"
                )
            if attempt.fingerprint:
                fingerprints.append(attempt.fingerprint)
        return self._unfixed(task, attempts, f"{self.settings.max_attempts} attempts failed")

    def _attempt(
        self,
        slot: _Slot,
        task: Task,
        number: int,
        earlier: Sequence[AttemptReport],
        seconds_left: float,
    ) -> AttemptReport:
        """One session and the checks after it, reported with the fix's commit on the
        run's branch when it was accepted. Whatever happens, the job's worktree ends at the
        fix commit or exactly as the attempt found it."""
        reservation = self.budget.reserve(self._stop)
        if reservation is None:
            raise CapReached(
                "max_budget",
                self._unfixed(task, earlier, "max_budget reached") if earlier else None,
            )
        limits = SessionLimits(
            max_turns=self.settings.limits.max_turns,
            max_budget_usd=reservation.usd,
            timeout_s=max(seconds_left, 1.0),
            allowed_tools=self.settings.limits.allowed_tools,
        )
        if not slot.own:
            # Each attempt starts from the run's branch as it is now: with the fixes the
            # other jobs landed meanwhile, including the one a conflict was with.
            with self._integrating:
                tip = self._tip()
            git.restore_worktree(slot.top, tip, git.ignored_entries(slot.top))
        started = self.clock()
        self.board(slot.number, f"task {task.id} ({task.category}) attempt {number}")
        self.progress(f"task {task.id} ({task.category}), attempt {number}")
        policy = self.policy(slot.top) if self.policy is not None else None
        sandboxed = policy is not None and policy.sandboxed
        rescue = self.ws.places.rescued / f"{self.run_id}-{task.id}-attempt-{number}"
        cost = 0.0
        try:
            with Attempt(slot.top, rescue, sandboxed=sandboxed) as attempt:
                prompt = build_prompt(
                    task,
                    rails=self.rails(),
                    read=lambda path: _read(slot.top, self._prefix + path),
                    earlier=[
                        EarlierAttempt(a.number, a.changed, a.reason) for a in earlier if a.reason
                    ],
                )
                result = self.agent.run(
                    prompt,
                    cwd=slot.root,
                    limits=limits,
                    env=self._agent_env(slot.env) if self._agent_env else slot.env,
                    policy=policy,
                    guard=self.guard(slot.top) if self.guard is not None else None,
                )
                cost = result.cost_usd
                if self._stop.is_set():
                    # The run is being stopped: what this session did does not land.
                    raise KeyboardInterrupt

                def report(
                    outcome: AttemptOutcome,
                    reason: str = "",
                    *,
                    tier: str = "",
                    fingerprint: str = "",
                    commit: str | None = None,
                    fixed_by: str | None = None,
                    tests_diff: str = "",
                ) -> AttemptReport:
                    return AttemptReport(
                        number=number,
                        outcome=outcome,
                        reason=reason,
                        changed=attempt.changed,
                        cost_usd=result.cost_usd,
                        duration_s=self.clock() - started,
                        turns=result.num_turns,
                        agent_outcome=result.outcome,
                        tests_changed=attempt.tests_changed,
                        tier=tier,
                        started_s=started - self.start,
                        job=slot.number,
                        fingerprint=fingerprint,
                        commit=commit,
                        fixed_by=fixed_by,
                        tests_diff=tests_diff,
                    )

                try:
                    commit = self._accept(slot, task, attempt, result, number)
                    return report("fixed", commit=commit, tests_diff=attempt.tests_diff)
                except _AlreadyLanded as landed:
                    return report(
                        "fixed",
                        "the same change landed meanwhile with another task's fix",
                        fixed_by=landed.sha,
                    )
                except Rejected as rejected:
                    return report(
                        rejected.outcome,
                        rejected.reason,
                        tier=rejected.tier,
                        fingerprint=rejected.fingerprint or "",
                    )
        finally:
            self.budget.settle(reservation, cost)

    def _accept(
        self, slot: _Slot, task: Task, attempt: Attempt, result: SessionResult, number: int
    ) -> str:
        """The rails after a session, in order; the fix commit on the run's branch, or
        Rejected."""
        top = slot.top
        attempt.check_git_state()
        candidate = git.snapshot_tree(top, attempt.start)
        attempt.changed = candidate.changed
        rails = attempt.check_rails(
            candidate,
            forbidden=self.settings.forbidden,
            allow_test_edits=self.settings.allow_test_edits,
        )
        if not result.ok and result.outcome in _AGENT_OUTCOMES:
            raise Rejected(_AGENT_OUTCOMES[result.outcome], _agent_reason(result))
        if result.outcome in _BROKEN_SESSIONS:
            raise Rejected("agent_error", _agent_reason(result))
        if not candidate.changed:
            raise Rejected("agent_error", _agent_reason(result) or "changed nothing")
        if rails.integrity:
            raise Rejected(
                "rejected_integrity",
                "weakened the tests: " + "; ".join(str(p) for p in rails.integrity[:5]),
            )
        # VERIFY, tiers 1 and 2 in one runner process when that says as much as two: the
        # candidate leaves the tests as they were, and its task's tests are plain pytest
        # tests in the files tier 2 runs anyway. Else, or when it finds the task's tests
        # failing (its output is the next attempt's evidence), the judge's own run.
        files = self._importer_files(slot, attempt.start, candidate.tree)
        both = self._both_tiers(slot, task, candidate, files, attempt.keep)
        if both is not None and both.task_passed:
            verdict = Verdict(True, "", ())
        else:
            # VERIFY, tier 1: the task's own tests, as they were, at the candidate.
            verdict = slot.judge.judge(attempt.start, candidate, task.failures, attempt.keep)
        attempt.tests_changed = verdict.test_changes
        if not verdict.passed:
            first = _first_error(verdict.output)
            against = "the original tests" if verdict.test_changes else "the task's tests"
            raise Rejected(
                "tests_failed",
                f"{against} still failed: {first}",
                normalize_message(first),
                tier="task",
            )
        new_findings = self._new_findings(slot)
        if new_findings:
            raise Rejected("rejected_check", "tests pass, but " + new_findings)
        message = commit_message(
            task,
            top=top,
            start=attempt.start,
            tree=candidate.tree,
            prefix=self._prefix,
            note=result.text,
        )
        # The commit carries the user's identity: say whose work it is.
        message += f"\nMade by agentloop run {self.run_id}, attempt {number}.\n"
        if verdict.test_changes:
            attempt.tests_diff = git.tree_diff(
                top, attempt.start, candidate.tree, verdict.test_changes
            )
            message += test_change_note(attempt.tests_diff, needed=verdict.needed_test_changes)
        # Trailers, last: `agentloop pr` knows a failure already fixed on the base branch
        # by its fingerprint (its tests and their error types).
        message += f"\n{fingerprint_trailer(task.fingerprint)}\n"
        commit = git.commit_tree(top, candidate.tree, attempt.start, message)
        # VERIFY, tier 2, in this job (jobs check their fixes side by side): the tests
        # of the code that imports the change, at the fix's commit. How the fix combines
        # with fixes other jobs land meanwhile is the full suites' to see, at the end.
        if both is not None and both.task_passed:
            broken = both.broken
        else:
            broken = self._importers_broken(slot, commit, files, task, attempt.keep)
        if broken:
            more = f" and {len(broken) - 5} more" if len(broken) > 5 else ""
            raise Rejected(
                "regressed",
                "the task's tests pass, but tests of code that imports the change now fail: "
                + ", ".join(broken[:5])
                + more,
                tier="importers",
            )
        landed = self._land(task, commit, attempt.start, message, moves_branch=not slot.own)
        git.advance_branch(top, attempt.branch, commit, attempt.start)
        attempt.accept(commit)
        return landed

    def _land(
        self, task: Task, commit: str, start: str, message: str, *, moves_branch: bool
    ) -> str:
        """Put an accepted fix on the run's branch, one job at a time: as it is when the
        branch has not moved since the attempt started, else merged onto it in the object
        store (`git merge-tree`) first; a conflict rejects the attempt, and the next one
        starts on top of the other fix. Returns the commit on the run's branch (moved here
        for a job of its own; the run's own worktree's attempt moves it itself)."""
        with self._integrating:
            tip = self._tip()
            landed = commit
            if tip != start:
                merge = git.merge_trees(self.top, tip, commit)
                if merge.tree is None:
                    shown = ", ".join(merge.conflicts[:5]) or "the same lines"
                    raise Rejected(
                        "conflict",
                        f"the fix conflicts ({shown}) with another task's fix that landed "
                        "meanwhile; the next attempt starts from the code with that fix",
                    )
                if merge.tree == git.tree_of(self.top, tip):
                    # Another job landed this very change meanwhile (a shared root cause
                    # both were given): nothing is left to land.
                    raise _AlreadyLanded(tip)
                landed = git.commit_tree(self.top, merge.tree, tip, message)
            if moves_branch:
                git.advance_branch(self.top, self.branch, landed, tip)
                git.restore_worktree(self.top, landed, self._run_keep)
            self._run_tip = landed
            self.state.commits.append((landed, task.id))
            return landed

    def _tip(self) -> str:
        """The run's branch as agentloop last left it (call with `_integrating` held).
        Only `_land` moves it while jobs work; an agent in a job's worktree must not
        (outside the sandbox nothing but the guard stops a `git update-ref` there, and the
        attempts' own check watches only their own branch): a branch found elsewhere is
        put back first."""
        ref = f"refs/heads/{self.branch}"
        sha = git.rev_parse(self.top, ref)
        if sha != self._run_tip:
            self.progress(f"the run's branch was moved to {(sha or 'nothing')[:10]}: put back")
            git.put_ref(self.top, ref, self._run_tip, current=sha)
            git.restore_worktree(self.top, self._run_tip, self._run_keep)
        return self._run_tip

    def _fresh_run_worktree(self) -> None:
        """Before agentloop runs tests in the run's worktree while jobs work elsewhere:
        exactly the branch's tip and what was ignored there at the start. Nothing but
        agentloop works there, so anything else is not to be trusted (outside the
        sandbox, an agent's shell can reach it)."""
        if self.settings.jobs > 1:
            git.restore_worktree(self.top, self._tip(), self._run_keep)

    def _importer_files(self, slot: _Slot, start: str, tree: str) -> list[str]:
        """The test files (project-relative) that import what the change from `start` to
        `tree` touched, directly or not: tier 2's."""
        changed = {
            p[len(self._prefix) :]
            for p in git.changed_between(slot.top, start, tree)
            if p.startswith(self._prefix)
        }
        return sorted(p for p in imports.reachable(changed, self._importers) if _is_test_file(p))

    def _importers_broken(
        self, slot: _Slot, commit: str, files: Sequence[str], task: Task, keep: Sequence[str]
    ) -> list[str]:
        """VERIFY, tier 2: the tests in `files`, at the fix's commit, in the job's judge
        checkout; those that fail now and did not in the baseline (the task's own aside)."""
        if not files:
            return []
        result = slot.judge.failing(commit, self.found, files, keep, project_root=self.root)
        return self._broken(result.failing, task)

    def _broken(self, failing: Collection[tuple[str, str]], task: Task) -> list[str]:
        own = {(f.suite, f.test_id) for f in task.failures}
        return sorted(f"{s}::{t}" for s, t in set(failing) - self.failing - own)

    def _both_tiers(
        self,
        slot: _Slot,
        task: Task,
        candidate: git.Snapshot,
        files: Sequence[str],
        keep: Sequence[str],
    ) -> _BothTiers | None:
        """Tiers 1 and 2 as one run of `files` at the candidate, when that is sound (see
        `_accept`); None when it is not."""
        own_files = {f.file for f in task.failures}
        # Suites agentloop drives itself: only they run just the files given (a
        # configured command is left whole, and tier 2 gives it no files at all).
        driven = {s.name for s in self.found if s.runner == "pytest"}
        plain = all(
            f.runner == "pytest"
            and f.suite in driven
            and f.file
            and not f.parent
            and f.polluter is None
            and not f.order_dependent
            and "::" in f.test_id
            for f in task.failures
        )
        surface = any(is_test_surface(p) for p in candidate.changed)
        if not plain or surface or not own_files <= set(files):
            return None
        result = slot.judge.failing(candidate.tree, self.found, files, keep, project_root=self.root)
        own = {(f.suite, f.test_id) for f in task.failures}
        # A file that did not import, a suite that could not be read, tests that never
        # ran: nothing says the task's tests passed.
        unsure = (
            not result.processes
            or bool(result.errors)
            or any("::" not in t for _, t in result.failing)
        )
        passed = not unsure and not (own & result.failing)
        return _BothTiers(task_passed=passed, broken=self._broken(result.failing, task))

    def _closed_by(
        self, fixed: TaskReport, tasks: Sequence[Task], waiting: Collection[str]
    ) -> list[TaskReport]:
        """Waiting tasks whose tests now pass thanks to `fixed`'s commit: closed without a
        session of their own. Only tasks the change can reach through the import graph
        are re-run, all in one runner process: a suite with hanging tests must not pay
        their timeouts after every fix."""
        assert fixed.commit is not None
        with self._integrating:
            self._fresh_run_worktree()
            changed = {
                p[len(self._prefix) :]
                for p in git.changed_between(self.top, f"{fixed.commit}^", fixed.commit)
                if p.startswith(self._prefix)
            }
            reached = imports.reachable(changed, self._importers)
            candidates = [
                t
                for t in tasks
                if t.id in waiting
                and ({f.file for f in t.failures if f.file} | _crash_file(t)) & reached
            ]
            if not candidates:
                return []
            run = testrun.run_tests(
                [f for t in candidates for f in t.failures],
                root=self.root,
                timeout=self.settings.rerun_timeout,
                env=self.env,
            )
            return [
                TaskReport(t, "fixed", fixed_by=fixed.commit)
                for t in candidates
                if not {f.test_id for f in t.failures} & run.failing
            ]

    # ------------------------------------------------------------ VERIFY, tier 3

    def verify(self, reports: Sequence[TaskReport] = ()) -> tuple[set[str], list[str]]:
        """Run the full suites; drop the fix behind each regression, newest first.
        A regression is a test that fails now and passed in the baseline, or a test of a
        task fixed by a commit of its own (fixes landed side by side can undo each other).
        Returns (ids of tasks whose fix was dropped, the regressed tests)."""
        self._fixed_tests = {
            r.task.id: frozenset((f.suite, f.test_id) for f in r.task.failures)
            for r in reports
            if r.outcome == "fixed" and r.commit
        }
        regressed_tasks: set[str] = set()
        with self._integrating:
            self._fresh_run_worktree()
        regressions = self._regressions()
        seen = sorted(regressions)
        for sha, task_id in reversed(list(self.state.commits)):
            if not regressions:
                break
            self.progress(f"a fix broke {len(regressions)} test(s): trying without {sha[:8]}")
            before = git.head_sha(self.top)
            try:
                # Dropping keeps no fix-and-revert pair on the branch (and a branch with no
                # fix left has no commits, so it is removed at the end).
                git.drop_commit(self.top, sha)
            except git.GitError:  # a later fix builds on this one: undo it with a revert
                git.revert_commit(self.top, sha)
            # Without its fix, the task's own tests are expected to fail again.
            remaining = self._regressions(without=regressed_tasks | {task_id})
            if len(remaining) < len(regressions):
                regressed_tasks.add(task_id)
                self.state.commits.remove((sha, task_id))
                self._renumber()
                regressions = remaining
            else:  # not this one: put it back (only ever on agentloop's branch)
                git.reset_hard(self.top, before)
        return regressed_tasks, seen

    def _renumber(self) -> None:
        """After a drop the later fixes are new commits: follow them by position."""
        shas = git.commits_between(self.top, self.base_sha, "HEAD")
        if len(shas) == len(self.state.commits):
            self.state.commits[:] = [
                (new, task_id) for new, (_, task_id) in zip(shas, self.state.commits, strict=True)
            ]

    def _regressions(self, without: Collection[str] = ()) -> set[str]:
        self.progress("verifying: running the full suites")
        result = testrun.failing_tests(
            self.root, self.found, env=self.env, timeout=self.settings.rerun_timeout
        )
        for error in result.errors:
            self.progress(f"verifying: {error}")
        self._final = result.failing
        fixed = {
            t
            for task_id, tests in self._fixed_tests.items()
            if task_id not in without
            for t in tests
        }
        expected_red = self.failing - fixed
        return {f"{suite}::{test}" for suite, test in result.failing - expected_red}

    def as_verified(self, report: TaskReport) -> TaskReport:
        """A task as the final verification found it. Closed by another task's fix, but
        its tests fail again (that fix was dropped, or a later one undid it): unfixed.
        Unfixed or skipped, but its tests all pass: fixed by the others' fixes (one
        landed after it was tried)."""
        if self._final is None:
            return report
        failing = {(f.suite, f.test_id) for f in report.task.failures} & self._final
        if report.outcome == "fixed" and report.commit is None and failing:
            return dataclasses.replace(
                report,
                outcome="unfixed",
                reason=f"closed by {(report.fixed_by or '')[:8]}, but its tests fail in the "
                "final verification",
                fixed_by=None,
                suggestion=_suggestion(report.task, report.attempts),
            )
        if report.outcome not in ("unfixed", "skipped") or failing:
            return report
        return dataclasses.replace(
            report,
            outcome="fixed",
            fixed_by=git.head_sha(self.top),
            reason=f"its tests pass with the run's other fixes ({report.outcome} before: "
            f"{report.reason})",
            suggestion="",
        )

    # ------------------------------------------------------------ COMMIT

    def squash(self, reports: Sequence[TaskReport]) -> list[TaskReport]:
        """One commit for every fix on the run's branch; the reports pointing at it."""
        commits = [sha for sha, _ in self.state.commits]
        if len(commits) <= 1:
            return list(reports)
        summary = "\n".join(
            f"- {git.subject(self.top, r.commit)} ({_tests(len(r.task.failures))})"
            for r in reports
            if r.outcome == "fixed" and r.commit
        )
        trailers = "\n".join(
            fingerprint_trailer(r.task.fingerprint)
            for r in reports
            if r.outcome == "fixed" and r.commit
        )
        sha = git.squash(
            self.top,
            self.base_sha,
            f"agentloop: {len(commits)} fixes\n\n{summary}\n\n{trailers}\n",
        )
        self.state.commits[:] = [(sha, "squashed")]
        # The fixes' own commits are gone: every fix now lives in `sha`.
        return [
            dataclasses.replace(
                r, commit=sha if r.commit else None, fixed_by=sha if r.fixed_by else None
            )
            for r in reports
        ]

    # ------------------------------------------------------------ checks

    def _findings(self, root: Path, env: Mapping[str, str]) -> dict[str, Counter[str]]:
        found: dict[str, Counter[str]] = {}
        for command in self.settings.checks:
            done = proc.run(command, cwd=root, timeout=self.settings.check_timeout, env=env)
            found[command] = Counter(
                _finding(line, str(root)) for line in (done.stdout + done.stderr).splitlines()
            )
            found[command].pop("", None)
        return found

    def baseline_checks(self) -> None:
        """Record the checks' findings before any fix (call once, on the untouched tree)."""
        if self.settings.checks:
            self.progress("checks: recording the baseline")
            self._check_baseline = self._findings(self.root, self.env)

    def _new_findings(self, slot: _Slot) -> str:
        """'' when no check reports more than in the baseline; else what is new."""
        if not self.settings.checks:
            return ""
        if self._check_baseline is None:
            self.baseline_checks()
            return ""
        messages = []
        for command, now in self._findings(slot.root, slot.env).items():
            added = now - self._check_baseline.get(command, Counter())
            if added:
                sample = "; ".join(list(added)[:3])
                messages.append(f"`{command}` reports {sum(added.values())} new: {sample}")
        return " / ".join(messages)

    # ------------------------------------------------------------ records

    def rails(self) -> list[str]:
        s = self.settings
        rules = [
            "Never create, edit, move or delete files matching: " + ", ".join(s.forbidden.patterns),
            "Never push, and do not commit: agentloop commits verified fixes itself.",
            f"At most {s.max_attempts} attempts per task; this run stops after "
            f"{s.max_runtime_s / 60:g} minutes or ${s.max_budget_usd:g}.",
            "A change that breaks another test is reverted.",
        ]
        if not s.allow_test_edits:
            rules.append(
                "Do not delete, skip or loosen tests or assertions, and do not raise timeouts."
            )
        return rules

    def _unfixed(self, task: Task, attempts: Sequence[AttemptReport], reason: str) -> TaskReport:
        return TaskReport(
            task, "unfixed", tuple(attempts), reason=reason, suggestion=_suggestion(task, attempts)
        )

    def _record_attempt(self, task: Task, attempt: AttemptReport) -> None:
        if self.history is None:
            return
        self.history.record_attempt(
            AttemptRecord(
                run_id=self.run_id,
                task_id=task.id,
                category=task.category,
                attempt_no=attempt.number,
                outcome=attempt.outcome,
                cost_usd=attempt.cost_usd,
                duration_s=attempt.duration_s,
                turns=attempt.turns,
                started_at=utc_now(),
                note=attempt.reason[:500],
            )
        )

    def record_task(self, report: TaskReport, *, verified: bool = False) -> None:
        """Write how a task ended; VERIFY writes it again (verified, or regressed)."""
        if self.history is None:
            return
        self.history.finish_task(
            TaskRecord(
                run_id=self.run_id,
                task_id=report.task.id,
                category=report.task.category,
                outcome=report.outcome,
                tests=len(report.task.failures),
                verified=verified,
                reason=report.reason,
                fingerprint=report.task.fingerprint,
            )
        )

    def report(
        self,
        reports: Sequence[TaskReport],
        *,
        stopped_by: str | None,
        branch: str | None,
        regressions: Sequence[str] = (),
    ) -> RunReport:
        return RunReport(
            run_id=self.run_id,
            branch=branch,
            base_sha=self.base_sha,
            commits=tuple(sha for sha, _ in self.state.commits),
            tasks=tuple(reports),
            duration_s=self.clock() - self.start,
            cost_usd=self.budget.spent_usd,
            stopped_by=stopped_by,
            regressions=tuple(regressions),
            jobs=max(1, self.settings.jobs),
            baseline_failing=_ids(self.failing),
            # Without a fix there was no final run: the baseline's reds stand.
            final_failing=_ids(self.failing if self._final is None else self._final),
        )


def _ids(tests: Collection[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(sorted(f"{suite}::{test}" for suite, test in tests))


def _after_verify(report: TaskReport, regressed: set[str], final: dict[str, str]) -> TaskReport:
    """Regressed tasks lose their commit; the others point at their commit as it is now
    (dropping a commit rewrites the ones after it)."""
    if report.task.id in regressed:
        return dataclasses.replace(
            report,
            outcome="regressed",
            commit=None,
            reason="its fix broke other tests and was removed",
            suggestion="run the full suite with the fix applied and fix both together by hand",
        )
    if report.commit and report.task.id in final:
        return dataclasses.replace(report, commit=final[report.task.id])
    return report


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


def _read(top: Path, path: str) -> str | None:
    try:
        return (top / path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _crash_file(task: Task) -> set[str]:
    return {task.crash_location.file} if task.crash_location is not None else set()


# Files that hold tests, narrower than `classify.is_test_path` (which also means the helpers
# and data under tests/): tier 2 hands these to the runner as file arguments.
_TEST_FILE = re.compile(r"(^|/)(test_[^/]*\.py|[^/]*_test\.py|[^/]*\.(test|spec)\.[cm]?[jt]sx?)$")


def _is_test_file(path: str) -> bool:
    return bool(_TEST_FILE.search(path))


def _finding(line: str, root: str) -> str:
    """A check's output line without what shifts between runs: the worktree's path and
    line, column and count numbers."""
    return re.sub(r"\d+", "N", line.replace(root, "")).strip()


def _agent_reason(result: SessionResult) -> str:
    if result.ok:
        return ""
    # What was refused says more than the model's last words ("Fixed."), and reaches the
    # next attempt's prompt. The guard's message names the path and the rail; Claude Code's
    # own for a permission rule ("File is in a directory that is denied…") names neither,
    # so the call's target goes in front of it.
    denied = [_denial(d) for d in result.permission_denials[:3]]
    detail = "; ".join([*denied, *result.errors]) or result.text[:200]
    return f"the agent session ended with {result.outcome}" + (f": {detail}" if detail else "")


def _denial(denial: PermissionDenial) -> str:
    message = denial.message or "refused"
    target = next(
        (
            str(denial.tool_input[key])
            for key in ("file_path", "notebook_path", "path", "command")
            if denial.tool_input.get(key)
        ),
        "",
    )
    if _PERMISSION_RULE in message:
        message = (
            "refused by agentloop's permission rules: a forbidden or protected path, the git "
            "directory, or outside the worktree"
        )
    if not target or target in message:
        return message
    return f"{denial.tool_name} {target[:200]}: {message}"


# How Claude Code words a refusal by a permission deny rule (2.1.332).
_PERMISSION_RULE = "denied by your permission settings"


_ERROR_LINE = re.compile(r"^(?:E\s+)?\w*(?:Error|Exception|assert|Assertion)\b.*$", re.M)


def _first_error(output: str) -> str:
    match = _ERROR_LINE.search(output)
    if match:
        return match.group(0).strip()[:300]
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _suggestion(task: Task, attempts: Sequence[AttemptReport]) -> str:
    outcomes = {a.outcome for a in attempts}
    if "rejected_forbidden_path" in outcomes or any("forbidden path" in a.reason for a in attempts):
        return "the fix needs a forbidden path: fix it by hand, or review the rails"
    if "rejected_integrity" in outcomes:
        return "the agent wanted to change the tests: check whether the test is wrong"
    if task.category == "env_mismatch":
        return "set up the missing environment (variables, services) and re-run"
    if task.category == "missing_dependency":
        return "install the missing dependency and re-run"
    return "run the selector and debug it by hand; the attempts' notes are in the report"
