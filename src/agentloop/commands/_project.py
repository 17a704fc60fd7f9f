"""The project a command works on: the directory given, inside a git work tree."""

from __future__ import annotations

from pathlib import Path

from agentloop import git
from agentloop.detection import Detection
from agentloop.errors import SuiteError, UsageError


def git_project(
    repo: Path, *, why: str, hint: str = "run `git init` and commit first"
) -> tuple[Path, Path]:
    """(the project's absolute path, its git top level). `why` finishes the sentence
    "<path> is not a git repository: ..." naming what the command needs git for."""
    root = repo.resolve()
    if not root.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    top = git.find_toplevel(root)
    if top is None:
        raise UsageError(f"{root} is not a git repository: {why}", hint=hint)
    return root, top


def require_tests(result: Detection, *, report: Path | None = None) -> None:
    """Zero tests run is no verdict: a suite that collects nothing (a wrong path, a
    pattern that matches no file) would otherwise read as a green project."""
    if result.tasks or result.flaky or any(s.tests for s in result.suites):
        return
    if report is not None:
        raise SuiteError(
            f"no test ran: {report} holds no test results, so nothing was checked",
            hint="pass the report of a run that collected tests",
        )
    exits = ", ".join(
        f"{s.name} exited {s.exit_code}" for s in result.suites if s.exit_code is not None
    )
    raise SuiteError(
        f"no test ran: {', '.join(s.name for s in result.suites) or 'the suites'} found 0 "
        f"tests, so nothing was checked{f' ({exits})' if exits else ''}",
        hint="add tests, or point the suite at them with `suites:` in agentloop.yaml "
        "(`agentloop config --reference`)",
    )
