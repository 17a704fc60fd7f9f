"""`agentloop check`: does the change since `--base` keep agentloop's rails?

The same rails the headless loop applies after every attempt (`loop.runner`): forbidden
paths with the protected ones appended, and test integrity unless test edits are allowed;
the same inputs too: the change by content against the base (`git.snapshot_tree`:
committed, staged, unstaged, untracked, both sides of a rename; no index flag hides one),
plus any .gitignore that ignores itself, BEFORE from git, AFTER from the disk. agentloop's
own `.agentloop/` is never part of it. Paths are relative to the repository's top level,
as git and the loop speak them, also when the project is a subdirectory of the repository
(its own agentloop.yaml is the one read).

Inside an active /autofix session (the agent works in the user's own checkout) it also
compares with what `agentloop session start` saved: every file the user had uncommitted
work in must have the content it had then, and git's shared state (refs, the stash, config,
hooks, info) must not have moved, but for the current branch advancing through the
commits agentloop made for the session. `agentloop check` needs git's object store, so
inside Claude Code's sandbox an /autofix session calls the same check through agentloop's
MCP server instead (`evaluate`, from commands.mcp).
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agentloop import errors, git, output
from agentloop import session as session_mod
from agentloop.commands._project import git_project
from agentloop.config import CONFIG_FILE, RailsConfig, load_config
from agentloop.errors import ConfigError, UsageError
from agentloop.rails.change import ChangeCheck, SessionViolation, check_change
from agentloop.rails.gitstate import GitState, StateChange
from agentloop.rails.paths import ForbiddenPaths

_CONFIG_FILES = (CONFIG_FILE, "pyproject.toml")
# Set in the environment of every command Claude Code's sandbox runs (2.1.332).
_IN_SANDBOX = "SANDBOX_RUNTIME"


def check(*, repo: Path, base: str | None, forbid: list[str], as_json: bool) -> int:
    root, top = git_project(
        repo,
        why="agentloop check reads the change from git",
        hint="run it inside a git checkout (or pass one with --repo)",
    )
    config, _ = load_config(root)
    _forbidden(config.rails, forbid, top)  # a bad pattern fails before any git work
    try:
        checked = evaluate(
            root, top, config.rails, base=base, forbid=forbid, session=_active_session(root)
        )
    except git.GitError as exc:
        if os.environ.get(_IN_SANDBOX):
            raise UsageError(
                "agentloop check cannot read the change from inside Claude Code's sandbox "
                "(git's object store is read-only there, and git sees the sandbox's "
                "placeholder files and unreadable secrets as changes)",
                hint="call agentloop's MCP tool instead: mcp__agentloop__check",
            ) from exc
        raise
    if as_json:
        output.print_json(checked.doc(top))
    else:
        output.print_check(checked.result, base=checked.base, base_sha=checked.base_sha)
    return errors.OK if checked.result.ok else errors.FAILURES_FOUND


@dataclass(frozen=True)
class Checked:
    result: ChangeCheck
    forbidden: ForbiddenPaths
    base: str
    base_sha: str

    def doc(self, top: Path) -> dict[str, Any]:
        return output.check_doc(
            self.result,
            repository=top,
            base=self.base,
            base_sha=self.base_sha,
            patterns=self.forbidden.patterns,
        )


def evaluate(
    root: Path,
    top: Path,
    rails: RailsConfig,
    *,
    base: str | None,
    forbid: Sequence[str] = (),
    session: tuple[Path, session_mod.Session] | None = None,
    exclude: Iterable[str] = (),
    paths: Sequence[str] | None = None,
) -> Checked:
    """The rails on the change since `base` (None: HEAD, or in an active `session` HEAD as
    it was when the session started, so fixes already committed are checked too, and
    without the files the user had uncommitted then: theirs, not the agent's). Every
    changed path but `exclude`, or only `paths` (what a commit would take; top-relative).
    The rules are the ones at the base whenever the change touches the configuration,
    named or not; a session adds its own checks (the user's work, git's state)."""
    mine: set[str] = set(exclude)
    if base is None:
        base = "HEAD"
        if session is not None and session[1].base_sha:
            base = session[1].base_sha
            mine |= set(session[1].user_files)
    base_sha = _resolve(top, base)
    own = _own_dir(root, top)
    snapshot = git.snapshot_tree(top, base_sha)
    everything = sorted(
        path
        for path in {*snapshot.changed, *git.hidden_ignore_files(top)}
        if not path.startswith(own)
    )
    changed = [p for p in everything if p not in mine] if paths is None else list(paths)
    at_base = _rails_at_base(rails, root=root, top=top, base=base, sha=base_sha, changed=everything)
    forbidden = _forbidden(at_base, forbid, top)
    tree = git.tree_links(top, snapshot.tree, changed)
    result = check_change(
        changed,
        forbidden=forbidden,
        allow_test_edits=at_base.allow_test_edits,
        before=lambda path: git.show_file(top, base_sha, path),
        after=lambda path: _read(top / path),
        links=tree.links,
        held=tree.holds,
    )
    if session is not None and paths is None:
        result = replace(result, session=_session_violations(root, top, *session))
    return Checked(result, forbidden, base, base_sha)


def _active_session(root: Path) -> tuple[Path, session_mod.Session] | None:
    """The /autofix session whose Claude Code Bash runs this (it sets the session id),
    when it is active."""
    found = session_mod.in_environment(root)
    if found is None:
        return None
    record = session_mod.load(found)
    return (found, record) if record.active else None


def _own_dir(root: Path, top: Path) -> str:
    rel = root.relative_to(top).as_posix()
    return ".agentloop/" if rel == "." else f"{rel}/.agentloop/"


def _session_violations(
    root: Path, top: Path, path: Path, record: session_mod.Session
) -> tuple[SessionViolation, ...]:
    found: list[SessionViolation] = []
    patch = session_mod.work_patch(path)
    apply = "git apply" if root == top else f"git -C {shlex.quote(str(top))} apply"
    shown_patch = shlex.quote(_relative(patch, top))
    for f in record.user_work:
        if session_mod.content_hash(top / f.path) == f.sha256:
            continue
        name = shlex.quote(f.path)
        detail = (
            f"the user had deleted {f.path} (uncommitted) and it is back; delete it again: "
            f"rm {name}"
            if f.sha256 is None
            else f"the user's uncommitted change to {f.path} was overwritten; restore it: "
            f"{apply} --include={name} {shown_patch}"
        )
        found.append(SessionViolation("user_work_lost", f.path, detail))
    state_file = session_mod.git_state_file(path)
    if state_file.is_file():
        before = GitState.from_json(state_file.read_text(encoding="utf-8"))
        after = GitState.capture(top)
        ignore = _own_commits(top, before, after, record.commits)
        copies = session_mod.artifacts_of(path) / "git-state"
        found += [
            SessionViolation("git_state_changed", c.item, _state_detail(before, c, copies))
            for c in before.changes(after, ignore=ignore)
        ]
    return tuple(found)


def _own_commits(top: Path, before: GitState, after: GitState, commits: Sequence[str]) -> list[str]:
    """The branch checked out at the start, when it moved only by commits agentloop made
    for the session (descendants of where it was, each one recorded)."""
    head = git.git_dir(top)
    label = (
        "HEAD"
        if head == Path(before.common_dir)
        else f"{_relative(head, Path(before.common_dir))}/HEAD"
    )
    entry = before.files.get(label)
    text = entry.data.decode("utf-8", "replace").strip() if entry else ""
    if not text.startswith("ref: "):
        return []
    ref = text.removeprefix("ref: ")
    old, new = before.refs.get(ref), after.refs.get(ref)
    if old is None or new is None or old == new or new.startswith("ref: "):
        return []
    if not git.is_ancestor(top, old, new):
        return []
    made = set(commits)
    return [ref] if all(sha in made for sha in git.commits_between(top, old, new)) else []


def _state_detail(before: GitState, change: StateChange, copies: Path) -> str:
    if change.fix:
        return f"{change.detail}; put it back: {change.fix}"
    entry = before.files.get(change.item) if change.area == "file" else None
    if entry is None:
        return f"{change.detail}; put it back as it was when the session started"
    # No command says it: a copy of the file as it was, to copy over it.
    copy = copies / change.item.lstrip("/")
    copy.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(copy):
        copy.unlink()
    if entry.link is not None:
        os.symlink(entry.link, copy)
    else:
        copy.write_bytes(entry.data)
        copy.chmod(entry.mode)
    target = before.path_of(change.item)
    return (
        f"{change.detail}; put it back: cp -P {shlex.quote(str(copy))} {shlex.quote(str(target))}"
    )


def _relative(path: Path, start: Path) -> str:
    try:
        return path.relative_to(start).as_posix()
    except ValueError:
        return str(path)


def _forbidden(rails: RailsConfig, forbid: Sequence[str], top: Path) -> ForbiddenPaths:
    try:
        return ForbiddenPaths.with_protected((*rails.forbidden_paths, *forbid), root=str(top))
    except ValueError as exc:  # e.g. --forbid '[a'
        raise ConfigError(
            str(exc), hint="fix the pattern in --forbid or rails.forbidden_paths"
        ) from None


def _rails_at_base(
    current: RailsConfig, *, root: Path, top: Path, base: str, sha: str, changed: Sequence[str]
) -> RailsConfig:
    """The rails as configured at the base. A change must not loosen the rules it is
    checked against: agentloop.yaml is protected, but [tool.agentloop] in pyproject.toml
    is not (fixes edit pyproject.toml), and `rails.allow_test_edits = true` added there
    would switch the integrity check off. (The loop reads its config before any attempt.)"""
    rel = root.relative_to(top).as_posix()
    prefix = "" if rel == "." else rel + "/"
    if not any(prefix + name in changed for name in _CONFIG_FILES):
        return current  # the files on disk are the committed ones
    with tempfile.TemporaryDirectory(prefix="agentloop-check-") as tmp:
        for name in _CONFIG_FILES:
            text = git.show_file(top, sha, prefix + name)
            if text is not None:
                (Path(tmp) / name).write_text(text, encoding="utf-8")
        try:
            config, _ = load_config(Path(tmp))
        except ConfigError as exc:
            raise ConfigError(
                f"{exc.message} (as committed at {base})",
                hint="the rails are read from the base commit: pass a --base whose "
                "configuration is valid, or commit the fixed configuration first",
            ) from None
    return config.rails


def _resolve(top: Path, base: str) -> str:
    sha = git.rev_parse(top, f"{base}^{{commit}}")
    if sha is not None:
        return sha
    if git.rev_parse(top, "HEAD^{commit}") is None:
        raise UsageError(
            f"{top} has no commit yet, so there is no {base} to compare with",
            hint="commit first: git add -A && git commit -m 'initial commit'",
        )
    raise UsageError(
        f"--base {base!r} is not a commit in {top}",
        hint="pass a commit sha, branch or tag that exists (see `git log --oneline`)",
    )


def _read(path: Path) -> str | None:
    # As the loop reads AFTER: leniently decoded, None when there is no file.
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
