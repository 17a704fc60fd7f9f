"""Forbidden paths: which changed files an attempt may not touch.

Patterns use git's wildmatch rules through `pathspec` (registered there as "gitignore"; the
older name "gitwildmatch" is deprecated since pathspec 1.0). `fnmatch` would get them
wrong: its `*` crosses `/`, it knows no `**`, and a pattern without a slash does not match
at any depth, so `**/auth/**` and `.env*` would both mean something else.

Matching is case-insensitive, on purpose. macOS and Windows file systems are
case-insensitive, so `Auth/login.py` and `auth/login.py` can be the same file, and a user
who forbids `**/auth/**` means the code, not the spelling. A rail should err towards
refusing: the cost of a false positive is one rejected attempt that names the pattern.

Paths are pure strings (no file system, no git): the loop feeds them from
`git diff --name-status -z`, the hook from a tool call's arguments.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from pathspec import PathSpec, Pattern

DEFAULT_FORBIDDEN: tuple[str, ...] = (
    "**/auth/**",
    "**/payments/**",
    "**/billing/**",
    "**/*delet*",
    # Django and most Python/JS tools, Alembic, Rails.
    "**/migrations/**",
    "**/alembic/versions/**",
    "**/db/migrate/**",
    # No slash: gitignore rules match it at any depth (`config/.env`, `.env.production`).
    ".env*",
    ".github/workflows/**",
    ".claude/**",
    # Also a nested project's own config in a monorepo, which is what a user would expect.
    "agentloop.yaml",
)

# Files that hold secrets: the agent may not read them (the model would see their contents,
# and the transcript keeps them). The sandbox denies Bash reading them, permission rules and
# the guard deny the file tools. Patterns as above; matched case-insensitively.
DEFAULT_SECRETS: tuple[str, ...] = (
    ".env*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "credentials.json",
    "**/.aws/credentials",
)

# The rails themselves: forbidden whatever the configuration says, so an agent can never
# loosen the rules it runs under (Claude Code's settings can switch hooks off:
# `disableAllHooks`), nor forge agentloop's own records (the interactive session state
# the stop gate reads lives in .agentloop/), nor change what .mcp.json starts outside the
# sandbox (agentloop's MCP server is approved by name).
PROTECTED: tuple[str, ...] = (
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".claude/hooks/**",
    ".claude/skills/**",
    ".mcp.json",
    "agentloop.yaml",
    ".agentloop/**",
)

# What `match` names instead of a pattern when a path is not inside the repository at all.
OUTSIDE_REPOSITORY = "<outside the repository>"
# What a symbolic link a change adds is refused for when it lands on no forbidden path: an
# absolute or escaping target (it points into this one checkout, or outside it), or a
# target the change itself does not hold (an ignored file, in a fresh checkout nothing).
LINK_OUTSIDE = "<a symbolic link out of the repository>"
LINK_NOWHERE = "<a symbolic link to what the change does not hold>"
_PLAIN = {
    OUTSIDE_REPOSITORY: "outside the repository",
    LINK_OUTSIDE: "a symbolic link out of the repository",
    LINK_NOWHERE: "a symbolic link to what the change does not hold",
}

_DRIVE = re.compile(r"^[A-Za-z]:/")


@dataclass(frozen=True)
class Rename:
    """A file moved by the change: both sides count, since moving a forbidden file away
    deletes it and moving a file into a forbidden place creates one there."""

    old: str
    new: str


@dataclass(frozen=True)
class PathViolation:
    path: str
    # The forbidden pattern the path matched, or OUTSIDE_REPOSITORY.
    pattern: str
    # The other side when `path` is one side of a rename.
    renamed_with: str | None = None
    # What `path` points at, when it is a symbolic link the change adds.
    link: str | None = None

    @property
    def detail(self) -> str:
        plain = _PLAIN.get(self.pattern)
        if self.link is not None:
            what = plain or f"a symbolic link into a forbidden path ({self.pattern})"
        else:
            what = plain or f"matches forbidden pattern {self.pattern}"
        return what + (f" (renamed with {self.renamed_with})" if self.renamed_with else "")

    @property
    def named_pattern(self) -> str | None:
        """The forbidden pattern, None for the sentinels above."""
        return None if self.pattern in _PLAIN else self.pattern

    def __str__(self) -> str:
        where = f"{self.path} -> {self.link}" if self.link is not None else self.path
        return f"{where}: {self.detail}"


@dataclass(frozen=True)
class ForbiddenPaths:
    patterns: tuple[str, ...] = DEFAULT_FORBIDDEN
    # The repository's absolute POSIX path. Absolute paths under it (the hook sees those)
    # are matched relative to it; any other absolute path is outside the repository.
    root: str | None = None

    def __post_init__(self) -> None:
        # Fail at construction, naming the pattern, rather than at the first match.
        for pattern in self.patterns:
            try:
                PathSpec.from_lines("gitignore", [pattern])
            except (ValueError, re.error) as exc:
                raise ValueError(f"invalid forbidden-path pattern {pattern!r}: {exc}") from exc

    @cached_property
    def _spec(self) -> PathSpec[Pattern]:
        return PathSpec.from_lines("gitignore", [p.lower() for p in self.patterns])

    def relative(self, path: str) -> str | None:
        """`path` as a normalised repository-relative POSIX path, or None when it does not
        name a file inside the repository (`../x`, an absolute path elsewhere, empty)."""
        # A backslash is a separator to Windows tools; treating it as one can only add
        # matches, never hide one.
        posix = path.replace("\\", "/")
        if posix.startswith("/") or _DRIVE.match(posix):
            if self.root is None:
                return None
            prefix = posixpath.normpath(self.root.replace("\\", "/")).rstrip("/") + "/"
            posix = posixpath.normpath(posix)
            if not posix.startswith(prefix):
                return None
            posix = posix[len(prefix) :]
        # Pure string normalisation (`./a`, `a//b`, `a/b/../c`; "" becomes "."): git never
        # reports a path through a symlink, and the hook's paths are the agent's spelling.
        posix = posixpath.normpath(posix)
        if posix in (".", "..") or posix.startswith("../"):
            return None
        return posix

    def match(self, path: str) -> str | None:
        """The pattern that forbids `path` (OUTSIDE_REPOSITORY when it escapes the
        repository), or None when the path is allowed. With `!` patterns the last
        matching pattern decides, as in a .gitignore file."""
        relative = self.relative(path)
        if relative is None:
            return OUTSIDE_REPOSITORY
        # Also as a directory: the hook sees `rm -r src/auth`, where `**/auth/**` matches
        # what is inside but not the name itself. (A parent such as `.github` cannot be
        # judged from its name; the caller passes the files under it.)
        for candidate in (relative.lower(), relative.lower() + "/"):
            result = self._spec.check_file(candidate)
            if result.index is not None:
                # The last matching pattern decides; a `!` pattern allows.
                return self.patterns[result.index] if result.include else None
        return None

    @classmethod
    def with_protected(cls, patterns: Iterable[str], root: str | None = None) -> ForbiddenPaths:
        """`patterns` and then PROTECTED: last, so no `!` pattern can allow them again.
        (pyproject.toml is not protected even when it holds [tool.agentloop]: fixes need
        to edit it; the diff check after each headless attempt still sees it.)"""
        return cls((*(p for p in patterns if p not in PROTECTED), *PROTECTED), root=root)

    def link_violations(
        self, links: Mapping[str, str], held: Callable[[str], bool]
    ) -> tuple[PathViolation, ...]:
        """The symbolic links a change adds (path → target) that land outside the
        repository, on a forbidden path, or on nothing `held` (a path the change holds,
        file or directory)."""
        found = []
        for path, target in links.items():
            landed = link_target(path, target)
            if landed is None:
                pattern: str | None = LINK_OUTSIDE
            else:
                pattern = self.match(landed)
                if pattern is None and not held(landed):
                    pattern = LINK_NOWHERE
            if pattern is not None:
                found.append(PathViolation(path, pattern, link=target))
        return tuple(found)

    def violations(self, paths: Iterable[str | Rename]) -> tuple[PathViolation, ...]:
        """One violation per forbidden path, in the order given, each path once."""
        found: list[PathViolation] = []
        seen: set[str] = set()
        for item in paths:
            sides = (
                [(item.old, item.new), (item.new, item.old)]
                if isinstance(item, Rename)
                else [(item, None)]
            )
            for path, other in sides:
                pattern = self.match(path)
                if pattern is not None and path not in seen:
                    seen.add(path)
                    found.append(PathViolation(path, pattern, other))
        return tuple(found)


def link_target(link: str, target: str) -> str | None:
    """Where a symbolic link at `link` (repository-relative) lands, repository-relative;
    None when it leaves the repository or is absolute (it points into this one checkout,
    not the repository: in any other checkout it lands elsewhere or nowhere)."""
    if target.startswith("/") or _DRIVE.match(target.replace("\\", "/")):
        return None
    landed = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if landed in (".", "..") or landed.startswith("../"):
        return None
    return landed
