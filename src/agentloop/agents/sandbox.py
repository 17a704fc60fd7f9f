"""The boundary the operating system enforces: Claude Code's Bash sandbox, set per session.

Shell analysis (rails/shell.py) cannot see what a program writes; the kernel can. Every
Bash command of an agent session runs inside Claude Code's sandbox (bubblewrap on Linux,
Seatbelt on macOS) with:

- writes allowed only in the session's worktree and a private temporary directory (the
  CLI makes `$TMPDIR/claude-<uid>` the commands' TMPDIR, and TMPDIR is ours per session);
- writes denied, inside the worktree too, to the git directories (the agent cannot commit,
  move a ref, or touch config, hooks or `info/`), every existing path a forbidden pattern
  matches, agentloop's own files, and what lies ignored there when the session starts but
  caches (`.venv`, `node_modules`, build outputs: what the tests import must be what the
  user installed, and the judge's checkout links them in), and where the links among
  them lead (the checkout's own `.venv` and `node_modules`, mirrored into the worktree);
- reads denied for secret files, in the worktree, in the user's checkout (reachable by its
  absolute path) and in the home directory;
- no network unless the configuration names domains;
- `failIfUnavailable` and no escape hatch (`allowUnsandboxedCommands: false`).

Facts this rests on (Claude Code 2.1.330-2.1.332, `../shared/reference/claude-code.md`
§2.10, re-checked here): sandbox paths must be absolute and written `//abs/path`, relative
ones protect nothing; globs are not honoured there, so patterns are expanded to the paths
that exist when the session starts (a denied directory covers files created in it later; a
new forbidden file elsewhere is for the guard and the diff check); a denied path that does
not exist is masked, so it cannot be created either. `sandbox.bwrapPath`/`socatPath` are
honoured only from managed settings: bwrap and socat are found on PATH.

The Edit/Write tools are not sandboxed: permission rules scope them to the worktree and
deny the same paths (permission rules do take gitignore-style globs, and they follow a
symlink to its target), and the guard hook explains each refusal.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pathspec import PathSpec

import agentloop
from agentloop import environment, git, proc
from agentloop.errors import AgentloopError
from agentloop.rails.paths import PROTECTED, ForbiddenPaths

# Credentials a developer's home holds; Bash and the Read tool may not read them.
HOME_SECRETS = (
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".kube",
    ".docker/config.json",
    ".config/gh",
    ".config/gcloud",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
)
# Ignored folders test runs write as they go (see `is_cache`).
CACHES = ("__pycache__/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".hypothesis/")
# What the CLI prints when failIfUnavailable stops it.
REFUSAL = "sandbox required but unavailable"


class SandboxUnavailable(AgentloopError):
    """No working OS sandbox for the agent's commands on this machine."""


@dataclass(frozen=True)
class Policy:
    """What one session may write, read and reach; every path absolute."""

    write: tuple[Path, ...]
    deny_write: tuple[Path, ...]
    deny_read: tuple[Path, ...]
    # Glob rules for the file tools, relative to `write[0]` (gitignore-style).
    deny_edit_globs: tuple[str, ...] = ()
    deny_read_globs: tuple[str, ...] = ()
    network: tuple[str, ...] = ()
    # False (`--no-sandbox`): only the permission rules for the file tools apply; Bash
    # runs unconfined.
    sandboxed: bool = True
    # A parallel build's stream: the only paths (gitignore-style globs relative to
    # `write[0]`) the file tools may write; empty: the whole worktree. Bash is held to
    # them by `deny_write`, which then also holds the rest of the worktree as it exists
    # when the session starts (see `unowned`).
    write_globs: tuple[str, ...] = ()


def _abs(path: Path) -> str:
    # "//" marks an absolute path in Claude Code's sandbox and permission settings.
    return "/" + str(path)


def _rule_glob(pattern: str) -> str:
    """A forbidden pattern (git wildmatch, relative to the top) as a glob under the top:
    a pattern without a slash matches at any depth, as in a .gitignore."""
    stripped = pattern.rstrip("/")
    if stripped.startswith("/"):
        return stripped[1:]
    return stripped if "/" in stripped else f"**/{stripped}"


