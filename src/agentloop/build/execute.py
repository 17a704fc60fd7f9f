"""EXECUTE: build a validated manifest's streams, each in a worktree of its own.

A stream starts once every stream it depends on is built and merged into the integration
branch (the caller's `merge`, one at a time, in this thread), up to `jobs` at once. Its
worktree is made from the integration branch's tip at that moment, on a branch of its own
(`stream_branch`), with `workspace.setup` run in it, and its commands see
`AGENTLOOP_STREAM` and a port range of their own (`AGENTLOOP_PORT_BASE`), so dev servers
and databases of streams built side by side do not collide.

Each attempt is the loop's (`loop.attempt.Attempt`: start commit, git state, the worktree
put back on every exit). The session may write only what the stream owns: its sandbox
policy and permission rules (`agents.sandbox.build_policy(owned=...)`) and its guard
(`build.ownership.guard`) say so, and the diff after the session is checked against the
owned globs, the rails' forbidden paths and the tests' integrity; then the stream's own
tests run in its worktree. A rejected attempt's reason goes into the next one's prompt, up
to `max_attempts`; an accepted one is committed on the stream's branch.

^C stops every stream: the sessions in flight are cancelled, each attempt puts its
worktree back, every stream's worktree is removed (uncommitted work saved to `rescued/`
first), and `Interrupted` carries the reports so far. The runtime and budget caps stop
every stream too, at its next attempt; the streams not started are skipped.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentloop import git, proc, testrun
from agentloop.agents import sandbox
from agentloop.agents.base import Agent, SessionLimits, SessionResult
from agentloop.build import ownership as ownership_mod
from agentloop.build.model import Manifest, Stream, StreamOutcome, StreamReport
from agentloop.build.ownership import Ownership
from agentloop.build.prompt import build_prompt
from agentloop.errors import AgentloopError
from agentloop.loop.attempt import Attempt, Rejected
from agentloop.loop.budget import Budget
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import DEFAULT_SECRETS, ForbiddenPaths

if TYPE_CHECKING:
    from agentloop.suites import Suite
    from agentloop.workspace import Workspace

# The integration of a built stream into the integration branch: the caller's. Raises an
# AgentloopError when it cannot (the stream then failed, its dependents are skipped).
Merge = Callable[[StreamReport], None]
Progress = Callable[[str], None]

STREAM_VAR = "AGENTLOOP_STREAM"
PORT_VAR = "AGENTLOOP_PORT_BASE"

# Sessions that did not finish what they were asked: their change is not the stream's
# work (a refused tool call is not among them: the diff check judges what was written).
_UNFINISHED = frozenset({"api_error", "error", "crashed", "timeout", "max_turns", "budget"})


@dataclass(frozen=True)
class StreamSettings:
    max_attempts: int = 3
    max_runtime_s: float = 1200
    max_budget_usd: float = 10.0
    budget_per_attempt_usd: float = 2.0
    limits: SessionLimits = field(default_factory=SessionLimits)
    forbidden: ForbiddenPaths = field(default_factory=ForbiddenPaths)
    secrets: tuple[str, ...] = DEFAULT_SECRETS
    network: tuple[str, ...] = ()
    # False (`--no-sandbox`): only the permission rules and the guard hold the file tools.
    sandboxed: bool = True
    allow_test_edits: bool = False
    test_timeout: float = 300
    # Stream slot n (0, 1, …) gets ports from port_base + port_step * n.
    port_base: int = 20000
    port_step: int = 100


class Interrupted(KeyboardInterrupt):
    """^C stopped the build: every stream's worktree is gone; how each stream ended."""

    def __init__(self, reports: Sequence[StreamReport]) -> None:
        super().__init__()
        self.reports = tuple(reports)


@dataclass(frozen=True)
class _Ended:
    """How one attempt ended: its commit when accepted, else why not."""

    cost_usd: float
    commit: str | None = None
    reason: str = ""
    violations: tuple[str, ...] = ()


