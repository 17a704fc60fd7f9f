"""An interactive autofix session: `/autofix` in Claude Code, with state agentloop keeps.

The skill's first line runs `agentloop session start --id <session>`; every full
`agentloop detect` the agent runs inside that Claude Code session (Claude Code puts
CLAUDE_CODE_SESSION_ID into its Bash environment) is recorded as a verification; the stop
gate reads the record. The state is one JSON file per session under
`<project>/.agentloop/sessions/`, a path the guard forbids the agent to write, so the model
cannot talk the gate out of its facts by editing them.

An attempt, for a task, is a verification after the one where the task first failed in
which it still fails: DETECT is attempt zero, each FIX → VERIFY round after it one more.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from agentloop import git
from agentloop.errors import AgentloopError, UsageError

SESSIONS_DIR = Path(".agentloop") / "sessions"
SESSION_ENV = "CLAUDE_CODE_SESSION_ID"
# Claude Code's ids are UUIDs; anything else must not become part of a path.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# Seconds within which a record the /autofix hook started counts as just started.
FRESH = 120.0


@dataclass(frozen=True)
class FailingTask:
    id: str
    # The failing tests' ids (a few; the JSON of detect has them all).
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Verification:
    at: float
    failing: tuple[FailingTask, ...]

    @property
    def green(self) -> bool:
        return not self.failing


@dataclass(frozen=True)
class UserFile:
    """A file the user had uncommitted work in when the session started, and a hash of
    its content then (None: the user had deleted it)."""

    path: str
    sha256: str | None


@dataclass(frozen=True)
class Session:
    id: str
    started_at: float
    max_attempts: int
    max_runtime: float
    # Absolute path of the git work tree, and the files that had uncommitted changes when
    # the session started (relative to it): the user's work, which the guard protects.
    toplevel: str = ""
    user_files: tuple[str, ...] = ()
    # HEAD when the session started: `agentloop check` in the session compares with it, so
    # a change the agent committed is still checked.
    base_sha: str = ""
    verifications: tuple[Verification, ...] = ()
    ended_at: float | None = None
    # The content of user_files at the start (a patch of it is in the session's directory,
    # see `work_patch`): `agentloop check` says when one was overwritten.
    user_work: tuple[UserFile, ...] = ()
    # Commits agentloop made for the session (its MCP commit tool appends them with
    # `record_commit`): the branch checked out may advance through these and no others.
    commits: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @property
    def last(self) -> Verification | None:
        return self.verifications[-1] if self.verifications else None

    def attempts(self, task_id: str) -> int:
        """Verifications since the task first failed in which it failed again."""
        seen = False
        used = 0
        for verification in self.verifications:
            failing = any(t.id == task_id for t in verification.failing)
            if failing and seen:
                used += 1
            seen = seen or failing
        return used

    def time_left(self, now: float) -> float:
        return self.max_runtime - (now - self.started_at)

    def open_tasks(self) -> list[FailingTask]:
        """Tasks failing in the last verification that still have attempts left."""
        last = self.last
        if last is None:
            return []
        return [t for t in last.failing if self.attempts(t.id) < self.max_attempts]


class SessionError(AgentloopError):
    """A session record agentloop wrote cannot be read back."""


def check_id(session_id: str) -> str:
    if not _ID.match(session_id):
        raise UsageError(
            f"{session_id!r} is not a Claude Code session id",
            hint="the /autofix skill passes ${CLAUDE_SESSION_ID}; pass --id with that value",
        )
    return session_id


def path_of(root: Path, session_id: str) -> Path:
    return root / SESSIONS_DIR / f"{check_id(session_id)}.json"


def artifacts_of(record: Path) -> Path:
    """The directory beside a session's record holding what it saved at the start."""
    return record.with_suffix("")


def work_patch(record: Path) -> Path:
    """The user's uncommitted work at the start, as a binary patch against base_sha
    (untracked files included): `git apply` brings it back."""
    return artifacts_of(record) / "user-work.patch"


def git_state_file(record: Path) -> Path:
    """The repository's git state at the start (`rails.gitstate.GitState`, as JSON)."""
    return artifacts_of(record) / "git-state.json"