def settings(policy: Policy) -> dict[str, Any]:
    """Claude Code settings (`--settings`) that put `policy` in force."""
    top = policy.write[0]
    deny = [f"Edit({_abs(p)})" for p in policy.deny_write]
    deny += [f"Edit({_abs(p)}/**)" for p in policy.deny_write]
    deny += [f"Edit({_abs(top)}/{_rule_glob(g)})" for g in policy.deny_edit_globs]
    # An owned glob's exceptions (`!src/api/generated/**`): the allow rules cannot say them.
    deny += [f"Edit({_abs(top)}/{_rule_glob(g[1:])})" for g in policy.write_globs if g[:1] == "!"]
    deny += [f"Read({_abs(p)})" for p in policy.deny_read]
    deny += [f"Read({_abs(p)}/**)" for p in policy.deny_read]
    deny += [f"Read({_abs(top)}/{_rule_glob(g)})" for g in policy.deny_read_globs]
    permissions = {"permissions": {"deny": list(dict.fromkeys(deny))}}
    if not policy.sandboxed:
        return permissions
    return {
        **permissions,
        "sandbox": {
            "enabled": True,
            "failIfUnavailable": True,
            "autoAllowBashIfSandboxed": True,
            "allowUnsandboxedCommands": False,
            "filesystem": {
                "allowWrite": [_abs(p) for p in policy.write],
                "denyWrite": [_abs(p) for p in policy.deny_write],
                "denyRead": [_abs(p) for p in policy.deny_read],
            },
            "network": {"allowedDomains": list(policy.network)},
        },
    }


def edit_rule(top: Path) -> str:
    """The one allow rule for the file-editing tools: inside the worktree only (a bare
    `Edit` allows writing anywhere, the user's checkout and home included)."""
    return f"Edit({_abs(top)}/**)"


def scoped_tools(allowed: Sequence[str], top: Path, globs: Sequence[str] = ()) -> tuple[str, ...]:
    """`allowed` with every unscoped file-editing rule replaced by `edit_rule(top)`, or,
    with `globs` (a stream's owned paths), by one rule per glob: headless sessions run in
    `dontAsk`, so an edit no allow rule names is refused."""
    editing = {"Edit", "Write", "MultiEdit", "NotebookEdit"}
    scoped = [f"Edit({_abs(top)}/{_rule_glob(g)})" for g in globs if g[:1] != "!"]
    out: list[str] = []
    for rule in allowed:
        if rule.strip() in editing:
            out.extend(scoped or [edit_rule(top)])
        else:
            out.append(rule)
    return tuple(dict.fromkeys(out))


# ---------------------------------------------------------------- which paths


def matching(
    top: Path,
    spec: ForbiddenPaths,
    also: Iterable[str] = (),
    *,
    listed: Sequence[str] | None = None,
) -> list[Path]:
    """The existing files and directories under `top` that `spec` matches; a directory
    stands for everything in it when any file in it would be forbidden, whatever its
    name (`**/auth/**` → `auth/`). Listed from git (tracked, untracked, and the ignored
    entries with directories collapsed): walking a tree with a node_modules in it would
    take longer than the session. `also`: top-relative paths about to be created, listed
    as if they were there. `listed`: `git.listed_paths(top)`, when the caller has it."""
    if not top.is_dir():
        return []
    found: list[Path] = []
    # Each directory is judged once, not once per file in it (a session's start waits).
    whole: dict[str, bool] = {}
    for name in sorted({*(git.listed_paths(top) if listed is None else listed), *also}):
        parts = name.rstrip("/").split("/")
        prefixes = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        for directory in prefixes:
            if directory not in whole:
                whole[directory] = spec.match(f"{directory}/{_PROBE}") is not None
                if whole[directory]:
                    found.append(top / directory)
            if whole[directory]:
                break
        else:
            if spec.match(name.rstrip("/")) is not None:
                found.append(top / name.rstrip("/"))
    return found


