"""The PreToolUse guard the agent runs under: the first line, never the only one.

It stops what it can see early, before anything is written, and says why: an edit of a
forbidden path or of git's own state (`.git`), a shell command that writes one or whose
targets cannot be known, git beyond reading, `gh`/`hub` beyond viewing, `git push` in any
spelling (rails/shell.py says what shell analysis cannot see), and reading a secret file.
The boundary is elsewhere: the OS sandbox bounds what the agent's commands can touch, and
after every attempt agentloop diffs the worktree against the rails (loop/runner).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from agentloop.agents.base import Guard
from agentloop.rails.paths import DEFAULT_SECRETS, OUTSIDE_REPOSITORY, ForbiddenPaths
from agentloop.rails.shell import analyse, judge

_EDIT_TOOLS = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path",
               "NotebookEdit": "notebook_path"}  # fmt: skip
# What separates a file name from what surrounds it in a command's words and code:
# `@.env` (curl), `HEAD:.env` (git show), `--env-file=.env`, `open('.env')`.
_SEPARATORS = re.compile(r"[\s'\"`@:=,;|&<>(){}]+")
_GLOB_CHARS = re.compile(r"[*?\[]")


def make_guard(
    forbidden: ForbiddenPaths,
    cwd: str | None = None,
    *,
    secrets: Sequence[str] = DEFAULT_SECRETS,
    interactive: bool = False,
) -> Guard:
    """The guard for a session in `cwd` (absolute; default: the repository root, which is
    where relative paths are then taken from). `secrets`: the files the agent may not
    read (`rails.secret_paths`). `interactive`: a Claude Code session of the user's, where
    the agent commits through agentloop's commit tool (the refusals say so); headless,
    agentloop commits accepted fixes itself. Either way the agent only reads git."""
    secret_files = _SecretFiles(tuple(secrets), forbidden.root)
    base = cwd or forbidden.root
    real_root = os.path.realpath(forbidden.root) if forbidden.root else None
    real_forbidden = replace(forbidden, root=real_root) if real_root else forbidden

    def absolute(path: str) -> str:
        if base and path and not path.startswith(("/", "~")):
            return posixpath.join(base, path)
        return path

    def sides(path: str) -> list[tuple[str, ForbiddenPaths]]:
        """The path as given, and where its symlinks lead when they exist: a link in the
        worktree that points into auth/ or .git is auth/ or .git."""
        found = [(path, forbidden)]
        if path.startswith("/"):
            real = os.path.realpath(path)
            if real != posixpath.normpath(path):
                found.append((real, real_forbidden))
        return found

    def secret(path: str) -> str | None:
        for side, _ in sides(absolute(path)):
            pattern = secret_files.pattern(side)
            if pattern is not None:
                return f"agentloop rails: {path} holds secrets ({pattern}); do not read it"
        return None

    def edit(path: str) -> str | None:
        for side, rules in sides(absolute(path)):
            if _in_git_dir(side):
                return f"agentloop rails: {path} is inside .git: git state is agentloop's"
            pattern = rules.match(side)
            if pattern is not None:
                through = f" (through a symbolic link to {side})" if side != absolute(path) else ""
                return (
                    f"agentloop rails: {path} is a forbidden path ({pattern}){through}; "
                    "do not edit it"
                )
        return secret(path)

    def bash(command: str) -> str | None:
        verdict = analyse(command, interactive=interactive)
        resolve = os.path.realpath if forbidden.root else None
        reasons = judge(verdict, forbidden, cwd, resolve=resolve)
        named = _named_secret(verdict.mentions, secret_files, absolute)
        if named is not None:
            piece, pattern = named
            holds = "may name files that hold" if _GLOB_CHARS.search(piece) else "holds"
            reasons.append(f"it reads {piece}, which {holds} secrets ({pattern})")
        if reasons:
            return "agentloop rails: " + "; ".join(reasons[:3])
        return None

    def guard(tool: str, tool_input: Mapping[str, Any]) -> str | None:
        if tool == "Read":
            return secret(str(tool_input.get("file_path") or ""))
        if tool == "Grep":
            # A Grep over a directory reads every file under it, secrets included, and
            # cannot be judged from its arguments: the sandbox and Claude Code's Read deny
            # rules are the boundary there. A secret file or a glob that names one is.
            path = str(tool_input.get("path") or "")
            glob = str(tool_input.get("glob") or "")
            if path and (reason := secret(path)) is not None:
                return reason
            pattern = secret_files.glob_pattern(glob) if glob else None
            if pattern is not None:
                return f"agentloop rails: the glob {glob} names files that hold secrets ({pattern})"
            return None
        # Glob lists names, not contents: nothing for the guard to refuse.
        key = _EDIT_TOOLS.get(tool)
        if key is not None:
            return edit(str(tool_input.get(key) or ""))
        if tool == "Bash":
            return bash(str(tool_input.get("command") or ""))
        return None

    return guard


def _in_git_dir(path: str) -> bool:
    return ".git" in posixpath.normpath(path).lower().split("/")


def _named_secret(
    mentions: Sequence[str], secret_files: _SecretFiles, absolute: Callable[[str], str]
) -> tuple[str, str] | None:
    """The first secret file a command names, and its pattern. Every literal counts,
    inside code too (`open('.env')`): reading is the harm, and a name is what the guard
    can see."""
    for mention in mentions:
        for piece in _SEPARATORS.split(mention):
            if not piece or piece == "-":
                continue
            if _GLOB_CHARS.search(piece):
                pattern = secret_files.glob_pattern(piece)
            else:
                pattern = secret_files.pattern(absolute(piece))
            if pattern is not None:
                return piece, pattern
    return None


class _SecretFiles:
    """The secret patterns, matched inside the repository as forbidden paths are, and
    outside it by name (`~/.netrc`, `/home/u/.aws/credentials` hold secrets too)."""

    def __init__(self, patterns: tuple[str, ...], root: str | None) -> None:
        self.inside = ForbiddenPaths(patterns, root=root)
        self.anywhere = ForbiddenPaths(patterns)
        self.patterns = patterns
        # Names the patterns match, to try globs against: `.env*` gives `.env` and `.envx`.
        self.samples: list[tuple[str, str]] = []
        for pattern in patterns:
            name = pattern.rstrip("/").rsplit("/", 1)[-1]
            for filler in ("", "x"):
                sample = name.replace("*", filler).replace("?", "x").lower()
                if sample and not _GLOB_CHARS.search(sample):
                    self.samples.append((sample, pattern))

    def pattern(self, path: str) -> str | None:
        if not path:
            return None
        if self.inside.relative(path) is not None:
            found = self.inside.match(path)
        else:
            stripped = re.sub(r"^(~[^/]*/|/+|(\.\./)+)+", "", posixpath.normpath(path))
            found = self.anywhere.match(stripped) if stripped else None
        return None if found in (None, OUTSIDE_REPOSITORY) else found

    def glob_pattern(self, glob: str) -> str | None:
        """The secret pattern a glob could match a file of (`.env*`, `**/.env`, `*.{pem,key}`).
        A glob of no literal character (`*`, `**/*`) is a whole directory: not judged."""
        for alternative in _braces(glob):
            name = alternative.rstrip("/").rsplit("/", 1)[-1].lower()
            if not _GLOB_CHARS.sub("", name):
                continue
            if not _GLOB_CHARS.search(name):
                found = self.pattern(alternative)
                if found is not None:
                    return found
                continue
            for sample, pattern in self.samples:
                if fnmatch.fnmatchcase(sample, name):
                    return pattern
        return None


def _braces(glob: str, limit: int = 64) -> list[str]:
    """`*.{env,pem}` is `*.env` and `*.pem` (innermost first, at most `limit` results)."""
    found = [glob]
    done: list[str] = []
    while found and len(done) + len(found) <= limit:
        current = found.pop()
        match = re.search(r"\{([^{}]*)\}", current)
        if match is None:
            done.append(current)
            continue
        for choice in match.group(1).split(","):
            found.append(current[: match.start()] + choice + current[match.end() :])
    return done + found
