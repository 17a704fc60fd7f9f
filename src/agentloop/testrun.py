"""Which tests fail, and nothing more: what the loop's checks ask after an edit.

- `run_tests`: given tests (a task's, or the tasks a fix may have closed) in as few
  runner processes as possible: one pytest process per suite prefix with all the node
  ids, one vitest or jest process with the test files and one name pattern. A test passes
  only on positive evidence: its own outcome in the probe or the report. One the runner
  never ran (a kill, a name that no longer exists) is failing.
- `failing_tests`: whole suites (or some of their test files) run once each through
  `suites.run_suite`: the set of failing tests the final VERIFY and the check after an
  accepted fix compare with the baseline. No re-runs, no grouping, no ordering: that is
  `detection`'s job, and it costs what a check must not.

A module of its own rather than part of `suites`: it drives pytest through
`reruns.run_pytest`, and `reruns` itself builds on `suites`.
"""

from __future__ import annotations

import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agentloop import proc
from agentloop import reruns as reruns_mod
from agentloop import suites as suites_mod
from agentloop.errors import ReportError, SuiteError
from agentloop.failures.model import Dialect, Failure


@dataclass(frozen=True)
class TestRun:
    # Failure.test_id of each given test that did not pass (failed, errored, timed out,
    # or never ran).
    failing: frozenset[str]
    # What the runners printed (only the processes with a failing test, when one failed):
    # the reason an attempt is rejected.
    output: str
    # Runner processes started.
    processes: int

    @property
    def passed(self) -> bool:
        return not self.failing


@dataclass(frozen=True)
class FailingSet:
    # (suite name, test id) of each test that failed, errored or timed out; a suite that
    # could not be read at all is `(name, "<suite NAME>")`, as run_suite names a red
    # suite without a failing test.
    failing: frozenset[tuple[str, str]]
    # Tests the suites ran, as their reports count them.
    tests: int
    processes: int
    # Why the set may be incomplete, one line each: a suite that stopped without a
    # report agentloop can read, tests that never ran (a kill at the suite's timeout).
    errors: tuple[str, ...]
    # One failure's error, "AttributeError: module 'x' has no attribute 'y'": what a
    # list of test ids does not say (a build's stream reads it in its next prompt).
    first_error: str = ""


# A batch: the runner, the directory it runs in, and the command up to the tests.
_Key = tuple[Dialect, str, str]
# pytest refuses a whole command line for one node id it cannot find (exit 4, no test
# run): `ERROR: not found: /abs/tests/t.py::test_x`, `… file or directory not found: …`,
# or, when the test's file no longer imports, `… found no collectors for …`.
_NOT_FOUND = re.compile(
    r"^ERROR: (?:(?:file or directory )?not found:|found no collectors for) (?P<id>\S+)", re.M
)


def _relative_file(failure: Failure) -> str | None:
    """The test file as the selector names it: relative to the suite's cwd."""
    if failure.file is None:
        return None
    if failure.cwd in (".", ""):
        return failure.file
    return failure.file.removeprefix(failure.cwd + "/")


def _split(failure: Failure) -> tuple[_Key, str] | None:
    """(the batch the failure joins, what it adds to the batch) from its selector; None
    for a test that needs a process of its own."""
    selector = failure.selector
    if selector is None or failure.order_dependent:
        # An order-dependent test's selector runs its polluters first, in an order that
        # batch-mates must not disturb.
        return None
    if failure.runner == "pytest":
        node = shlex.quote(reruns_mod.node(failure))
        if not selector.endswith(" " + node):
            return None
        return ("pytest", failure.cwd, selector[: -len(node) - 1]), reruns_mod.node(failure)
    if failure.runner in ("vitest", "jest") and failure.stage == "call":
        file = _relative_file(failure)
        if file is None:
            return None
        at = selector.rfind(f" {shlex.quote(file)} -t ")
        if at < 0:
            return None
        words = shlex.split(selector[at:])
        if len(words) != 3:
            return None
        return (failure.runner, failure.cwd, selector[:at]), words[2]
    # go, Surefire, a whole-file or hook re-run of vitest/jest: the runners take no list
    # of tests that the report would answer test by test, so one selector per process.
    return None


def _pytest_passed(node: str, outcomes: Mapping[str, reruns_mod.Outcome]) -> bool:
    """A node id passed; a file or a test's parent (a collection error's selector, a
    parametrized test) passed when every test pytest ran under it passed."""
    if node in outcomes:
        return outcomes[node] == "passed"
    under = [o for test, o in outcomes.items() if test.startswith((node + "::", node + "["))]
    return bool(under) and all(o == "passed" for o in under)