# A file name no pattern of a reasonable configuration names on its own.
_PROBE = "agentloop-sandbox-probe"

_GLOB_CHARS = frozenset("*?[")


def _leading(glob: str) -> tuple[str, ...] | None:
    """The literal directories a glob starts with (`src/api/**` → src, api); None when
    it may match at any depth (no inner slash, as in a .gitignore, or a leading `**`)."""
    body = glob.strip("/") if glob.startswith("/") else glob.rstrip("/")
    if "/" not in body and not glob.startswith("/"):
        return None
    literal: list[str] = []
    for part in body.split("/"):
        if _GLOB_CHARS & set(part):
            break
        literal.append(part)
    return tuple(literal)


def unowned(top: Path, owned: Sequence[str], listed: Sequence[str]) -> list[Path]:
    """The existing paths under `top` (from `listed`, top-relative) that none of the
    `owned` globs can match: a directory when nothing in it can be owned (`web/` for
    `src/api/**`), else each file that is not. The sandbox takes paths, not globs, so a
    stream's Bash is held to its own files this way; a new file outside them is for the
    guard and the diff check."""
    spec = PathSpec.from_lines("gitignore", owned)
    leads = [_leading(g) for g in owned if g[:1] != "!"]

    def may_hold(directory: tuple[str, ...]) -> bool:
        # On the way to an owned area, or inside one.
        return any(
            lead is None or lead[: len(directory)] == directory[: len(lead)] for lead in leads
        )

    found: list[Path] = []
    whole: dict[tuple[str, ...], bool] = {}
    for name in sorted(listed):
        parts = tuple(name.rstrip("/").split("/"))
        for depth in range(1, len(parts)):
            directory = parts[:depth]
            if directory not in whole:
                whole[directory] = not may_hold(directory)
                if whole[directory]:
                    found.append(top.joinpath(*directory))
            if whole[directory]:
                break
        else:
            if not spec.match_file("/".join(parts)):
                found.append(top.joinpath(*parts))
    return found


def is_cache(entry: str) -> bool:
    """An ignored entry (as `git.ignored_entries` lists it) that test runs write as they
    go and nothing reads as code: the agent's to write, and never carried into the
    judge's checkout."""
    return entry.endswith(CACHES)


def _kept(top: Path, ignored: Sequence[str]) -> list[Path]:
    """What lies ignored in the worktree when the session starts, but caches: the
    environments tests import from (`.venv`, `node_modules`), build outputs, `.env`. The
    judge's checkout links them in, so the agent may not change them. A link among them
    (the checkout's environment mirrored in: `agentloop.environment`) is denied by where
    it leads too: a denied link protects only itself, and writes go to its target."""
    kept = [top / entry.rstrip("/") for entry in ignored if not is_cache(entry)]
    beyond = [
        real
        for path in kept
        for real in environment.real_paths(path)
        # A link into the worktree (an npm workspace package) leads to the agent's code.
        if not real.is_relative_to(top)
    ]
    return [*kept, *beyond]


def home_secrets(home: Path) -> list[Path]:
    return [home / name for name in HOME_SECRETS]


