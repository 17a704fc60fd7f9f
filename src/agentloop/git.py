"""Small verb-named git functions. Everything goes through `proc.run`.

A failing git command raises `GitError` (command, exit code, stderr, and a hint). Functions
that read take `--no-optional-locks`, so looking at a checkout never rewrites its index.
Functions that throw work away or commit (`reset_hard`, `clean_untracked`, `commit_all`,
`revert_commit`) refuse to run anywhere but on an agentloop branch.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agentloop import proc
from agentloop.errors import AgentloopError

# Every branch agentloop creates starts with this; nothing else is ever reset or deleted.
BRANCH_PREFIX = "agentloop/"

# Seconds for commands that touch a handful of objects; checkouts get longer.
QUICK = 60.0
CHECKOUT = 600.0

# Hooks are the user's, written for the user's checkout: in agentloop's own worktree a
# pre-commit hook may lack its dependencies, prompt, or rewrite the fix being committed.
# `workspace.setup` is the supported way to prepare a worktree. (/dev/null/<hook> is never
# an executable file, so git finds no hook at all.)
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null")

# Variables that say *who* runs git or *how* it reaches the network, not *which*
# repository: keep them. Everything else GIT_* (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE,
# GIT_OBJECT_DIRECTORY, GIT_COMMON_DIR, GIT_PREFIX…) is exported by git to hooks and would
# point our commands at the wrong repository or index.
_KEEP = frozenset(
    {
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSL_CAINFO",
        "GIT_SSL_NO_VERIFY",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_HTTP_PROXY_AUTHMETHOD",
        "GIT_ALLOW_PROTOCOL",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_COUNT",
    }
)


class GitError(AgentloopError):
    """A git command failed. Carries the command, its exit code and stderr."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        command: str = "",
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


def clean_env() -> dict[str, str]:
    # Inside a git hook (or a worktree) inherited GIT_DIR/GIT_INDEX_FILE would point
    # git at the wrong repository; strip them so paths decide.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_")
        or k in _KEEP
        or k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = clean_env()
    # Error messages are matched below to give a precise hint: have them in English.
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


def _hint(stderr: str, cwd: Path) -> str:
    text = stderr.lower()
    if "please tell me who you are" in text or "unable to auto-detect email" in text:
        return (
            "tell git who commits: git config --global user.name 'Your Name' && "
            "git config --global user.email you@example.com (or set GIT_AUTHOR_NAME/EMAIL "
            "and GIT_COMMITTER_NAME/EMAIL)"
        )
    if "dubious ownership" in text:
        return f"trust the repository: git config --global --add safe.directory {cwd}"
    if "index.lock" in text:
        return (
            "another git process is running in this repository; wait for it, or remove "
            "the stale index.lock it names if none is"
        )
    if "not a git repository" in text:
        return f"{cwd} is not inside a git repository; run agentloop in one (or git init)"
    return f"run the command yourself in {cwd} to see the whole story"


def _git(
    cwd: Path,
    *args: str,
    timeout: float = QUICK,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> proc.Completed:
    # core.fsmonitor names a command git runs whenever it looks at an index (even
    # `diff-tree` does, git 2.39); whoever can write .git/config picks it. Never from here.
    command = ["git", "-c", "core.fsmonitor=false", *args]
    try:
        done = proc.run(command, cwd=cwd, env=env if env is not None else _env(), timeout=timeout)
    except proc.CommandNotFound:
        raise GitError(
            "git is not installed (or not on PATH)", hint="install git 2.30 or newer"
        ) from None
    except FileNotFoundError:
        raise GitError(f"{cwd} does not exist", hint="pass an existing directory") from None
    if check and not done.ok:
        raise _error(done, cwd)
    return done


def _error(done: proc.Completed, cwd: Path) -> GitError:
    stderr = done.stderr.strip()
    why = f"timed out after {done.duration:.0f}s" if done.timed_out else f"exit {done.returncode}"
    last = stderr.splitlines()[-1] if stderr else "(no output)"
    return GitError(
        f"`{done.command}` failed in {cwd} ({why}): {last}",
        hint=_hint(stderr, cwd),
        command=done.command,
        returncode=done.returncode,
        stderr=stderr,
    )


def _read(cwd: Path, *args: str, timeout: float = QUICK, check: bool = True) -> proc.Completed:
    # A read-only look must not refresh and rewrite the index of the user's checkout
    # (`git status` does that by default to cache stat data).
    return _git(cwd, "--no-optional-locks", *args, timeout=timeout, check=check)


def _split_z(text: str) -> list[str]:
    return [part for part in text.split("\0") if part]


# ---------------------------------------------------------------- where am I


def find_toplevel(path: Path) -> Path | None:
    """The root of the git work tree containing `path`, or None when it is not in one."""
    try:
        done = proc.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=path, timeout=30, env=clean_env()
        )
    except proc.CommandNotFound:
        return None
    if not done.ok or not done.stdout.strip():
        return None
    return Path(done.stdout.strip()).resolve()


def common_dir(cwd: Path) -> Path:
    """The git directory shared by all worktrees (`.git` of the main checkout)."""
    # Printed relative to cwd in the main checkout and absolute in a linked worktree;
    # --path-format=absolute would settle it but needs git 2.31.
    out = _read(cwd, "rev-parse", "--git-common-dir").stdout.strip()
    return (cwd / out).resolve()


