"""Small verb-named git functions. Everything goes through `proc.run`."""

from __future__ import annotations

import os
from pathlib import Path

from agentloop import proc


def clean_env() -> dict[str, str]:
    # Inside a git hook (or a worktree) inherited GIT_DIR/GIT_INDEX_FILE would point
    # git at the wrong repository; strip them so paths decide.
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def find_toplevel(path: Path) -> Path | None:
    """The root of the git work tree containing `path`, or None when it is not in one."""
    try:
        done = proc.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=path, timeout=30, env=clean_env()
        )
    except proc.CommandNotFound:
        return None
    if not done.ok:
        return None
    return Path(done.stdout.strip()).resolve()
