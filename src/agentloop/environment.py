"""The project's environment in a run's worktree: the checkout's `.venv` and `node_modules`.

A worktree holds what git tracks, so what the user's checkout has ignored (the virtual
environment, node_modules) is missing there, and the suites that `agentloop detect` runs
fine in the checkout break in the run (`npx --no-install vitest` finds no vitest, pytest
falls back to another interpreter). So each ignored environment of the checkout is given
to the worktree at the same place, as a *mirror*: a real directory whose entries are
symbolic links to the checkout's entries.

Why a real directory and not one link: git matches a rule `node_modules/` (the usual one)
only against directories, so a link of that name would show as a new untracked file, be
part of the agent's change, and be refused as "a symbolic link out of the change". A real
directory is ignored exactly as in the checkout, so every attempt keeps it, and the
sandbox makes it read-only with everything else ignored before a session. Why it works:
Node resolves a package by its real path (so a package's own dependencies are found next
to it in the checkout), `npx --no-install` finds `node_modules/.bin/<tool>`, and Python
finds the venv's `pyvenv.cfg` next to `bin/` of the path it was started by, so
`.venv/bin/python` in the worktree runs with the checkout's site-packages; the worktree's
own code comes first on PYTHONPATH (`Workspace.env`, `editable_paths`).

Generated files beside the code are copied, not linked: an ignored file in a folder the
worktree has (so one holding tracked files) and below the top, such as the `_version.py`
that setuptools-scm or hatch-vcs writes, compiled translations (`.mo`) or an extension
built in place (`.so`). Without them the worktree's code, first on the path, fails to
import where the checkout's works (humanize). Secrets, logs, caches and hidden files
(tools' settings: `.claude/settings.local.json`) are never copied.

What is not linked in a mirror: `.gitignore` is copied (git does not read a linked one,
and uv's venv ignores itself with it); tool caches in node_modules (`.vite`, `.cache`)
start empty, so vitest writes its results cache into the worktree, not into the user's
node_modules; an npm workspace package (a link from node_modules into the checkout's own
code) points at the worktree's copy of that package, not the checkout's.

Safety: the mirrors are unlinked entry by entry before a worktree goes (`unlink`), never
deleted through; `git worktree remove` and `git clean` do not follow links either. Under
the sandbox the agent cannot write the checkout (it is outside the worktree) and the
sandbox denies the links' real paths by name (`agents.sandbox.build_policy`).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentloop.rails.paths import ForbiddenPaths

VENV_NAMES = (".venv", "venv")  # where suites._python_for looks for the interpreter
NODE_MODULES = "node_modules"
# Written by tools as they run: each worktree gets its own (empty) one.
_NODE_CACHES = frozenset({".cache", ".vite", ".vitest"})
# Ignored files that are no code's input: never copied.
_NOT_GENERATED = (".pyc", ".pyo", ".log", ".swp", ".swo", ".tmp", "~", ".orig", ".rej", ".bak")
_NOT_GENERATED_NAMES = frozenset({".DS_Store", ".coverage", "Thumbs.db"})
# A generated file bigger than this is not something a checkout's tests import.
MAX_GENERATED_BYTES = 64 * 1024 * 1024
# A worktree is made for every run: past these, what is left is not copied.
MAX_GENERATED_FILES = 5000
MAX_GENERATED_TOTAL = 256 * 1024 * 1024


@dataclass(frozen=True)
class Mirror:
    """One environment of the checkout given to worktrees at `path` (top-relative)."""

    path: str
    source: Path  # the checkout's directory (or file, when generated)
    kind: Literal["venv", "node_modules", "generated"]


def find(
    checkout: Path, project: str, ignored: Iterable[str], *, secrets: Sequence[str] = ()
) -> tuple[Mirror, ...]:
    """The checkout's environments a worktree lacks: the venv at the project's root that
    `agentloop detect` would use there, every node_modules beside a package.json, and the
    generated files beside the code (none matching `secrets`, git wildmatch patterns).
    `ignored`: the checkout's ignored entries (`git.ignored_entries`): only what git
    ignores there is given (but a venv), since the worktree has everything else already
    (`link` makes nothing where the worktree has something)."""
    found: list[Mirror] = []
    prefix = f"{project.strip('/')}/" if project.strip("/") not in ("", ".") else ""
    secret = ForbiddenPaths(tuple(secrets))
    generated, total = 0, 0
    for entry in sorted(ignored):
        rel = entry.rstrip("/")
        source = checkout / rel
        name = source.name
        size = _generated(entry, source)
        if size is not None and secret.match(rel) is None:
            if generated < MAX_GENERATED_FILES and total + size <= MAX_GENERATED_TOTAL:
                found.append(Mirror(rel, source, "generated"))
                generated, total = generated + 1, total + size
            continue
        # A directory, or (listed without "/", as git sees a link) a link to one.
        if not source.is_dir():
            continue
        if name in VENV_NAMES and rel == f"{prefix}{name}":
            if (source / "bin" / "python").is_file():
                found.append(Mirror(rel, source, "venv"))
        elif name == NODE_MODULES and (source.parent / "package.json").is_file():
            found.append(Mirror(rel, source, "node_modules"))
    # A venv nobody told git to ignore (`python -m venv` before 3.13 writes no
    # .gitignore) is still the one detect uses: its mirror ignores itself.
    for name in VENV_NAMES:
        rel, source = f"{prefix}{name}", checkout / prefix / name
        if (source / "bin" / "python").is_file() and all(m.path != rel for m in found):
            found.append(Mirror(rel, source, "venv"))
    return tuple(found)


def _generated(entry: str, source: Path) -> int | None:
    """The size of `entry` when it is a generated file to copy, else None."""
    if entry.endswith("/") or "/" not in entry or source.is_symlink() or not source.is_file():
        return None
    # Hidden ones are tools' and people's settings, not code's input (Claude Code's own
    # .claude/settings.local.json would give the agent the user's permissions).
    if any(part.startswith(".") for part in entry.split("/")):
        return None
    if source.name in _NOT_GENERATED_NAMES or source.name.endswith(_NOT_GENERATED):
        return None
    try:
        size = source.stat().st_size
    except OSError:
        return None
    return size if size <= MAX_GENERATED_BYTES else None


def link(mirrors: Sequence[Mirror], checkout: Path, dest: Path) -> list[str]:
    """Make each mirror in the worktree `dest` (a checkout of the same repository as
    `checkout`), where nothing is there yet (`workspace.setup` may have made its own).
    Returns the paths made."""
    made: list[str] = []
    real_top = checkout.resolve()
    for mirror in mirrors:
        target = dest / mirror.path
        if os.path.lexists(target) or not target.parent.is_dir():
            continue
        if mirror.kind == "generated":
            # A copy: nothing written to it in the worktree reaches the checkout.
            shutil.copy2(mirror.source, target)
            made.append(mirror.path)
            continue
        target.mkdir()
        _fill(mirror, mirror.source, target, real_top, dest, depth=0)
        if mirror.kind == "venv" and not (target / ".gitignore").exists():
            # As uv and Python 3.13's venv do: git ignores the mirror from inside.
            (target / ".gitignore").write_text("*\n", encoding="utf-8")
        made.append(mirror.path)
    return made


def _fill(
    mirror: Mirror, source: Path, target: Path, real_top: Path, dest: Path, *, depth: int
) -> None:
    # os.scandir and os.symlink: a node_modules has thousands of entries, and pathlib's
    # calls cost a session's start several hundred milliseconds there.
    real_source = os.path.realpath(source)
    with os.scandir(source) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            name, here = entry.name, os.path.join(target, entry.name)
            if name == ".gitignore" and entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, here)
                continue
            if mirror.kind == "node_modules":
                if depth == 0 and name in _NODE_CACHES:
                    continue
                own = _workspace_package(entry, real_source, real_top, dest)
                if own is not None:
                    os.symlink(own, here)
                    continue
                if depth == 0 and name.startswith("@") and entry.is_dir(follow_symlinks=False):
                    # A scope: its packages may be the workspace's own (see above).
                    os.mkdir(here)
                    _fill(mirror, Path(entry.path), Path(here), real_top, dest, depth=1)
                    continue
            os.symlink(entry.path, here)


def _workspace_package(
    entry: os.DirEntry[str], real_source: str, real_top: Path, dest: Path
) -> Path | None:
    """The worktree's copy of an npm workspace package that `entry` links to in the
    checkout (node_modules/@scope/pkg → ../../packages/pkg), if it has one. Judged by
    the link's text first: a link into a store elsewhere costs no resolving."""
    if not entry.is_symlink():
        return None
    lexical = os.path.normpath(os.path.join(real_source, os.readlink(entry.path)))
    if not Path(lexical).is_relative_to(real_top):
        return None
    real = Path(os.path.realpath(entry.path))
    if not real.is_relative_to(real_top):
        return None
    rel = real.relative_to(real_top)
    if NODE_MODULES in rel.parts or not (dest / rel).is_dir():
        return None
    return dest / rel


