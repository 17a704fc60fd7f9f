"""The project a command works on: the directory given, inside a git work tree."""

from __future__ import annotations

from pathlib import Path

from agentloop import git
from agentloop.errors import UsageError


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