def rev_parse(cwd: Path, rev: str) -> str | None:
    """The object name `rev` resolves to, or None when it does not resolve."""
    done = _read(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", rev, check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def head_sha(cwd: Path) -> str:
    sha = rev_parse(cwd, "HEAD^{commit}")
    if sha is None:
        raise GitError(
            f"{cwd} has no commit yet (HEAD is unborn)",
            hint="commit something first: git add -A && git commit -m 'initial commit'",
        )
    return sha


def subject(cwd: Path, sha: str) -> str:
    """A commit's subject line."""
    return _read(cwd, "log", "-1", "--format=%s", sha, "--").stdout.strip()


def message(cwd: Path, sha: str) -> str:
    """A commit's whole message, as written."""
    return _read(cwd, "log", "-1", "--format=%B", sha, "--").stdout.rstrip("\n") + "\n"


def current_branch(cwd: Path) -> str | None:
    """The short name of the checked-out branch; None when HEAD is detached."""
    done = _read(cwd, "symbolic-ref", "--quiet", "HEAD", check=False)
    ref = done.stdout.strip()
    if done.returncode != 0 or not ref.startswith("refs/heads/"):
        return None
    return ref.removeprefix("refs/heads/")


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusEntry:
    """One line of `git status --porcelain`: `code` is XY ("??" untracked, " M", "R " …);
    `orig` is the source of a rename or copy."""

    code: str
    path: str
    orig: str | None = None


def status_porcelain(cwd: Path) -> list[StatusEntry]:
    """Staged, unstaged and untracked (not ignored) changes, every untracked file listed."""
    out = _read(
        cwd, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none"
    ).stdout
    parts = out.split("\0")
    entries: list[StatusEntry] = []
    i = 0
    while i < len(parts):
        item = parts[i]
        i += 1
        if len(item) < 4:
            continue
        code, path = item[:2], item[3:]
        orig = None
        # With -z a rename is "R  new\0old\0": the source follows as its own field.
        if "R" in code or "C" in code:
            orig = parts[i]
            i += 1
        entries.append(StatusEntry(code, path, orig))
    return entries


def is_dirty(cwd: Path) -> bool:
    """True when anything is staged, modified or untracked (ignored files do not count)."""
    return bool(status_porcelain(cwd))


def listed_paths(cwd: Path, *, ignored: Sequence[str] | None = None) -> tuple[str, ...]:
    """Every path git can name in `cwd`'s work tree: tracked and untracked files, and the
    ignored entries (directories collapsed, ending in "/"; `ignored_entries(cwd)` unless
    the caller has them), top-relative."""
    out = _read(
        cwd, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--full-name",
        timeout=CHECKOUT,
    ).stdout  # fmt: skip
    rest = ignored_entries(cwd) if ignored is None else ignored
    return tuple(dict.fromkeys((*_split_z(out), *rest)))


def is_tracked(cwd: Path, path: Path) -> bool:
    """Whether `path` (absolute) is a file git tracks in `cwd`'s work tree."""
    try:
        relative = path.resolve().relative_to(cwd.resolve())
    except ValueError:
        return False
    done = _read(cwd, "ls-files", "--error-unmatch", "--", f":(literal){relative}", check=False)
    return done.ok


# ---------------------------------------------------------------- worktrees and branches


@dataclass(frozen=True)
class Worktree:
    path: Path
    head: str | None
    branch: str | None
    bare: bool = False
    detached: bool = False
    locked: bool = False
    prunable: bool = False


def add_worktree(repo: Path, path: Path, branch: str, base_sha: str) -> None:
    """Check out `base_sha` at `path` on a new branch `branch`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # -b (not -B) refuses a branch that exists: never reset someone's branch. The base is
    # an explicit sha, not "HEAD", so what is checked out cannot change under us.
    _git(
        repo,
        *_NO_HOOKS,
        "worktree",
        "add",
        "--quiet",
        "-b",
        branch,
        str(path),
        base_sha,
        timeout=CHECKOUT,
    )


def remove_worktree(repo: Path, path: Path, *, force: bool) -> None:
    """Remove a linked worktree (its directory and git's record of it). Without `force`
    git refuses a worktree with modified or untracked files. A registered worktree whose
    directory is already gone is simply unregistered."""
    args = ["worktree", "remove"]
    if force:
        args.append("--force")
    _git(repo, *_NO_HOOKS, *args, str(path), timeout=CHECKOUT)


def list_worktrees(repo: Path) -> list[Worktree]:
    done = _read(repo, "worktree", "list", "--porcelain", "-z", check=False)
    if done.returncode == 129:
        # `worktree list -z` is git 2.36+ (Ubuntu 22.04 ships 2.34): older git rejects the
        # switch with a usage error, and separates fields with newlines.
        done = _read(repo, "worktree", "list", "--porcelain")
        return _parse_worktrees(done.stdout.replace("\n", "\0"))
    if not done.ok:
        raise _error(done, repo)
    return _parse_worktrees(done.stdout)


def _parse_worktrees(out: str) -> list[Worktree]:
    found: list[Worktree] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        if "worktree" in fields:
            branch = fields.get("branch")
            found.append(
                Worktree(
                    path=Path(fields["worktree"]),
                    head=fields.get("HEAD"),
                    branch=branch.removeprefix("refs/heads/") if branch else None,
                    bare="bare" in fields,
                    detached="detached" in fields,
                    locked="locked" in fields,
                    prunable="prunable" in fields,
                )
            )
        fields.clear()

    # Records are attribute lines ("HEAD <sha>", "locked <reason>", "bare") ended by an
    # empty one; with -z that is two NULs in a row.
    for line in out.split("\0"):
        if not line:
            flush()
            continue
        key, _, value = line.partition(" ")
        fields[key] = value
    flush()
    return found


def prune_worktrees(repo: Path) -> None:
    """Forget every registered worktree whose directory is gone — anyone's, not only
    agentloop's (a worktree on an unmounted disk included): `clean` does not use it."""
    _git(repo, "worktree", "prune")


def branches(repo: Path, prefix: str = BRANCH_PREFIX) -> dict[str, str]:
    """Local branches whose name starts with `prefix`, mapped to the sha they point at."""
    # Filtered here: a for-each-ref pattern matches literally only up to a "/" boundary
    # (refs/heads/agentloop/autofix- matches nothing), and "*" does not cross a "/".
    # Full refnames: %(refname:short) turns into "heads/x" when a tag is also called x.
    out = _read(repo, "for-each-ref", "--format=%(refname)%00%(objectname)", "refs/heads/").stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        ref, _, sha = line.partition("\0")
        name = ref.removeprefix("refs/heads/")
        if name.startswith(prefix):
            found[name] = sha
    return found


def branch_exists(repo: Path, name: str) -> bool:
    return rev_parse(repo, f"refs/heads/{name}") is not None


def delete_branch(repo: Path, name: str, *, expected_sha: str | None = None) -> None:
    """Delete a local branch. With `expected_sha`, only if it still points there (it may
    have moved since it was inspected)."""
    if expected_sha is not None:
        now = rev_parse(repo, f"refs/heads/{name}")
        if now != expected_sha:
            raise GitError(
                f"branch {name} moved to {now} since it was inspected (was {expected_sha})",
                hint="someone is using it; run again once they are done",
            )
    # `branch -D`, not `update-ref -d`: it refuses a branch checked out in any worktree
    # ("cannot delete branch … used by worktree"), which update-ref would happily orphan.
    _git(repo, "branch", "--quiet", "-D", name)


def create_and_switch(cwd: Path, branch: str) -> None:
    """Create `branch` at HEAD and check it out, carrying nothing (the tree is clean)."""
    _git(cwd, *_NO_HOOKS, "switch", "--quiet", "--no-track", "-c", branch, timeout=CHECKOUT)


def switch(cwd: Path, ref: str, *, detach: bool = False) -> None:
    args = ["switch", "--quiet"]
    if detach:
        args.append("--detach")
    _git(cwd, *_NO_HOOKS, *args, ref, timeout=CHECKOUT)


def commits_between(cwd: Path, base: str, tip: str) -> list[str]:
    """Commits reachable from `tip` but not from `base`, oldest first."""
    out = _read(cwd, "rev-list", "--reverse", f"{base}..{tip}", "--").stdout
    return out.split()


def create_bundle(cwd: Path, dest: Path, branch: str, base: str) -> None:
    """A bundle at `dest` holding `refs/heads/<branch>`, with `base` as its prerequisite:
    the run's commits, carried as a file to a job (or machine) that has the base."""
    _git(cwd, "bundle", "create", str(dest), f"refs/heads/{branch}", f"^{base}", timeout=CHECKOUT)


def create_bundle_of(cwd: Path, dest: Path, branches: Sequence[str], base: str) -> None:
    """A bundle at `dest` holding `refs/heads/<branch>` of each of `branches`, all built on
    `base` (its prerequisite): `agentloop heal`'s fix branches, one file for the job that
    publishes them (`fetch_bundle` reads one branch of it at a time)."""
    refs = [f"refs/heads/{branch}" for branch in branches]
    _git(cwd, "bundle", "create", str(dest), *refs, f"^{base}", timeout=CHECKOUT)


def diff_stat(cwd: Path, old: str, new: str) -> str:
    """`git diff --stat old new`, for a person to read (a PR's body)."""
    return _read(cwd, "diff", "--stat", "--no-color", old, new).stdout


def fetch_bundle(cwd: Path, bundle: Path, branch: str) -> str:
    """Bring the commits of `refs/heads/<branch>` in `bundle` into this repository's
    object store (no ref is written) and return the branch's tip. The bundle is verified
    first: its prerequisites (the base it was made from) must be here."""
    checked = _git(cwd, "bundle", "verify", str(bundle), check=False, timeout=CHECKOUT)
    if not checked.ok:
        last = (checked.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise GitError(
            f"{bundle} cannot be applied here: {last}",
            hint="fetch the commit the run started from (actions/checkout with fetch-depth: 0)",
        )
    ref = f"refs/heads/{branch}"
    heads = _git(cwd, "bundle", "list-heads", str(bundle), ref).stdout.split()
    if len(heads) < 2:
        raise GitError(f"{bundle} holds no {ref}", hint="pass the bundle `agentloop run` wrote")
    _git(
        cwd,
        *_NO_HOOKS,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        str(bundle),
        ref,
        timeout=CHECKOUT,
    )
    return heads[0]


def unique_commits(repo: Path, branch: str) -> list[str]:
    """Commits of `branch` that no other ref (branch, tag, remote, stash) reaches."""
    ref = f"refs/heads/{branch}"
    # --exclude applies to the --all that follows it. Without --single-worktree, --all
    # also counts every worktree's HEAD: a worktree with the branch checked out would
    # make all its commits look reached.
    out = _read(
        repo, "rev-list", ref, "--not", "--single-worktree", f"--exclude={ref}", "--all", "--"
    ).stdout
    return out.split()


# ---------------------------------------------------------------- what changed


# Settings, from any config file, that would let `git add` skip a file or run a command
# while it hashes the working tree. Each one can be set by whoever writes .git/config or a
# worktree's config.worktree, which an agent can: the snapshot must not depend on them.
_TRUST_NOTHING = (
    # A "hook" naming the files that changed since a token: a command of anyone's choosing,
    # and whatever it leaves out is never looked at.
    "-c", "core.fsmonitor=false",
    # Directory mtimes cached in the index stand for "no new file in here".
    "-c", "core.untrackedCache=false",
    # Marks the entries it adds assume-unchanged; stat-based shortcuts only in what follows.
    "-c", "core.ignoreStat=false",
    "-c", "core.checkStat=default",
    "-c", "core.trustctime=true",
    # A sparse index or checkout leaves paths outside its cone out of `add`.
    "-c", "core.sparseCheckout=false",
    "-c", "core.sparseCheckoutCone=false",
    "-c", "index.sparse=false",
    # A split index writes its shared part into the repository's git dir, not beside ours.
    "-c", "core.splitIndex=false",
    # With it, a file `add` cannot read is silently left as it was at the base.
    "-c", "add.ignoreErrors=false",
    *_NO_HOOKS,
)  # fmt: skip


def _work_tree(cwd: Path) -> Path | None:
    """The directory whose `.git` (a directory, or a worktree's `gitdir:` file) git finds
    walking up from `cwd`: the checkout as the file system has it. `core.worktree` in a
    worktree's config.worktree makes git work on another directory altogether (seen with
    git 2.39: a linked worktree's commands then read and write the user's checkout)."""
    for directory in (cwd.resolve(), *cwd.resolve().parents):
        if os.path.lexists(directory / ".git"):
            return directory
    return None


def _top(cwd: Path) -> Path:
    top = _work_tree(cwd)
    if top is None:
        # A repository found through GIT_DIR/core.worktree only (a bare repo with a work
        # tree set): git's own answer is the only one.
        found = find_toplevel(cwd)
        if found is None:
            raise GitError(
                f"{cwd} is not inside a git work tree", hint=_hint("not a git repository", cwd)
            )
        return found
    return top


def tree_of(cwd: Path, rev: str) -> str:
    """The tree object of a commit-ish."""
    return _tree_of(cwd, rev)


def _tree_of(cwd: Path, rev: str) -> str:
    tree = rev_parse(cwd, f"{rev}^{{tree}}")
    if tree is None:
        raise GitError(f"{rev} is not a revision in {cwd}", hint="pass a commit sha or branch")
    return tree


@contextmanager
def _fresh_index(top: Path, base_tree: str) -> Iterator[dict[str, str]]:
    """An environment whose index holds the working state of `top` — the base plus every
    tracked, staged, unstaged and untracked (not ignored) change — in a throwaway index
    made from `base_tree` alone. The real index is neither read nor written: its
    assume-unchanged and skip-worktree bits, its stat cache and its fsmonitor and untracked
    caches can each hide a change, so nothing in it is trusted. The price: every file is
    read and hashed."""
    with tempfile.TemporaryDirectory(prefix="agentloop-index-") as tmp:
        env = _env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        work = ("--work-tree", str(top))
        _git(top, *_TRUST_NOTHING, *work, "read-tree", "--no-sparse-checkout", base_tree, env=env)
        # Every entry is new to this index (no stat data), so `add` hashes every file, and
        # a path in the base that a new ignore rule covers is still tracked here.
        _git(top, *_TRUST_NOTHING, *work, "add", "--all", env=env, timeout=CHECKOUT)
        yield env


@dataclass(frozen=True)
class Snapshot:
    """The working state of a checkout as a tree, by content: what agentloop judges and
    commits, whatever the index says."""

    base: str  # the base's object name, as resolved when the snapshot was taken
    base_tree: str
    tree: str  # base + every tracked and untracked (not ignored) change, as git would add it
    # Every path that differs between base_tree and tree, sorted; a rename gives both.
    changed: tuple[str, ...]


def snapshot_tree(cwd: Path, base: str) -> Snapshot:
    """Write the working state of the checkout containing `cwd` as a tree, and list what
    differs from `base` (a commit, or any tree-ish). Objects are written to the repository
    (a commit of the tree needs them); nothing else is."""
    top = _top(cwd)
    base_sha = rev_parse(top, base)
    if base_sha is None:
        raise GitError(f"{base} is not a revision in {top}", hint="pass a commit sha or branch")
    base_tree = _tree_of(top, base)
    with _fresh_index(top, base_tree) as env:
        tree = _git(top, *_TRUST_NOTHING, "write-tree", env=env).stdout.strip()
    return Snapshot(base_sha, base_tree, tree, _changed_between(top, base_tree, tree))


def _changed_between(cwd: Path, old: str, new: str) -> tuple[str, ...]:
    # No rename detection: a rename is a deletion and an addition, both paths listed, which
    # is what is wanted, and rename limits in the config cannot change the answer.
    # --ignore-submodules=none: diff.ignoreSubmodules=all would hide a moved gitlink.
    out = _git(
        cwd, *_TRUST_NOTHING, "diff-tree", "-r", "-z", "--name-only", "--no-renames",
        "--no-relative", "--ignore-submodules=none", old, new, "--",
    ).stdout  # fmt: skip
    return tuple(sorted(set(_split_z(out))))


# Options that keep a diff the same whatever the user's config says: no external diff or
# textconv driver, no colour, a/ b/ prefixes even under diff.noprefix, and paths from the
# top even under diff.relative (git 2.28+).
_DIFF_OPTS = (
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--no-relative",
    "--ignore-submodules=none",
)


def changed_paths(cwd: Path, base: str) -> list[str]:
    """Every path that differs between `base` and the working state of `cwd`: committed
    since base, staged, unstaged and untracked; index flags cannot hide one. A rename gives
    both its paths."""
    return list(snapshot_tree(cwd, base).changed)


def diff(cwd: Path, base: str, *, binary: bool = False) -> str:
    """The diff from `base` to the working state of `cwd`, untracked files included, as
    text (decoded leniently: to keep the bytes, use `save_diff`)."""
    snap = snapshot_tree(cwd, base)
    extra = ["--binary"] if binary else []
    top = _top(cwd)
    return _git(
        top, *_TRUST_NOTHING, "diff", *_DIFF_OPTS, *extra, snap.base_tree, snap.tree, "--"
    ).stdout


def save_diff(cwd: Path, base: str, dest: Path) -> None:
    """Write the diff from `base` to the working state of `cwd` (untracked files
    included, binary files too) to `dest`, byte for byte; `git apply` takes it back."""
    snap = snapshot_tree(cwd, base)
    save_tree_diff(cwd, snap.base_tree, snap.tree, dest)


def save_tree_diff(cwd: Path, old: str, new: str, dest: Path) -> None:
    """Write the diff between two trees (or commits) to `dest`, byte for byte."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    # --output: git writes the bytes itself; a file in Latin-1 survives, which it would
    # not through our (lenient UTF-8) decoding of stdout.
    _git(
        _top(cwd), *_TRUST_NOTHING, "diff", *_DIFF_OPTS, "--binary", f"--output={dest}",
        old, new, "--",
    )  # fmt: skip


def empty_tree(cwd: Path) -> str:
    """The object name of the empty tree (its hash differs with the repository's hash
    function): the base of a repository without commits."""
    return _read(cwd, "hash-object", "-t", "tree", "/dev/null").stdout.strip()


def ignored_entries(cwd: Path) -> tuple[str, ...]:
    """The ignored files of the checkout containing `cwd`, relative to its top, a wholly
    ignored directory as one entry ending in "/" (.venv/, node_modules/). What undoing an
    attempt keeps; anything ignored that is not listed here was made since."""
    top = _top(cwd)
    out = _read(
        top, *_TRUST_NOTHING, "--work-tree", str(top),
        "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory",
    ).stdout  # fmt: skip
    entries = sorted(set(_split_z(out)))
    # git 2.39 lists a directory that holds its own catch-all .gitignore (a uv venv) and
    # then its contents as well: the directory says it all.
    folders = {e for e in entries if e.endswith("/")}
    return tuple(e for e in entries if not any(e != f and e.startswith(f) for f in folders))


def hidden_ignore_files(cwd: Path, entries: Sequence[str] | None = None) -> tuple[str, ...]:
    """The .gitignore files that are themselves ignored (by their own rules, as a rule
    `*` does): a change nobody sees that hides new files beside it. Found among the
    ignored `entries` (default: `ignored_entries(cwd)`): a listed .gitignore, or the first
    .gitignore down a listed directory that no rule outside it ignores."""
    top = _top(cwd)
    entries = ignored_entries(top) if entries is None else entries
    found = [e for e in entries if e == ".gitignore" or e.endswith("/.gitignore")]
    folders = [e for e in entries if e.endswith("/")]
    if folders:
        # A directory ignored from outside (node_modules/ in the top .gitignore) was
        # hidden before anything in it was written; its own .gitignore hides nothing more.
        # Asked without the trailing "/": with it, git 2.39 matches the directory against
        # the rules inside it. -z needs --stdin, which proc.run does not feed: lines,
        # unquoted; a name git still quotes matches nothing and is looked into (toward
        # more, not less).
        outside = set(
            _read(
                top, *_TRUST_NOTHING, "-c", "core.quotePath=false",
                "check-ignore", "--no-index", "--", *(f.rstrip("/") for f in folders),
                check=False,
            ).stdout.splitlines()
        )  # fmt: skip
        for folder in folders:
            if folder.rstrip("/") in outside:
                continue
            found += _first_ignore_files(top, folder)
    return tuple(sorted(set(found)))


def _first_ignore_files(top: Path, folder: str) -> list[str]:
    found: list[str] = []
    for root, dirs, names in os.walk(top / folder):
        if ".gitignore" in names:
            found.append(Path(root, ".gitignore").relative_to(top).as_posix())
            dirs.clear()  # its rules cover everything below
    return found


@dataclass(frozen=True)
class TreeLinks:
    """The symbolic links among some paths of a tree (path → target), and the tree's own
    paths, files and the directories holding them, to say where a link lands."""

    links: dict[str, str]
    held: frozenset[str]

    def holds(self, path: str) -> bool:
        return path in self.held


def tree_links(cwd: Path, tree: str, paths: Sequence[str]) -> TreeLinks:
    """Which of `paths` are symbolic links in `tree` (a tree-ish), and what it holds."""
    out = _read(cwd, "ls-tree", "-r", "-z", "--full-tree", tree).stdout
    entries: dict[str, tuple[str, str]] = {}
    for entry in _split_z(out):
        meta, _, name = entry.partition("\t")
        mode, _kind, sha = meta.split()
        entries[name] = (mode, sha)
    wanted = set(paths)
    links = {
        name: _read(cwd, "cat-file", "blob", sha).stdout
        for name, (mode, sha) in entries.items()
        if mode == "120000" and name in wanted
    }
    held: set[str] = set()
    if links:
        for name in entries:
            parts = name.split("/")
            held.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return TreeLinks(links, frozenset(held))


def show_file(cwd: Path, rev: str, path: str) -> str | None:
    """The text of `path` (relative to the repository's top) at `rev`; None when `rev`
    has no file there. Raises GitError when `rev` itself does not exist."""
    if rev_parse(cwd, rev) is None:
        raise GitError(f"{rev} is not a revision in {cwd}", hint="pass a commit sha or branch")
    # --full-tree: without it ls-tree takes paths relative to cwd. Its "paths" are
    # patterns, so keep only the entry that is exactly `path`.
    out = _read(cwd, "ls-tree", "-z", "--full-tree", rev, "--", path).stdout
    for entry in _split_z(out):
        meta, _, name = entry.partition("\t")
        mode_type_sha = meta.split()
        if name == path and len(mode_type_sha) == 3 and mode_type_sha[1] == "blob":
            return _read(cwd, "cat-file", "blob", mode_type_sha[2]).stdout
    return None


# ---------------------------------------------------------------- changing a worktree


def _require_agentloop_checkout(cwd: Path, verb: str) -> None:
    # The one guard in front of every command that throws work away or moves a branch:
    # whatever calls it, it runs only where agentloop's own branch is checked out.
    branch = current_branch(cwd)
    if branch is None or not branch.startswith(BRANCH_PREFIX):
        raise RuntimeError(
            f"refusing to {verb} in {cwd}: its branch is {branch or '(detached)'}, "
            f"not an {BRANCH_PREFIX}* branch"
        )
    _require_own_ref(cwd, branch, verb)
    # The branch is right, but is the directory? core.worktree in config.worktree points
    # a linked worktree's commands at any directory, the user's checkout included.
    top, real = _work_tree(cwd), find_toplevel(cwd)
    if top is None or real is None or top.resolve() != real.resolve():
        raise RuntimeError(
            f"refusing to {verb} in {cwd}: git would work on {real}, not on the checkout "
            f"{top} (core.worktree is set in this repository's config)"
        )


def _require_own_ref(cwd: Path, branch: str, verb: str) -> None:
    # A branch named agentloop/… may be a symbolic ref to refs/heads/main: whatever moves
    # it would move main. Only a plain ref of ours is written.
    if not branch.startswith(BRANCH_PREFIX):
        raise RuntimeError(f"refusing to {verb} {branch}: not an {BRANCH_PREFIX}* branch")
    done = _read(cwd, "symbolic-ref", "--quiet", f"refs/heads/{branch}", check=False)
    if done.returncode == 0:
        raise RuntimeError(
            f"refusing to {verb} {branch}: it is a symbolic ref to {done.stdout.strip()}"
        )


def _identity(cwd: Path) -> tuple[str, ...]:
    """`-c` options naming agentloop as the committer when git knows no one (a fresh CI
    machine, an isolated HOME); a configured identity is always kept."""
    known = _read(cwd, "config", "user.email", check=False).stdout.strip()
    has_env = os.environ.get("GIT_AUTHOR_EMAIL") and os.environ.get("GIT_COMMITTER_EMAIL")
    if known or has_env:
        return ()
    return ("-c", "user.name=agentloop", "-c", "user.email=agentloop@localhost")


def commit_all(cwd: Path, message: str) -> str:
    """Commit every change in `cwd` (untracked files included) and return the new sha."""
    _require_agentloop_checkout(cwd, "commit")  # `add --all` would rewrite the user's index
    _git(cwd, "add", "--all", timeout=CHECKOUT)
    staged = _read(cwd, "diff", "--cached", "--quiet", "--no-ext-diff", check=False)
    if staged.returncode == 0:  # --quiet: 0 means no difference
        raise GitError(f"nothing to commit in {cwd}", hint="commit only after a change")
    _git(cwd, *_NO_HOOKS, *_identity(cwd), "commit", "--quiet", "--no-verify", "--message", message)
    return head_sha(cwd)


def commit_paths(cwd: Path, paths: Sequence[str], message: str) -> str:
    """Commit exactly `paths` (top-relative) as they are on disk, on top of HEAD in `cwd`,
    on whatever branch is checked out; return the new sha. Nothing else moves: the commit
    is built in a throwaway index, so the user's staged and unstaged work stays as it is,
    and the real index changes only at `paths` (to what was committed). No hook runs (the
    files are an agent's; a hook would run their code outside the sandbox). HEAD moves
    only from the commit this one was built on: a commit made meanwhile is never lost."""
    head = rev_parse(cwd, "HEAD^{commit}")
    specs = [f":(top,literal){p}" for p in paths]
    with tempfile.TemporaryDirectory(prefix="agentloop-commit-") as tmp:
        env = _env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        if head is not None:
            _git(cwd, "read-tree", head, env=env)
        _git(cwd, "add", "--all", "--", *specs, env=env, timeout=CHECKOUT)
        tree = _git(cwd, "write-tree", env=env).stdout.strip()
    if head is not None and tree == rev_parse(cwd, f"{head}^{{tree}}"):
        raise GitError(
            f"nothing to commit: {', '.join(paths)} are as in HEAD",
            hint="name the files the fix changed",
        )
    parents = ["-p", head] if head is not None else []
    sha = _git(cwd, *_identity(cwd), "commit-tree", tree, *parents, "-m", message).stdout.strip()
    subject = message.splitlines()[0] if message.strip() else "commit"
    _git(cwd, "update-ref", "-m", f"agentloop commit: {subject}", "HEAD", sha, head or "0" * 40)
    _git(cwd, "reset", "--quiet", sha, "--", *specs)
    return sha


def revert_commit(cwd: Path, sha: str) -> str:
    """Add a commit that undoes `sha`; return it. On a conflict nothing is left behind."""
    _require_agentloop_checkout(cwd, "revert")
    done = _git(
        cwd,
        *_NO_HOOKS,
        *_identity(cwd),
        "revert",
        "--no-edit",
        sha,
        check=False,
        timeout=CHECKOUT,
    )
    if not done.ok:
        _git(cwd, "revert", "--abort", check=False)
        raise _error(done, cwd)
    return head_sha(cwd)


def reset_hard(cwd: Path, sha: str) -> None:
    """Move the agentloop branch checked out in `cwd` to `sha`, discarding changes to
    tracked files. Untracked files stay: see `clean_untracked`."""
    _require_agentloop_checkout(cwd, "reset --hard")
    _git(cwd, *_NO_HOOKS, "reset", "--quiet", "--hard", sha, timeout=CHECKOUT)


def clean_untracked(cwd: Path) -> None:
    """Delete untracked files and directories in an agentloop checkout. Ignored files
    (.venv, node_modules, .env) stay: no -x."""
    _require_agentloop_checkout(cwd, "clean")
    # -f because clean.requireForce defaults to true; -d for directories; a nested
    # repository survives (that would need -ff).
    _git(cwd, "clean", "--quiet", "-f", "-d", timeout=CHECKOUT)


def squash(cwd: Path, base: str, message: str) -> str:
    """Replace the commits since `base` on the agentloop branch in `cwd` by one."""
    _require_agentloop_checkout(cwd, "squash")
    _git(cwd, "reset", "--quiet", "--soft", base)
    _git(cwd, *_NO_HOOKS, *_identity(cwd), "commit", "--quiet", "--no-verify", "--message", message)
    return head_sha(cwd)


def ignore_locally(
    cwd: Path, pattern: str, *, why: str = "agentloop's own state (runs, history)"
) -> None:
    """Add `pattern` to the repository's own exclude file (`info/exclude` in the common git
    dir), once: agentloop's state directory then never shows in `git status`, and no
    tracked file such as .gitignore is touched."""
    exclude = common_dir(cwd) / "info" / "exclude"
    try:
        lines = exclude.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    if pattern in lines:
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as handle:
        handle.write(f"\n# {why}\n{pattern}\n")


def drop_commit(cwd: Path, sha: str) -> None:
    """Remove commit `sha` from the agentloop branch checked out in `cwd`, replaying the
    later ones on its parent. On a conflict nothing changes and GitError is raised."""
    _require_agentloop_checkout(cwd, "rebase")
    done = _git(
        cwd, *_NO_HOOKS, *_identity(cwd), "rebase", "--quiet", "--onto", f"{sha}^", sha,
        check=False, timeout=CHECKOUT,
    )  # fmt: skip
    if not done.ok:
        _git(cwd, "rebase", "--abort", check=False)
        raise _error(done, cwd)


# ---------------------------------------------------------------- the judge's trees


def tree_with_paths_from(cwd: Path, tree: str, source: str, paths: Sequence[str]) -> str:
    """`tree` with each of `paths` as it is in `source` (absent there: absent here too),
    written as a new tree object. How a fix's code meets the base's tests."""
    if not paths:
        return tree
    with tempfile.TemporaryDirectory(prefix="agentloop-index-") as tmp:
        env = _env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        _git(cwd, "read-tree", tree, env=env)
        out = _read(cwd, "ls-tree", "-r", "-z", "--full-tree", source, "--", *paths).stdout
        present: dict[str, tuple[str, str]] = {}
        for entry in _split_z(out):
            meta, _, name = entry.partition("\t")
            mode, _kind, sha = meta.split()
            present[name] = (mode, sha)
        missing = sorted(set(paths) - present.keys())
        if missing:
            _git(cwd, "update-index", "--force-remove", "--", *missing, env=env)
        cacheinfo = [
            arg
            for name, (mode, sha) in sorted(present.items())
            if name in set(paths)
            for arg in ("--cacheinfo", mode, sha, name)
        ]
        if cacheinfo:
            _git(cwd, "update-index", "--add", *cacheinfo, env=env)
        return _git(cwd, "write-tree", env=env).stdout.strip()


def tree_with_file(cwd: Path, tree: str, path: str, text: str) -> str:
    """`tree` with the file `path` (top-relative) holding `text`, written as a new tree
    object: no checkout, index or ref is touched. How a reproduction test is committed on
    the base commit outside any worktree."""
    with tempfile.TemporaryDirectory(prefix="agentloop-index-") as tmp:
        content = Path(tmp) / "content"
        content.write_bytes(text.encode("utf-8"))
        blob = _git(cwd, "hash-object", "-w", "--no-filters", str(content)).stdout.strip()
        env = _env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        _git(cwd, "read-tree", tree, env=env)
        _git(cwd, "update-index", "--add", "--cacheinfo", "100644", blob, path, env=env)
        return _git(cwd, "write-tree", env=env).stdout.strip()


def create_branch(cwd: Path, branch: str, sha: str) -> None:
    """Make the new local branch `branch` at `sha`. Only ever a new one: git checks the
    branch is still absent as it writes the ref, so no branch of anyone's is moved."""
    _git(
        cwd, *_NO_HOOKS, "update-ref", "-m", f"agentloop: new branch {branch}",
        f"refs/heads/{branch}", sha, "",
    )  # fmt: skip


def add_detached_worktree(repo: Path, path: Path, sha: str) -> None:
    """A linked worktree at `path` with `sha` checked out and no branch of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _git(repo, *_NO_HOOKS, "worktree", "add", "--quiet", "--detach", str(path), sha,
         timeout=CHECKOUT)  # fmt: skip


def show_tree(cwd: Path, tree: str, keep: Sequence[str]) -> None:
    """Make the detached checkout `cwd` hold exactly `tree` (index and files; HEAD does not
    move), with no other file but the `keep` entries (top-relative, "/"-ended for a
    directory). Only in a detached worktree under agentloop's own directory: it is how the
    judge puts a candidate in place."""
    if current_branch(cwd) is not None:
        raise RuntimeError(f"refusing to overwrite {cwd}: a branch is checked out there")
    _git(cwd, *_NO_HOOKS, "read-tree", "-u", "--reset", tree, timeout=CHECKOUT)
    excludes = [f"--exclude=/{entry}" for entry in keep]
    _git(cwd, "clean", "-ffdxq", *excludes, timeout=CHECKOUT)


def tree_diff(cwd: Path, old: str, new: str, paths: Sequence[str]) -> str:
    """The diff of `paths` between two tree-ish objects, whatever the user's diff config."""
    return _git(cwd, "diff", *_DIFF_OPTS, old, new, "--", *paths).stdout


def changed_between(cwd: Path, old: str, new: str) -> tuple[str, ...]:
    """Every path (top-relative, sorted) that differs between two tree-ish objects; a
    rename gives both its paths."""
    return _changed_between(cwd, old, new)


@dataclass(frozen=True)
class Hunk:
    """One change in a diff without context: `old_count` lines from line `old_start` of
    the old side became `new_count` lines from `new_start` of the new side. A side with
    count 0 has no lines: its start is then the line after which the other side's lines
    were (0 = before the first line), as git writes it."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int


_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def hunks(cwd: Path, old: str, new: str, path: str) -> tuple[Hunk, ...]:
    """Where the text of `path` (top-relative) changed between two tree-ish objects. ()
    when git shows no lines for it: a binary file, a mode change, or no change."""
    # One path per call: a diff of many paths names each in a header git may quote and
    # escape; here the path is ours, taken literally (a pathspec is a glob otherwise).
    # diff.interHunkContext would merge nearby hunks, unchanged lines between them too.
    out = _git(
        cwd, "diff", *_DIFF_OPTS, "--no-renames", "--unified=0", "--inter-hunk-context=0",
        old, new, "--", f":(literal){path}",
    ).stdout  # fmt: skip
    found = []
    for line in out.splitlines():
        match = _HUNK_HEADER.match(line)
        if match:
            a, b, c, d = match.groups()
            found.append(
                Hunk(int(a), 1 if b is None else int(b), int(c), 1 if d is None else int(d))
            )
    return tuple(found)


def commit_tree(cwd: Path, tree: str, parent: str, message: str) -> str:
    """A commit of `tree` on `parent`, as an object only: no ref moves, no hook runs (see
    `advance_branch`). The tree is usually a `Snapshot.tree`, so what is committed is
    exactly what was judged."""
    return _git(
        cwd, *_NO_HOOKS, *_identity(cwd), "commit-tree", tree, "-p", parent, "-m", message
    ).stdout.strip()


@dataclass(frozen=True)
class Merge:
    # The merged tree, written to the object store; None when the merge conflicts.
    tree: str | None
    conflicts: tuple[str, ...] = ()
    # When it conflicts: the tree git wrote anyway, with conflict markers in the
    # conflicted files (what a person, or a fix-up session, resolves).
    with_markers: str | None = None


def merge_trees(cwd: Path, ours: str, theirs: str) -> Merge:
    """Merge two commits in the object store only (`git merge-tree --write-tree`, git
    2.38+): no checkout, index or ref is touched, so parallel jobs can be checked against
    the run's branch while its worktree is in use. The base is their merge base."""
    done = _git(
        cwd, *_NO_HOOKS, "merge-tree", "--write-tree", "--name-only", "--no-messages",
        ours, theirs, check=False, timeout=CHECKOUT,
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise _error(done, cwd)
    lines = done.stdout.splitlines()
    if done.returncode == 0:
        return Merge(lines[0].strip())
    conflicts = tuple(dict.fromkeys(line for line in lines[1:] if line))
    return Merge(None, conflicts, with_markers=lines[0].strip() if lines else None)


def advance_branch(cwd: Path, branch: str, new: str, expected_old: str) -> None:
    """Point the agentloop branch `branch` at `new`, only if it still points at
    `expected_old` (git checks and updates in one step). The checkout's index and files are
    not touched: `restore_worktree` brings them along."""
    _require_own_ref(cwd, branch, "move")
    # --no-deref too: should the ref turn symbolic between the check and the update, the
    # update replaces the ref itself instead of moving what it points to.
    _git(
        cwd, *_NO_HOOKS, "update-ref", "--no-deref", "-m", "agentloop: advance",
        f"refs/heads/{branch}", new, expected_old,
    )  # fmt: skip


def restore_worktree(cwd: Path, sha: str, keep: Sequence[str]) -> None:
    """Make the agentloop checkout `cwd` exactly `sha` again: its branch, index and files,
    and no untracked file at all, ignored ones included, except the `keep` entries (as
    `ignored_entries` lists them: paths from the top, a directory ending in "/"). A file
    an agent hid behind a new ignore rule goes too."""
    _require_agentloop_checkout(cwd, "restore")
    top = _top(cwd)
    work = ("--work-tree", str(top))
    # `reset --hard` leaves a skip-worktree entry's file as it is (git 2.39), and trusts
    # the stat data of every entry, which a forged index can fake: start from an index
    # made from `sha` alone. Refreshing it compares contents, so files that are already
    # right are not rewritten (their mtimes stay; build tools do not rebuild everything).
    index = Path(_read(top, "rev-parse", "--git-path", "index").stdout.strip())
    (index if index.is_absolute() else top / index).unlink(missing_ok=True)
    _git(top, *_TRUST_NOTHING, *work, "read-tree", "--no-sparse-checkout", sha)
    _git(top, *_TRUST_NOTHING, *work, "update-index", "-q", "--refresh", check=False,
         timeout=CHECKOUT)  # fmt: skip
    _git(top, *_TRUST_NOTHING, *work, "reset", "--quiet", "--hard", sha, timeout=CHECKOUT)
    # -x: ignored files too, but for the -e patterns; -ff: nested repositories as well.
    excludes = [f"--exclude=/{_literal(entry)}" for entry in keep]
    _git(top, *_TRUST_NOTHING, *work, "clean", "-ffdxq", *excludes, timeout=CHECKOUT)


def _literal(path: str) -> str:
    # An exclude pattern matching just this path: wildmatch's special characters escaped.
    # (Given with -e, a pattern is not split into lines nor stripped of trailing spaces.)
    return "".join("\\" + c if c in "\\*?[" else c for c in path)


# ---------------------------------------------------------------- refs and config, as state


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    done = _read(cwd, "merge-base", "--is-ancestor", ancestor, descendant, check=False)
    if done.returncode not in (0, 1):
        raise _error(done, cwd)
    return done.returncode == 0


def list_refs(cwd: Path, *, skip: Sequence[str] = ()) -> dict[str, str]:
    """Every ref of the repository (branches, tags, notes, refs/stash…) but those under a
    prefix in `skip`, mapped to its object name, or to "ref: <target>" for a symbolic ref.
    Per-worktree refs (refs/bisect/…) are those of the worktree `cwd` is in."""
    out = _read(
        cwd, "for-each-ref", "--format=%(refname)%00%(symref)%00%(objectname)"
    ).stdout  # fmt: skip
    found: dict[str, str] = {}
    for line in out.splitlines():
        ref, symref, sha = [*line.split("\0"), "", ""][:3]
        if ref and not ref.startswith(tuple(skip)):
            found[ref] = f"ref: {symref}" if symref else sha
    return found


def put_ref(cwd: Path, ref: str, value: str | None, *, current: str | None) -> None:
    """Set `ref` back to `value` (an object name, "ref: <target>", or None: no such ref),
    provided it is still `current` (same forms; git checks a plain value). For putting back
    a ref as it was: it writes any ref, so only `rails.gitstate` calls it."""
    # No hooks: the reference-transaction hook may be the very file being undone.
    plain_current = current if current and not current.startswith("ref: ") else None
    if value is None:
        args = ["update-ref", "--no-deref", "-d", ref]
        _git(cwd, *_NO_HOOKS, *args, *([plain_current] if plain_current else []))
    elif value.startswith("ref: "):
        _git(cwd, *_NO_HOOKS, "symbolic-ref", "-m", "agentloop: put back", ref, value[5:])
    else:
        # --no-deref: a ref turned into a symbolic one is replaced, not followed.
        old = plain_current or ("" if current else "0" * len(value))
        _git(
            cwd, *_NO_HOOKS, "update-ref", "--no-deref", "-m", "agentloop: put back", ref, value,
            *([old] if old else []),
        )  # fmt: skip


def config_origins(cwd: Path) -> list[Path]:
    """Every config file git reads in `cwd`, included ones too (system, global, the
    repository's, the worktree's), as `git config --show-origin` names them."""
    done = _read(cwd, "config", "--list", "--show-origin", "-z", check=False)
    found: dict[Path, None] = {}
    parts = done.stdout.split("\0")
    # -z: "<origin>\0<key>\n<value>\0" per entry.
    for origin in parts[0::2]:
        if origin.startswith("file:"):
            path = Path(origin.removeprefix("file:"))
            found[path if path.is_absolute() else (cwd / path).resolve()] = None
    return list(found)


def config_path(cwd: Path, key: str) -> Path | None:
    """The path a config key names (~ expanded), or None when it is not set."""
    done = _read(cwd, "config", "--type=path", "--get", key, check=False)
    value = done.stdout.strip()
    return Path(value) if done.returncode == 0 and value else None


def config_entries(cwd: Path, data: bytes) -> list[str] | None:
    """The "key=value" entries of a config file with content `data`, in order, includes
    not followed; None when git cannot parse it."""
    with tempfile.TemporaryDirectory(prefix="agentloop-config-") as tmp:
        path = Path(tmp) / "config"
        path.write_bytes(data)
        done = _git(cwd, "config", "--file", str(path), "--no-includes", "--list", "-z",
                    check=False)  # fmt: skip
    if done.returncode != 0:
        return None
    return [entry.replace("\n", "=", 1) for entry in _split_z(done.stdout)]


def git_dir(cwd: Path) -> Path:
    """The git directory of the checkout containing `cwd`: `.git` of the main checkout,
    `.git/worktrees/<name>` of a linked one."""
    return Path(_read(cwd, "rev-parse", "--absolute-git-dir").stdout.strip())


# ---------------------------------------------------------------- bundles and remotes


def branch_from_bundle(cwd: Path, bundle: Path, branch: str, local_branch: str) -> str:
    """Make the new local branch `local_branch` at `refs/heads/<branch>` of `bundle`
    (verified first, see `fetch_bundle`); return its sha. An existing branch is never
    moved: git checks it is still absent as it writes the ref."""
    if not bundle.is_file():
        raise GitError(f"{bundle} does not exist", hint="pass the run.bundle the run wrote")
    tip = fetch_bundle(cwd, bundle, branch)
    _git(
        cwd, *_NO_HOOKS, "update-ref", "-m", "agentloop: branch from a run's bundle",
        f"refs/heads/{local_branch}", tip, "",
    )  # fmt: skip
    return tip


def remote_url(cwd: Path, remote: str) -> str:
    """The URL `git push <remote>` would use. It may hold credentials: show it only
    through `redact_url`."""
    done = _read(cwd, "remote", "get-url", "--push", "--", remote, check=False)
    if not done.ok or not done.stdout.strip():
        raise GitError(
            f"this repository has no remote {remote!r}",
            hint=f"add it (git remote add {remote} <url>) or pick another with --remote",
        )
    return done.stdout.strip()


def redact_url(url: str) -> str:
    """`url` without the user and password a remote URL may carry."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.hostname and (parts.username or parts.password):
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=host))
    return url


def _token_env(url: str, token: str | None) -> dict[str, str]:
    """Environment that gives git `token` for the HTTP(S) origin of `url` alone.

    The token travels as an extra HTTP header set through GIT_CONFIG_COUNT/KEY/VALUE:
    never in argv (the process list shows it), never in .git/config or the remote URL
    (both outlive the command). Scoped to the remote's origin, so a redirect, a submodule
    or an LFS server elsewhere never sees it. An empty value first clears any extraheader
    already configured for that origin (actions/checkout persists its own), which would
    otherwise be sent as a second Authorization header. Prompts are off: a refused token
    fails at once instead of waiting for a password nobody types."""
    env = {"GIT_TERMINAL_PROMPT": "0"}
    parts = urllib.parse.urlsplit(url)
    if not token or parts.scheme not in ("http", "https") or not parts.hostname:
        return env
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") + "/"
    try:
        count = int(os.environ.get("GIT_CONFIG_COUNT", "0") or "0")
    except ValueError:
        count = 0
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
    key = f"http.{origin}.extraheader"
    env.update(
        {
            "GIT_CONFIG_COUNT": str(count + 2),
            f"GIT_CONFIG_KEY_{count}": key,
            f"GIT_CONFIG_VALUE_{count}": "",
            f"GIT_CONFIG_KEY_{count + 1}": key,
            f"GIT_CONFIG_VALUE_{count + 1}": f"AUTHORIZATION: basic {basic}",
        }
    )
    return env


def remote_branch_sha(
    cwd: Path, remote: str, branch: str, *, token: str | None = None
) -> str | None:
    """Where `branch` points on `remote` (asked over the network), or None if it has no
    such branch."""
    env = _env(_token_env(remote_url(cwd, remote), token))
    ref = f"refs/heads/{branch}"
    done = _git(cwd, "ls-remote", "--heads", "--", remote, ref, env=env, timeout=CHECKOUT)
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name.strip() == ref:  # ls-remote matches patterns by their tail
            return sha.strip()
    return None


def has_commit(cwd: Path, sha: str) -> bool:
    return rev_parse(cwd, f"{sha}^{{commit}}") is not None


def push_branch(
    cwd: Path, remote: str, local_branch: str, remote_branch: str, *, token: str | None = None,
    replace: str | None = None,
) -> bool:  # fmt: skip
    """Push `local_branch` to `remote_branch` on `remote`; False when it was there already.

    Never over commits that are not ours: a remote branch whose tip is not in
    `local_branch` is refused before anything is sent, unless that tip is exactly
    `replace` (the caller knows it for a stale one of its own: a closed PR's head, which
    GitHub keeps under refs/pull/N/head). An agentloop/* branch, or one replaced, is
    updated with --force-with-lease on the tip just seen, so one pushed meanwhile is not
    lost either. The user's pre-push hook runs (it is theirs); the token goes as
    `_token_env` says."""
    tip = rev_parse(cwd, f"refs/heads/{local_branch}")
    if tip is None:
        raise GitError(f"no local branch {local_branch}", hint="name an existing branch")
    url = remote_url(cwd, remote)
    current = remote_branch_sha(cwd, remote, remote_branch, token=token)
    if current == tip:
        return False
    replacing = current is not None and current == replace
    if (
        current is not None
        and not replacing
        and not (has_commit(cwd, current) and is_ancestor(cwd, current, tip))
    ):
        raise GitError(
            f"{remote_branch} on {remote} ({redact_url(url)}) has commits that "
            f"{local_branch} does not have (its tip is {current[:12]})",
            hint=f"someone else pushed to it: look at them (git fetch {remote} {remote_branch}) "
            "and delete or rename that branch; agentloop never force-pushes over others' work",
        )
    lease = (
        [f"--force-with-lease=refs/heads/{remote_branch}:{current}"]
        if current is not None and (replacing or remote_branch.startswith(BRANCH_PREFIX))
        else []
    )
    env = _env(_token_env(url, token))
    _git(
        cwd, "push", "--quiet", "--no-follow-tags", *lease, "--", remote,
        f"refs/heads/{local_branch}:refs/heads/{remote_branch}", env=env, timeout=CHECKOUT,
    )  # fmt: skip
    return True


def log_oneline(cwd: Path, base: str, tip: str) -> list[str]:
    """`<short sha> <subject>` of each commit in base..tip, oldest first."""
    out = _read(cwd, "log", "--reverse", "--format=%h %s", f"{base}..{tip}", "--").stdout
    return out.splitlines()