def describe(made: Sequence[str], mirrors: Sequence[Mirror]) -> str:
    """What a worktree was given, in a few words: `.venv, node_modules and 3 generated
    files (src/pkg/_version.py, …)`."""
    kinds = {m.path: m.kind for m in mirrors}
    whole = [p for p in made if kinds.get(p) != "generated"]
    files = [p for p in made if kinds.get(p) == "generated"]
    parts = list(whole)
    if files:
        shown = ", ".join(files[:2]) + (", …" if len(files) > 2 else "")
        parts.append(f"{len(files)} generated file{'s' if len(files) > 1 else ''} ({shown})")
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else ""


def unlink(dest: Path, paths: Iterable[str]) -> None:
    """Take the mirrors at `paths` (top-relative) out of the worktree `dest`: their links
    are removed as links, never followed, so nothing of the checkout's goes with them.
    What is not a mirror (a real install `workspace.setup` made) is left to whoever
    removes the worktree."""
    for rel in paths:
        _unlink_tree(dest / rel, depth=0)


def _unlink_tree(folder: Path, *, depth: int) -> None:
    if folder.is_symlink() or not folder.is_dir():
        return
    for entry in list(os.scandir(folder)):
        path = Path(entry.path)
        if entry.is_symlink():
            path.unlink()
        elif depth == 0 and entry.is_dir(follow_symlinks=False) and entry.name.startswith("@"):
            _unlink_tree(path, depth=1)