def build_policy(
    *,
    top: Path,
    repo: Path,
    forbidden: ForbiddenPaths,
    secrets: Sequence[str],
    network: Sequence[str] = (),
    home: Path | None = None,
    extra_deny_write: Iterable[Path] = (),
    sandboxed: bool = True,
    owned: Sequence[str] = (),
) -> Policy:
    """The policy for a session in the worktree `top` of the user's checkout `repo` (the
    same directory when the run is in place). `owned`: a parallel build's stream, which
    may write only these globs (`Policy.write_globs`)."""
    top, repo = top.resolve(), repo.resolve()
    secret_spec = ForbiddenPaths(tuple(secrets))
    git_dirs = {git.common_dir(top), top / ".git"}
    # git is asked once for what the worktree holds (each `ls-files` of the ignored
    # entries costs about 20 ms, and every session start waits for them).
    ignored = git.ignored_entries(top)
    listed = git.listed_paths(top, ignored=ignored)
    kept = _kept(top, ignored)
    # The rails' own files, whether they exist or not (a masked path cannot be created).
    protected = [top / p.removesuffix("/**") for p in PROTECTED if "*" not in p.removesuffix("/**")]
    own = Path(agentloop.__file__).resolve().parent
    deny_write = [
        *sorted(git_dirs),
        *matching(top, forbidden, listed=listed),
        *protected,
        *kept,
        own,
        *extra_deny_write,
    ]
    if owned:
        # What lies ignored is judged above (`kept`), caches stay writable for the tests.
        skip = set(ignored)
        deny_write += unowned(top, owned, [p for p in listed if p not in skip])
    home = Path(home or os.environ.get("HOME") or Path.home())
    deny_read = [
        *matching(top, secret_spec, listed=listed),
        *(matching(repo, secret_spec) if repo != top else []),
        *home_secrets(home),
    ]
    return Policy(
        write=(top,),
        deny_write=tuple(dict.fromkeys(deny_write)),
        deny_read=tuple(dict.fromkeys(deny_read)),
        deny_edit_globs=tuple(p for p in (*forbidden.patterns,) if not p.startswith("!")),
        deny_read_globs=tuple(secrets),
        network=tuple(network),
        sandboxed=sandboxed,
        write_globs=tuple(owned),
    )


# ---------------------------------------------------------------- a project's own sessions


def project_policy(
    *,
    root: Path,
    top: Path,
    forbidden: ForbiddenPaths,
    secrets: Sequence[str],
    network: Sequence[str] = (),
    home: Path,
    state: Iterable[str] = (),
    installation: Iterable[Path] = (),
    planned: Iterable[str] = (),
) -> Policy:
    """The policy of every Claude Code session started in the project `root` (inside the
    git work tree `top`), as `agentloop init` writes it into .claude/settings.json: the
    user's own sessions and /autofix, not agentloop's headless runs (`build_policy`).

    What differs from a headless run, and why: the session works in the user's checkout,
    so writes are allowed where Claude Code allows them by default (the directory it was
    started in, which is `root`); the git directory, the forbidden and protected paths,
    `state` (agentloop's records under .agentloop/, except the ones `agentloop detect`
    writes from inside the sandbox) and agentloop's `installation` are read-only; the
    project's other environments stay writable, so the user can still have Claude install
    a package (the network is the allow-list and, interactively, Claude Code's prompt).
    Only paths that exist are listed (and the `planned` ones, relative to `root`, that
    init is about to write, so that a second init writes the same): a missing `.git`
    masked in the sandbox would stop git working there, and a missing directory is
    created, empty, in its place."""
    root, top = root.resolve(), top.resolve()

    def inside(paths: Iterable[Path]) -> list[Path]:
        return [p for p in paths if p == root or root in p.parents]

    protected = [
        root / p.removesuffix("/**")
        for p in PROTECTED
        if "*" not in p.removesuffix("/**") and not p.startswith(".agentloop")
    ]
    deny_write = [
        *([root / ".git"] if os.path.lexists(root / ".git") else []),
        *inside(matching(top, forbidden, also=[_under(root / p, top) for p in planned])),
        *protected,
        *(root / s for s in state),
        *inside(installation),
    ]
    deny_read = [*inside(matching(top, ForbiddenPaths(tuple(secrets)))), *home_secrets(home)]
    return Policy(
        write=(root,),
        deny_write=tuple(dict.fromkeys(deny_write)),
        deny_read=tuple(dict.fromkeys(deny_read)),
        # Claude Code merges Edit(...) deny rules into the sandbox's denyWrite: a rule for
        # all of .agentloop/ would stop `agentloop detect` recording the session.
        deny_edit_globs=tuple(
            dict.fromkeys(
                p
                for p in (*forbidden.patterns, *PROTECTED)
                if not p.startswith(("!", ".agentloop"))
            )
        ),
        deny_read_globs=tuple(secrets),
        network=tuple(network),
    )


