"""The autofix loop: DIAGNOSE → FIX → VERIFY → COMMIT for each task, under rails that
agentloop enforces itself after every attempt (the agent's guard hook is only a first
line). Limits are checked in one place (`_check_caps`); an attempt ends in exactly one
`AttemptOutcome`; every attempt is written to the ledger as it ends.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentloop import detection, git, proc
from agentloop import suites as suites_mod
from agentloop.agents.base import Agent, PermissionDenial, SessionLimits, SessionResult
from agentloop.agents.sandbox import Policy
from agentloop.failures import imports
from agentloop.failures.group import normalize_message
from agentloop.failures.model import Failure, Task
from agentloop.history import AttemptOutcome, AttemptRecord, History, TaskRecord, utc_now
from agentloop.loop.attempt import Attempt, Rejected
from agentloop.loop.judge import Judge
from agentloop.loop.model import AttemptReport, RunReport, TaskReport
from agentloop.loop.prompt import EarlierAttempt, build_prompt
from agentloop.rails.change import check_change
from agentloop.rails.paths import ForbiddenPaths

if TYPE_CHECKING:
    from agentloop.workspace import Workspace

Progress = Callable[[str], None]

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


class CapReached(Exception):
    """The run's runtime or budget is used up: which, and how the task in hand ended."""

    def __init__(self, cap: str, report: TaskReport | None = None) -> None:
        super().__init__(cap)
        self.cap = cap
        self.report = report


@dataclass
class _State:
    spent_usd: float = 0.0
    commits: list[tuple[str, str]] = field(default_factory=list)  # (sha, task id)


