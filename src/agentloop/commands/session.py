"""`agentloop session start|status|stop`: the state of an interactive /autofix session.

`start` is run by the skill itself (a `!` line, before the model reads the skill), so the
limits the model is given come from the project's configuration, as for `agentloop run`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agentloop import errors, git, output
from agentloop import session as session_mod
from agentloop.commands._project import git_project
from agentloop.config import load_config
from agentloop.errors import UsageError
from agentloop.rails.gitstate import GitState
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
    # agentloop's own state must not count as the user's work (nor dirty the tree).
    git.ignore_locally(root, ".agentloop/")
    base_sha = git.rev_parse(toplevel, "HEAD^{commit}") or ""
    user_files, work = _users_work(root, toplevel, base_sha)
    # What the agent must not destroy, kept where `agentloop check` compares with it: the
    # user's work as a patch (to put it back) and the repository's git state. Written
    # before the record, which is what makes a session active.
    path = session_mod.path_of(root, sid)
    patch = session_mod.work_patch(path)
    patch.unlink(missing_ok=True)
    git.save_tree_diff(toplevel, work.base_tree, work.tree, patch)
    session_mod.git_state_file(path).write_text(
        GitState.capture(toplevel).to_json(), encoding="utf-8"
    )
    record = session_mod.start(
        root,
        sid,
        max_attempts=config.run.max_attempts,
        max_runtime=config.run.max_runtime,
        toplevel=toplevel,
        user_files=user_files,
        base_sha=base_sha,
        user_work=[
            session_mod.UserFile(name, session_mod.content_hash(toplevel / name))
            for name in user_files
        ],
    )
    forbidden = ForbiddenPaths.with_protected(config.rails.forbidden_paths)
    if as_json:
        output.print_json(output.session_doc(record, forbidden.patterns, source, time.time()))
    else:
        output.print_session_start(record, forbidden.patterns, source)
    return errors.OK


def _users_work(root: Path, top: Path, base_sha: str) -> tuple[list[str], git.Snapshot]:
    """The files with uncommitted work of the user's (by content: index flags hide
    nothing), and the snapshot of it. A .gitignore that ignores itself is one of them."""
    work = git.snapshot_tree(top, base_sha or git.empty_tree(top))
    own = root.relative_to(top).as_posix()
    own = ".agentloop/" if own == "." else f"{own}/.agentloop/"
    files = [
        path for path in (*work.changed, *git.hidden_ignore_files(top)) if not path.startswith(own)
    ]
    return sorted(set(files)), work


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
    path, _ = _load(repo, session_id)
    return _show(session_mod.end(path), as_json)
