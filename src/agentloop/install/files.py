"""What `agentloop init` writes and how: the package's assets, the install record
(`.agentloop/init.json`), backups, and the file operations, each one atomic.

The record is what makes `--uninstall` exact and `init` safe to re-run: the sha256 of every
file as installed (so a file the user changed since is never overwritten or deleted), what
was appended to CLAUDE.md and .gitignore, the original bytes of settings.json, every
directory init created and every backup it took. It holds no timestamps: a second `init`
must leave every byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from agentloop.errors import UsageError

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+
    from importlib.abc import Traversable

MARKER = "agentloop:managed"
# Our files carry the marker near the top, after a shebang or a front matter opener.
MARKER_LINES = 10
MANIFEST = ".agentloop/init.json"
BACKUPS = ".agentloop/backups"
STATE_DIR = ".agentloop"
# Parallel builds started from a session (build/launch.py): manifests and results.
BUILDS_DIR = ".agentloop/builds"
# Heal runs started from a session (heal/launch.py): their records, logs and results.
HEALS_DIR = ".agentloop/heals"
CLAUDE_DIR = ".claude"
# Record layout; bump it when a field changes meaning.
MANIFEST_VERSION = 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_marked(data: bytes) -> bool:
    head = data.split(b"\n", MARKER_LINES)[:MARKER_LINES]
    return any(MARKER.encode() in line for line in head)


# ---------------------------------------------------------------- package assets


@dataclass(frozen=True)
class Asset:
    """A file init installs as the package ships it: `assets/claude/<rel>` at
    `.claude/<rel>`, `resources/workflows/<name>` at `.github/workflows/<name>`."""

    path: str  # relative to the project root, e.g. ".claude/hooks/guard.sh"
    data: bytes

    @property
    def mode(self) -> int:
        # Claude Code runs them with `sh <script>`, but a user may run one by hand.
        return 0o755 if self.path.endswith(".sh") else 0o644


def _walk(node: Traversable, rel: PurePosixPath) -> Iterator[tuple[PurePosixPath, bytes]]:
    for child in node.iterdir():
        if child.name == "__pycache__" or child.name.endswith(".pyc"):
            continue
        if child.is_dir():
            yield from _walk(child, rel / child.name)
        elif child.is_file():
            yield rel / child.name, child.read_bytes()


def assets() -> tuple[Asset, ...]:
    """Every file under the package's assets/claude/, by path (walked, never listed by
    hand: a new skill ships by adding its folder)."""
    base = resources.files("agentloop") / "assets" / "claude"
    found = [
        Asset(path=str(PurePosixPath(CLAUDE_DIR) / rel), data=data)
        for rel, data in _walk(base, PurePosixPath())
    ]
    return tuple(sorted(found, key=lambda a: a.path))


# `agentloop init --workflows`: GitHub Actions workflows, installed beside the user's own.
WORKFLOWS_DIR = ".github/workflows"


def workflows() -> tuple[Asset, ...]:
    """Every workflow under the package's resources/workflows/, installed at
    .github/workflows/<name> (the bytes as shipped: what `make test` lints is what lands)."""
    base = resources.files("agentloop") / "resources" / "workflows"
    found = [
        Asset(path=f"{WORKFLOWS_DIR}/{rel}", data=data)
        for rel, data in _walk(base, PurePosixPath())
        if rel.suffix == ".yml"
    ]
    return tuple(sorted(found, key=lambda a: a.path))


def template(name: str) -> str:
    """A text template of the package's assets/ (outside assets/claude/: not installed)."""
    return (resources.files("agentloop") / "assets" / name).read_text("utf-8")


# ---------------------------------------------------------------- the record


@dataclass(frozen=True)
class Backup:
    path: str  # the file that was replaced
    backup: str  # where its bytes are, under .agentloop/backups/


@dataclass(frozen=True)
class SettingsRecord:
    """A JSON file of the user's that init merges into (.claude/settings.json, .mcp.json)."""

    existed: bool
    # The original bytes of a file that was there before init: uninstall writes them back
    # when nothing else changed, so the user's formatting survives.
    backup: str | None = None
    # settings.json: what of it is init's besides the hooks (settings.Owned, as JSON).
    owned: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BlockRecord:
    """The block init put into CLAUDE.md."""

    existed: bool  # CLAUDE.md was there before init
    separator: str  # what init put before the block (removed with it)
    sha256: str  # of the block as installed, markers included


@dataclass(frozen=True)
class LinesRecord:
    """The lines init appended to .gitignore."""

    existed: bool
    added: str  # exactly what was appended ("" when the entry was already there)


@dataclass(frozen=True)
class Manifest:
    agentloop_version: str
    # Owned files (the assets, and agentloop.yaml when init wrote it): path → sha256 as
    # installed.
    files: Mapping[str, str] = field(default_factory=dict)
    settings: SettingsRecord | None = None
    mcp: SettingsRecord | None = None
    claude_md: BlockRecord | None = None
    gitignore: LinesRecord | None = None
    created_dirs: tuple[str, ...] = ()
    backups: tuple[Backup, ...] = ()

    def backups_of(self, path: str) -> list[Backup]:
        return [b for b in self.backups if b.path == path]


