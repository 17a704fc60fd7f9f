"""The checkout a run works in, isolated from the user's, and the leftovers of killed runs.

`Workspace.open(repo)` makes a new branch `agentloop/autofix-<run-id>` and a worktree of
it from HEAD; the user's checkout (branch, index, working tree, untracked files, stashes)
is never written to. Everything agentloop keeps for it lives in the repository's common
git directory (`git rev-parse --git-common-dir`, the main checkout's `.git`):

    .git/agentloop/lock                   serialises making and removing worktrees/branches
    .git/agentloop/runs/<run-id>.json     a run's state; the live run holds a lock on it
    .git/agentloop/rescued/<run-id>.patch uncommitted work saved before a worktree goes

Why there: `git status` never shows it, so nothing needs a .gitignore entry, and it belongs
to this repository and goes away with it.

The worktrees themselves live in the user's cache,
`$XDG_CACHE_HOME/agentloop/worktrees/<repository hash>/<run-id>/` (~/.cache by default):
outside the working tree, so no tool of the project's crawls a second copy of it
(jest-haste-map sees duplicate modules in worktrees nested in a repo, crystal#19), and not
inside `.git`, where Claude Code refuses every edit as a protected path (seen with CLI
2.1.330: "Permission to use Edit has been denied"). A worktree has only what git tracks:
after `workspace.setup` (if any) ran, the checkout's ignored environments it still lacks
(`.venv`, `node_modules`) are given to it as mirrors, and generated files beside the code
(`_version.py`) as copies (see `agentloop.environment`), so the suites run there as
`agentloop detect` runs them in the checkout.

A run that is killed leaves its state file behind; the kernel drops its lock, so `clean`
(see `clean_leftovers`) can tell a dead run from a live one without trusting a pid that
may have been reused.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from agentloop import environment, git, proc
from agentloop.errors import WorkspaceError
from agentloop.rails.paths import DEFAULT_SECRETS

BRANCH_PREFIX = f"{git.BRANCH_PREFIX}autofix-"
HOME = "agentloop"  # the directory in the common git dir
LOCK_TIMEOUT = 120.0
SETUP_TIMEOUT = 600.0

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def new_run_id(now: datetime.datetime | None = None) -> str:
    """A run id: the UTC time, sortable and readable (20260115T103000Z)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Places:
    """Where agentloop keeps things for one repository."""

    root: Path  # <common git dir>/agentloop
    worktrees: Path  # <cache>/agentloop/worktrees/<hash of the common git dir>

    @classmethod
    def of(cls, common_dir: Path) -> Places:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        key = hashlib.sha1(str(common_dir.resolve()).encode()).hexdigest()[:12]
        return cls(common_dir / HOME, Path(cache) / "agentloop" / "worktrees" / key)

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def rescued(self) -> Path:
        return self.root / "rescued"

    def state_file(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def worktree(self, run_id: str) -> Path:
        return self.worktrees / run_id


@dataclass(frozen=True)
class RunState:
    """What `clean` needs to undo a run that never got to undo itself."""

    run_id: str
    pid: int
    path: str  # the checkout the run works in (the user's own when in place)
    branch: str
    base_sha: str
    created_at: str
    repo: str  # the user's checkout
    in_place: bool = False
    # In place: what to check out again at the end (a branch, or a sha when detached).
    original_ref: str | None = None
    original_detached: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunState:
        data: dict[str, Any] = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Cleanup:
    """What was done (or, in a dry run, would be done) with one run's worktree and branch."""

    run_id: str | None
    worktree: Path | None
    branch: str | None
    pid: int | None = None
    rescued: Path | None = None  # uncommitted work saved here first
    removed_worktree: bool = False
    deleted_branch: bool = False
    restored: str | None = None  # in place: the branch (or sha) checked out again
    commits: int = 0  # commits on the branch beyond its base
    kept: str | None = None  # why something was left where it is


# ---------------------------------------------------------------- locks and state


@contextmanager
def locked(places: Places, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the repository-wide agentloop lock: one process at a time makes or removes
    worktrees and branches, and `clean` sees no run half made."""
    places.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(places.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WorkspaceError(
                        f"another agentloop process has held {places.lock} for {timeout:.0f}s",
                        hint="wait for it to finish (ps aux | grep agentloop), then run again",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _hold(state_file: Path) -> int:
    """Lock `state_file` for as long as this process lives (or until the fd is closed).
    The descriptor is not inherited by children (PEP 446), so a test runner the run
    started cannot keep a dead run looking alive."""
    fd = os.open(state_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_alive(state_file: Path) -> bool:
    try:
        fd = os.open(state_file, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# ---------------------------------------------------------------- the workspace


class Workspace:
    """An isolated checkout for one run. Make it with `Workspace.open(...)`."""

    def __init__(
        self,
        *,
        state: RunState,
        repo: Path,
        root: Path,
        places: Places,
    ) -> None:
        self.run_id = state.run_id
        self.repo = repo  # the user's checkout (its top)
        self.path = Path(state.path)  # the top of the checkout the run works in
        self.root = root  # the project inside it (a monorepo's package)
        self.branch = state.branch
        self.base_sha = state.base_sha
        self.in_place = state.in_place
        self.state = state
        self.places = places
        # Worktrees of the run's own beside its main one (the judges', the parallel
        # jobs'), removed when it closes, with the branch each was made on, if any.
        self.extra: list[tuple[Path, str | None]] = []
        # What `open` ran in the run's worktree, to run in each new job worktree too.
        self.setup: tuple[str, ...] = ()
        self.setup_timeout = SETUP_TIMEOUT
        # The checkout's environments each of the run's worktrees gets, and the ones the
        # run's own worktree got (top-relative; not those `setup` made itself).
        self.mirrors: tuple[environment.Mirror, ...] = ()
        self.linked: tuple[str, ...] = ()
        # Set when the workspace is closed.
        self.closed: Cleanup | None = None
        self.close_error: BaseException | None = None
        self._lock_fd: int | None = None

    @classmethod
    @contextmanager
    def open(
        cls,
        repo_root: Path,
        *,
        in_place: bool = False,
        setup: Sequence[str] = (),
        setup_timeout: float = SETUP_TIMEOUT,
        run_id: str | None = None,
        secrets: Sequence[str] = DEFAULT_SECRETS,
        base: str | None = None,
        branch_prefix: str = BRANCH_PREFIX,
    ) -> Iterator[Workspace]:
        """Yield a workspace on a new `<branch_prefix><run-id>` branch (default
        `agentloop/autofix-<run-id>`; the prefix must be under `agentloop/`) made from
        `base` (a commit-ish; default HEAD).

        By default that is a new worktree, and `setup` commands run in it first. With
        `in_place`, the branch is checked out in the user's checkout itself, which must be
        clean; the original branch is checked out again at the end.

        On exit, whatever happened in the body (an exception, ^C): uncommitted work is saved
        to `rescued/<run-id>.patch`, the worktree is removed, and the branch is deleted
        unless it has commits.
        """
        ws = cls._create(
            repo_root,
            in_place=in_place,
            run_id=run_id,
            secrets=secrets,
            base=base,
            branch_prefix=branch_prefix,
        )
        failed = True
        try:
            ws.setup, ws.setup_timeout = tuple(setup), setup_timeout
            if not in_place:
                ws._run_setup(setup, setup_timeout)
                # After setup: what it made is the project's own way and stays; setup
                # never sees a link it could delete through (`rm -rf node_modules/`).
                ws.linked = tuple(environment.link(ws.mirrors, ws.repo, ws.path))
            yield ws
            failed = False
        finally:
            ws._close(quiet=failed)

    @classmethod
    def _create(
        cls,
        repo_root: Path,
        *,
        in_place: bool,
        run_id: str | None,
        secrets: Sequence[str],
        base: str | None = None,
        branch_prefix: str = BRANCH_PREFIX,
    ) -> Workspace:
        project = repo_root.resolve()
        top = git.find_toplevel(project) if project.is_dir() else None
        if top is None:
            raise WorkspaceError(
                f"{project} is not inside a git repository",
                hint="agentloop fixes on a branch of a git checkout: git init && git add -A "
                "&& git commit -m 'initial commit'",
            )
        if run_id is not None and not _valid_run_id(run_id):
            raise WorkspaceError(
                f"{run_id!r} cannot be a run id",
                hint="use letters, digits, '-', '_' and inner dots only",
            )
        if not branch_prefix.startswith(git.BRANCH_PREFIX) or branch_prefix == git.BRANCH_PREFIX:
            raise ValueError(f"{branch_prefix!r} is not a prefix under {git.BRANCH_PREFIX}")
        places = Places.of(git.common_dir(top))
        base_sha = git.head_sha(top)
        if base is not None:
            if in_place:
                raise WorkspaceError(
                    "--in-place works on the checkout's own commit",
                    hint="drop --in-place to start from another commit",
                )
            found = git.rev_parse(top, f"{base}^{{commit}}")
            if found is None:
                raise WorkspaceError(
                    f"{base!r} is not a commit of {top}", hint="give a branch, tag or sha"
                )
            base_sha = found
        original = git.current_branch(top)
        if in_place:
            dirty = git.status_porcelain(top)
            if dirty:
                shown = ", ".join(e.path for e in dirty[:3]) + (" …" if len(dirty) > 3 else "")
                raise WorkspaceError(
                    f"{top} has uncommitted changes or untracked files ({shown}); "
                    "--in-place needs a clean checkout",
                    hint="commit or stash them (git stash -u), or drop --in-place: a "
                    "separate worktree leaves your checkout alone",
                )
        with locked(places):
            rid = _pick_run_id(top, places, run_id, branch_prefix)
            state = RunState(
                run_id=rid,
                pid=os.getpid(),
                path=str(top if in_place else places.worktree(rid)),
                branch=branch_prefix + rid,
                base_sha=base_sha,
                created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                repo=str(top),
                in_place=in_place,
                original_ref=(original or base_sha) if in_place else None,
                original_detached=in_place and original is None,
            )
            ws = cls(
                state=state,
                repo=top,
                root=Path(state.path) / project.relative_to(top),
                places=places,
            )
            if not in_place:
                ws.mirrors = environment.find(
                    top,
                    project.relative_to(top).as_posix(),
                    git.ignored_entries(top),
                    secrets=secrets,
                )
            # The state file comes first: if we die from here on, clean knows what to undo.
            state_file = places.state_file(rid)
            _write_atomic(state_file, state.to_json())
            ws._lock_fd = _hold(state_file)
            try:
                if in_place:
                    git.create_and_switch(top, state.branch)
                else:
                    git.add_worktree(top, Path(state.path), state.branch, base_sha)
            except BaseException:
                ws._close(quiet=True, lock_held=True)
                raise
        return ws

    def _run_setup(self, commands: Sequence[str], timeout: float, root: Path | None = None) -> None:
        root = self.root if root is None else root
        for command in commands:
            done = proc.run(command, cwd=root, env=self.env(root=root), timeout=timeout)
            if done.ok:
                continue
            why = f"timed out after {timeout:.0f}s" if done.timed_out else f"exit {done.returncode}"
            last = done.tail(1) or "(no output)"
            raise WorkspaceError(
                f"setup command `{command}` failed in the worktree ({why}): {last}",
                hint=f"fix workspace.setup in agentloop.yaml; to see it fail, run it in a "
                f"fresh checkout: git worktree add /tmp/try {self.base_sha[:12]} && cd /tmp/try "
                f"&& {command}",
            )

    # ------------------------------------------------------------ for the run

    def detached_worktree(self, name: str) -> Path:
        """Another checkout of the run's base on no branch (the judge's); see `worktree`."""
        return self.worktree(name)

    def worktree(self, name: str, *, commit: str | None = None, branch: str | None = None) -> Path:
        """Another checkout for this run, in agentloop's directory (`<run-id>.<name>`), of
        `commit` (default: the run's base), on a new `branch` or on none; removed with the
        run's own, and its branch deleted.

        The branch must be agentloop's (under `agentloop/`): whatever a loop names it, no
        user branch is ever made, moved or deleted here. A worktree on a branch is where
        an agent works (a parallel job): `workspace.setup` runs in it as in the run's own.
        A detached one holds committed trees only (the judge's)."""
        if branch is not None and not branch.startswith(git.BRANCH_PREFIX):
            raise ValueError(f"{branch} is not an {git.BRANCH_PREFIX}* branch")
        path = self.places.worktree(f"{self.run_id}.{name}")
        sha = commit or self.base_sha
        with locked(self.places):
            if branch is None:
                git.add_detached_worktree(self.repo, path, sha)
            else:
                git.add_worktree(self.repo, path, branch, sha)
        self.extra.append((path, branch))
        root = path / self.root.relative_to(self.path)
        if branch is not None and not self.in_place:
            self._run_setup(self.setup, self.setup_timeout, root)
        # The same environment as the run's own worktree: the checkout's, where the run's
        # got it (what setup made there is the judge's to link from it).
        environment.link([m for m in self.mirrors if m.path in self.linked], self.repo, path)
        return path

    def drop_worktree(self, path: Path, *, keep_branch: bool = False) -> Path | None:
        """Remove one of `worktree`'s checkouts before the run ends (a parallel build's
        stream, once merged or given up), and delete its branch unless `keep_branch` (a
        stream left out of the build: its work stays there to be looked at). Unlike the
        checkouts `_close` removes, this one may hold an agent's work still (^C
        mid-attempt): any uncommitted change is saved to `rescued/` first; returns that
        patch, if any."""
        entry = next(((p, b) for p, b in self.extra if p == path), None)
        if entry is None:
            raise ValueError(f"{path} is not a worktree of run {self.run_id}")
        rescued: Path | None = None
        with locked(self.places):
            if path.is_dir() and git.is_dirty(path):
                rescued = _rescue(path, self.places, path.name, entry[1])
            _remove_worktree(self.repo, path)
            if not keep_branch and entry[1] is not None and git.branch_exists(self.repo, entry[1]):
                git.delete_branch(self.repo, entry[1])
        self.extra.remove(entry)
        return rescued

    def env(
        self, base: Mapping[str, str] | None = None, *, root: Path | None = None
    ) -> dict[str, str]:
        """The environment to run the project's commands with, so they use this
        checkout's code.

        The editable-install trap: a project installed with `pip install -e .` from the
        user's checkout resolves its imports there (a .pth entry or a meta-path finder in
        site-packages), so tests run in the worktree would test the wrong copy. PYTHONPATH
        entries come before site-packages (and before finders, which setuptools and
        editables append to sys.meta_path), so the worktree's copies of the folders the
        venv's editable installs name (`environment.editable_paths`: `src/`, the root,
        `lib/`…) go first, then its `src/` (when there is one) and its root. The worktree's
        `.venv` (or `venv`) is used: the checkout's mirrored in, or one `setup` made.
        Inherited GIT_* variables that pick a repository are dropped.
        """
        env = dict(git.clean_env() if base is None else base)
        root = self.root if root is None else root
        venv = next(
            (root / n for n in environment.VENV_NAMES if (root / n / "bin" / "python").exists()),
            None,
        )
        first: list[str] = []
        if not self.in_place:
            # The top of the checkout `root` is in: git names the editable folders from there.
            depth = len(self.root.relative_to(self.path).parts)
            top = root.parents[depth - 1] if depth else root
            used = venv or (Path(env["VIRTUAL_ENV"]) if env.get("VIRTUAL_ENV") else None)
            if used is not None:
                found = environment.editable_paths(used, self.repo)
                first += [str(top / rel) for rel in found if (top / rel).is_dir()]
        if (root / "src").is_dir():
            first.append(str(root / "src"))
        first.append(str(root))
        first = list(dict.fromkeys(os.path.normpath(p) for p in first))
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in first]
        env["PYTHONPATH"] = os.pathsep.join(first + rest)
        if not self.in_place and venv is not None:
            env["VIRTUAL_ENV"] = str(venv)
            env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
        return env

    def commits(self) -> list[str]:
        """Commits made on the run's branch so far, oldest first."""
        return git.commits_between(self.path, self.base_sha, "HEAD")

    def discard(self) -> None:
        """Throw away uncommitted changes (tracked and untracked; ignored files stay)."""
        git.reset_hard(self.path, "HEAD")
        git.clean_untracked(self.path)

    # ------------------------------------------------------------ the end

    def _close(self, *, quiet: bool, lock_held: bool = False) -> None:
        """Undo the run's checkout. With `quiet` (the body already failed) a failure
        here is kept in `close_error` rather than hiding the body's exception; either way
        the state file stays, so `agentloop clean` can finish the job."""
        try:
            for path, branch in self.extra:
                # Throwaway checkouts: of committed trees (the judge's), or a job's, whose
                # attempts left it as they found it and whose accepted fixes are on the
                # run's branch by now; nothing in them is anyone's work.
                with contextlib.suppress(git.GitError):
                    _remove_worktree(self.repo, path)
                if branch is not None and git.branch_exists(self.repo, branch):
                    with contextlib.suppress(git.GitError):
                        git.delete_branch(self.repo, branch)
            self.extra.clear()
            if lock_held:
                self.closed = release(self.repo, self.places, self.state)
            else:
                with locked(self.places):
                    self.closed = release(self.repo, self.places, self.state)
        except BaseException as exc:
            if quiet:
                self.close_error = exc
            elif isinstance(exc, git.GitError):
                raise WorkspaceError(
                    f"could not remove run {self.run_id}'s worktree or branch: {exc.message}",
                    hint="run `agentloop clean` to finish the job (your checkout is untouched)",
                ) from exc
            else:
                raise
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _remove_worktree(repo: Path, path: Path) -> None:
    """`git worktree remove --force`, after taking the environment mirrors out link by
    link: git does not follow links either (git 2.39), but the user's node_modules must
    not hang on that. Found from the worktree itself, so a killed run's are found too."""
    if path.is_dir():
        try:
            ignored = git.ignored_entries(path)
        except git.GitError:
            ignored = ()
        names = {*environment.VENV_NAMES, environment.NODE_MODULES}
        environment.unlink(path, [e.rstrip("/") for e in ignored if Path(e).name in names])
    git.remove_worktree(repo, path, force=True)


def _remove_if_empty(folder: Path) -> None:
    """Leave no empty per-repository folder behind in the user's cache."""
    # Not empty (another run's worktree) or already gone: nothing to do.
    with contextlib.suppress(OSError):
        folder.rmdir()


def _valid_run_id(run_id: str) -> bool:
    return bool(_RUN_ID.fullmatch(run_id)) and not run_id.endswith(".lock")


def _pick_run_id(top: Path, places: Places, wanted: str | None, prefix: str = BRANCH_PREFIX) -> str:
    """`wanted`, or a new timestamp id; two runs in the same second get -2, -3…"""
    base = wanted or new_run_id()
    for n in range(1, 1000):
        rid = base if n == 1 else f"{base}-{n}"
        taken = (
            places.state_file(rid).exists()
            or places.worktree(rid).exists()
            or git.branch_exists(top, prefix + rid)
        )
        if not taken:
            return rid
        if wanted is not None:
            raise WorkspaceError(
                f"run id {wanted} is already used in {top}",
                hint="pick another id, or run agentloop clean to remove leftovers",
            )
    raise WorkspaceError(f"no free run id from {base}", hint="run agentloop clean")


# ---------------------------------------------------------------- undoing a run


def _rescue(checkout: Path, places: Places, run_id: str, branch: str | None) -> Path:
    """Save the uncommitted work of `checkout` (untracked files too) as a patch."""
    places.rescued.mkdir(parents=True, exist_ok=True)
    dest = places.rescued / f"{run_id}.patch"
    n = 2
    while dest.exists():
        dest = places.rescued / f"{run_id}-{n}.patch"
        n += 1
    head = git.head_sha(checkout)
    tmp = dest.with_name(f".{dest.name}.tmp")
    git.save_diff(checkout, head, tmp)
    # `git apply` skips everything before the first "diff --git": a header is safe.
    header = (
        f"# agentloop: uncommitted work of run {run_id} in {checkout}\n"
        f"# branch {branch or '(none)'}, on top of commit {head}\n"
        f"# to get it back: git switch --detach {head[:12]} && git apply {dest}\n\n"
    )
    data = tmp.read_bytes()
    tmp.write_bytes(header.encode() + data)
    os.replace(tmp, dest)
    return dest


def _registered(repo: Path, path: Path) -> git.Worktree | None:
    wanted = path.resolve()
    for wt in git.list_worktrees(repo):
        if wt.path.resolve() == wanted:
            return wt
    return None


def _checked_out_elsewhere(repo: Path, branch: str, but: Path | None) -> Path | None:
    """The worktree other than `but` that has `branch` checked out, if any."""
    skip = but.resolve() if but is not None else None
    for wt in git.list_worktrees(repo):
        if wt.branch == branch and wt.path.resolve() != skip:
            return wt.path
    return None


def _extra_worktrees(repo: Path, places: Places, run_id: str) -> list[git.Worktree]:
    """The detached worktrees a run made beside its own (`<run-id>.<name>`)."""
    ours = places.worktrees.resolve()
    return [
        wt
        for wt in git.list_worktrees(repo)
        if wt.path.resolve().parent == ours and wt.path.name.startswith(f"{run_id}.")
    ]


def release(repo: Path, places: Places, state: RunState, *, dry_run: bool = False) -> Cleanup:
    """Undo `state`'s run: save its uncommitted work, remove its worktree (in place:
    check the original branch out again), delete its branch unless it has commits, drop
    its state file. Call with the lock held. Touches nothing but the run's own worktree
    and branch; in a dry run, touches nothing and says what it would do."""
    checkout = Path(state.path)
    rescued: Path | None = None
    removed = False
    restored: str | None = None
    kept: list[str] = []
    finished = True  # False while something of the run's checkout is left to undo
    if state.in_place:
        # The user may have switched away by hand since: then their checkout is theirs.
        if checkout.is_dir() and git.current_branch(checkout) == state.branch:
            restored = state.original_ref or state.base_sha
            dirty = git.is_dirty(checkout)
            if dry_run:
                rescued = places.rescued / f"{state.run_id}.patch" if dirty else None
            else:
                if dirty:
                    rescued = _rescue(checkout, places, state.run_id, state.branch)
                    git.reset_hard(checkout, "HEAD")
                    git.clean_untracked(checkout)
                git.switch(checkout, restored, detach=state.original_detached)
    else:
        wt = _registered(repo, checkout)
        if wt is not None and wt.locked:
            kept.append(f"worktree {checkout} is locked (git worktree unlock releases it)")
            finished = False
        elif wt is not None:
            dirty = checkout.is_dir() and git.is_dirty(checkout)
            if dry_run:
                rescued = places.rescued / f"{state.run_id}.patch" if dirty else None
            else:
                if dirty:
                    rescued = _rescue(checkout, places, state.run_id, state.branch)
                _remove_worktree(repo, checkout)
                _remove_if_empty(checkout.parent)
            removed = True
        elif checkout.exists():
            # Not git's: we cannot tell what it holds, so we do not delete it.
            kept.append(f"{checkout} exists but is not a registered worktree; look, then delete it")
            finished = False
    for wt in _extra_worktrees(repo, places, state.run_id):
        # The run's throwaway checkouts of committed trees (the judge's): nothing in them
        # is anyone's work, so they go without a rescued patch.
        if not dry_run:
            _remove_worktree(repo, wt.path)
    tip = git.rev_parse(repo, f"refs/heads/{state.branch}")
    commits = git.commits_between(repo, state.base_sha, tip) if tip else []
    deleted = False
    if tip is not None:
        elsewhere = _checked_out_elsewhere(repo, state.branch, but=checkout)
        if commits:
            kept.append(f"branch {state.branch} has {len(commits)} commit(s) of fixes")
        elif elsewhere is not None:
            kept.append(f"branch {state.branch} is checked out in {elsewhere}")
        else:
            if not dry_run:
                git.delete_branch(repo, state.branch, expected_sha=tip)
            deleted = True
    if finished and not dry_run:
        places.state_file(state.run_id).unlink(missing_ok=True)
    return Cleanup(
        run_id=state.run_id,
        worktree=None if state.in_place else checkout,
        branch=state.branch,
        pid=state.pid,
        rescued=rescued,
        removed_worktree=removed,
        deleted_branch=deleted,
        restored=restored,
        commits=len(commits),
        kept="; ".join(kept) or None,
    )


# ---------------------------------------------------------------- leftovers of killed runs


@dataclass(frozen=True)
class CleanReport:
    repo: Path
    dry_run: bool
    items: list[Cleanup] = field(default_factory=list)
    alive: list[RunState] = field(default_factory=list)  # left alone: still running
    errors: list[str] = field(default_factory=list)


def _read_states(places: Places) -> tuple[list[tuple[RunState, bool]], list[str]]:
    states: list[tuple[RunState, bool]] = []
    errors: list[str] = []
    for path in sorted(places.runs.glob("*.json")) if places.runs.is_dir() else []:
        try:
            state = RunState.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as exc:
            errors.append(f"{path}: unreadable state file ({exc}); left alone")
            continue
        states.append((state, _is_alive(path)))
    return states, errors


def clean_leftovers(repo_root: Path, *, dry_run: bool) -> CleanReport:
    """Find what killed runs left behind in `repo_root`'s repository and undo it.

    Leftovers are: state files of runs that no longer hold their lock; worktrees under
    agentloop's directory that no live run owns; `agentloop/*` branches that no
    live run owns and no worktree has checked out. Uncommitted work is saved to
    `rescued/` before a worktree goes; a branch with commits beyond its base (or, without
    a state file, with commits no other ref reaches) is kept and reported. Nothing of a
    live run, and no branch or worktree that is not agentloop's, is touched.
    """
    top = git.find_toplevel(repo_root) if repo_root.is_dir() else None
    if top is None:
        raise WorkspaceError(
            f"{repo_root} is not inside a git repository", hint="pass a git checkout with --repo"
        )
    places = Places.of(git.common_dir(top))
    report = CleanReport(repo=top, dry_run=dry_run)
    with locked(places):
        states, errors = _read_states(places)
        report.errors.extend(errors)
        owned_paths: set[Path] = set()
        owned_branches: set[str] = set()
        dead: list[RunState] = []
        for state, alive in states:
            owned_branches.add(state.branch)
            if not state.in_place:
                owned_paths.add(Path(state.path).resolve())
            owned_paths.update(
                wt.path.resolve() for wt in _extra_worktrees(top, places, state.run_id)
            )
            if alive:
                report.alive.append(state)
            else:
                dead.append(state)
        for state in dead:
            _attempt(report, partial(release, top, places, state, dry_run=dry_run), state.run_id)
        # Worktrees in our directory that no state file speaks for (the state was lost).
        ours = places.worktrees.resolve()
        for wt in git.list_worktrees(top):
            path = wt.path.resolve()
            if path.parent != ours or path in owned_paths:
                continue
            owned_paths.add(path)
            if wt.branch:
                owned_branches.add(wt.branch)
            _attempt(report, partial(_release_orphan, top, places, wt, dry_run=dry_run), path.name)
        # Branches no run speaks for.
        checked_out = {wt.branch for wt in git.list_worktrees(top) if wt.branch}
        # Every agentloop/ branch: a run's (autofix-, or another loop's prefix) or a job's.
        for branch, sha in sorted(git.branches(top, git.BRANCH_PREFIX).items()):
            if branch in owned_branches or branch in checked_out:
                continue
            _attempt(report, partial(_release_branch, top, branch, sha, dry_run=dry_run), branch)
        # Directories in ours that git does not know: never deleted unless empty.
        registered = {wt.path.resolve() for wt in git.list_worktrees(top)}
        for path in sorted(places.worktrees.iterdir()) if places.worktrees.is_dir() else []:
            resolved = path.resolve()
            if resolved in registered or resolved in owned_paths:
                continue
            if path.is_dir() and not any(path.iterdir()):
                if not dry_run:
                    path.rmdir()
                report.items.append(
                    Cleanup(run_id=path.name, worktree=path, branch=None, removed_worktree=True)
                )
            else:
                report.items.append(
                    Cleanup(
                        run_id=path.name,
                        worktree=path,
                        branch=None,
                        kept=f"{path} is not a registered worktree; look, then delete it",
                    )
                )
    return report


def _attempt(report: CleanReport, action: Callable[[], Cleanup], what: str) -> None:
    # One leftover that cannot be undone must not stop the others from being cleaned.
    try:
        report.items.append(action())
    except (git.GitError, OSError) as exc:
        message = exc.message if isinstance(exc, git.GitError) else str(exc)
        report.errors.append(f"{what}: {message}")


def _release_orphan(top: Path, places: Places, wt: git.Worktree, *, dry_run: bool) -> Cleanup:
    """A worktree of ours without a state file: its base is unknown, so its branch is
    kept when it holds commits that no other ref reaches."""
    run_id = wt.path.name
    if wt.locked:
        return Cleanup(
            run_id=run_id,
            worktree=wt.path,
            branch=wt.branch,
            kept=f"worktree {wt.path} is locked (git worktree unlock releases it)",
        )
    rescued: Path | None = None
    if wt.path.is_dir() and git.is_dirty(wt.path):
        rescued = (
            places.rescued / f"{run_id}.patch"
            if dry_run
            else _rescue(wt.path, places, run_id, wt.branch)
        )
    if not dry_run:
        _remove_worktree(top, wt.path)
        _remove_if_empty(wt.path.parent)
    done = Cleanup(
        run_id=run_id, worktree=wt.path, branch=None, rescued=rescued, removed_worktree=True
    )
    if wt.branch is None or git.rev_parse(top, f"refs/heads/{wt.branch}") is None:
        return done
    branch = _release_branch(top, wt.branch, wt.head or "", dry_run=dry_run, but=wt.path)
    return replace(
        done,
        branch=wt.branch,
        deleted_branch=branch.deleted_branch,
        commits=branch.commits,
        kept=branch.kept,
    )


def _release_branch(
    top: Path, branch: str, sha: str, *, dry_run: bool, but: Path | None = None
) -> Cleanup:
    """An agentloop branch no run speaks for: deleted when it holds nothing no other ref
    reaches (its base is unknown)."""
    tip = git.rev_parse(top, f"refs/heads/{branch}") or sha
    unique = git.unique_commits(top, branch)
    elsewhere = _checked_out_elsewhere(top, branch, but=but)
    if unique:
        kept = f"branch {branch} has {len(unique)} commit(s) no other branch has"
    elif elsewhere is not None:
        kept = f"branch {branch} is checked out in {elsewhere}"
    else:
        if not dry_run:
            git.delete_branch(top, branch, expected_sha=tip)
        return Cleanup(run_id=None, worktree=None, branch=branch, deleted_branch=True)
    return Cleanup(run_id=None, worktree=None, branch=branch, commits=len(unique), kept=kept)
