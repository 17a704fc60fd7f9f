"""FIX: a `Reproduction` (REPRODUCE's failing test) becomes one commit on a local branch
`fix/sentry-<issue id>` holding that test and the code change that makes it pass, or a
reason why not. The autofix loop does the fixing (loop.runner.autofix); this module only
gives it its target and its rails, and makes the branch.

1. Sensitive code first, before any workspace or session: a crash frame in auth,
   payments or data-deletion code (SENSITIVE, plus the configured globs) is skipped
   "needs --allow-sensitive" unless `allow_sensitive`. Without it those globs are
   forbidden to the fix (a change to them rejects the attempt); with it they are allowed
   for this fix alone. PROTECTED stays forbidden whatever (ForbiddenPaths.with_protected).
2. The reproduction test is committed on the base commit as an object only (git.
   tree_with_file + commit_tree: the user's checkout, index and refs are not touched),
   and a Workspace (an agentloop/heal-fix-<run> worktree) is opened on that commit: the
   loop's base holds the test, so the loop's regression check counts it as the one test
   expected to turn green. The test's own path is forbidden to the fix: it may be neither
   edited nor deleted (the loop's integrity rail would catch a weakened test too, but
   this one is the target itself).
3. The test runs once there (suites.run_suite): its failure becomes the loop's Task
   (detection.to_failure, failures.group), as DETECT's failures do. A test that does not
   fail on that commit is no target. Then the full suites once: the baseline.
4. `autofix` with jobs=1, the runtime cut to the deadline, the budget capped, sessions in
   the sandbox with the guard and without secrets; its VERIFY runs the full suites again
   and drops a fix that makes a test fail that passed in the baseline.
5. A fixed task: the test commit and the fix become one commit on the base (`fix:
   [Sentry-<shortId>] <title>`, what changed and why, `Sentry:` and `Fixes` trailers),
   and the new branch `fix/sentry-<issue id>` points at it. Nothing is pushed (the PR
   step does that); the workspace's worktree and its own branch are removed.

Text from Sentry (the title, the short id, the permalink) reaches the commit message as
one line each: scrubbed, stripped of control characters and line breaks, length-capped.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import tempfile
import textwrap
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from agentloop import detection, git, testrun
from agentloop import suites as suites_mod
from agentloop.agents import sandbox, secrets
from agentloop.agents.base import Agent, Guard, SessionLimits, SessionResult
from agentloop.agents.sandbox import Policy
from agentloop.config import Config
from agentloop.errors import ReportError, SuiteError, WorkspaceError
from agentloop.failures import group as grouping
from agentloop.failures.model import Task
from agentloop.heal.reproduce import Reproduction, Run, literal_glob
from agentloop.heal.scrub import scrub_text
from agentloop.heal.triage import Group, Skipped
from agentloop.loop.message import agent_note
from agentloop.loop.model import RunReport, TaskReport
from agentloop.loop.runner import LoopSettings, autofix
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import DEFAULT_SECRETS, ForbiddenPaths
from agentloop.suites import Suite
from agentloop.workspace import Workspace

# Auth, payments and data deletion: the default forbidden globs that guard them.
SENSITIVE: tuple[str, ...] = ("**/auth/**", "**/payments/**", "**/billing/**", "**/*delet*")
BRANCH = "fix/sentry-"
WORK_BRANCH_PREFIX = f"{git.BRANCH_PREFIX}heal-fix-"
SUBJECT_MAX = 72
_SUMMARY_MAX = 600
_PERMALINK_MAX = 300
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})

SkipKind = Literal[
    "sensitive",  # the crash is in sensitive code, and allow_sensitive is off
    "branch_exists",  # fix/sentry-<id> is there already: never moved
    "no_runner",
    "not_failing",  # the reproduction test does not fail on base + test
    "unfixed",  # every attempt was rejected (rails, its tests, other tests)
    "regressed",  # the fix broke tests that passed on the base
    "out_of_time",
    "out_of_budget",
]


@dataclass(frozen=True)
class FixSettings:
    # Attempts, budget cap, session limits, forbidden paths, checks: as `agentloop run`'s.
    # The runtime is cut to the deadline; jobs is always 1 (one target).
    loop: LoopSettings = field(default_factory=LoopSettings)
    secrets: tuple[str, ...] = DEFAULT_SECRETS
    network: tuple[str, ...] = ()
    sandboxed: bool = True
    # Globs of sensitive code beyond SENSITIVE (config: the project's own).
    sensitive: tuple[str, ...] = ()
    allow_sensitive: bool = False
    # One run of the full suites at most (the deadline cuts it shorter).
    suite_timeout: float = 900.0

    @property
    def sensitive_globs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*SENSITIVE, *self.sensitive)))

    def forbidden_for(self, test_file: str) -> ForbiddenPaths:
        """The fix's forbidden paths: the configured ones, the sensitive globs added (or,
        with allow_sensitive, taken away), the reproduction test, then PROTECTED last."""
        sensitive = self.sensitive_globs
        configured = [p for p in self.loop.forbidden.patterns if p not in sensitive]
        extra = () if self.allow_sensitive else sensitive
        return ForbiddenPaths.with_protected(
            (*configured, *extra, literal_glob(test_file)), root=self.loop.forbidden.root
        )


@dataclass(frozen=True)
class PassAfter:
    """The evidence after the fix: the test's result and the full suites' delta."""

    test_id: str
    test_passed: bool
    # "suite::test id", red on base + test (the reproduction test among them), and red
    # at the fix.
    baseline_failing: tuple[str, ...]
    final_failing: tuple[str, ...]
    # Tests the full suites ran on base + test (the baseline), as their reports count them.
    tests: int = 0

    @property
    def newly_failing(self) -> tuple[str, ...]:
        return tuple(t for t in self.final_failing if t not in set(self.baseline_failing))

    @property
    def now_passing(self) -> tuple[str, ...]:
        return tuple(t for t in self.baseline_failing if t not in set(self.final_failing))


@dataclass(frozen=True)
class Fixed:
    group: Group
    reproduction: Reproduction
    branch: str  # fix/sentry-<issue id>, local
    commit: str
    base_sha: str
    files_changed: tuple[str, ...]  # top-relative, the test among them
    test_file: str
    test_id: str
    fail_before: tuple[Run, ...]  # the reproduction's runs on the base commit
    pass_after: PassAfter
    # The agent's one paragraph on the cause and the fix ("" when it said nothing).
    summary: str
    message: str  # the commit's message
    attempts: int
    cost_usd: float
    duration_s: float


@dataclass(frozen=True)
class NotFixed:
    group: Group
    reproduction: Reproduction
    kind: SkipKind
    reason: str
    attempts: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0

    def skipped(self) -> Skipped:
        """As triage's record of a skipped group, for the incident report."""
        return Skipped(self.group.incidents, f"not fixed: {self.reason}", self.group)


