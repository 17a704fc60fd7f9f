"""UserPromptExpansion of `/autofix`: the session starts here, outside the sandbox, before
the skill's text (and its `!` line) is rendered and before the model runs anything.

Outside the sandbox git sees the checkout as it is (inside, the sandbox's placeholder
files and unreadable secrets look like changes), so the user's files are recorded right;
and only from outside can they be made read-only to the agent's commands (locks.hold).
A failure blocks /autofix (exit 2, the reason shown): no loop without that hold.
"""

from __future__ import annotations

import time
from pathlib import Path

from agentloop import git, locks
from agentloop import session as session_mod
from agentloop.config import load_config
from agentloop.errors import UsageError
from agentloop.hooks.protocol import PASS, HookAnswer, HookEvent


def autofix(event: HookEvent, *, settle: float = locks.SETTLE) -> HookAnswer:
    root = Path(event.project_dir).resolve()
    top = git.find_toplevel(root)
    if top is None:
        raise UsageError(
            f"{root} is not a git repository: /autofix reverts and commits with git",
            hint="run `git init` and commit first",
        )
    config, _ = load_config(root)
    locks.prepare(root)
    record = session_mod.begin(
        root,
        top,
        session_mod.check_id(event.session_id),
        max_attempts=config.run.max_attempts,
        max_runtime=config.run.max_runtime,
    )
    before = locks.held(root)
    hold = locks.hold(root, record.id, locks.relative_to_root(root, top, record.user_files))
    if hold.files or (before is not None and before.files):
        # Claude Code applies a changed settings file about 1.5 s later; the model's
        # first command must find it applied.
        time.sleep(settle)
    return PASS
