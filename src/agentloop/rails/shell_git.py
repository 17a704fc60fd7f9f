"""git, gh and hub in a Bash command: an allow-list of what only reads.

A deny-list of git subcommands lost to every disguise: `git -c alias.p=push p`,
`git $'push'`, `/usr/lib/git-core/git-push`, an alias in a config file. So the rule is the
other way round: a subcommand runs only when it is known to read (`status`, `diff`,
`log`, ...), or is the listing form of one that can also write (`branch --list`,
`config --get`, `stash list`). Everything else, aliases included, is refused with the
reason, and so are the global options and environment variables that make git run
something else (`-c`, `--exec-path=`, `--git-dir`, `GIT_*=`).

In an interactive session (`State.interactive`) git is just as read-only to the agent:
Claude Code's sandbox makes `.git` read-only there too, and the agent commits through
agentloop's MCP tool, which checks the rails and commits only the files it names. The
refusal says so, and how to undo a change without git writing.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from agentloop.rails.shell_words import Options, State, Word, parse_options

__all__ = ["READ_ONLY", "gh", "git", "hub", "refuse_environment"]

READ_ONLY = frozenset({
    "status", "diff", "log", "show", "blame", "annotate", "grep", "ls-files", "ls-tree",
    "cat-file", "rev-parse", "rev-list", "describe", "shortlog", "merge-base", "name-rev",
    "for-each-ref", "show-ref", "diff-tree", "diff-index", "diff-files", "check-ignore",
    "check-attr", "check-ref-format", "var", "version", "help", "whatchanged",
    "count-objects", "cherry", "show-branch", "range-diff",
})  # fmt: skip
_PUSHES = {"push", "send-pack", "http-push"}

# Global options: these only change how git prints or matches paths.
_HARMLESS_GLOBALS = {
    "--no-pager", "-P", "--paginate", "-p", "--no-optional-locks", "--no-replace-objects",
    "--literal-pathspecs", "--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs",
    "--version", "-v", "--help", "-h", "--html-path", "--man-path", "--info-path",
    "--exec-path",  # bare, it prints the directory; `--exec-path=DIR` runs git-* from DIR
}  # fmt: skip
# Each makes git read another configuration, repository or program.
_REFUSED_GLOBALS = {
    "-c": "git -c sets configuration (aliases, hooks, pagers) for one command",
    "--config-env": "git --config-env sets configuration from the environment",
    "--exec-path": "git --exec-path= runs git's programs from another directory",
    "--git-dir": "git --git-dir points git at another repository",
    "--work-tree": "git --work-tree points git at another work tree",
    "--namespace": "git --namespace changes which refs git sees",
    "--super-prefix": "git --super-prefix is git-internal",
    "--attr-source": "git --attr-source reads attributes from another tree",
    "--bare": "git --bare treats the directory as a repository",
}

_STRICT = (
    "agentloop commits accepted fixes itself and never pushes; the agent may only read "
    "git (status, diff, log, show, blame, grep, ls-files, ...)"
)
_SESSION = (
    "the agent may only read git (status, diff, log, show, ...); commit with agentloop's "
    "commit tool (mcp__agentloop__commit: the files you changed and a message), undo a "
    "change of yours with `git show HEAD:<file> > <file>`, and never push"
)

# Variables that make git (or a program it starts) read another configuration or run
# another program: GIT_DIR, GIT_CONFIG_COUNT/KEY/VALUE, GIT_EXTERNAL_DIFF, GIT_PAGER, and
# HOME or XDG_CONFIG_HOME with a planted .gitconfig (core.fsmonitor runs on `git status`).
_GIT_ENVIRONMENT = re.compile(r"^(GIT_[A-Za-z0-9_]*|HOME|XDG_CONFIG_HOME)$")


def refuse_environment(name: str, state: State) -> bool:
    """Refuse an assignment (`GIT_DIR=x git status`, `export HOME=/tmp/h`) that redirects
    git; True when it was refused."""
    if _GIT_ENVIRONMENT.match(name):
        state.refuse(f"it sets {name}, which changes what git reads or runs")
        return True
    return False


def _refuse(state: State, what: str) -> None:
    state.refuse(f"git {what} is not allowed: {_SESSION if state.interactive else _STRICT}")


def git(args: list[Word], state: State) -> None:
    index = 0
    base = ""
    while index < len(args) and args[index].text.startswith("-"):
        word = args[index]
        name, equals, _ = word.text.partition("=")
        if word.dynamic:
            state.refuse(f"git runs with a computed option {word.text!r}")
            return
        if name == "-C":
            if index + 1 >= len(args):
                return
            directory = args[index + 1]
            if directory.dynamic:
                state.flag("git -C with a computed directory")
            base = posixpath.join(base, directory.text)
            index += 2
            continue
        if name == "-c" and index + 1 < len(args):
            # Say so when the disguise is visible: `git -c alias.p=push p`.
            key, _, value = args[index + 1].text.partition("=")
            if key.lower().startswith("alias.") and "push" in value:
                state.pushes = True
        if word.text in _HARMLESS_GLOBALS and not equals:
            index += 1
            continue
        state.refuse(_REFUSED_GLOBALS.get(name, f"git {name} is not an option agentloop allows"))
        return
    if index >= len(args):
        return  # `git` alone prints its help
    sub = args[index]
    rest = args[index + 1 :]
    if sub.dynamic:
        state.refuse(f"git runs a computed subcommand {sub.text!r}")
        return
    saved = state.cwd
    if base and state.cwd is not None:
        state.cwd = posixpath.join(state.cwd, base)
    try:
        _subcommand(sub.text, rest, state)
    finally:
        state.cwd = saved


def _subcommand(sub: str, rest: list[Word], state: State) -> None:
    if sub in _PUSHES:
        state.pushes = True
        return
    if sub in READ_ONLY or sub in _LISTINGS:
        _read_options(sub, rest, state)
    if sub in READ_ONLY:
        return
    listing = _LISTINGS.get(sub)
    if listing is not None:
        if not listing(rest):
            first = next((w.text for w in rest if not w.text.startswith("-")), "")
            _refuse(state, f"{sub} {first}".strip() + " (a write)")
        return
    _refuse(state, sub)


def _read_options(sub: str, rest: list[Word], state: State) -> None:
    """Options of read-only subcommands that write a file or run a program."""
    for index, word in enumerate(rest):
        text = word.text
        if text == "--":
            break
        name, equals, value = text.partition("=")
        if name == "--output":
            target = value if equals else (rest[index + 1].text if index + 1 < len(rest) else "")
            state.add(target, "write", word.dynamic)
        elif name == "--ext-diff":
            state.refuse(f"git {sub} --ext-diff runs an external diff program")
        elif sub == "grep" and (
            (text.startswith("-O") and not text.startswith("--"))
            or (len(name) >= 4 and "--open-files-in-pager".startswith(name))
        ):
            # git grep takes abbreviated long options: `--open` is --open-files-in-pager.
            state.refuse("git grep -O runs a program on the files it finds")


# --- listing forms -------------------------------------------------------------------


def _only(parsed: Options, allowed: set[str]) -> bool:
    return all(name in allowed for name in parsed.names)


_BRANCH_LIST_MODE = {"-l", "--list", "--contains", "--no-contains", "--merged", "--no-merged",
                     "--points-at", "-v", "-vv", "--verbose"}  # fmt: skip
_BRANCH_READ = _BRANCH_LIST_MODE | {
    "-a", "--all", "-r", "--remotes", "--show-current", "--sort", "--format", "--color",
    "--no-color", "--column", "--no-column", "-i", "--ignore-case", "--abbrev", "--no-abbrev",
}  # fmt: skip


def _branch(rest: list[Word]) -> bool:
    # `git branch --sort=x name` creates `name`: operands are patterns only in list mode.
    parsed = parse_options(rest)
    if not _only(parsed, _BRANCH_READ):
        return False
    return not parsed.operands or parsed.has(*_BRANCH_LIST_MODE)


_TAG_LIST_MODE = {"-l", "--list", "--contains", "--no-contains", "--merged", "--no-merged",
                  "--points-at", "-n", "-v", "--verify"}  # fmt: skip
_TAG_READ = _TAG_LIST_MODE | {"--sort", "--format", "--color", "--column", "--no-column",
                              "-i", "--ignore-case"}  # fmt: skip


def _tag(rest: list[Word]) -> bool:
    parsed = parse_options(rest)
    names = {"-n" if re.match(r"^-n\d*$", n) else n for n in parsed.names}
    if not names <= _TAG_READ:
        return False
    return not parsed.operands or bool(names & _TAG_LIST_MODE)


def _remote(rest: list[Word]) -> bool:
    parsed = parse_options(rest)
    if not _only(parsed, {"-v", "--verbose", "-n", "--push", "--all"}):
        return False
    return not parsed.operands or parsed.operands[0].text in ("show", "get-url")


def _first_is(allowed: set[str], default: bool) -> Callable[[list[Word]], bool]:
    def check(rest: list[Word]) -> bool:
        if not rest or rest[0].text.startswith("-"):
            return default
        return rest[0].text in allowed

    return check


_CONFIG_READ_ACTIONS = {"--get", "--get-all", "--get-regexp", "--get-urlmatch", "--list",
                        "-l", "--get-color", "--get-colorbool"}  # fmt: skip
_CONFIG_READ = _CONFIG_READ_ACTIONS | {
    "--global", "--system", "--local", "--worktree", "--show-origin", "--show-scope",
    "--name-only", "-z", "--null", "--includes", "--no-includes", "--bool", "--int",
    "--bool-or-int", "--path", "--expiry-date", "--type", "-t", "--default", "--file", "-f",
    "--blob", "--fixed-value", "--all", "--regexp", "--url",
}  # fmt: skip


def _config(rest: list[Word]) -> bool:
    parsed = parse_options(rest, "ft", {"--type", "--default", "--file", "--blob", "--url"})
    if not _only(parsed, _CONFIG_READ):
        return False
    operands = [w.text for w in parsed.operands]
    if operands and operands[0] in ("list", "get"):  # git 2.46's subcommands
        return True
    if parsed.has(*_CONFIG_READ_ACTIONS):
        return True
    return len(operands) == 1  # `git config user.name` reads; with a value it writes


def _symbolic_ref(rest: list[Word]) -> bool:
    parsed = parse_options(rest)
    allowed = {"-q", "--quiet", "--short", "--no-short", "--recurse", "--no-recurse"}
    return _only(parsed, allowed) and len(parsed.operands) == 1


_LISTINGS: dict[str, Callable[[list[Word]], bool]] = {
    "branch": _branch,
    "tag": _tag,
    "remote": _remote,
    "stash": _first_is({"list", "show"}, default=False),  # `git stash -m x` pushes
    "worktree": _first_is({"list"}, default=False),
    "config": _config,
    # `git reflog -5` shows; expire, delete and drop write.
    "reflog": _first_is({"show", "exists", "list"}, default=True),
    "symbolic-ref": _symbolic_ref,
}


# --- gh and hub ----------------------------------------------------------------------

_GH_READ = {
    ("pr", "view"), ("pr", "list"), ("pr", "status"), ("pr", "diff"), ("pr", "checks"),
    ("issue", "view"), ("issue", "list"), ("run", "view"), ("run", "list"), ("repo", "view"),
}  # fmt: skip


def gh(args: list[Word], state: State) -> None:
    words = [w for w in args if not w.dynamic]
    if len(words) != len(args):
        state.refuse("gh runs with a computed argument")
        return
    texts = [w.text for w in words]
    if not texts or texts[0] in ("--version", "version", "--help", "help"):
        return
    group = texts[0]
    action = ""
    index = 1
    while index < len(texts):
        if texts[index] in ("-R", "--repo"):
            index += 2
            continue
        if not texts[index].startswith("-"):
            action = texts[index]
            break
        index += 1
    if (group, action) in _GH_READ:
        return
    shown = f"{group} {action}" if group in {g for g, _ in _GH_READ} else group
    state.refuse(
        f"gh {shown}"
        + " is not read-only: agentloop never pushes, opens or merges pull requests; only "
        "`gh pr view|list|status|diff|checks`, `gh issue view|list`, `gh run view|list` and "
        "`gh repo view` may run"
    )


def hub(args: list[Word], state: State) -> None:
    texts = [w.text for w in args]
    if texts and texts[0] in ("version", "--version", "help", "--help"):
        return
    if texts and texts[0] == "push":
        state.pushes = True
        return
    state.refuse(
        "hub wraps git and GitHub: agentloop runs neither for the agent; use read-only git"
    )
