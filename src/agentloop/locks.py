"""The user's uncommitted files, read-only to the agent's commands while /autofix runs.

Claude Code's sandbox takes its paths from the settings files and re-reads them when they
change (2.1.332: a watcher that waits for 1 s of stability and polls every 0.5 s), so
the /autofix hook, which runs outside the sandbox, adds the files the user had changed
when they typed /autofix to `sandbox.filesystem.denyWrite` (and `Edit(...)` deny rules, for
the file tools) in `.claude/settings.local.json`, the per-user settings file git is told to
ignore, then waits for the watcher. From then on no command the agent runs can write,
delete or move them: not `git checkout-index -f -a`, not a script it wrote (the sandbox
answers "Read-only file system" or "Device or resource busy"); the guard's parsing is the
explanation, this is the boundary. Verified with the real CLI (tests/hooks).

The hold ends when the stop gate lets the /autofix turn end, when the session ends, when
`agentloop session stop` runs outside the sandbox, or when the next /autofix starts. What
was added is recorded in `.agentloop/lock.json` (read-only to the agent's commands, like
the settings file), so the release takes out exactly that and puts the user's own file
back byte for byte.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentloop import git
from agentloop.install import files as install_files
from agentloop.install import settings as claude_settings

LOCAL_SETTINGS = ".claude/settings.local.json"
LEDGER = ".agentloop/lock.json"
# Seconds the /autofix hook waits after writing the settings file: Claude Code applies a
# change after 1 s without further writes, polled every 0.5 s.
SETTLE = 2.5
# A permission rule is a pattern: a name with these in it would mean other files, or
# (an unbalanced bracket) make Claude Code drop the whole settings file.
_PATTERN_CHARS = frozenset("*?[]{}\\!")


@dataclass(frozen=True)
class Hold:
    """The files one /autofix session holds, and what holding them added to the settings."""

    session_id: str
    files: tuple[str, ...]  # relative to the project root
    owned: dict[str, Any]  # claude_settings.Owned.to_json()
    # The settings file as it was before (None: there was none), for an exact release.
    original: str | None


def _rule(path: str) -> list[str]:
    if _PATTERN_CHARS & set(path):
        return []
    return [f"Edit(/{path})", f"Edit(/{path}/**)"]


def held(root: Path) -> Hold | None:
    """The hold recorded in the project, if any (an unreadable record counts as none)."""
    try:
        doc = json.loads((root / LEDGER).read_text(encoding="utf-8"))
        return Hold(
            session_id=str(doc["session_id"]),
            files=tuple(str(f) for f in doc["files"]),
            owned=dict(doc["owned"]),
            original=doc["original"] if isinstance(doc["original"], str) else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_settings(root: Path) -> tuple[dict[str, Any], str | None]:
    path = root / LOCAL_SETTINGS
    if not path.exists():
        return {}, None
    raw = path.read_bytes()
    doc = claude_settings.parse(raw, path=LOCAL_SETTINGS, retry="/autofix")
    return doc, raw.decode("utf-8")


def _write_settings(root: Path, doc: dict[str, Any]) -> None:
    (root / LOCAL_SETTINGS).parent.mkdir(parents=True, exist_ok=True)
    install_files.write_atomic(
        root / LOCAL_SETTINGS, claude_settings.dumps(doc, path=LOCAL_SETTINGS), follow=True
    )


def hold(root: Path, session_id: str, paths: Iterable[str]) -> Hold:
    """Make `paths` (relative to the project root) read-only to the agent's commands, for
    the session `session_id`, releasing any earlier hold first. The caller waits SETTLE
    seconds before letting the agent run anything."""
    release(root)
    names = tuple(dict.fromkeys(p.rstrip("/") for p in paths if p))
    doc, original = _read_settings(root)
    wanted = claude_settings.Wanted(
        values={},
        items={
            "sandbox.filesystem.denyWrite": names,
            "permissions.deny": tuple(r for name in names for r in _rule(name)),
        },
    )
    merged, owned = claude_settings.merge_owned(doc, wanted)
    record = Hold(session_id, names, owned.to_json(), original)
    ledger = root / LEDGER
    ledger.parent.mkdir(parents=True, exist_ok=True)
    # The record first: a crash between the two leaves a release with something to do.
    install_files.write_atomic(ledger, _dump(record), follow=False)
    if merged != doc:
        _write_settings(root, merged)
        if original is None:
            _ignore(root)
    return record


def _dump(record: Hold) -> bytes:
    doc = {
        "session_id": record.session_id,
        "files": list(record.files),
        "owned": record.owned,
        "original": record.original,
    }
    return (json.dumps(doc, indent=1) + "\n").encode("utf-8")


def prepare(root: Path) -> None:
    """What holding will change in the git directory, done first: the session records
    git's state right after this, and the hold must not read as a change to it."""
    if not (root / LOCAL_SETTINGS).exists():
        _ignore(root)


def _ignore(root: Path) -> None:
    """Keep a settings.local.json agentloop created out of `git status` (and out of a
    `git add -A`), in the repository's own exclude file: no tracked file changes."""
    top = git.find_toplevel(root)
    if top is None:
        return
    rel = (root / LOCAL_SETTINGS).resolve().relative_to(top).as_posix()
    git.ignore_locally(root, "/" + rel, why="Claude Code's per-user settings (agentloop /autofix)")


def release(root: Path, session_id: str | None = None) -> bool:
    """End the hold (only if it is `session_id`'s, when given): take out of the settings
    file what holding added, and put the user's own file back as it was. True when a
    hold was released."""
    record = held(root)
    if record is None:
        (root / LEDGER).unlink(missing_ok=True)
        return False
    if session_id is not None and record.session_id != session_id:
        return False
    path = root / LOCAL_SETTINGS
    if path.exists():
        doc, _ = _read_settings(root)
        rest = claude_settings.unmerge_owned(doc, claude_settings.Owned.from_json(record.owned))
        before = json.loads(record.original) if record.original is not None else {}
        if rest == before and record.original is None:
            path.unlink()
        elif rest == before and record.original is not None:
            install_files.write_atomic(path, record.original.encode("utf-8"), follow=True)
        elif rest != doc:
            _write_settings(root, rest)
    (root / LEDGER).unlink(missing_ok=True)
    return True


def holds(root: Path) -> frozenset[str]:
    """The files a hold protects now, relative to the project root."""
    record = held(root)
    return frozenset(record.files) if record is not None else frozenset()


def relative_to_root(root: Path, top: Path, names: Iterable[str]) -> list[str]:
    """Top-relative names (git's) as project-relative ones; those outside the project are
    left out (the sandbox only lets commands write inside the project anyway)."""
    out: list[str] = []
    for name in names:
        relative = os.path.relpath(top / name, root)
        if not relative.startswith(".."):
            out.append(Path(relative).as_posix())
    return out
