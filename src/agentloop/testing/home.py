"""What the test suite could write into the real home directory, and only that.

The home directory itself changes all the time (shell history, caches, other programs),
so its listing and mtime say nothing about the tests. What a test could write there, if
some code ignored the HOME each test is given, are agentloop's files, git's and Claude
Code's. agentloop's and git's are watched by name, size and mtime: nothing else on the
machine writes them while the suite runs. Claude Code's (~/.claude, ~/.claude.json) are
written by every Claude Code session on the machine, the one running `make test`
included, so they are searched for the test's own traces instead: a project entry for a
directory under the suite's temporary directory, where every test works.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

# Relative to the home directory; a trailing "*" matches any name with that prefix.
WATCHED = (
    ".gitconfig",
    ".config/git",
    ".agentloop*",
    ".config/agentloop",
    ".cache/agentloop",
    ".local/share/agentloop",
)
CLAUDE_DIRS = (".claude", ".config/claude*")
CLAUDE_JSON = ".claude.json"


@dataclass(frozen=True)
class HomeState:
    # (path relative to home, size, mtime in ns) of every watched file and folder.
    files: frozenset[tuple[str, int, int]]
    # Claude Code project entries that point under the suite's temporary directory.
    traces: frozenset[str]


def _expand(home: Path, pattern: str) -> list[Path]:
    if not pattern.endswith("*"):
        return [home / pattern]
    parent = (home / pattern).parent
    prefix = Path(pattern).name[:-1]
    try:
        return [parent / n for n in os.listdir(parent) if n.startswith(prefix)]
    except OSError:
        return []


def _stat_tree(home: Path, top: Path) -> set[tuple[str, int, int]]:
    found: set[tuple[str, int, int]] = set()
    paths = [top]
    if top.is_dir() and not top.is_symlink():
        paths += [Path(d) / n for d, dirs, files in os.walk(top) for n in (*dirs, *files)]
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue
        found.add((path.relative_to(home).as_posix(), st.st_size, st.st_mtime_ns))
    return found


def sanitized(path: str) -> str:
    """Claude Code's name for a project folder under ~/.claude/projects."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


def home_state(home: Path, tmp_root: Path) -> HomeState:
    files: set[tuple[str, int, int]] = set()
    for pattern in WATCHED:
        for path in _expand(home, pattern):
            files |= _stat_tree(home, path)
    roots = {str(tmp_root), os.path.realpath(tmp_root)}
    names = {sanitized(r) for r in roots}
    traces: set[str] = set()
    for pattern in CLAUDE_DIRS:
        for folder in _expand(home, pattern):
            try:
                entries = os.listdir(folder / "projects")
            except OSError:
                continue
            traces |= {f"{folder.name}/projects/{e}" for e in entries if any(n in e for n in names)}
    try:
        projects = json.loads((home / CLAUDE_JSON).read_bytes()).get("projects") or {}
    except (OSError, ValueError, AttributeError):
        projects = {}
    if isinstance(projects, dict):
        traces |= {
            f"{CLAUDE_JSON}: {key}"
            for key in projects
            if any(str(key).startswith(r) for r in roots)
        }
    return HomeState(frozenset(files), frozenset(traces))


def written(before: HomeState, after: HomeState) -> list[str]:
    """What changed between two states, one line each."""
    old = {path: (size, mtime) for path, size, mtime in before.files}
    new = {path: (size, mtime) for path, size, mtime in after.files}
    lines = [f"{p} created" for p in sorted(new.keys() - old.keys())]
    lines += [f"{p} removed" for p in sorted(old.keys() - new.keys())]
    lines += [f"{p} changed" for p in sorted(old.keys() & new.keys()) if old[p] != new[p]]
    lines += [
        f"{t} (Claude Code, for a test's directory)" for t in sorted(after.traces - before.traces)
    ]
    return lines
