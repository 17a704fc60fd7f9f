"""Snapshots of a working tree, for tests that must prove a command left it as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

Entry = tuple[str, bytes, int]
"""kind ("file", "dir", "link"), content (bytes; a link's target), permission bits."""


def snapshot(root: Path) -> dict[str, Entry]:
    """Every file, symlink and directory under root except .git/: bytes and mode."""
    found: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            mode = stat.S_IMODE(path.lstat().st_mode)
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path).encode(), 0)
            elif path.is_dir():
                found[rel] = ("dir", b"", mode)
            else:
                found[rel] = ("file", path.read_bytes(), mode)
    return found


def mtimes(root: Path) -> dict[str, int]:
    """Modification times (ns) of everything under root except .git/."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            found[path.relative_to(root).as_posix()] = path.lstat().st_mtime_ns
    return found
