"""The repository's shared git state, kept from an agent: capture it, compare, put it back.

An agent works in a checkout whose git directory it must be able to write (a commit needs
objects and refs), and a linked worktree shares almost all of it with the user's checkout:
`.git/config` (aliases, core.hooksPath, core.fsmonitor, filter drivers: commands the user's
next git command runs), hooks, info/exclude and info/attributes, every branch, tag and the
stash. A sandbox cannot tell the agent's commit from the agent's `git config alias.p push`.
So the rail is a before/after comparison of the state itself, by content:

    with kept(repo, rescue_dir) as k:
        agent.run(...)
    k.changes   # what moved, one line each; already put back

What is captured: the common dir's config, config.worktree and HEAD, every file under
hooks/ and info/ (bytes and mode), objects/info/alternates, shallow, the stash reflog
(`git stash list` reads it), every linked worktree's HEAD, commondir, gitdir,
config.worktree, locked and info/, and its `.git` file; every ref but refs/remotes/* (an
IDE's autofetch moves them); every config file git reads (global, XDG, included ones), the
global excludes and attributes files, and a core.hooksPath directory outside the
repository. packed-refs is covered through the ref values (`git pack-refs` is no change).

Not captured: the user's index (staged work; a running git rewrites it at will), per-worktree
refs of other worktrees (refs/bisect), objects (a `git gc --prune=now` after dropping a
stash cannot be undone: putting the ref back then fails, and says so), the system config's
siblings in /etc, and anything outside git's files.

`restore` writes only git's own files and refs, and saves what it replaces (bytes, ref
values) under a rescue directory with a README saying how to take each back: a change the
user made meanwhile is not lost either.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentloop import git
from agentloop.errors import AgentloopError

# Relative to the common git dir.
_FIXED = ("config", "config.worktree", "HEAD", "shallow", "objects/info/alternates")
_WALKED = ("hooks", "info")
_WORKTREE_FILES = ("HEAD", "commondir", "gitdir", "config.worktree", "locked")
STASH = "refs/stash"
STASH_LOG = "logs/refs/stash"
# Refs nobody but a fetch moves, and an IDE fetches on its own.
_SKIPPED_REFS = ("refs/remotes/",)


class GitStateError(AgentloopError):
    """Part of the git state could not be put back (the rest was)."""


@dataclass(frozen=True)
class Entry:
    """One captured file: its bytes and permission bits, or the target of a symlink."""

    data: bytes
    mode: int
    link: str | None = None


@dataclass(frozen=True)
class StateChange:
    """One thing that moved: `item` is a ref name or a file (relative to the common git dir
    when inside it, else absolute); `detail` the line to show; `fix` a command that puts it
    back by hand, "" when there is none short of a copy of the old file."""

    area: Literal["file", "ref"]
    item: str
    kind: Literal["added", "deleted", "changed", "moved"]
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class GitState:
    common_dir: str
    # Labels: a path relative to common_dir, or an absolute path outside it.
    files: Mapping[str, Entry] = field(default_factory=dict)
    # Labels looked at, present or not: a file that appears at one of these (a new
    # ~/.gitconfig) was made since, and may go again. One ending in "/" is a directory
    # outside the git dir watched whole (a shared core.hooksPath).
    watched: frozenset[str] = frozenset()
    refs: Mapping[str, str] = field(default_factory=dict)
    # Labels of the files git reads as config (their changes are shown key by key).
    configs: frozenset[str] = frozenset()

    # ------------------------------------------------------------ capture

    @classmethod
    def capture(cls, repo: Path) -> GitState:
        common = git.common_dir(repo)
        labels: dict[str, Path] = {}
        for name in (*_FIXED, STASH_LOG):
            labels[name] = common / name
        for folder in _WALKED:
            labels.update(_walk(common, common / folder))
        worktrees = common / "worktrees"
        if worktrees.is_dir():
            for admin in sorted(worktrees.iterdir()):
                for name in _WORKTREE_FILES:
                    labels[f"worktrees/{admin.name}/{name}"] = admin / name
                labels.update(_walk(common, admin / "info"))
                gitfile = _read_text(admin / "gitdir")
                if gitfile:
                    path = Path(gitfile.strip())
                    labels[str(path)] = path
        configs, others, folders = _outside_files(repo, common)
        for path in (*configs, *others):
            labels.setdefault(str(path), path)
        files = {
            label: entry
            for label, path in labels.items()
            if (entry := _entry(path)) and not _stub(label, entry)
        }
        watched = frozenset({*labels, *(f"{folder}/" for folder in folders)})
        refs = git.list_refs(repo, skip=_SKIPPED_REFS)
        config_labels = {"config", "config.worktree", *(str(p) for p in configs)}
        config_labels |= {
            f"worktrees/{p.parent.name}/config.worktree"
            for p in worktrees.glob("*/config.worktree")
        }
        return cls(str(common), files, watched, refs, frozenset(config_labels))

    def owns(self, label: str) -> bool:
        """Whether a file at `label` is one of git's that this state watched (inside the
        git dir, or a path looked at outside it), so one appearing there is a change."""
        return (
            not Path(label).is_absolute()
            or label in self.watched
            or any(w.endswith("/") and label.startswith(w) for w in self.watched)
        )

    def path_of(self, label: str) -> Path:
        path = Path(label)
        return path if path.is_absolute() else Path(self.common_dir) / label

    # ------------------------------------------------------------ compare

    def changed_files(self, other: GitState, ignore: Sequence[str] = ()) -> list[str]:
        """Labels whose entry differs. A file that appears outside git's dir at a path only
        the new config names (core.excludesFile moved) is the config's change, not its own."""
        labels = set(self.files) | set(other.files)
        return sorted(
            label
            for label in labels
            if not _same(self, other, label) and self.owns(label) and not _ignored(label, ignore)
        )

    def changed_refs(self, other: GitState, ignore: Sequence[str] = ()) -> list[str]:
        names = set(self.refs) | set(other.refs)
        return sorted(
            n for n in names if self.refs.get(n) != other.refs.get(n) and not _ignored(n, ignore)
        )

    def changes(self, other: GitState, *, ignore: Sequence[str] = ()) -> tuple[StateChange, ...]:
        """What differs from `self` (before) in `other` (after), files first, then refs.
        `ignore`: refs or labels to leave out, exactly or (ending in "/") by prefix."""
        labels = self.changed_files(other, ignore)
        refs = self.changed_refs(other, ignore)
        found = []
        for name in _new_worktrees(self, labels):
            admin = self.path_of(f"worktrees/{name}")
            entry = other.files.get(f"worktrees/{name}/gitdir")
            at = entry.data.decode("utf-8", "replace").strip() if entry else "?"
            found.append(
                StateChange(
                    "file",
                    f"worktrees/{name}/",
                    "added",
                    f"worktree {name} added ({at})",
                    f"rm -rf {shlex.quote(str(admin))} && git worktree prune",
                )
            )
        found += [
            _file_change(self, other, label)
            for label in labels
            if not (label == STASH_LOG and STASH in refs)
            and not any(label.startswith(f.item) for f in found)
        ]
        found += [_ref_change(self, other, ref) for ref in refs]
        return tuple(found)

    # ------------------------------------------------------------ store

    def to_json(self) -> str:
        return json.dumps(
            {
                "common_dir": self.common_dir,
                "files": {
                    label: {
                        "data": base64.b64encode(e.data).decode("ascii"),
                        "mode": e.mode,
                        "link": e.link,
                    }
                    for label, e in sorted(self.files.items())
                },
                "watched": sorted(self.watched),
                "refs": dict(sorted(self.refs.items())),
                "configs": sorted(self.configs),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> GitState:
        data: dict[str, Any] = json.loads(text)
        files = {
            str(label): Entry(base64.b64decode(e["data"]), int(e["mode"]), e.get("link"))
            for label, e in data["files"].items()
        }
        return cls(
            str(data["common_dir"]),
            files,
            frozenset(map(str, data["watched"])),
            {str(k): str(v) for k, v in data["refs"].items()},
            frozenset(map(str, data.get("configs", ()))),
        )


# ---------------------------------------------------------------- capture helpers


def _walk(common: Path, folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not folder.is_dir() or folder.is_symlink():
        return found
    for root, dirs, names in os.walk(folder):
        # A symlink to a directory is an entry of its own (its target), not followed.
        for name in [*names, *(d for d in dirs if (Path(root) / d).is_symlink())]:
            path = Path(root) / name
            found[_label(common, path)] = path
    return found


def _label(common: Path, path: Path) -> str:
    try:
        return path.relative_to(common).as_posix()
    except ValueError:
        return str(path)


def _outside_files(repo: Path, common: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Git's files outside the git dir: every config file git reads (and where a global
    one would be); the global excludes and attributes files and the files of a shared
    hooks directory; and that directory, watched whole."""
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "git"
    global_config = os.environ.get("GIT_CONFIG_GLOBAL")
    configs = [Path(global_config) if global_config else home / ".gitconfig", xdg / "config"]
    configs += git.config_origins(repo)
    others = [
        git.config_path(repo, "core.excludesFile") or xdg / "ignore",
        git.config_path(repo, "core.attributesFile") or xdg / "attributes",
    ]
    folders = []
    hooks = git.config_path(repo, "core.hooksPath")
    # A relative hooksPath lives in each checkout (a tracked .githooks/): the diff sees it.
    if hooks is not None and hooks.is_absolute() and hooks.is_dir() and not _inside(hooks, common):
        # Git runs `<hooksPath>/<hook name>` and nothing deeper: the folder's own entries
        # are what can run. (Walking it whole read all of /tmp when an attack pointed
        # core.hooksPath there: 40 s for one check.)
        others += [entry for entry in hooks.iterdir() if entry.is_file() or entry.is_symlink()]
        folders.append(hooks)
    return (
        [p for p in configs if not _inside(p, common)],
        [p for p in others if not _inside(p, common)],
        folders,
    )


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


# Files Claude Code's sandbox creates empty in the git directory to mount its masks on,
# for as long as a session runs (agents/sandbox.py removes them after it). With jobs in
# parallel, another job's session comes and goes during an attempt. Empty, either one
# means exactly what its absence means to git, so an empty one is recorded as absent:
# one with any byte in it is a change like any other.
_STUBS = ("config.worktree", "objects/info/alternates")


def _stub(label: str, entry: Entry) -> bool:
    return label.endswith(_STUBS) and not entry.data and entry.link is None


def _entry(path: Path) -> Entry | None:
    try:
        st = path.lstat()
        if path.is_symlink():
            return Entry(b"", 0, os.readlink(path))
        if not path.is_file():
            return None
        return Entry(path.read_bytes(), st.st_mode & 0o7777)
    except OSError:
        return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


# What Claude Code's sandbox appends to the user's global git ignore file (creating it if
# need be) so its own .cc-writes directories never show; agents/sandbox.py undoes it after
# a headless session, an interactive one keeps it while it runs.
_SANDBOX_IGNORE_LINES = frozenset({"**/.claude/.cc-writes/", ""})


def _same(before: GitState, after: GitState, label: str) -> bool:
    old, new = before.files.get(label), after.files.get(label)
    if label == STASH_LOG:
        # The entries are the stash; a reflog line also holds the time it was written,
        # which `git stash store` (the way back by hand) cannot keep.
        return _stash_entries(before) == _stash_entries(after)
    if old == new:
        return True
    if old is None and new is not None and new.link is None and not new.data:
        # An empty file where there was none changes nothing git does (no key, no rule,
        # no alternate); Claude Code's sandbox mounts its masks on such stubs while it
        # runs (config.worktree, objects/info/alternates).
        return True
    if Path(label).is_absolute() and label not in before.configs and new is not None:
        # The global ignore file: the sandbox's own line appended is not the agent's.
        base = old.data if old else b""
        extra = new.data[len(base) :].decode("utf-8", "replace").splitlines()
        return new.data.startswith(base) and set(extra) <= _SANDBOX_IGNORE_LINES
    return False


def _ignored(item: str, ignore: Sequence[str]) -> bool:
    return any(item == i or (i.endswith("/") and item.startswith(i)) for i in ignore)


# ---------------------------------------------------------------- describing a change


def _shown(label: str) -> str:
    path = Path(label)
    if not path.is_absolute():
        return label
    home = str(Path.home())
    return "~" + label[len(home) :] if label.startswith(home + os.sep) else label


def _short(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value if value.startswith("ref: ") else value[:7]


def _lines_diff(old: bytes, new: bytes) -> tuple[list[str], list[str]]:
    before = old.decode("utf-8", "replace").splitlines()
    after = new.decode("utf-8", "replace").splitlines()
    added = [line for line in after if line not in before]
    removed = [line for line in before if line not in after]
    return added, removed


def _summary(added: Sequence[str], removed: Sequence[str], limit: int = 4) -> str:
    items = [f"+{a}" for a in added] + [f"-{r}" for r in removed]
    items = [i if len(i) <= 80 else i[:79] + "…" for i in items]
    shown = ", ".join(items[:limit]) + (
        f", … {len(items) - limit} more" if len(items) > limit else ""
    )
    return f" ({shown})" if shown else ""


def _config_change(before: GitState, label: str, old: Entry, new: Entry) -> tuple[str, str]:
    cwd = Path(before.common_dir)
    old_entries = git.config_entries(cwd, old.data)
    new_entries = git.config_entries(cwd, new.data)
    if old_entries is None or new_entries is None:
        return " (git cannot parse it now)" if new_entries is None else "", ""
    added = [e for e in new_entries if e not in old_entries]
    removed = [e for e in old_entries if e not in new_entries]
    target = shlex.quote(str(before.path_of(label)))
    new_keys = {e.partition("=")[0] for e in new_entries}
    fixes = []
    # Each key touched is put back whole: its values now unset, its old values re-added.
    for key in dict.fromkeys(e.partition("=")[0] for e in (*added, *removed)):
        if key in new_keys:
            fixes.append(f"git config --file {target} --unset-all {shlex.quote(key)}")
        fixes += [
            f"git config --file {target} --add {shlex.quote(k)} {shlex.quote(v)}"
            for k, _, v in (e.partition("=") for e in old_entries)
            if k == key
        ]
    return _summary(added, removed), " && ".join(fixes)


def _file_change(before: GitState, after: GitState, label: str) -> StateChange:
    old, new = before.files.get(label), after.files.get(label)
    name = _shown(label)
    path = shlex.quote(str(after.path_of(label)))
    if label == STASH_LOG:
        return _stash_log_change(before, after)
    if old is None:
        summary = ""
        hook = label.startswith("hooks/") or any(
            w.endswith("/") and label.startswith(w) for w in after.watched
        )
        if new is not None and new.link is None and not hook:
            is_config = label in after.configs or label.endswith("/config.worktree")
            listed = git.config_entries(Path(before.common_dir), new.data) if is_config else None
            summary = _summary(listed or _lines_diff(b"", new.data)[0], [])
        return StateChange("file", label, "added", f"{name} added{summary}", f"rm {path}")
    if new is None:
        return StateChange("file", label, "deleted", f"{name} deleted")
    if old.link is not None or new.link is not None:
        detail = f"{name} changed (symlink {old.link or '(file)'} → {new.link or '(file)'})"
        return StateChange("file", label, "changed", detail)
    notes, fixes = [], []
    if old.mode != new.mode:
        notes.append(f"mode {old.mode:o} → {new.mode:o}")
        fixes.append(f"chmod {old.mode:o} {path}")
    summary = ""
    if old.data != new.data:
        if label in before.configs or label in after.configs:
            summary, fix = _config_change(before, label, old, new)
            fixes.append(fix)
        elif Path(label).name in ("HEAD", "commondir", "gitdir"):
            was, now = (e.data.decode("utf-8", "replace").strip() for e in (old, new))
            summary = f" (was {was}, now {now})"
        elif not label.startswith("hooks/"):  # info/exclude, a global excludes file…
            summary = _summary(*_lines_diff(old.data, new.data))
    detail = f"{name} changed{summary}{_mode_note(notes)}"
    return StateChange("file", label, "changed", detail, " && ".join(f for f in fixes if f))


def _stash_log_change(before: GitState, after: GitState) -> StateChange:
    old, new = _stash_entries(before), _stash_entries(after)
    lost = [e for e in old if e not in new]
    fix = " && ".join(f"git stash store -m {shlex.quote(msg)} {sha}" for sha, msg in lost)
    return StateChange(
        "file", STASH_LOG, "changed",
        f"stash list changed ({_entries(old)} → {_entries(new)}"
        + (f", {len(lost)} dropped)" if lost else ")"),
        fix,
    )  # fmt: skip


def _entries(entries: Sequence[object]) -> str:
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"


def _mode_note(notes: Sequence[str]) -> str:
    return f" ({', '.join(notes)})" if notes else ""


def _stash_entries(state: GitState) -> list[tuple[str, str]]:
    """(commit, message) of each stash entry, oldest first, from the stash reflog."""
    entry = state.files.get(STASH_LOG)
    found = []
    for line in (entry.data.decode("utf-8", "replace") if entry else "").splitlines():
        head, _, message = line.partition("\t")
        parts = head.split()
        if len(parts) >= 2:
            found.append((parts[1], message))
    return found


def _ref_change(before: GitState, after: GitState, ref: str) -> StateChange:
    old, new = before.refs.get(ref), after.refs.get(ref)
    if ref == STASH:
        entries = _stash_entries(before)
        count = _entries(entries)
        fix = " && ".join(f"git stash store -m {shlex.quote(msg)} {sha}" for sha, msg in entries)
        if new is None:
            return StateChange("ref", ref, "deleted", f"{ref} deleted ({count})", fix)
    put_back = (
        f"git symbolic-ref {ref} {old[5:]}" if old and old.startswith("ref: ")
        else f"git update-ref {ref} {old}" if old
        else f"git update-ref -d {ref}"
    )  # fmt: skip
    if old is None:
        return StateChange("ref", ref, "added", f"{ref} added at {_short(new)}", put_back)
    if new is None:
        return StateChange("ref", ref, "deleted", f"{ref} deleted (was {_short(old)})", put_back)
    return StateChange("ref", ref, "moved", f"{ref} moved {_short(old)} → {_short(new)}", put_back)


# ---------------------------------------------------------------- putting it back


def restore(
    repo: Path,
    before: GitState,
    after: GitState,
    rescue_dir: Path,
    *,
    ignore: Sequence[str] = (),
) -> tuple[str, ...]:
    """Put every file and ref that differs between `before` and `after` back as it was in
    `before`, byte for byte, and return a line for each. What is replaced (the current
    bytes, the current ref values) is saved under `rescue_dir` first, with a README line
    saying how to take it back. Raises GitStateError, after doing all the rest, when
    something could not be put back (an object a deleted ref needs was pruned)."""
    rescue = _Rescue(rescue_dir)
    done: list[str] = []
    failed: list[str] = []
    labels = before.changed_files(after, ignore)
    # Worktrees registered since: their whole admin dir goes (the checkout is not touched).
    new_admins = _new_worktrees(before, labels)
    for name in new_admins:
        admin = Path(before.common_dir) / "worktrees" / name
        if admin.is_dir():
            saved = rescue.move(admin, f"worktrees/{name}")
            rescue.note(
                f"worktree admin dir {admin} (registered during the attempt) is saved as "
                f"{saved}; to take it back: mv {shlex.quote(str(saved))} {shlex.quote(str(admin))}"
            )
            done.append(f"unregistered the worktree added at worktrees/{name}")
    # Config and hooks before anything runs git below (core.hooksPath, a
    # reference-transaction hook), the stash reflog after refs/stash (writing the ref
    # appends to it).
    configs = before.configs | after.configs
    for label in sorted(labels, key=lambda lb: (lb not in configs, not lb.startswith("hooks/"))):
        if label == STASH_LOG or any(label.startswith(f"worktrees/{n}/") for n in new_admins):
            continue
        line = _put_back_file(before, label, rescue)
        if line:
            done.append(line)
    refs = before.changed_refs(after, ignore)
    current_refs = git.list_refs(repo) if refs else {}
    # Deletions first: refs/heads/a gone and refs/heads/a/b new cannot both exist.
    for ref in sorted(refs, key=lambda r: before.refs.get(r) is not None):
        old, new = before.refs.get(ref), after.refs.get(ref)
        current = current_refs.get(ref)
        try:
            git.put_ref(repo, ref, old, current=current)
        except git.GitError as exc:
            failed.append(f"{ref}: {exc.message}")
            continue
        if current is None:
            rescue.note(
                f"{ref} was gone; agentloop made it {old} again; to take it back: "
                f"git update-ref -d {ref}"
            )
        else:
            rescue.note(
                f"{ref} was {current}; to take it back: "
                + (f"git symbolic-ref {ref} {current[5:]}" if current.startswith("ref: ")
                   else f"git update-ref {ref} {current}")
            )  # fmt: skip
        done.append(f"put back {ref} ({_short(new)} → {_short(old)})" if old else f"deleted {ref}")
    if STASH_LOG in labels or STASH in refs:
        line = _put_back_file(before, STASH_LOG, rescue)
        if line:
            done.append(line)
    if failed:
        raise GitStateError(
            "could not put back " + "; ".join(failed),
            hint=f"the rest was put back; what was replaced is in {rescue_dir} (see its README)",
        )
    return tuple(done)


def _new_worktrees(before: GitState, labels: Sequence[str]) -> list[str]:
    """Names of the worktrees registered since `before` among the changed `labels`."""
    return sorted(
        {
            label.split("/")[1]
            for label in labels
            if label.startswith("worktrees/")
            and f"worktrees/{label.split('/')[1]}/gitdir" not in before.files
        }
    )


def _put_back_file(before: GitState, label: str, rescue: _Rescue) -> str | None:
    path = before.path_of(label)
    old = before.files.get(label)
    exists = os.path.lexists(path)
    if exists and _entry(path) == old:
        return None
    if not exists and old is None:
        return None
    if old is None and not before.owns(label):
        return None  # not git's file: only the config naming it changed
    if exists:
        saved = rescue.copy(path, label)
        rescue.note(
            f"{_shown(label)}: the version agentloop replaced is {saved}; to take it back: "
            f"rm -rf {shlex.quote(str(path))} && cp -PR {shlex.quote(str(saved))} "
            f"{shlex.quote(str(path))}"
        )
    else:
        rescue.note(
            f"{_shown(label)} was gone; agentloop wrote it back; to take it back: "
            f"rm {shlex.quote(str(path))}"
        )
    if old is None:
        _remove(path)
        return f"removed {_shown(label)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, old)
    return f"put back {_shown(label)}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _write(path: Path, entry: Entry) -> None:
    temp = path.with_name(f".{path.name}.agentloop-tmp")
    temp.unlink(missing_ok=True)
    if entry.link is not None:
        os.symlink(entry.link, temp)
    else:
        temp.write_bytes(entry.data)
        os.chmod(temp, entry.mode)
    try:
        # A directory where the file was (an agent made hooks/pre-commit a folder) is
        # saved by the rescue already; os.replace cannot replace it.
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class _Rescue:
    """The directory where `restore` keeps what it replaced, made on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _free(self, rel: str) -> Path:
        rel = rel.lstrip("/")
        target = self.root / rel
        n = 0
        while os.path.lexists(target):
            n += 1
            target = self.root / f"{rel}.{n}"
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def copy(self, path: Path, label: str) -> Path:
        target = self._free(f"files/{label}")
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, target, symlinks=True)
        else:
            shutil.copy2(path, target, follow_symlinks=False)
        return target

    def move(self, path: Path, rel: str) -> Path:
        target = self._free(rel)
        shutil.move(str(path), str(target))
        return target

    def note(self, line: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        readme = self.root / "README"
        head = "" if readme.exists() else (
            "agentloop put back git state that changed during an attempt. What it replaced "
            "is kept here; each line says how to take one thing back.\n"
        )  # fmt: skip
        with readme.open("a", encoding="utf-8") as handle:
            handle.write(head + f"- {line}\n")


# ---------------------------------------------------------------- the rail


class Kept:
    """What `kept` found and put back; filled in when the `with` block ends."""

    def __init__(self, before: GitState) -> None:
        self.before = before
        self.changes: tuple[StateChange, ...] = ()
        self.restored: tuple[str, ...] = ()


@contextmanager
def kept(repo: Path, rescue_dir: Path, *, ignore: Sequence[str] = ()) -> Iterator[Kept]:
    """Capture the git state, run the block, then put back whatever the block changed
    (see `restore`). Wrap only what must not change git's state (the agent's session):
    agentloop's own commit of the result comes after the block."""
    result = Kept(GitState.capture(repo))
    try:
        yield result
    finally:
        after = GitState.capture(repo)
        result.changes = result.before.changes(after, ignore=ignore)
        if result.changes:
            result.restored = restore(repo, result.before, after, rescue_dir, ignore=ignore)
