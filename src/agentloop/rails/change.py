"""A whole change against the rails: its forbidden paths and, unless test edits are
allowed, its test integrity. Pure like the checks it combines: the caller says which paths
changed and how to read a file before and after the change (None: absent on that side)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agentloop.rails.integrity import IntegrityViolation, check_integrity
from agentloop.rails.paths import ForbiddenPaths, PathViolation

Reader = Callable[[str], str | None]


SessionKind = Literal["user_work_lost", "git_state_changed"]


@dataclass(frozen=True)
class SessionViolation:
    """Inside an /autofix session: the user's uncommitted work overwritten, or git's shared
    state (refs, stash, config, hooks, info) moved since the session started. `path` is the
    user's file, or the ref or git file; `detail` says what happened and how to undo it."""

    kind: SessionKind
    path: str
    detail: str


@dataclass(frozen=True)
class ChangeCheck:
    changed: tuple[str, ...]
    forbidden: tuple[PathViolation, ...]
    integrity: tuple[IntegrityViolation, ...]
    # False when `rails.allow_test_edits` switched the integrity check off.
    integrity_checked: bool
    session: tuple[SessionViolation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.forbidden and not self.integrity and not self.session

    @property
    def problems(self) -> int:
        return len(self.forbidden) + len(self.integrity) + len(self.session)


class _Contents(Mapping[str, str | None]):
    """File contents read on first use: check_integrity looks only at test files, and a
    change can hold many other files (each read from git costs a process)."""

    def __init__(self, paths: Sequence[str], read: Reader) -> None:
        self._paths, self._known, self._read = paths, frozenset(paths), read
        self._cache: dict[str, str | None] = {}

    def __getitem__(self, path: str) -> str | None:
        if path not in self._known:
            raise KeyError(path)
        if path not in self._cache:
            self._cache[path] = self._read(path)
        return self._cache[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def check_change(
    changed: Sequence[str],
    *,
    forbidden: ForbiddenPaths,
    allow_test_edits: bool,
    before: Reader,
    after: Reader,
    links: Mapping[str, str] | None = None,
    held: Callable[[str], bool] = lambda _path: True,
) -> ChangeCheck:
    """Every problem at once (the loop stops at the first kind; a person or an
    interactive session fixing by hand wants the whole list). `links`: the changed paths
    that are symbolic links (→ their targets); `held`: whether the change holds a path."""
    paths = tuple(changed)
    integrity: tuple[IntegrityViolation, ...] = ()
    if not allow_test_edits and paths:
        integrity = check_integrity(_Contents(paths, before), _Contents(paths, after))
    return ChangeCheck(
        changed=paths,
        forbidden=(
            *forbidden.violations(paths),
            *forbidden.link_violations(links or {}, held),
        ),
        integrity=integrity,
        integrity_checked=not allow_test_edits,
    )