@dataclass
class _Tally:
    failing: set[str]
    outputs: list[tuple[bool, str]]
    processes: int = 0

    def add(self, output: str, failing: Sequence[str]) -> None:
        self.failing.update(failing)
        self.outputs.append((bool(failing), output))


def _output(done: proc.Completed) -> str:
    return done.stdout + "\n" + done.stderr


def _single(
    failure: Failure, *, root: Path, timeout: float, env: Mapping[str, str], tally: _Tally
) -> None:
    if failure.selector is None:
        tally.add(f"{failure.test_id} has no selector", [failure.test_id])
        return
    tally.processes += 1
    passed, output = suites_mod.run_selector(
        failure.selector,
        dialect=failure.runner,
        cwd=root / failure.cwd,
        timeout=reruns_mod.allowance([failure], unknown=timeout),
        env=env,
    )
    tally.add(output, [] if passed else [failure.test_id])


def _pytest_batch(
    prefix: str,
    group: Sequence[tuple[Failure, str]],
    *,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str],
    tally: _Tally,
) -> bool:
    """All of `group` in one pytest process, and another for what a kill or a missing
    node id kept from running. False when the probe could not be loaded there (the
    caller falls back to one selector per test)."""
    outcomes: dict[str, reruns_mod.Outcome] = {}
    pending = list(dict.fromkeys(node for _, node in group))
    # Without it pytest runs nothing when one of the files fails to import: every test of
    # the batch would fail for one broken file.
    command = f"{prefix} --continue-on-collection-errors"
    outputs: list[str] = []
    while pending:
        todo = [f for f, node in group if node in pending]
        run = reruns_mod.run_pytest(
            command,
            pending,
            cwd=cwd,
            timeout=reruns_mod.allowance(todo, unknown=timeout),
            env=env,
        )
        tally.processes += 1
        output = _output(run.done)
        outputs.append(output)
        if run.outcomes is None and suites_mod.probe_missing(output):
            return False
        outcomes.update(run.outcomes or {})
        left = pending
        if not run.started:
            # Refused for ids it cannot find: those fail, the others run without them.
            missing = {m["id"] for m in _NOT_FOUND.finditer(output)}
            left = [n for n in pending if not any(m == n or m.endswith("/" + n) for m in missing)]
        elif run.done.timed_out:
            # Killed: the test that was running is failing; the ones never started get
            # their own chance.
            started = set(run.started)
            left = [n for n in pending if n not in started and n not in outcomes]
        if not left or left == pending:
            break
        pending = left
    failing = [f.test_id for f, node in group if not _pytest_passed(node, outcomes)]
    tally.add("\n".join(outputs), failing)
    return True


def _js_batch(
    runner: Dialect,
    prefix: str,
    group: Sequence[tuple[Failure, str]],
    *,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str],
    tally: _Tally,
) -> None:
    """vitest/jest: the test files as filters and one name pattern matching each test;
    the report (read as run_suite reads it) says which of them passed."""
    files = list(dict.fromkeys(_relative_file(f) or "" for f, _ in group))
    pattern = "|".join(f"(?:{p})" for p in dict.fromkeys(p for _, p in group))
    run = f"{prefix} {shlex.join(files)} -t {shlex.quote(pattern)}"
    seconds = reruns_mod.allowance([f for f, _ in group], unknown=timeout)
    suite = suites_mod.Suite(
        name=runner,
        run=run,
        format="vitest-json" if runner == "vitest" else "junit",
        cwd=cwd,
        timeout=seconds,
        runner="vitest" if runner == "vitest" else "jest",
    )
    with tempfile.TemporaryDirectory(prefix="agentloop-testrun-") as tmp:
        report = Path(tmp) / "report"
        command, extra = suites_mod.reporter_command(suite, report, Path(tmp) / "probe")
        tally.processes += 1
        done = proc.run(command, cwd=cwd, timeout=seconds, env={**env, **extra})
        try:
            parsed = suites_mod.read_run_report(suite, report)
        except (OSError, ReportError):
            # No report (a kill, a crash before any test): none of them is known to pass.
            # Both runners time a test out themselves (5 s by default), so a hanging test
            # is a failure in the report far more often than a kill of the process.
            tally.add(_output(done), [f.test_id for f, _ in group])
            return
    failed = {p.test_id for p in parsed.failures}
    tally.add(
        _output(done),
        [f.test_id for f, _ in group if f.test_id in failed or f.test_id not in parsed.passed],
    )