class _Outside(Rejected):
    """The change wrote paths the stream does not own."""

    def __init__(self, reason: str, paths: tuple[str, ...]) -> None:
        super().__init__("rejected_forbidden_path", reason)
        self.paths = paths


class _CapReached(Exception):
    def __init__(self, cap: str) -> None:
        super().__init__(cap)
        self.cap = cap


def stream_branch(run_id: str, stream_id: str) -> str:
    """`agentloop/build-<run>.<stream>`. Not `agentloop/build-<run>/<stream>`: git keeps
    a branch and the branches under it as a file and a directory of the same name, so
    the integration branch `agentloop/build-<run>` and `…/<stream>` cannot both exist
    ("cannot lock ref … exists"). The dot is what the loop's jobs use (`….job<n>`)."""
    return f"{git.BRANCH_PREFIX}build-{run_id}.{stream_id}"


def port_base(slot: int, *, base: int, step: int, taken: Callable[[int], bool]) -> int:
    """The first port of the slot's range, `base + step * slot`, or of the first range
    above every slot's whose first port is free (a developer's server may hold one)."""
    first = base + step * slot
    if not taken(first):
        return first
    for n in range(1, 200):
        candidate = first + step * 64 * n
        if candidate < 65536 - step and not taken(candidate):
            return candidate
    return first  # everything tried is busy: the stream's own commands will say so


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def execute(
    ws: Workspace,
    manifest: Manifest,
    *,
    agent: Agent,
    integration_branch: str,
    merge: Merge,
    jobs: int,
    settings: StreamSettings,
    suites: Sequence[Suite] = (),
    base_env: Mapping[str, str] | None = None,
    agent_env: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
    progress: Progress = lambda _message: None,
    taken: Callable[[int], bool] = port_taken,
) -> tuple[StreamReport, ...]:
    """Build every stream of `manifest` (validated: owned globs apart, no cycle) in
    worktrees of `ws`'s run; each built one is handed to `merge` before the streams that
    depend on it start. Their reports, in the manifest's order. `suites`: the configured
    suites, run on the test files a stream owns when it names no tests of its own."""
    build = _Build(
        ws,
        manifest,
        agent=agent,
        integration_branch=integration_branch,
        settings=settings,
        suites=suites,
        base_env=base_env,
        agent_env=agent_env,
        clock=clock,
        started=started,
        progress=progress,
        taken=taken,
    )
    return build.run(merge, jobs=max(1, jobs))


