"""`agentloop check`: does the change since `--base` keep agentloop's rails?

The same rails the headless loop applies after every attempt (`loop.runner`): forbidden
paths with the protected ones appended, and test integrity unless test edits are allowed;
the same inputs too: `git.changed_paths` against the base (committed, staged, unstaged,
untracked; both sides of a rename), BEFORE from git, AFTER from the disk. Paths are
relative to the repository's top level, as git and the loop speak them, also when the
project is a subdirectory of the repository (its own agentloop.yaml is the one read).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentloop import errors, git, output
from agentloop import session as session_mod
from agentloop.commands._project import git_project
from agentloop.config import CONFIG_FILE, RailsConfig, load_config
from agentloop.errors import ConfigError, UsageError
from agentloop.rails.change import ChangeCheck, check_change
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
    mine: set[str] = set()
    if base is None:
        base, mine = _session_base(root)
    try:
        checked = evaluate(root, top, config.rails, base=base, forbid=forbid, exclude=mine)
    except git.GitError as exc:
        if os.environ.get(_IN_SANDBOX):
            raise UsageError(
                "agentloop check cannot read the change from inside Claude Code's sandbox "
                "(git sees its placeholder files and unreadable secrets there)",
                hint="call agentloop's MCP tool instead: mcp__agentloop__check",
            ) from exc
        raise
    if as_json:
        output.print_json(checked.doc(top))
    else:
        output.print_check(checked.result, base=base, base_sha=checked.base_sha)
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
    base: str,
    forbid: Sequence[str] = (),
    exclude: Iterable[str] = (),
    paths: Sequence[str] | None = None,
) -> Checked:
    """The rails on the change since `base`: every changed path but `exclude`, or only
    `paths` (what a commit would take; top-relative). The rules are the ones at the base
    whenever the change touches the configuration, named or not."""
    base_sha = _resolve(top, base)
    everything = git.changed_paths(top, base_sha)
    skip = set(exclude)
    changed = [p for p in everything if p not in skip] if paths is None else list(paths)
    at_base = _rails_at_base(rails, root=root, top=top, base=base, sha=base_sha, changed=everything)
    forbidden = _forbidden(at_base, forbid, top)
    result = check_change(
        changed,
        forbidden=forbidden,
        allow_test_edits=at_base.allow_test_edits,
        before=lambda path: git.show_file(top, base_sha, path),
        after=lambda path: _read(top / path),
    )
    return Checked(result, forbidden, base, base_sha)


def _session_base(root: Path) -> tuple[str, set[str]]:
    """Inside an active /autofix session (Claude's Bash sets its id), the change is the
    session's: since HEAD as it was when the session started, so fixes the agent already
    committed are checked too, and without the files the user had uncommitted then (theirs,
    not the agent's). Elsewhere: since HEAD."""
    found = session_mod.in_environment(root)
    if found is not None:
        record = session_mod.load(found)
        if record.active and record.base_sha:
            return record.base_sha, set(record.user_files)
    return "HEAD", set()


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