def content_hash(path: Path) -> str | None:
    """A hash of the file at `path` (of its target's name, for a symlink); None when
    there is no file."""
    try:
        if path.is_symlink():
            return "symlink:" + hashlib.sha256(os.readlink(path).encode()).hexdigest()
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def find(start: Path, session_id: str) -> Path | None:
    """The session's file in `start` or the nearest parent that has one: Claude's Bash may
    have `cd`-ed below the project the session started in."""
    if not _ID.match(session_id):
        return None
    for directory in (start, *start.parents):
        candidate = directory / SESSIONS_DIR / f"{session_id}.json"
        if candidate.is_file():
            return candidate
    return None


def in_environment(start: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The record of the session whose Claude Code Bash runs this process (it sets
    CLAUDE_CODE_SESSION_ID), searched from `start` up; None outside one."""
    session_id = (os.environ if environ is None else environ).get(SESSION_ENV, "")
    return find(start, session_id) if session_id else None


def load(path: Path) -> Session:
    try:
        return _parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SessionError(
            f"the /autofix session record {path} is unreadable ({type(exc).__name__})",
            hint=f"delete {path} to end that session",
        ) from None


def _parse(data: dict[str, Any]) -> Session:
    verifications = tuple(
        Verification(
            at=float(v["at"]),
            failing=tuple(
                FailingTask(id=str(t["id"]), tests=tuple(t.get("tests", ()))) for t in v["failing"]
            ),
        )
        for v in data.get("verifications", ())
    )
    return Session(
        id=str(data["id"]),
        started_at=float(data["started_at"]),
        max_attempts=int(data["max_attempts"]),
        max_runtime=float(data["max_runtime"]),
        toplevel=str(data.get("toplevel", "")),
        user_files=tuple(data.get("user_files", ())),
        base_sha=str(data.get("base_sha", "")),
        verifications=verifications,
        ended_at=None if data.get("ended_at") is None else float(data["ended_at"]),
        user_work=tuple(
            UserFile(str(f["path"]), None if f["sha256"] is None else str(f["sha256"]))
            for f in data.get("user_work", ())
        ),
        commits=_commits(data.get("commits")),
    )


def _commits(value: Any) -> tuple[str, ...]:
    # A sha, or an object with one (other writers of this list may record more about a
    # commit); anything else is not a commit.
    found: list[str] = []
    for entry in value if isinstance(value, list) else ():
        sha = entry.get("sha") if isinstance(entry, dict) else entry
        if isinstance(sha, str) and sha:
            found.append(sha)
    return tuple(found)


def save(path: Path, session: Session) -> None:
    """Write atomically: a hook reading it mid-write must see the old or the new record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = asdict(session)
    fd, tmp = tempfile.mkstemp(prefix=".session-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def start(
    root: Path,
    session_id: str,
    *,
    max_attempts: int,
    max_runtime: float,
    toplevel: Path | None,
    user_files: Iterable[str],
    base_sha: str = "",
    user_work: Iterable[UserFile] = (),
    now: float | None = None,
) -> Session:
    """A fresh record (starting again in the same Claude Code session restarts the clock
    and the attempt counts: the user asked for a new loop)."""
    session = Session(
        id=check_id(session_id),
        started_at=time.time() if now is None else now,
        max_attempts=max_attempts,
        max_runtime=max_runtime,
        toplevel=str(toplevel) if toplevel else "",
        user_files=tuple(sorted(set(user_files))),
        base_sha=base_sha,
        user_work=tuple(sorted(user_work, key=lambda f: f.path)),
    )
    save(path_of(root, session_id), session)
    return session


def begin(
    root: Path, top: Path, session_id: str, *, max_attempts: int, max_runtime: float
) -> Session:
    """Start a session in the project `root`, inside the git work tree `top`: the user's
    files are the ones with uncommitted work now, by content against HEAD (no index flag
    hides one), plus any .gitignore that ignores itself, agentloop's own state aside. What
    the agent must not destroy is kept where `agentloop check` compares with it: that work
    as a patch (to put it back) and the repository's git state, written before the record,
    which is what makes a session active. It writes git objects: run it outside Claude
    Code's sandbox (the /autofix hook does)."""
    from agentloop.rails.gitstate import GitState

    # agentloop's own state must not count as the user's work (nor dirty the tree).
    git.ignore_locally(root, ".agentloop/")
    base_sha = git.rev_parse(top, "HEAD^{commit}") or ""
    work = git.snapshot_tree(top, base_sha or git.empty_tree(top))
    rel = root.relative_to(top).as_posix()
    own = ".agentloop/" if rel == "." else f"{rel}/.agentloop/"
    user_files = sorted(
        {p for p in (*work.changed, *git.hidden_ignore_files(top)) if not p.startswith(own)}
    )
    path = path_of(root, session_id)
    patch = work_patch(path)
    patch.unlink(missing_ok=True)
    git.save_tree_diff(top, work.base_tree, work.tree, patch)
    git_state_file(path).write_text(GitState.capture(top).to_json(), encoding="utf-8")
    return start(
        root,
        session_id,
        max_attempts=max_attempts,
        max_runtime=max_runtime,
        toplevel=top,
        user_files=user_files,
        base_sha=base_sha,
        user_work=[UserFile(name, content_hash(top / name)) for name in user_files],
    )


def record_verification(
    path: Path, failing: Iterable[FailingTask], now: float | None = None
) -> Session | None:
    """Add a verification to an active session; None when the session has ended."""
    session = load(path)
    if not session.active:
        return None
    verification = Verification(at=time.time() if now is None else now, failing=tuple(failing))
    session = replace(session, verifications=(*session.verifications, verification))
    save(path, session)
    return session


def record_commit(path: Path, sha: str) -> Session | None:
    """Note a commit agentloop's commit tool made for an active session, so `agentloop
    check` lets the branch advance through it; None when the session has ended."""
    session = load(path)
    if not session.active:
        return None
    session = replace(session, commits=(*session.commits, sha))
    save(path, session)
    return session


def fresh(path: Path, now: float | None = None, *, within: float = FRESH) -> Session | None:
    """The session at `path` if it was started moments ago and nothing happened in it
    since: the /autofix hook starts the session outside the sandbox just before the
    skill's own `agentloop session start` runs inside it, which then shows that record
    rather than starting over (inside the sandbox, git sees the sandbox's placeholder
    files as the user's changes)."""
    try:
        session = load(path)
    except SessionError:
        return None
    age = (time.time() if now is None else now) - session.started_at
    if session.active and not session.verifications and 0 <= age <= within:
        return session
    return None


def end(path: Path, now: float | None = None) -> Session:
    session = load(path)
    if session.active:
        session = replace(session, ended_at=time.time() if now is None else now)
        save(path, session)
    return session


def stop_reason(session: Session, now: float) -> str | None:
    """Why the session may not end yet, or None when it may: it is active, its last
    verification is red, time is left and a failing task has attempts left."""
    if not session.active or session.last is None or session.last.green:
        return None
    if session.time_left(now) <= 0:
        return None
    open_tasks = session.open_tasks()
    if not open_tasks:
        return None
    lines = []
    for task in open_tasks[:5]:
        used = session.attempts(task.id)
        tests = ", ".join(task.tests[:3]) + (" …" if len(task.tests) > 3 else "")
        lines.append(f"- task {task.id}: {tests} (attempts used {used} of {session.max_attempts})")
    more = f"\n- and {len(open_tasks) - 5} more" if len(open_tasks) > 5 else ""
    minutes = max(1, int(session.time_left(now) // 60))
    return (
        "agentloop stop gate: the last `agentloop detect` in this /autofix session is red and "
        "these tasks have attempts left:\n"
        + "\n".join(lines)
        + more
        + f"\nAbout {minutes} min left. Continue the loop: DIAGNOSE, FIX, VERIFY the next "
        "attempt. If a task cannot be fixed within the rails, revert your changes for it, "
        "REPORT it unfixed and run `agentloop session stop`."
    )