def _under(path: Path, top: Path) -> str:
    return path.relative_to(top).as_posix()


def _portable(path: Path, root: Path, home: Path) -> tuple[str, str]:
    """`path` for a committed settings file, as (a sandbox path, a permission-rule path):
    relative to the project (both forms verified with Claude Code 2.1.332 from the
    project's .claude/settings.json: a bare relative sandbox path and a `/`-anchored rule
    are taken from the project directory, so a moved or cloned checkout keeps them; a
    sandbox path `/auth` is the root's /auth, and `./auth` broke the session's working
    directory), `~/` under the home directory, `//` absolute elsewhere (ignored where it
    does not exist)."""
    if path == root or root in path.parents:
        relative = path.relative_to(root).as_posix()
        return relative, "/" + relative
    if home in path.parents:
        relative = "~/" + path.relative_to(home).as_posix()
        return relative, relative
    return _abs(path), _abs(path)


def project_settings(policy: Policy, *, home: Path) -> dict[str, Any]:
    """Settings for the project's .claude/settings.json that put `policy` in force.

    Unlike `settings`, nothing here is tied to this machine (no absolute path into the
    project or the home directory), and the user keeps the choices that are theirs:
    whether sandboxed commands still ask (`autoAllowBashIfSandboxed`), where else writes
    may go."""
    root = policy.write[0]

    def where(path: Path) -> tuple[str, str]:
        return _portable(path, root, home)

    deny: list[str] = []
    for path in policy.deny_write:
        rule = where(path)[1]
        deny += [f"Edit({rule})", f"Edit({rule}/**)"]
    deny += [f"Edit(/{_rule_glob(g)})" for g in policy.deny_edit_globs]
    for path in policy.deny_read:
        rule = where(path)[1]
        deny += [f"Read({rule})", f"Read({rule}/**)"]
    deny += [f"Read(/{_rule_glob(g)})" for g in policy.deny_read_globs]
    return {
        "sandbox": {
            "enabled": True,
            "failIfUnavailable": True,
            "allowUnsandboxedCommands": False,
            "filesystem": {
                "denyWrite": [where(p)[0] for p in policy.deny_write],
                "denyRead": [where(p)[0] for p in policy.deny_read],
            },
            "network": {"allowedDomains": list(policy.network)},
        },
        "permissions": {"deny": list(dict.fromkeys(deny))},
    }


# ---------------------------------------------------------------- is there one


@cache
def _bwrap_works(bwrap: str) -> str | None:
    # What Claude Code asks of bwrap, in small: a new network and pid namespace over a
    # read-only root. Unprivileged user namespaces may be off (some containers, Ubuntu's
    # AppArmor restriction for binaries without a profile).
    done = proc.run(
        [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--unshare-net", "--unshare-pid", "--die-with-parent", "true"],
        cwd=Path("/"),
        timeout=30,
    )  # fmt: skip
    if done.ok:
        return None
    return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]