class _Build:
    def __init__(
        self,
        ws: Workspace,
        manifest: Manifest,
        *,
        agent: Agent,
        integration_branch: str,
        settings: StreamSettings,
        suites: Sequence[Suite],
        base_env: Mapping[str, str] | None,
        agent_env: Callable[[Mapping[str, str]], Mapping[str, str]] | None,
        clock: Callable[[], float],
        started: float | None,
        progress: Progress,
        taken: Callable[[int], bool],
    ) -> None:
        self.ws, self.manifest, self.agent = ws, manifest, agent
        self.integration_branch, self.settings = integration_branch, settings
        self.suites, self.base_env, self.agent_env = tuple(suites), base_env, agent_env
        self.clock, self.progress, self.taken = clock, progress, taken
        self.start = clock() if started is None else started
        self.ownership = Ownership.of(manifest)
        self.budget = Budget(
            settings.max_budget_usd, per_session_usd=settings.budget_per_attempt_usd
        )
        self.stop = threading.Event()
        self.capped: str | None = None
        # The project's place inside a checkout (a monorepo's package).
        self.project = ws.root.relative_to(ws.path)
        # Each stream's worktree while it exists, by stream id.
        self.worktrees: dict[str, Path] = {}
        self.began: dict[str, float] = {}
        # Each stream's last attempt that changed something: (base tree, its tree), for
        # the patch kept when the stream is not built.
        self.last_work: dict[str, tuple[str, str]] = {}

    # ------------------------------------------------------------ scheduling

    def run(self, merge: Merge, *, jobs: int) -> tuple[StreamReport, ...]:
        reports: dict[str, StreamReport] = {}
        pending = list(self.manifest.streams)
        merged: set[str] = set()
        running: dict[Future[StreamReport], tuple[int, Stream]] = {}
        free = list(range(jobs))

        def finish(report: StreamReport) -> None:
            reports[report.stream] = report
            self.progress(f"stream {report.stream}: {report.outcome}" + _why(report.reason))

        def skip_orphans() -> None:
            for stream in list(pending):
                lost = [d for d in stream.depends_on if d in reports and d not in merged]
                if lost:
                    pending.remove(stream)
                    finish(self._not_run(stream, "skipped", f"{', '.join(lost)} was not built"))

        def launch(pool: ThreadPoolExecutor) -> None:
            while free and not self.stop.is_set() and self.capped is None:
                ready = next((s for s in pending if set(s.depends_on) <= merged), None)
                if ready is None:
                    return
                pending.remove(ready)
                slot = free.pop(0)
                running[pool.submit(self._stream, slot, ready)] = (slot, ready)

        try:
            with ThreadPoolExecutor(
                max_workers=jobs, thread_name_prefix="agentloop-stream"
            ) as pool:
                try:
                    while True:
                        skip_orphans()
                        launch(pool)
                        if not running:
                            break
                        # With a timeout: a wait without one blocks on a lock that a signal
                        # delivered to another thread never wakes, and ^C would wait.
                        done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                        for future in done:
                            slot, stream = running.pop(future)
                            free.append(slot)
                            free.sort()
                            report = self._merged(future.result(), merge)
                            if report.outcome == "built":
                                merged.add(stream.id)
                            self._drop(stream.id)
                            finish(report)
                except BaseException:
                    # ^C, or a stream's unexpected error: no new session starts, the ones in
                    # flight end now, and each attempt puts its worktree back first.
                    self.stop.set()
                    self.agent.cancel()
                    wait(running)
                    raise
        except KeyboardInterrupt:
            for stream in self.manifest.streams:
                if stream.id not in reports:
                    began = stream.id in self.began
                    reports[stream.id] = self._not_run(
                        stream,
                        "interrupted" if began else "skipped",
                        "interrupted (^C)" if began else "the build was interrupted",
                    )
            raise Interrupted([reports[s.id] for s in self.manifest.streams]) from None
        finally:
            for stream_id in list(self.worktrees):
                try:
                    self._drop(stream_id)
                except git.GitError as exc:  # must not hide what stopped the build
                    self.progress(f"stream {stream_id}: its worktree stays: {exc.message}")
        why = f"{self.capped} reached" if self.capped else "its dependencies were never merged"
        for stream in pending:
            finish(self._not_run(stream, "skipped", why))
        return tuple(reports[s.id] for s in self.manifest.streams)

    def _merged(self, report: StreamReport, merge: Merge) -> StreamReport:
        if report.outcome != "built":
            return report
        try:
            merge(report)
        except AgentloopError as exc:
            return dataclasses.replace(
                report, outcome="failed", reason=f"could not be merged: {exc.message}"
            )
        return report

    def _drop(self, stream_id: str) -> None:
        path = self.worktrees.pop(stream_id, None)
        if path is None or not any(p == path for p, _ in self.ws.extra):
            return
        rescued = self.ws.drop_worktree(path)
        if rescued is not None:
            self.progress(f"stream {stream_id}: uncommitted work saved to {rescued}")

    def _not_run(self, stream: Stream, outcome: StreamOutcome, reason: str) -> StreamReport:
        now = self.clock() - self.start
        return StreamReport(
            stream=stream.id,
            outcome=outcome,
            branch=None,
            commit=None,
            started_s=self.began.get(stream.id, now),
            finished_s=now,
            attempts=0,
            cost_usd=0.0,
            reason=reason,
        )

    # ------------------------------------------------------------ one stream

    def _stream(self, slot: int, stream: Stream) -> StreamReport:
        began = self.clock() - self.start
        self.began[stream.id] = began
        branch = stream_branch(self.ws.run_id, stream.id)
        name = f"stream-{stream.id}"
        # Known before it exists: a setup that fails leaves it in the workspace's list.
        self.worktrees[stream.id] = self.ws.places.worktree(f"{self.ws.run_id}.{name}")
        attempts = 0
        cost = 0.0
        violations: list[str] = []
        reasons: list[tuple[int, str]] = []

        def report(
            outcome: StreamOutcome, reason: str = "", commit: str | None = None
        ) -> StreamReport:
            return StreamReport(
                stream=stream.id,
                outcome=outcome,
                branch=branch if commit else None,
                commit=commit,
                started_s=began,
                finished_s=self.clock() - self.start,
                attempts=attempts,
                cost_usd=cost,
                reason=reason,
                violations=tuple(dict.fromkeys(violations)),
            )

        try:
            self._check_caps()
            tip = git.rev_parse(self.ws.repo, f"refs/heads/{self.integration_branch}")
            if tip is None:
                raise AgentloopError(
                    f"the integration branch {self.integration_branch} does not exist",
                    hint="create it before the streams are built",
                )
            self.progress(f"stream {stream.id}: worktree from {self.integration_branch} {tip[:10]}")
            top = self.ws.worktree(name, commit=tip, branch=branch)
            root = top / self.project
            env = self.ws.env(self.base_env, root=root)
            env[STREAM_VAR] = stream.id
            env[PORT_VAR] = str(
                port_base(
                    slot, base=self.settings.port_base, step=self.settings.port_step,
                    taken=self.taken,
                )
            )  # fmt: skip
            for number in range(1, self.settings.max_attempts + 1):
                left = self._check_caps()
                attempts = number
                ended = self._attempt(stream, top, root, env, number, reasons, left)
                cost += ended.cost_usd
                if ended.commit is not None:
                    return report("built", commit=ended.commit)
                violations.extend(ended.violations)
                reasons.append((number, ended.reason))
                self.progress(f"stream {stream.id}: attempt {number} rejected: {ended.reason}")
            # Rejected: what kept it from being built was writing where it may not.
            last: StreamOutcome = "rejected" if ended.violations else "failed"
            return report(
                last, f"{attempts} attempts failed: {_attempts(reasons)}{self._keep(stream, top)}"
            )
        except _CapReached as cap:
            return report("failed" if attempts else "skipped", f"{cap.cap} reached")
        except AgentloopError as exc:
            return report("failed", exc.message)

    def _check_caps(self) -> float:
        """Seconds left; raises when the build is stopped or a cap is used up."""
        if self.stop.is_set():
            raise KeyboardInterrupt
        if self.capped is not None:
            raise _CapReached(self.capped)
        left = self.settings.max_runtime_s - (self.clock() - self.start)
        if left <= 0:
            self.capped = "max_runtime"
        elif self.budget.exhausted():
            self.capped = "max_budget"
        if self.capped is not None:
            raise _CapReached(self.capped)
        return left

    def _attempt(
        self,
        stream: Stream,
        top: Path,
        root: Path,
        env: Mapping[str, str],
        number: int,
        earlier: Sequence[tuple[int, str]],
        seconds_left: float,
    ) -> _Ended:
        """One session and the checks after it. The worktree ends at the accepted
        commit or exactly as it began."""
        reservation = self.budget.reserve(self.stop)
        if reservation is None:
            raise _CapReached("max_budget")
        limits = dataclasses.replace(
            self.settings.limits,
            max_budget_usd=reservation.usd,
            timeout_s=max(seconds_left, 1.0),
        )
        policy = sandbox.build_policy(
            top=top,
            repo=self.ws.repo,
            forbidden=self.settings.forbidden,
            secrets=self.settings.secrets,
            network=self.settings.network,
            sandboxed=self.settings.sandboxed,
            owned=stream.owns,
        )
        rails = make_guard(
            dataclasses.replace(self.settings.forbidden, root=str(top)),
            secrets=self.settings.secrets,
        )
        guard = ownership_mod.guard(rails, self.ownership, stream.id, str(top))
        rescue = self.ws.places.rescued / f"{self.ws.run_id}-{stream.id}-attempt-{number}"
        cost = 0.0
        try:
            with Attempt(top, rescue, sandboxed=policy.sandboxed) as attempt:
                prompt = build_prompt(self.manifest, stream, rails=self._rails(), earlier=earlier)
                result = self.agent.run(
                    prompt,
                    # At the worktree's top, not the project's folder in it: the stream's
                    # globs, its prompt's paths and its test commands are all written
                    # from the repository's top (the coordinator plans there). Started
                    # in a monorepo's package, the agent put `pkgs/app/x.py` under
                    # `pkgs/app/pkgs/app/`, which it does not own, and built nothing.
                    cwd=top,
                    limits=limits,
                    env=self.agent_env(env) if self.agent_env else env,
                    policy=policy,
                    guard=guard,
                )
                cost = result.cost_usd
                if self.stop.is_set():
                    raise KeyboardInterrupt  # what this session did does not land
                try:
                    commit = self._accept(stream, top, root, env, attempt, result, number)
                except _Outside as outside:
                    return _Ended(cost, reason=outside.reason, violations=outside.paths)
                except Rejected as rejected:
                    return _Ended(cost, reason=rejected.reason)
                attempt.accept(commit)
                return _Ended(cost, commit=commit)
        finally:
            self.budget.settle(reservation, cost)

    def _accept(
        self,
        stream: Stream,
        top: Path,
        root: Path,
        env: Mapping[str, str],
        attempt: Attempt,
        result: SessionResult,
        number: int,
    ) -> str:
        """The checks after a session, in order; the stream's new commit, or Rejected."""
        attempt.check_git_state()
        candidate = git.snapshot_tree(top, attempt.start)
        attempt.changed = candidate.changed
        if candidate.changed:
            self.last_work[stream.id] = (candidate.base_tree, candidate.tree)
        outside = self.ownership.violations(stream.id, candidate.changed)
        if outside:
            raise _Outside(
                "changed files it does not own: "
                + self.ownership.explain(stream.id, candidate.changed),
                tuple(v.path for v in outside),
            )
        rails = attempt.check_rails(
            candidate,
            forbidden=self.settings.forbidden,
            allow_test_edits=self.settings.allow_test_edits,
        )
        if result.outcome in _UNFINISHED:
            raise Rejected("agent_error", f"the agent session ended with {result.outcome}")
        if not candidate.changed:
            raise Rejected("agent_error", "changed nothing")
        if rails.integrity:
            raise Rejected(
                "rejected_integrity",
                "weakened the tests: " + "; ".join(str(p) for p in rails.integrity[:5]),
            )
        failed = self._tests(stream, top, root, env, candidate.changed)
        if failed:
            raise Rejected("tests_failed", failed)
        message = (
            f"{stream.id}: {stream.title}\n\n"
            f"Stream {stream.id} of agentloop build {self.ws.run_id}, attempt {number}.\n"
        )
        commit = git.commit_tree(top, candidate.tree, attempt.start, message)
        git.advance_branch(top, attempt.branch, commit, attempt.start)
        return commit

    def _keep(self, stream: Stream, top: Path) -> str:
        """'; its last attempt's changes: <patch>', the work of a stream that was not built
        saved where `git apply` takes it back; '' when no attempt changed anything. Each
        attempt is undone, so without it a stream whose tests failed only for want of
        another stream's code (found on humanize) left nothing to look at or reuse."""
        work = self.last_work.get(stream.id)
        if work is None:
            return ""
        dest = self.ws.places.rescued / f"{self.ws.run_id}-{stream.id}.patch"
        try:
            git.save_tree_diff(top, *work, dest)
        except git.GitError as exc:
            return f"; its last attempt's changes could not be saved: {exc.message}"
        return f"; its last attempt's changes: {dest}"

    def _tests(
        self,
        stream: Stream,
        top: Path,
        root: Path,
        env: Mapping[str, str],
        changed: Sequence[str],
    ) -> str:
        """'' when the stream's tests pass in its worktree; else why not. Its own
        commands (run from the worktree's top) when it names some; else the configured
        suites on the test files it owns (other streams' tests are not its to pass: the
        integration runs them all); else nothing."""
        for command in stream.tests:
            # From the top, as the coordinator is told to write them.
            done = proc.run(command, cwd=top, env=env, timeout=self.settings.test_timeout)
            if not done.ok:
                why = "timed out" if done.timed_out else f"exit {done.returncode}"
                return f"`{command}` failed ({why}): {done.tail(5)}"
        if stream.tests or not self.suites:
            return ""
        owned = self.ownership.of_stream(stream.id)
        files: dict[str, list[str]] = {}
        rebased = []
        for suite in self.suites:
            here = root / suite.cwd.relative_to(self.ws.root)
            rebased.append(dataclasses.replace(suite, cwd=here))
            for path in git.listed_paths(top):
                full = top / path
                if (
                    owned.owns(path)
                    and _is_test_file(path)
                    and _runs(suite, path)
                    and full.is_relative_to(here)
                ):
                    files.setdefault(suite.name, []).append(full.relative_to(here).as_posix())
        if not files:
            return ""
        found = testrun.failing_tests(
            root, rebased, env=env, files=files, timeout=self.settings.test_timeout
        )
        if not found.failing:
            return ""
        shown = ", ".join(sorted(f"{s}::{t}" for s, t in found.failing)[:5])
        # With an error: the ids alone did not say why (humanize's tests stream failed
        # for AttributeError: module 'humanize' has no attribute 'bytes_rate').
        error = found.first_error.splitlines()[0][:300] if found.first_error else ""
        return f"its tests fail: {shown}" + (f" ({error})" if error else "")

    def _rails(self) -> list[str]:
        s = self.settings
        return [
            "Never create, edit, move or delete files matching: " + ", ".join(s.forbidden.patterns),
            "Do not commit or push: agentloop commits your stream's work itself.",
            f"At most {s.max_attempts} attempts; the build stops after "
            f"{s.max_runtime_s / 60:g} minutes or ${s.max_budget_usd:g}.",
            f"Your commands see {STREAM_VAR} (your stream) and {PORT_VAR}: start any "
            f"server or database on ports from {PORT_VAR} up ({s.port_step} are yours), "
            "never on a fixed port.",
        ]