class AutofixLoop:
    def __init__(
        self,
        *,
        top: Path,
        root: Path,
        base_sha: str,
        run_id: str,
        agent: Agent,
        settings: LoopSettings,
        env: Mapping[str, str],
        history: History | None,
        rescue_dir: Path,
        open_worktree: Callable[[], Path],
        env_for: Callable[[Path], Mapping[str, str]],
        agent_env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
        progress: Progress = lambda _message: None,
        policy: Callable[[], Policy] | None = None,
    ) -> None:
        self.top, self.root, self.base_sha, self.run_id = top, root, base_sha, run_id
        self.agent, self.settings, self.env = agent, settings, dict(env)
        # The agent's sessions get the environment without secrets; the test runs
        # agentloop makes itself keep everything the suites may need.
        self.agent_env = dict(env if agent_env is None else agent_env)
        self.history, self.clock, self.progress = history, clock, progress
        # What each session may write, read and reach; made afresh before each session,
        # since the paths it names are the ones that exist then.
        self.policy = policy
        # Where what an attempt's undo replaced is saved; how the judge gets its worktree
        # and the environment to run tests in a checkout of its own (which must not reach
        # into the run's worktree: see `in_workspace`).
        self.rescue_dir, self.open_worktree, self.env_for = rescue_dir, open_worktree, env_for
        self._judge_instance: Judge | None = None
        # The runtime cap counts from the start of the run, the baseline included.
        self.start = clock() if started is None else started
        self.state = _State()
        self._check_baseline: dict[str, Counter[str]] | None = None
        # The project's path inside the checkout: git speaks top-relative paths, the
        # failure records project-relative ones.
        rel = root.relative_to(top).as_posix()
        self._prefix = "" if rel == "." else rel + "/"

    @classmethod
    def in_workspace(
        cls,
        ws: Workspace,
        *,
        agent: Agent,
        settings: LoopSettings,
        history: History | None,
        base_env: Mapping[str, str] | None = None,
        agent_env: Mapping[str, str] | None = None,
        started: float | None = None,
        progress: Progress = lambda _message: None,
        policy: Callable[[], Policy] | None = None,
    ) -> AutofixLoop:
        """The loop wired to a run's workspace: its worktree and base, its rescue folder,
        a judge's worktree beside it, and each checkout's environment made from
        `base_env` (default: this process's, without git's variables), so the judge's
        imports never reach the run's worktree."""
        return cls(
            top=ws.path,
            root=ws.root,
            base_sha=ws.base_sha,
            run_id=ws.run_id,
            agent=agent,
            settings=settings,
            env=ws.env(base_env),
            history=history,
            rescue_dir=ws.places.rescued,
            open_worktree=lambda: ws.detached_worktree("judge"),
            env_for=lambda root: ws.env(base_env, root=root),
            agent_env=agent_env,
            started=started,
            progress=progress,
            policy=policy,
        )

    # ------------------------------------------------------------ the loop

    def fix(self, tasks: Sequence[Task]) -> tuple[list[TaskReport], str | None]:
        """Try every task in order; return their reports and the cap that stopped the run."""
        reports: dict[str, TaskReport] = {}
        graph = imports.import_graph(self.root)
        stopped_by: str | None = None
        for task in tasks:
            if task.id in reports:
                continue  # closed by an earlier fix
            if stopped_by is not None:
                reports[task.id] = TaskReport(task, "skipped", reason=f"{stopped_by} reached")
                continue
            try:
                report = self._fix_task(task)
            except CapReached as cap:
                stopped_by = cap.cap
                report = cap.report or TaskReport(task, "skipped", reason=f"{cap.cap} reached")
            reports[task.id] = report
            self.record_task(report)
            if report.outcome == "fixed" and report.commit:
                for other in self._closed_by(report, tasks, reports, graph):
                    reports[other.task.id] = other
                    self.record_task(other)
        return [reports[t.id] for t in tasks], stopped_by

    def _check_caps(self) -> float:
        """Seconds left in the run; raises CapReached when a cap is used up."""
        left = self.settings.max_runtime_s - (self.clock() - self.start)
        if left <= 0:
            raise CapReached("max_runtime")
        if self.state.spent_usd >= self.settings.max_budget_usd:
            raise CapReached("max_budget")
        return left

    def _fix_task(self, task: Task) -> TaskReport:
        attempts: list[AttemptReport] = []
        fingerprints: list[str] = []
        for number in range(1, self.settings.max_attempts + 1):
            try:
                left = self._check_caps()
            except CapReached as cap:
                # A task the cap stops before its first attempt was skipped, not tried.
                unfixed = self._unfixed(task, attempts, f"{cap.cap} reached") if attempts else None
                raise CapReached(cap.cap, unfixed) from None
            self.progress(f"task {task.id} ({task.category}), attempt {number}")
            attempt, commit, fingerprint = self._attempt(task, number, attempts, left)
            repeated = fingerprint is not None and fingerprint in fingerprints
            if repeated:
                attempt = dataclasses.replace(attempt, outcome="no_progress")
            attempts.append(attempt)
            self._record_attempt(task, attempt)
            if commit is not None:
                return TaskReport(task, "fixed", tuple(attempts), commit=commit)
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
            if fingerprint is not None:
                fingerprints.append(fingerprint)
        return self._unfixed(task, attempts, f"{self.settings.max_attempts} attempts failed")

    def _attempt(
        self, task: Task, number: int, earlier: Sequence[AttemptReport], seconds_left: float
    ) -> tuple[AttemptReport, str | None, str | None]:
        """One session and the checks after it: (its report, the fix commit, the failure
        fingerprint when the tests still failed). Whatever happens, the worktree ends at
        the fix commit or exactly as the attempt found it."""
        budget = min(
            self.settings.budget_per_attempt_usd,
            self.settings.max_budget_usd - self.state.spent_usd,
        )
        limits = SessionLimits(
            max_turns=self.settings.limits.max_turns,
            max_budget_usd=max(budget, 0.01),
            timeout_s=max(seconds_left, 1.0),
            allowed_tools=self.settings.limits.allowed_tools,
        )
        prompt = build_prompt(
            task,
            rails=self.rails(),
            read=self._read,
            earlier=[EarlierAttempt(a.number, a.changed, a.reason) for a in earlier if a.reason],
        )
        started = self.clock()
        policy = self.policy() if self.policy is not None else None
        sandboxed = policy is not None and policy.sandboxed
        rescue = self.rescue_dir / f"{self.run_id}-{task.id}-attempt-{number}"
        with Attempt(self.top, rescue, sandboxed=sandboxed) as attempt:
            result = self.agent.run(
                prompt, cwd=self.root, limits=limits, env=self.agent_env, policy=policy
            )
            self.state.spent_usd += result.cost_usd

            def report(outcome: AttemptOutcome, reason: str) -> AttemptReport:
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
                )

            try:
                commit = self._accept(task, attempt, result)
            except Rejected as rejected:
                return report(rejected.outcome, rejected.reason), None, rejected.fingerprint
            return report("fixed", ""), commit, None

    def _accept(self, task: Task, attempt: Attempt, result: SessionResult) -> str:
        """The rails after a session, in order; the fix commit, or Rejected."""
        attempt.check_git_state()
        candidate = git.snapshot_tree(self.top, attempt.start)
        attempt.changed = candidate.changed
        tree = git.tree_links(self.top, candidate.tree, candidate.changed)
        rails = check_change(
            candidate.changed,
            forbidden=self.settings.forbidden,
            allow_test_edits=self.settings.allow_test_edits,
            before=lambda path: git.show_file(self.top, attempt.start, path),
            after=lambda path: git.show_file(self.top, candidate.tree, path),
            links=tree.links,
            held=tree.holds,
        )
        if rails.forbidden:
            raise Rejected(
                "rejected_forbidden_path",
                "touched forbidden paths: " + "; ".join(str(v) for v in rails.forbidden),
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
        verdict = self._judge().judge(attempt.start, candidate, task.failures, attempt.keep)
        attempt.tests_changed = verdict.test_changes
        if not verdict.passed:
            first = _first_error(verdict.output)
            against = "the original tests" if verdict.test_changes else "the task's tests"
            raise Rejected(
                "tests_failed",
                f"{against} still failed: {first}",
                normalize_message(first),
            )
        new_findings = self._new_findings()
        if new_findings:
            raise Rejected("rejected_check", "tests pass, but " + new_findings)
        message = _commit_message(task)
        if verdict.test_changes:
            message += _test_change_note(
                git.tree_diff(self.top, attempt.start, candidate.tree, verdict.test_changes),
                needed=verdict.needed_test_changes,
            )
        commit = git.commit_tree(self.top, candidate.tree, attempt.start, message)
        git.advance_branch(self.top, attempt.branch, commit, attempt.start)
        attempt.accept(commit)
        self.state.commits.append((commit, task.id))
        return commit

    def _judge(self) -> Judge:
        if self._judge_instance is None:
            self._judge_instance = Judge(
                top=self.top,
                project=self._prefix.rstrip("/"),
                open_worktree=self.open_worktree,
                env_for=self.env_for,
                timeout=self.settings.rerun_timeout,
            )
        return self._judge_instance

    def _findings(self) -> dict[str, Counter[str]]:
        found: dict[str, Counter[str]] = {}
        for command in self.settings.checks:
            done = proc.run(
                command, cwd=self.root, timeout=self.settings.check_timeout, env=self.env
            )
            found[command] = Counter(
                _finding(line, str(self.root)) for line in (done.stdout + done.stderr).splitlines()
            )
            found[command].pop("", None)
        return found

    def baseline_checks(self) -> None:
        """Record the checks' findings before any fix (call once, on the untouched tree)."""
        if self.settings.checks:
            self.progress("checks: recording the baseline")
            self._check_baseline = self._findings()

    def _new_findings(self) -> str:
        """'' when no check reports more than in the baseline; else what is new."""
        if not self.settings.checks:
            return ""
        if self._check_baseline is None:
            self.baseline_checks()
            return ""
        messages = []
        for command, now in self._findings().items():
            added = now - self._check_baseline.get(command, Counter())
            if added:
                sample = "; ".join(list(added)[:3])
                messages.append(f"`{command}` reports {sum(added.values())} new: {sample}")
        return " / ".join(messages)

    def _run_selectors(self, failures: Sequence[Failure]) -> tuple[bool, str]:
        return suites_mod.run_selectors(
            failures, root=self.root, timeout=self.settings.rerun_timeout, env=self.env
        )

    def _closed_by(
        self,
        fixed: TaskReport,
        tasks: Sequence[Task],
        reports: Mapping[str, TaskReport],
        graph: Mapping[str, set[str]],
    ) -> list[TaskReport]:
        """Remaining tasks whose tests now pass thanks to `fixed`'s commit. Only tasks the
        change can reach through the import graph are re-run: a suite with hanging tests
        must not pay their timeouts after every fix."""
        changed = {
            p[len(self._prefix) :]
            for p in git.changed_paths(self.top, f"{fixed.commit}^")
            if p.startswith(self._prefix)
        }
        reach = _importers_of(changed, graph)
        closed = []
        for task in tasks:
            if task.id in reports or task.id == fixed.task.id:
                continue
            files = {f.file for f in task.failures if f.file}
            if task.crash_location is not None:
                files.add(task.crash_location.file)
            if not files & reach:
                continue
            passed, _ = self._run_selectors(task.failures)
            if passed:
                closed.append(TaskReport(task, "fixed", fixed_by=fixed.commit))
        return closed

    # ------------------------------------------------------------ verify

    def verify(
        self, found: Sequence[suites_mod.Suite], baseline: set[tuple[str, str]]
    ) -> tuple[set[str], list[str]]:
        """Run the full suites; revert the fix behind each regression, newest first.
        Returns (ids of tasks whose fix was reverted, the regressed tests)."""
        regressed_tasks: set[str] = set()
        regressions = self._regressions(found, baseline)
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
            remaining = self._regressions(found, baseline)
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

    def _regressions(
        self, found: Sequence[suites_mod.Suite], baseline: set[tuple[str, str]]
    ) -> set[str]:
        self.progress("verifying: running the full suites")
        result = detection.detect(
            self.root,
            list(found),
            git=True,
            reruns=0,
            rerun_timeout=1,
            progress=self.progress,
            env=self.env,
        )
        now = {(f.suite, f.test_id) for t in result.tasks for f in t.failures}
        return {f"{suite}::{test}" for suite, test in now - baseline}

    # ------------------------------------------------------------ helpers

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

    def _read(self, path: str) -> str | None:
        return self._read_top(self._prefix + path)

    def _read_top(self, path: str) -> str | None:
        try:
            return (self.top / path).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

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
            cost_usd=self.state.spent_usd,
            stopped_by=stopped_by,
            regressions=tuple(regressions),
        )