def dump_manifest(manifest: Manifest) -> bytes:
    def record(value: Any) -> Any:
        return None if value is None else dict(vars(value))

    doc = {
        "manifest_version": MANIFEST_VERSION,
        "agentloop_version": manifest.agentloop_version,
        "files": {path: {"sha256": sha} for path, sha in sorted(manifest.files.items())},
        "settings": record(manifest.settings),
        "mcp": record(manifest.mcp),
        "claude_md": record(manifest.claude_md),
        "gitignore": record(manifest.gitignore),
        "created_dirs": sorted(manifest.created_dirs),
        "backups": [dict(vars(b)) for b in manifest.backups],
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _unreadable(detail: str) -> UsageError:
    return UsageError(
        f"{MANIFEST} is not an install record agentloop can read ({detail})",
        hint="restore it from a backup, or remove agentloop's files by hand and delete it",
    )


def read_manifest(root: Path) -> Manifest | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("manifest_version") != MANIFEST_VERSION:
            raise _unreadable(f"layout version {doc.get('manifest_version')!r}")

        def opt(cls: Any, value: Any) -> Any:
            return None if value is None else cls(**value)

        return Manifest(
            agentloop_version=str(doc["agentloop_version"]),
            files={str(p): str(entry["sha256"]) for p, entry in doc["files"].items()},
            settings=opt(SettingsRecord, doc["settings"]),
            # Absent from records written before agentloop registered its MCP server.
            mcp=opt(SettingsRecord, doc.get("mcp")),
            claude_md=opt(BlockRecord, doc["claude_md"]),
            gitignore=opt(LinesRecord, doc["gitignore"]),
            created_dirs=tuple(str(d) for d in doc["created_dirs"]),
            backups=tuple(Backup(**b) for b in doc["backups"]),
        )
    except UsageError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _unreadable(f"{type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Write:
    path: str
    data: bytes
    # None: keep the mode of the file there (0o644 for a new one).
    mode: int | None = None
    # Write through a symlink (a user's file: CLAUDE.md -> AGENTS.md is common, and
    # replacing the link would quietly fork their instructions). Our own files replace a
    # link instead: following one could write outside the repository.
    follow: bool = False


@dataclass(frozen=True)
class Copy:
    """A backup: the file (or symlink) as it is, mode and all."""

    src: str
    dst: str


@dataclass(frozen=True)
class Move:
    """A restore: the backup goes back where it came from."""

    src: str
    dst: str


@dataclass(frozen=True)
class Remove:
    path: str


Op = Write | Copy | Move | Remove


def target(op: Op) -> str | None:
    """The path an operation creates a file at (its parent directories may be new)."""
    if isinstance(op, Write):
        return op.path
    if isinstance(op, (Copy, Move)):
        return op.dst
    return None


def new_dirs(root: Path, paths: Iterable[str]) -> list[str]:
    """The directories that writing `paths` would create, outermost first. A parent that
    exists but is not a directory stops init before anything is written."""
    found: dict[str, None] = {}
    for path in paths:
        for parent in reversed(PurePosixPath(path).parents[:-1]):
            where = root / parent
            if where.is_dir():
                continue
            if os.path.lexists(where):
                raise UsageError(
                    f"{parent} is in the way: agentloop needs a directory there",
                    hint=f"move {root / parent} away and run the command again",
                )
            found[str(parent)] = None
    return list(found)


def free_backup_name(root: Path, path: str, taken: set[str]) -> str:
    """`.agentloop/backups/<path>`, or `<path>.1`, `.2`…: an earlier backup is never
    overwritten."""
    base = f"{BACKUPS}/{path}"
    name, n = base, 0
    while name in taken or os.path.lexists(root / name):
        n += 1
        name = f"{base}.{n}"
    taken.add(name)
    return name


def write_atomic(path: Path, data: bytes, mode: int | None = None, *, follow: bool) -> None:
    """Temp file + os.replace: a reader never sees half a file, a crash never leaves one."""
    real = Path(os.path.realpath(path)) if follow and path.is_symlink() else path
    if mode is None:
        try:
            mode = real.lstat().st_mode & 0o7777 if not real.is_symlink() else 0o644
        except FileNotFoundError:
            mode = 0o644
    fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, mode)
        os.replace(temp, real)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def apply(root: Path, ops: Sequence[Op]) -> None:
    for op in ops:
        dst = target(op)
        if dst is not None:
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(op, Write):
            write_atomic(root / op.path, op.data, op.mode, follow=op.follow)
        elif isinstance(op, Copy):
            shutil.copy2(root / op.src, root / op.dst, follow_symlinks=False)
        elif isinstance(op, Move):
            os.replace(root / op.src, root / op.dst)
        else:
            (root / op.path).unlink(missing_ok=True)


def remove_empty_dirs(root: Path, dirs: Iterable[str]) -> None:
    """Remove the directories init created, innermost first, when nothing is left in
    them; a directory the user put a file into stays."""
    for rel in sorted(set(dirs), key=lambda d: (-d.count("/"), d)):
        path = root / rel
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