def unavailable(env: Mapping[str, str] | None = None) -> str | None:
    """Why the sandbox cannot run on this machine, or None when it can."""
    system = platform.system()
    if system == "Darwin":
        return None if Path("/usr/bin/sandbox-exec").exists() else "sandbox-exec is missing"
    if system != "Linux":
        return f"Claude Code's sandbox does not run on {system}"
    path = (env or os.environ).get("PATH", os.defpath)
    missing = [tool for tool in ("bwrap", "socat") if shutil.which(tool, path=path) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH"
    bwrap = shutil.which("bwrap", path=path)
    assert bwrap is not None
    why = _bwrap_works(bwrap)
    return None if why is None else f"bwrap cannot create a sandbox here: {why}"


INSTALL_HINT = (
    "install bubblewrap and socat (Debian/Ubuntu: sudo apt-get install bubblewrap socat; on "
    "Ubuntu 24.04 runners also allow user namespaces: sudo sysctl "
    "kernel.apparmor_restrict_unprivileged_userns=0), or pass --no-sandbox to run the agent "
    "without one (the report will say so)"
)


def require(env: Mapping[str, str] | None = None) -> None:
    """Raise SandboxUnavailable (exit 2) unless the sandbox can run here."""
    why = unavailable(env)
    if why is not None:
        raise SandboxUnavailable(
            f"no OS sandbox for the agent's commands: {why}", hint=INSTALL_HINT
        )


# ---------------------------------------------------------------- what the CLI leaves


# Claude Code (2.1.332) makes empty files and directories to mount its own masks on
# (config.worktree, objects/info/alternates, remotes/, glab-cli/, NOTES_MERGE_WORKTREE,
# *.claude-sandbox-noreplace/, ~/.config/git/ignore, the worktree's .claude/.cc-writes/)
# and leaves them when the session ends. Only places it was seen to use are looked at.
def _stub_places(cwd: Path, env: Mapping[str, str]) -> list[Path]:
    common, own = git.common_dir(cwd), git.git_dir(cwd)
    top = git.find_toplevel(cwd) or cwd
    home = Path(env.get("HOME") or Path.home())
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [
        home,
        config,
        config / "git",
        common,
        common / "info",
        common / "objects" / "info",
        common / "objects" / "info" / "commit-graphs",
        own,
        top,
        top / ".claude",
    ]


def git_stubs(cwd: Path) -> frozenset[Path]:
    """The empty mask files of the CLI's in the repository's git directory now. With
    sessions in parallel, one session's `tidy` cannot tell them from another's still in
    use, so the last may stay; the loop removes what is left once all have ended."""
    common = git.common_dir(cwd)
    return frozenset(
        path
        for path in (common / "config.worktree", common / "objects" / "info" / "alternates")
        if path.is_file() and not path.is_symlink() and _empty(path)
    )


def _entries(places: Sequence[Path]) -> frozenset[Path]:
    found: set[Path] = set()
    for place in places:
        if place.is_dir():
            found.update(place.iterdir())
    return frozenset(found)


def _empty(path: Path) -> bool:
    if path.is_symlink():
        return False
    if path.is_file():
        return path.stat().st_size == 0
    return path.is_dir() and all(_empty(p) for p in path.iterdir())


# The line the CLI appends to the user's global git ignore file (it creates the file when
# there is none), so that its .cc-writes directories never show in `git status`.
_CLI_IGNORE_LINES = frozenset({"**/.claude/.cc-writes/", ""})


def _global_ignore(env: Mapping[str, str]) -> Path:
    home = Path(env.get("HOME") or Path.home())
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "git" / "ignore"


def _only_cli_lines(old: bytes | None, new: bytes) -> bool:
    before = (old or b"").decode("utf-8", "replace").splitlines()
    after = new.decode("utf-8", "replace").splitlines()
    return after[: len(before)] == before and set(after[len(before) :]) <= _CLI_IGNORE_LINES


@contextmanager
def tidy(cwd: Path, env: Mapping[str, str]) -> Iterator[list[Path]]:
    """Undo, after the block, what the CLI itself leaves behind: the empty files and
    directories that appeared in the places above, and its line in the user's global git
    ignore file (yields the list of paths put back or removed, filled in at the end).
    Nothing that existed before, and nothing with a byte in it, is removed."""
    places = _stub_places(cwd, env)
    before = _entries(places)
    ignore = _global_ignore(env)
    ignore_before = ignore.read_bytes() if ignore.is_file() else None
    removed: list[Path] = []
    try:
        yield removed
    finally:
        # Sessions of parallel jobs end side by side: another one's clean-up may remove
        # the same stub first, so a path gone meanwhile is not an error.
        with contextlib.suppress(FileNotFoundError):
            if ignore.is_file():
                now = ignore.read_bytes()
                if now != ignore_before and _only_cli_lines(ignore_before, now):
                    if ignore_before is None:
                        ignore.unlink()
                    else:
                        ignore.write_bytes(ignore_before)
                    removed.append(ignore)
        for path in sorted(_entries(places) - before, key=lambda p: -len(p.parts)):
            try:
                if not _empty(path):
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