def _finding(line: str, root: str) -> str:
    """A check's output line without what shifts between runs: the worktree's path and
    line, column and count numbers."""
    return re.sub(r"\d+", "N", line.replace(root, "")).strip()


def _importers_of(changed: set[str], graph: Mapping[str, set[str]]) -> set[str]:
    """Every file that imports one of `changed`, directly or not, and `changed` itself."""
    importers: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            importers.setdefault(target, set()).add(source)
    reach, todo = set(changed), list(changed)
    while todo:
        for source in importers.get(todo.pop(), ()):
            if source not in reach:
                reach.add(source)
                todo.append(source)
    return reach


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


def _test_change_note(diff: str, *, needed: bool) -> str:
    """Said plainly in the commit message: a reviewer must see that tests changed."""
    why = (
        "The task's tests as they were still fail with this change; it passes only with "
        "these test changes, which the integrity check allowed"
        if needed
        else "The original tests pass with the code change alone; the tests were changed too"
    )
    shown = diff if len(diff) <= 4000 else diff[:4000] + "\n[... diff cut at 4000 characters]\n"
    return f"\nTESTS CHANGED. {why}:\n\n{shown}"


def _commit_message(task: Task) -> str:
    where = f" at {task.crash_location}" if task.crash_location else ""
    tests = "\n".join(f"- {f.test_id}" for f in task.failures[:50])
    more = f"\n- ... and {len(task.failures) - 50} more" if len(task.failures) > 50 else ""
    return (
        f"agentloop: fix {task.category}{where}\n\n{task.error_type}: "
        f"{task.message.splitlines()[0] if task.message else ''}\n\nTests now passing:\n"
        f"{tests}{more}\n"
    )


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
