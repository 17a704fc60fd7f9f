"""`agentloop session start|status|stop`: the state of an interactive /autofix session.

`start` is run by the skill itself (a `!` line, before the model reads the skill), so the
limits the model is given come from the project's configuration, as for `agentloop run`.
The session itself is started a moment before by agentloop's /autofix hook, outside the
sandbox (hooks.autofix): `start` shows that record.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from agentloop import errors, locks, output
from agentloop import session as session_mod
from agentloop.commands._project import git_project
from agentloop.config import load_config
from agentloop.errors import UsageError
from agentloop.rails.paths import ForbiddenPaths


def _session_id(given: str | None) -> str:
    session_id = given or os.environ.get(session_mod.SESSION_ENV)
    if not session_id:
        raise UsageError(
            "no session id: this command belongs to an /autofix session in Claude Code",
            hint="pass --id (the /autofix skill passes ${CLAUDE_SESSION_ID})",
        )
    return session_mod.check_id(session_id)


def start(*, repo: Path, session_id: str | None, as_json: bool) -> int:
    root, toplevel = git_project(repo, why="/autofix reverts and commits with git")
    config, source = load_config(root)
    sid = _session_id(session_id)
    # Typing /autofix ran agentloop's hook first, outside the sandbox: its record stands.
    record = session_mod.fresh(session_mod.path_of(root, sid))
    if record is None:
        if os.environ.get("SANDBOX_RUNTIME"):
            # Starting one needs git's object store, which the sandbox keeps read-only.
            raise UsageError(
                "the /autofix session was not started by agentloop's hook, and cannot be "
                "started from inside Claude Code's sandbox",
                hint="run `agentloop init` in the project (it registers the /autofix hook) "
                "and type /autofix again",
            )
        record = session_mod.begin(
            root,
            toplevel,
            sid,
            max_attempts=config.run.max_attempts,
            max_runtime=config.run.max_runtime,
        )
    forbidden = ForbiddenPaths.with_protected(config.rails.forbidden_paths)
    if as_json:
        output.print_json(output.session_doc(record, forbidden.patterns, source, time.time()))
    else:
        output.print_session_start(record, forbidden.patterns, source)
    return errors.OK


def _load(repo: Path, session_id: str | None) -> tuple[Path, session_mod.Session]:
    sid = _session_id(session_id)
    found = session_mod.find(repo.resolve(), sid)
    if found is None:
        raise UsageError(
            f"no /autofix session {sid} in {repo.resolve()}",
            hint="start one by typing /autofix in Claude Code",
        )
    return found, session_mod.load(found)


def _show(record: session_mod.Session, as_json: bool) -> int:
    now = time.time()
    if as_json:
        output.print_json(output.session_doc(record, None, None, now))
    else:
        output.print_session_status(record, now)
    return errors.OK


def status(*, repo: Path, session_id: str | None, as_json: bool) -> int:
    return _show(_load(repo, session_id)[1], as_json)


def stop(*, repo: Path, session_id: str | None, as_json: bool) -> int:
    path, record = _load(repo, session_id)
    # The user's files go back to the agent's commands. Inside the sandbox (the skill's
    # last step) this cannot write the settings file; the stop gate does it then.
    with contextlib.suppress(OSError, errors.AgentloopError):
        locks.release(path.parents[2], record.id)
    return _show(session_mod.end(path), as_json)