Outcome = Fixed | NotFixed


class _Skip(Protocol):
    def __call__(
        self, kind: SkipKind, reason: str, report: RunReport | None = None
    ) -> NotFixed: ...


# -- names and messages ---------------------------------------------------------------------


def one_line(text: str, limit: int, *, scrub: bool = True) -> str:
    """Untrusted text as one printable line, scrubbed, cut at a word to `limit`."""
    printable = "".join(
        " " if unicodedata.category(c) in _UNPRINTABLE else c
        for c in (scrub_text(text) if scrub else text)
    )
    flat = " ".join(printable.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def _token(text: str) -> str:
    # Sentry's ids in a branch name or a trailer: letters, digits and '-' only.
    return re.sub(r"[^A-Za-z0-9-]", "", text)[:40]


def branch_name(group: Group) -> str:
    """`fix/sentry-<id>`, the id of the group's most frequent issue."""
    return BRANCH + (_token(group.incidents[0].issue.id) or "unknown")


def commit_message(
    group: Group, reproduction: Reproduction, *, summary: str, files: Sequence[str]
) -> str:
    """`fix: [Sentry-<shortId>] <title>`, what changed and why, the evidence, and the
    `Sentry:`/`Fixes` trailers. Every piece from Sentry is one scrubbed, capped line."""
    issue = group.incidents[0].issue
    short = _token(issue.short_id) or "unknown"
    head = f"fix: [Sentry-{short}] "
    title = one_line(issue.title, max(SUBJECT_MAX - len(head), 10)) or "a production error"
    sig = group.signature
    why = summary or (
        f"The test reproduced {one_line(sig.exception, 80)} in "
        f"{one_line(sig.function, 80)} ({reproduction.crash_file}) as production raised it."
    )
    runs = len(reproduction.runs)
    body = [
        textwrap.fill(why, 72),
        # A path is the agent's choice too, and git allows a line break in one.
        "Changed: "
        + ", ".join(one_line(f, 200, scrub=False) for f in files[:20])
        + (f" and {len(files) - 20} more" if len(files) > 20 else ""),
        textwrap.fill(
            f"Test: {reproduction.test_id} failed on {reproduction.base_sha[:12]} "
            f"{runs} times out of {runs} as in production, and passes with this change; "
            "no test that passed on the base fails.",
            72,
        ),
    ]
    trailers = []
    # Sentry's own address for the issue: not scrubbed (a self-hosted Sentry's IP is no
    # one's personal data), but one line, and a URL or nothing.
    link = one_line(issue.permalink, _PERMALINK_MAX, scrub=False)
    if re.fullmatch(r"https?://[^\s]+", link):
        trailers.append(f"Sentry: {link}")
    for other in group.incidents:
        trailers.append(f"Fixes {_token(other.issue.short_id) or 'unknown'}")
    return "\n\n".join([head + title, *body, "\n".join(trailers)]) + "\n"


# -- the step ---------------------------------------------------------------------------------


class _Recording:
    """The agent, with each session's result kept: the accepted attempt's final message is
    the fix's explanation (SessionResult.text)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.results: list[SessionResult] = []

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
        result = self.agent.run(prompt, cwd=cwd, limits=limits, env=env, policy=policy,
                                guard=guard)  # fmt: skip
        self.results.append(result)
        return result

    def cancel(self) -> None:
        self.agent.cancel()


def sensitive_match(path: str, settings: FixSettings) -> str | None:
    """The sensitive glob `path` lies under, or None."""
    return ForbiddenPaths(settings.sensitive_globs).match(path)


def fix(
    repo: Path,
    reproduction: Reproduction,
    *,
    agent: Agent,
    config: Config,
    deadline: float,
    settings: FixSettings | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] = lambda _message: None,
) -> Outcome:
    """FIX for one reproduction, in a workspace of agentloop's (never the user's
    checkout). `deadline` is on `clock` (REPRODUCE's, shared): no session starts past it."""
    settings = settings or FixSettings()
    environ = dict(os.environ if environ is None else environ)
    started = clock()
    group = reproduction.group

    def skip(kind: SkipKind, reason: str, report: RunReport | None = None) -> NotFixed:
        tries = sum(len(t.attempts) for t in report.tasks) if report is not None else 0
        cost = report.cost_usd if report is not None else 0.0
        return NotFixed(group, reproduction, kind, reason, tries, cost, clock() - started)

    pattern = sensitive_match(reproduction.crash_file, settings)
    if pattern is not None and not settings.allow_sensitive:
        return skip(
            "sensitive",
            f"the crash is in {reproduction.crash_file}, sensitive code ({pattern}): "
            "needs --allow-sensitive",
        )
    top = git.find_toplevel(repo.resolve())
    if top is None:
        raise WorkspaceError(
            f"{repo} is not inside a git repository",
            hint="run agentloop heal in the checkout of the project Sentry reports on",
        )
    branch = branch_name(group)
    if git.branch_exists(top, branch):
        return skip("branch_exists", f"the branch {branch} exists already; it is left as it is")
    if deadline - clock() < 1:
        return skip("out_of_time", "out of time before the fix")
    # The test on the base, as a commit object only: the workspace starts from it.
    tree = git.tree_with_file(
        top, git.tree_of(top, reproduction.base_sha), reproduction.test_file,
        reproduction.test_source,
    )  # fmt: skip
    with_test = git.commit_tree(
        top, tree, reproduction.base_sha, f"test: reproduce {group.short_ids[0]}"
    )
    with Workspace.open(
        top / _project_of(repo, top),
        base=with_test,
        setup=config.workspace.setup,
        setup_timeout=config.workspace.setup_timeout,
        secrets=settings.secrets,
        branch_prefix=WORK_BRANCH_PREFIX,
    ) as ws:
        outcome = _Fixer(ws, reproduction, agent=agent, config=config, settings=settings,
                         environ=environ, clock=clock, progress=progress,
                         started=started).run(deadline, skip)  # fmt: skip
        if isinstance(outcome, Fixed):
            git.create_branch(top, branch, outcome.commit)
        # The fix lives on fix/sentry-<id> now: the workspace's own branch goes with it.
        git.reset_hard(ws.path, ws.base_sha)
    return outcome


def _project_of(repo: Path, top: Path) -> str:
    return repo.resolve().relative_to(top).as_posix()


class _Fixer:
    def __init__(
        self,
        ws: Workspace,
        reproduction: Reproduction,
        *,
        agent: Agent,
        config: Config,
        settings: FixSettings,
        environ: Mapping[str, str],
        clock: Callable[[], float],
        progress: Callable[[str], None],
        started: float,
    ) -> None:
        self.ws, self.reproduction = ws, reproduction
        self.agent = _Recording(agent)
        self.config, self.settings, self.environ = config, settings, environ
        self.clock, self.progress, self.started = clock, progress, started
        self.found = suites_mod.discover(ws.root, config)
        # The project's commands run without the secrets of the environment: the test
        # is an agent's code, written from text anyone can send to Sentry.
        self.base_env = secrets.agent_env(environ, git.clean_env())
        self.env = ws.env(self.base_env)

    def run(self, deadline: float, skip: _Skip) -> Outcome:
        r = self.reproduction
        suite = next((s for s in self.found if s.runner == "pytest" and s.rerun), None)
        if suite is None:
            return skip("no_runner", "no pytest suite agentloop can drive here")
        task = self._task(suite, deadline)
        if isinstance(task, str):
            return skip("not_failing", task)
        left = deadline - self.clock()
        if left < 1:
            return skip("out_of_time", "out of time before the baseline")
        self.progress("fix: running the full suites for the baseline")
        baseline = testrun.failing_tests(
            self.ws.root, self.found, env=self.env,
            timeout=min(self.settings.suite_timeout, left),
        )  # fmt: skip
        left = deadline - self.clock()
        if left < 1:
            return skip("out_of_time", "out of time before the first session")
        s = self.settings
        forbidden = s.forbidden_for(r.test_file)
        repo = self.ws.repo
        loop = replace(
            s.loop,
            forbidden=forbidden,
            jobs=1,
            max_runtime_s=min(s.loop.max_runtime_s, left),
            rerun_timeout=min(s.loop.rerun_timeout, left),
        )
        report = autofix(
            self.ws,
            [task],
            agent=self.agent,
            settings=loop,
            found=self.found,
            failing=baseline.failing,
            base_env=self.base_env,
            agent_env=lambda env: secrets.agent_env(self.environ, env),
            policy=lambda top: sandbox.build_policy(
                top=top,
                repo=repo,
                forbidden=forbidden,
                secrets=s.secrets,
                network=s.network,
                sandboxed=s.sandboxed,
            ),
            guard=lambda top: make_guard(
                dataclasses.replace(forbidden, root=str(top)), secrets=s.secrets
            ),
            progress=self.progress,
        )
        return self._outcome(task, report, skip, tests=baseline.tests)

    def _task(self, suite: Suite, deadline: float) -> Task | str:
        """The reproduction test's failure on base + test as the loop's task, or why not."""
        r = self.reproduction
        cwd = suite.cwd
        target = os.path.relpath(self.ws.path / r.test_file, cwd)
        run = replace(
            suite,
            run=f"{suite.rerun} {shlex.quote(target)}",
            timeout=max(1.0, min(suite.timeout or 120.0, deadline - self.clock())),
        )
        with tempfile.TemporaryDirectory(prefix="agentloop-fix-") as workdir:
            # In the workspace, as the loop's own runs there: its bytecode is not the
            # user's, and a prefix elsewhere would make Python compile pytest afresh.
            try:
                _, report = suites_mod.run_suite(run, Path(workdir), self.ws.root, env=self.env)
            except (SuiteError, ReportError) as exc:
                return f"the reproduction test did not run: {scrub_text(exc.message)}"
        if not report.failures:
            return "the reproduction test passes on the base commit with it"
        failures = [
            detection.to_failure(
                p, suite=suite.name, root=self.ws.root, cwd=cwd, prefix=suite.rerun
            )
            for p in report.failures
        ]
        tasks = grouping.group(failures)
        if len(tasks) != 1:
            return f"the reproduction test failed {len(tasks)} ways"
        return tasks[0]

    def _outcome(self, task: Task, report: RunReport, skip: _Skip, *, tests: int) -> Outcome:
        r = self.reproduction
        done: TaskReport = report.tasks[0]
        if done.outcome != "fixed" or done.commit is None:
            kind, reason = _why_not(done, report)
            return skip(kind, reason, report)
        final = set(report.final_failing)
        ids = {f"{f.suite}::{f.test_id}" for f in task.failures}
        pass_after = PassAfter(
            test_id=r.test_id,
            test_passed=not (ids & final),
            baseline_failing=report.baseline_failing,
            final_failing=report.final_failing,
            tests=tests,
        )
        if not pass_after.test_passed or pass_after.newly_failing:
            # VERIFY drops such a fix; a report saying otherwise is not to be trusted.
            return skip("regressed", "the full suites do not agree with the fix", report)
        top = self.ws.path
        base = r.base_sha
        head = git.head_sha(top)
        files = git.changed_between(top, base, head)
        accepted = next((res for res in reversed(self.agent.results) if res.ok), None)
        summary = agent_note(scrub_text(accepted.text)) if accepted is not None else ""
        summary = one_line(summary, _SUMMARY_MAX)
        message = commit_message(r.group, r, summary=summary, files=files)
        commit = git.commit_tree(top, git.tree_of(top, head), base, message)
        return Fixed(
            group=r.group,
            reproduction=r,
            branch=branch_name(r.group),
            commit=commit,
            base_sha=base,
            files_changed=tuple(files),
            test_file=r.test_file,
            test_id=r.test_id,
            fail_before=r.runs,
            pass_after=pass_after,
            summary=summary,
            message=message,
            attempts=len(done.attempts),
            cost_usd=report.cost_usd,
            duration_s=self.clock() - self.started,
        )


def _why_not(done: TaskReport, report: RunReport) -> tuple[SkipKind, str]:
    last = done.attempts[-1].reason if done.attempts else ""
    detail = f" (last attempt: {one_line(last, 300)})" if last else ""
    if done.outcome == "regressed":
        broken = ", ".join(report.regressions[:5])
        return "regressed", f"the fix broke tests that passed on the base: {broken}"
    if report.stopped_by == "max_runtime":
        return "out_of_time", f"out of time after {len(done.attempts)} attempt(s){detail}"
    if report.stopped_by == "max_budget":
        return "out_of_budget", f"the budget ran out after {len(done.attempts)} attempt(s){detail}"
    if any(a.outcome == "regressed" for a in done.attempts):
        return "regressed", f"{done.reason or 'no attempt was accepted'}{detail}"
    return "unfixed", f"{done.reason or 'no attempt was accepted'}{detail}"


__all__ = [
    "SENSITIVE",
    "FixSettings",
    "Fixed",
    "NotFixed",
    "Outcome",
    "PassAfter",
    "branch_name",
    "commit_message",
    "fix",
]