def run_tests(
    failures: Sequence[Failure], *, root: Path, timeout: float, env: Mapping[str, str]
) -> TestRun:
    """Run `failures`' tests in the project at `root`: one process per (runner, cwd,
    selector prefix) for pytest, vitest and jest, one per selector otherwise. `timeout`
    is what a test whose duration is unknown may take; a process gets
    `reruns.allowance` of its tests (startup plus each test's share)."""
    tally = _Tally(set(), [])
    groups: dict[_Key, list[tuple[Failure, str]]] = {}
    for failure in failures:
        split = _split(failure)
        if split is None:
            _single(failure, root=root, timeout=timeout, env=env, tally=tally)
        else:
            groups.setdefault(split[0], []).append((failure, split[1]))
    for (runner, cwd, prefix), group in groups.items():
        if runner == "pytest":
            if not _pytest_batch(
                prefix, group, cwd=root / cwd, timeout=timeout, env=env, tally=tally
            ):
                for failure, _ in group:
                    _single(failure, root=root, timeout=timeout, env=env, tally=tally)
        else:
            _js_batch(runner, prefix, group, cwd=root / cwd, timeout=timeout, env=env, tally=tally)
    failed = [text for red, text in tally.outputs if red]
    shown = failed if failed else [text for _, text in tally.outputs]
    return TestRun(frozenset(tally.failing), "\n".join(shown), tally.processes)


def _narrows(suite: suites_mod.Suite) -> bool:
    # A suite agentloop drives with a re-run prefix; any other (its own report, a runner
    # agentloop does not know) runs whole and its failures are filtered by file after.
    return bool(suite.rerun) and suite.report is None and suite.runner is not None


def _only(suite: suites_mod.Suite, files: Sequence[str]) -> suites_mod.Suite:
    """The suite restricted to `files` (relative to its cwd): its re-run prefix (its own
    options, nothing that selects tests) with the files as positional arguments."""
    extra = " --continue-on-collection-errors" if suite.runner == "pytest" else ""
    # pytest stops at a collection error without that flag: one broken file would keep
    # the others' tests from running, and they would read as passing.
    return replace(suite, run=f"{suite.rerun}{extra} {shlex.join(files)}")


def failing_tests(
    root: Path,
    found: Sequence[suites_mod.Suite],
    *,
    env: Mapping[str, str],
    files: Mapping[str, Sequence[str]] | None = None,
    timeout: float | None = None,
) -> FailingSet:
    """Run each suite once, whole, or, for a suite named in `files`, only those test
    files (relative to the suite's cwd; a suite not named there is not run). `timeout`
    replaces the suites' own. A suite that could not be read is failing (see FailingSet)."""
    failing: set[tuple[str, str]] = set()
    errors: list[str] = []
    first_error = ""
    tests = processes = 0
    with tempfile.TemporaryDirectory(prefix="agentloop-verify-") as workdir:
        for suite in found:
            chosen = None if files is None else files.get(suite.name)
            if files is not None and not chosen:
                continue
            narrowed = chosen is not None and _narrows(suite)
            run = _only(suite, chosen) if chosen is not None and narrowed else suite
            if timeout is not None:
                run = replace(run, timeout=timeout)
            processes += 1
            try:
                result, report = suites_mod.run_suite(run, Path(workdir), root, env=env)
            except (SuiteError, ReportError) as exc:
                failing.add((suite.name, f"<suite {suite.name}>"))
                errors.append(f"suite {suite.name!r}: {exc.message}")
                continue
            processes += suites_mod.NO_PROBE_NOTE in report.notes
            tests += result.tests
            keep = set(chosen or ())
            for parsed in report.failures:
                if chosen is not None and not narrowed and parsed.file not in keep:
                    continue  # the whole suite ran: only the files asked about count
                failing.add((suite.name, parsed.test_id))
                if not first_error:
                    first_error = f"{parsed.error_type}: {parsed.message}".strip(": ")
            if result.not_run:
                errors.extend(
                    f"suite {suite.name!r}: {n}" for n in report.notes if "never ran" in n
                )
    return FailingSet(frozenset(failing), tests, processes, tuple(errors), first_error)
