"""Who owns which file in a parallel build, and the one rule that follows: a stream's
agent writes only what its stream owns.

The globs are gitignore-style (git's wildmatch, through `pathspec`, as the forbidden
paths are), relative to the repository's top. Unlike the forbidden paths, ownership is
matched case-sensitively: it says what a stream may write, so a near miss (`SRC/api/x.py`
for `src/api/**`) must not count as owned. Erring this way costs one rejected attempt
that names the globs.

Three places enforce it, each on its own (a stream's session holds all three):
- the permission rules and the sandbox (`agents.sandbox.build_policy(owned=...)`): the
  file tools may edit the owned globs only, Bash cannot write the rest of the worktree as
  it exists when the session starts;
- the guard (`guard`): refuses the edit before it happens and says whose file it is;
- the diff check after each attempt (`Ownership.violations`): sees every changed path,
  new files included, whatever wrote them.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pathspec import PathSpec, Pattern

from agentloop.agents.base import Guard
from agentloop.build.model import Manifest
from agentloop.rails.shell import analyse

_EDIT_TOOLS = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path",
               "NotebookEdit": "notebook_path"}  # fmt: skip


@dataclass(frozen=True)
class Owned:
    """One stream's globs."""

    stream: str
    globs: tuple[str, ...]

    @cached_property
    def _spec(self) -> PathSpec[Pattern]:
        return PathSpec.from_lines("gitignore", self.globs)

    def owns(self, path: str) -> bool:
        """Whether `path` (top-relative, POSIX) is this stream's to write. With `!`
        globs the last matching one decides, as in a .gitignore file."""
        normal = posixpath.normpath(path)
        if normal in (".", "..") or normal.startswith(("../", "/")):
            return False
        return self._spec.match_file(normal)


@dataclass(frozen=True)
class Violation:
    path: str
    stream: str  # the stream that wrote it
    owner: str | None  # the stream that owns it, None when no stream does

    def __str__(self) -> str:
        belongs = f"belongs to stream {self.owner}" if self.owner else "is owned by no stream"
        return f"{self.path} {belongs}"


@dataclass(frozen=True)
class Ownership:
    """Every stream's globs, to tell a stream's agent whose file it reached for."""

    streams: tuple[Owned, ...]

    @classmethod
    def of(cls, manifest: Manifest) -> Ownership:
        return cls(tuple(Owned(s.id, s.owns) for s in manifest.streams))

    def of_stream(self, stream: str) -> Owned:
        return next(o for o in self.streams if o.stream == stream)

    def owner(self, path: str) -> str | None:
        """The stream that owns `path`; the first when the manifest (wrongly) gives it
        to several: validation refuses overlaps before anything runs."""
        return next((o.stream for o in self.streams if o.owns(path)), None)

    def violations(self, stream: str, changed: Iterable[str]) -> tuple[Violation, ...]:
        """The changed paths `stream` does not own, each once, in the order given."""
        owned = self.of_stream(stream)
        seen: dict[str, Violation] = {}
        for path in changed:
            if path not in seen and not owned.owns(path):
                seen[path] = Violation(path, stream, self.owner(path))
        return tuple(seen.values())

    def explain(self, stream: str, paths: Iterable[str]) -> str:
        """'stream api owns src/api/**; web/app.tsx belongs to stream ui': the line a
        refusal and a rejected attempt say, so the next attempt knows where to stay."""
        owned = self.of_stream(stream)
        found = self.violations(stream, paths)
        return f"stream {stream} owns {', '.join(owned.globs)}; " + "; ".join(str(v) for v in found)


def guard(inner: Guard | None, ownership: Ownership, stream: str, top: str) -> Guard:
    """`inner` (the rails' guard for the stream's worktree `top`, absolute) with the
    ownership rule in front: an edit of a path the stream does not own, or a shell
    command that names one as a target it writes, is refused with whose it is. What
    shell analysis cannot see (a program that writes on its own) is the sandbox's and
    the diff check's."""

    def relative(path: str) -> str | None:
        if not path:
            return None
        absolute = path if path.startswith("/") else posixpath.join(top, path)
        for candidate in (posixpath.normpath(absolute), os.path.realpath(absolute)):
            if candidate == top or candidate.startswith(top.rstrip("/") + "/"):
                return posixpath.relpath(candidate, top)
        return None  # outside the worktree: the rails' guard and the sandbox judge it

    def refused(paths: Iterable[str]) -> str | None:
        inside = [rel for rel in (relative(p) for p in paths) if rel is not None]
        if not ownership.violations(stream, inside):
            return None
        return (
            f"agentloop build: {ownership.explain(stream, inside)}; write only the files "
            "your stream owns"
        )

    def check(tool: str, tool_input: Mapping[str, Any]) -> str | None:
        key = _EDIT_TOOLS.get(tool)
        reason: str | None = None
        if key is not None:
            reason = refused([str(tool_input.get(key) or "")])
        elif tool == "Bash":
            verdict = analyse(str(tool_input.get("command") or ""))
            # Unknown targets (`python script.py`) are not refused here: the stream's
            # own tests run that way; the sandbox and the diff check bound them.
            reason = refused(verdict.paths)
        if reason is not None:
            return reason
        return inner(tool, tool_input) if inner is not None else None

    return check
