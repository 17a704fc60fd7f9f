"""A fix is judged against the original tests, in a checkout the agent never touched.

The agent's worktree is the agent's: whatever it ran there (a conftest that patches the
code under test, a `.pth` file, a forged `.pyc`, a file hidden behind a new ignore rule)
can make the task's tests pass with the bug still in place. So the task's tests are re-run
in a second checkout of the run, the judge's, holding exactly the candidate tree that
would be committed, with every test-surface file (tests, conftest files, test runner
configuration, `sitecustomize`/`.pth`; `rails.testinfra` decides) put back as it was at
the attempt's start. Nothing untracked of the agent's is there; what the project needs to
run is there as in the run's worktree: the checkout's `.venv` and `node_modules`, mirrored
when the judge's worktree is made (`Workspace.detached_worktree`), and the other ignored
files that existed before the session (what `workspace.setup` made among them), linked in
from the run's worktree, where the sandbox kept the agent from writing them.
Python reads no bytecode cache from the tree (PYTHONPYCACHEPREFIX points elsewhere).

Only when the original tests fail and the agent changed the test surface is the candidate
as a whole tried: a fix that needed its test changes is accepted only if the integrity
check passed, and is reported as changing tests, with the diff.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentloop import git, testrun
from agentloop.agents import sandbox
from agentloop.failures.model import Failure
from agentloop.rails.testinfra import is_test_surface
from agentloop.suites import Suite


@dataclass(frozen=True)
class Verdict:
    passed: bool
    output: str
    # The test-surface files the candidate changes (the diff is in the report when the
    # fix is accepted with them).
    test_changes: tuple[str, ...]
    # True when the tests passed only with those changes.
    needed_test_changes: bool = False


class Judge:
    """Re-runs a task's tests at a candidate tree with the original tests, in a worktree
    of its own (made on first use by `open_worktree`, a `Workspace.detached_worktree`)."""

    def __init__(
        self,
        *,
        top: Path,
        project: str,
        open_worktree: Callable[[], Path],
        env_for: Callable[[Path], Mapping[str, str]],
        timeout: float,
    ) -> None:
        self.top, self.project = top, project
        self._open, self._env_for, self.timeout = open_worktree, env_for, timeout
        self._path: Path | None = None

    def judge(
        self, start: str, candidate: git.Snapshot, failures: Sequence[Failure], keep: Sequence[str]
    ) -> Verdict:
        surface = tuple(p for p in candidate.changed if is_test_surface(p))
        original = git.tree_with_paths_from(self.top, candidate.tree, start, surface)
        passed, output = self._run(original, failures, keep)
        if passed or not surface:
            return Verdict(passed, output, surface)
        passed, output = self._run(candidate.tree, failures, keep)
        return Verdict(passed, output, surface, needed_test_changes=passed)

    def failing(
        self,
        commit: str,
        found: Sequence[Suite],
        files: Sequence[str],
        keep: Sequence[str],
        *,
        project_root: Path,
    ) -> testrun.FailingSet:
        """The tests of `files` (project-relative test files) that fail at `commit` (or
        a tree), as (suite, test id): the suites `found` (discovered at `project_root`),
        each run once on its own files in this checkout. A suite that could not be read is
        in the set as "<suite NAME>": not green."""
        path = self.checkout(commit, keep)
        root = path / self.project if self.project else path
        moved, wanted = [], {}
        for suite in found:
            cwd = root / suite.cwd.relative_to(project_root)
            mine = [
                str((root / f).relative_to(cwd))
                for f in files
                if (root / f).is_relative_to(cwd) and _runs(suite, f)
            ]
            if mine:
                moved.append(dataclasses.replace(suite, cwd=cwd))
                wanted[suite.name] = mine
        if not moved:
            return testrun.FailingSet(frozenset(), 0, 0, ())
        env = dict(self._env_for(root))
        with tempfile.TemporaryDirectory(prefix="agentloop-pycache-") as pycache:
            env["PYTHONPYCACHEPREFIX"] = pycache
            return testrun.failing_tests(root, moved, env=env, files=wanted, timeout=self.timeout)

    def _run(self, tree: str, failures: Sequence[Failure], keep: Sequence[str]) -> tuple[bool, str]:
        path = self.checkout(tree, keep)
        root = path / self.project if self.project else path
        env = dict(self._env_for(root))
        with tempfile.TemporaryDirectory(prefix="agentloop-pycache-") as pycache:
            env["PYTHONPYCACHEPREFIX"] = pycache
            run = testrun.run_tests(failures, root=root, timeout=self.timeout, env=env)
            return run.passed, run.output

    def checkout(self, tree: str, keep: Sequence[str]) -> Path:
        """This judge's checkout holding exactly `tree` (a commit or tree), with the
        `keep` entries (the ignored files that existed before the session: the project's
        environment) linked in from `top`; what else an agent left there is gone. Also
        heal's REPRODUCE runs a new test in it (heal/reproduce.py)."""
        if self._path is None:
            self._path = self._open()
        links = [entry for entry in keep if not sandbox.is_cache(entry)]
        git.show_tree(self._path, tree, links)
        for entry in links:
            name = entry.rstrip("/")
            source, link = self.top / name, self._path / name
            if os.path.lexists(link) or not link.parent.is_dir() or not source.exists():
                continue
            link.symlink_to(source, target_is_directory=source.is_dir())
        return self._path


def _runs(suite: Suite, path: str) -> bool:
    """Whether `suite` runs the test file `path` when given it: pytest Python files,
    vitest and jest the rest. A configured command agentloop does not drive gets no file
    arguments (the full suites at the end cover it)."""
    if suite.runner is None:
        return False
    return path.endswith(".py") == (suite.runner == "pytest")