def _attempts(reasons: Sequence[tuple[int, str]]) -> str:
    """'1: its tests fail: …; 2-3: changed nothing': every attempt's reason, a run of the
    same reason said once. The last alone hid the cause: a stream whose tests failed
    and whose next attempts wrote nothing new was reported as having "changed nothing"."""
    runs: list[tuple[int, int, str]] = []
    for number, reason in reasons:
        if runs and runs[-1][2] == reason and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number, reason)
        else:
            runs.append((number, number, reason))
    return "; ".join(
        f"{first}: {reason}" if first == last else f"{first}-{last}: {reason}"
        for first, last, reason in runs
    )


def _why(reason: str) -> str:
    return f" ({reason})" if reason else ""


def _runs(suite: Suite, path: str) -> bool:
    """Whether `suite`'s runner takes the test file `path`: pytest a .py file, vitest and
    jest a JavaScript or TypeScript one. A suite agentloop does not drive (no runner) takes
    none: it could not be given single files. (Found by the end-to-end test: with both
    suites at the top, vitest was handed a .py file and failed.)"""
    if suite.runner == "pytest":
        return path.endswith(".py")
    if suite.runner in ("vitest", "jest"):
        return path.endswith((".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts"))
    return False


def _is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
        or any(f".{kind}." in name for kind in ("test", "spec"))
    )