def real_paths(folder: Path) -> list[Path]:
    """Where the links in the mirror `folder` (and in its `@scope` folders) really lead:
    what the sandbox must deny by name, since a denied link protects only itself. The
    folders they were linked from (the checkout's node_modules) stand for everything in
    them; a link that leads further out (a shared store) is named by itself. Read from
    the links' text, resolving only what leads further: this runs before every session."""
    if folder.is_symlink():
        return [folder.resolve()]
    if not folder.is_dir():
        return []
    links: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_symlink():
                links.append(entry.path)
            elif entry.name.startswith("@") and entry.is_dir(follow_symlinks=False):
                with os.scandir(entry.path) as inner:
                    links.extend(e.path for e in inner if e.is_symlink())
    parents: dict[str, str] = {}  # a target's folder → its real path
    beyond: list[str] = []
    for link in links:
        target = os.path.join(os.path.dirname(link), os.readlink(link))
        folder_of = os.path.dirname(target)
        if folder_of not in parents:
            parents[folder_of] = os.path.realpath(folder_of)
        if os.path.islink(target):  # the checkout's entry leads on (pnpm, a shared store)
            beyond.append(os.path.realpath(target))
    found = sorted({Path(p) for p in parents.values()})
    # An @scope folder inside the checkout's node_modules is covered by it.
    found = [p for p in found if not any(q != p and p.is_relative_to(q) for q in found)]
    for real in sorted(set(beyond)):
        if not any(Path(real).is_relative_to(q) for q in found):
            found.append(Path(real))
    return found


# ---------------------------------------------------------------- editable installs

_MAPPING = re.compile(r"^MAPPING\s*(?::[^=\n]*)?=\s*(\{.*?\})\s*$", re.M | re.S)


def editable_paths(venv: Path, checkout: Path) -> list[str]:
    """The checkout's folders (top-relative) that the venv's editable installs put on
    `sys.path`: a `.pth` line naming one (pip, uv, hatch, setuptools' lenient mode), or
    the parent of a package a setuptools finder maps (`__editable___*_finder.py`). The
    same folders of the worktree must come first, or its tests import the checkout's
    code (a project whose code lives in `lib/` is not covered by `src/` and the root)."""
    real_top = checkout.resolve()
    found: list[str] = []
    for site in sorted(venv.glob("lib/python*/site-packages")):
        for pth in sorted(site.glob("*.pth")):
            for raw in _read(pth).splitlines():
                line = raw.strip()
                if line and not line.startswith(("#", "import ")):
                    found += _inside(Path(line), real_top)
        for finder in sorted(site.glob("__editable___*_finder.py")):
            match = _MAPPING.search(_read(finder))
            if match is None:
                continue
            try:
                mapping = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                continue
            if not isinstance(mapping, dict):
                continue
            for name, where in mapping.items():
                package = Path(str(where))
                # Only a folder named like the package can be found through sys.path.
                if package.name == str(name).split(".")[-1]:
                    found += _inside(package.parent, real_top)
    return list(dict.fromkeys(found))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _inside(path: Path, real_top: Path) -> list[str]:
    if not path.is_absolute():
        return []
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(real_top):
        return []
    rel = real.relative_to(real_top)
    if any(part in VENV_NAMES or part == NODE_MODULES for part in rel.parts):
        return []
    return [rel.as_posix()]
