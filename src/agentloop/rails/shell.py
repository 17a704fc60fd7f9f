"""Which files a Bash command may write, move, delete or link, and what it runs that
agentloop never allows (git beyond reading, `gh`, `hub`, `git push` in any spelling).

`analyse(command)` is a pure function (no file system, no git, no process): it parses the
command with `bashlex` and walks every simple command it finds, in lists (`;`, `&&`,
`||`), pipelines, subshells, brace groups, `if`/`for`/`while` bodies, functions, and
command and process substitutions. Words are read as Bash runs them, ANSI-C (`$'push'`,
`$'\\x70ush'`) and locale (`$"push"`) quoting included. When bashlex cannot parse valid
Bash (`[[ ... ]]`, `case`, arithmetic), a `shlex`-based scanner splits the text on
operators and applies the same per-command rules; when even that fails (unbalanced
quotes), the verdict is `unknown_targets=True`: fail closed. `judge` (and
`forbidden_writes`, which is both) turns a verdict into reasons to refuse.

What counts as a write target (the per-program rules are in shell_programs.py):
  * redirections `>`, `>>`, `>|`, `&>`, `&>>`, `<>`, `N>`, `>& file` (not `>&2`);
  * `tee`, `sed -i` and sed's `w`/`W` commands and `s///w` flag, `perl -i`, `ruby -i`,
    `awk -i inplace` and awk's `print > "file"`, `mv` (every operand), `cp`/`install`/
    `ln`/`rsync`/`scp` (the destination, and DEST/NAME for each source; `-t DIR` too),
    `rm`, `rmdir`, `unlink`, `shred`, `mkdir`, `truncate`, `touch`, `dd of=`, `chmod`/
    `chown`/`chgrp`/`chattr`/`setfacl`, `sort -o`, `uniq IN OUT`, `split`, `sponge`, `zip`,
    `gzip` and friends, `curl -o`, `wget -O`, `patch -o`, `git diff --output=`, the files
    given to `vim`/`ex`/`ed` (whose commands are unknown), what `ln` points at and what
    `cp -l/-s` links to (a link into auth/ is a way to write auth/ later);
  * destinations that receive files the command does not name ("extract" targets):
    `tar -x [-C DIR]`, `unzip [-d DIR]`, `cpio -i`, `cp -r`, `rsync -a`, `curl -O`,
    `wget` without `-O`; refused unless they are a scratch directory outside the
    repository;
  * `bash -c`, `sh -c` and friends, `eval`, `env -S`, `watch`, `su -c`, the value of an
    `alias`, and a shell reading a heredoc are analysed recursively; code given to
    `python -c` / `python -` / a heredoc, `node -e`/`-p`, `perl -e`, `ruby -e`, `php -r`
    is read by shell_code.py: literal targets of write calls are targets, a literal
    naming a forbidden path is refused, code that runs programs or writes computed paths
    is unknown;
  * wrappers: `command`, `builtin`, `exec`, `sudo`, `env`, `nohup`, `time`, `nice`,
    `timeout`, `setsid`, `strace`, `taskset`, `busybox`, project runners (`uv run`,
    `poetry run`, `npx`, `npm exec`, `bundle exec`, ...), `xargs` (a writer behind
    `xargs` or `find -exec`, or `find -delete`, has targets from its input: unknown).
git runs only from an allow-list of reading subcommands (shell_git.py): `git push` in any
spelling, commits, resets, checkouts, config writes, aliases (`git -c alias.x=...`, or any
subcommand git does not read with), `--git-dir`/`--exec-path=`, `GIT_*=` assignments, and
`gh`/`hub` beyond viewing are refused with the reason. Paths inside any `.git` directory
are git's state: never written. A target containing a variable, a command substitution
or `~` keeps its literal text and makes the verdict unknown; relative targets after
`cd DIR` or `git -C DIR` are joined to DIR. Globs (`auth/*`) are kept literally and
matched as paths by `ForbiddenPaths`. The scratch exemption (`/tmp`, `/dev/null`, ...)
covers only paths outside the repository: it never overrides a forbidden path.

Reading is not writing: `cat auth/token.py`, `grep -r auth src`, `echo auth/x` name a
forbidden path but write nothing, and this module allows them. Reading a secret file
(`cat .env`) is the guard's to refuse: every literal a command names is in
`ShellVerdict.mentions` for it.

What shell analysis cannot catch, by construction:
  * programs that write files themselves: `python script.py`, `node script.js`, `make`,
    `npm run x`, `npm install`, a test that writes a fixture, a script the agent wrote
    and then runs, `git` hooks and filters configured by the user, anything not above;
  * paths computed at run time: `$VAR`, `$(...)`, backticks, `~`, brace expansion,
    globs that expand to a forbidden file (`rm -rf *`, `a*/token.py`), a directory that
    holds a forbidden path (`rm -rf src` with src/auth; only forbidden patterns with a
    literal directory, such as `.github/workflows/**` or the user's files, are seen in
    their parents), symlinks created earlier that point into a forbidden directory (the
    guard resolves those that exist), `cd` into a variable;
  * `eval` or `source` of anything but a literal, aliases and functions defined outside
    the command, a `PATH` that makes `ls` mean something else, encoded commands
    (`echo cm0gYQ== | base64 -d | sh`), and shells reading a script from a pipe;
  * code read by regular expressions (node, perl, ruby, php) that hides its calls
    (`fs[m](p)` is refused as computed, but not every spelling is known), and Python
    that reaches a builtin in a way `ast` does not show;
  * Bash features neither parser models exactly (the `shlex` fallback cannot see heredoc
    bodies or substitutions as such, so it may also over-report).
That is why this is defence in depth only: the OS sandbox bounds what the agent's
commands can touch, and after every attempt agentloop diffs the worktree against the
rails; that diff check is the backstop for everything above.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import bashlex  # type: ignore[import-untyped]

from agentloop.rails import shell_code, shell_git
from agentloop.rails.paths import OUTSIDE_REPOSITORY, ForbiddenPaths
from agentloop.rails.shell_programs import HANDLERS
from agentloop.rails.shell_words import State, Target, Word, decode_word

__all__ = [
    "SCRATCH_PATHS",
    "ShellVerdict",
    "Target",
    "analyse",
    "forbidden_writes",
    "judge",
]

# Outside the repository but harmless to write: pseudo-files and temporary directories.
SCRATCH_PATHS: tuple[str, ...] = (
    "/dev/null",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
    "/dev/fd/",
    "/tmp/",
    "/var/tmp/",
)

_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish"}
# Programs that run the command in their arguments; the sets are their options with a value.
_WRAPPERS: dict[str, set[str]] = {
    "command": set(), "builtin": set(), "exec": {"-a"}, "nohup": set(), "time": {"-o", "-f"},
    "nice": {"-n"}, "stdbuf": {"-i", "-o", "-e"}, "sudo": {"-u", "-g", "-C", "-D", "-h", "-p",
    "-r", "-t", "-U"}, "doas": {"-u", "-C"}, "setsid": set(), "unbuffer": set(),
    "chronic": set(), "ionice": {"-c", "-n", "-p"}, "strace": {"-o", "-e", "-p", "-s", "-u",
    "-E", "-P"}, "ltrace": {"-o", "-e", "-p", "-s", "-u"}, "busybox": set(),
    "fakeroot": set(), "catchsegv": set(),
}  # fmt: skip
# Wrappers whose first operand is not the command (`taskset MASK cmd`, `flock FILE cmd`).
_POSITIONAL_WRAPPERS = {"taskset", "flock", "chroot"}
# Project runners: `uv run python -c ...` is `python -c ...`. The sets are the options with
# a value each accepts before the command; `-c` of npx is a command line.
_RUNNERS: dict[tuple[str, str], set[str]] = {
    ("uv", "run"): {"--with", "--python", "-p", "--package", "--extra", "--group",
                    "--env-file", "--directory", "--project", "--with-requirements"},
    ("poetry", "run"): {"-C", "--directory", "-P", "--project"},
    ("pipenv", "run"): set(), ("pdm", "run"): {"-p", "--project"},
    ("hatch", "run"): set(), ("rye", "run"): set(), ("pixi", "run"): {"-e", "--environment"},
    ("conda", "run"): {"-n", "--name", "-p", "--prefix"},
    ("bundle", "exec"): set(), ("npm", "exec"): {"-p", "--package", "-c", "--call"},
    ("pnpm", "exec"): set(), ("pnpm", "dlx"): set(), ("yarn", "dlx"): set(),
    ("yarn", "exec"): set(),
}  # fmt: skip
_NPX = {"npx": {"-p", "--package", "-c", "--call"}, "bunx": {"-p", "--package"}}
_OUT_REDIRECTS = {">", ">>", ">|", "&>", "&>>", "<>", ">&"}
_DYNAMIC_KINDS = {"parameter", "commandsubstitution", "processsubstitution", "tilde"}
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\+?=(.*)$", re.S)
_MAX_DEPTH = 8


@dataclass(frozen=True)
class ShellVerdict:
    targets: tuple[Target, ...] = ()
    pushes: bool = False
    # True when the command may change files this analysis cannot name.
    unknown_targets: bool = False
    # Why the targets are unknown, for the reason shown to the agent.
    unknown_reasons: tuple[str, ...] = ()
    # "bashlex", "shlex" (the fallback scanner) or "none" (could not tokenize at all).
    parser: str = "bashlex"
    # What it runs that agentloop never allows, whatever it writes: full reasons.
    refusals: tuple[str, ...] = ()
    # Every literal it names (words, redirections, heredocs, code literals), for the
    # guard's secret-file check.
    mentions: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.path for t in self.targets if t.action != "reference"))


def analyse(command: str, *, interactive: bool = False) -> ShellVerdict:
    """What `command` may write and what it runs; never raises. `interactive`: a Claude
    Code session of the user's, where git's refusals name agentloop's commit tool."""
    state = State(interactive=interactive)
    parser = "bashlex"
    try:
        _analyse_into(command, state)
    except _Unparseable:
        parser = "none"
        state.flag("the command could not be parsed")
    except Exception:  # a bug or a parser limit must never allow: fail closed
        parser = "none"
        state.flag("the command could not be analysed")
    else:
        if state.fallback:
            parser = "shlex"
    return ShellVerdict(
        targets=tuple(dict.fromkeys(state.targets)),
        pushes=state.pushes,
        unknown_targets=bool(state.unknown),
        unknown_reasons=tuple(dict.fromkeys(state.unknown)),
        parser=parser,
        refusals=tuple(dict.fromkeys(state.refusals)),
        mentions=tuple(dict.fromkeys(state.mentions)),
    )


def forbidden_writes(
    command: str,
    forbidden: ForbiddenPaths,
    cwd: str | None = None,
    *,
    interactive: bool = False,
    resolve: Callable[[str], str] | None = None,
) -> list[str]:
    """Reasons to refuse `command`: forbidden, `.git` or out-of-repository write targets
    (scratch paths such as /dev/null and /tmp outside the repository excepted), `git
    push` and the other refusals, and targets that cannot be known. Empty when the command
    may run. `cwd` is the absolute directory the command runs in (Claude Code's Bash keeps
    the last `cd`); without it relative paths are taken relative to the repository root.
    `resolve` (e.g. os.path.realpath) also judges each target where its symlinks lead."""
    verdict = analyse(command, interactive=interactive)
    return judge(verdict, forbidden, cwd, resolve=resolve)


def judge(
    verdict: ShellVerdict,
    forbidden: ForbiddenPaths,
    cwd: str | None = None,
    *,
    resolve: Callable[[str], str] | None = None,
) -> list[str]:
    """The reasons `forbidden_writes` gives, for a verdict already made."""
    reasons: list[str] = []
    if verdict.pushes:
        reasons.append("the command runs git push: agentloop never pushes")
    reasons.extend(verdict.refusals)
    real = None
    if resolve is not None and forbidden.root:
        real = replace(forbidden, root=resolve(forbidden.root))
    named = {t.path for t in verdict.targets if t.action != "reference"}
    for target in verdict.targets:
        if target.action == "reference" and target.path in named:
            continue  # a write call's literal: said once, as the write
        path = target.path
        if cwd and not path.startswith(("/", "~")):
            path = posixpath.join(cwd, path)
        reason = _judge_path(path, target, forbidden, bool(cwd))
        if reason is None and real is not None and resolve is not None:
            absolute = path
            if not path.startswith(("/", "~")):
                absolute = posixpath.join(forbidden.root or "", path)
            if absolute.startswith("/"):
                resolved = resolve(absolute)
                if resolved != posixpath.normpath(absolute):
                    reason = _judge_path(resolved, target, real, True)
                    if reason is not None:
                        reason += f" ({target.path} leads there through a symbolic link)"
        if reason is not None:
            reasons.append(reason)
    reasons.extend(f"cannot tell what it writes: {r}" for r in verdict.unknown_reasons)
    return list(dict.fromkeys(reasons))


_VERBS = {"extract": "unpack or copy files into", "point": "link to", "mode": "change the mode of"}


def _judge_path(path: str, target: Target, forbidden: ForbiddenPaths, joined: bool) -> str | None:
    action = target.action
    verb = _VERBS.get(action, action)
    spelled = target.path
    if path.startswith("~"):
        if action in ("reference", "point"):
            return None
        return f"it would {verb} {spelled}, outside the repository"
    if _in_git_dir(path):
        if action == "reference":
            return None
        return f"it would {verb} {spelled}, inside .git: git state is agentloop's"
    normal = posixpath.normpath(path)
    root = posixpath.normpath(forbidden.root) if forbidden.root else None
    if action == "extract" and normal in (".", root):
        return f"cannot tell what it writes: it would {verb} {spelled}, files it does not name"
    if action != "reference" and normal in (".", root):
        return f"it would {verb} {spelled}, the whole repository"
    relative = forbidden.relative(path)
    if relative is None:
        # The scratch exemption applies only here, outside the repository: a repository
        # under /tmp is still the repository.
        if action in ("reference", "point") or _is_scratch(path):
            return None
        return f"it would {verb} {spelled}, outside the repository"
    pattern = forbidden.match(path)
    # Named from the repository root: `token.py` said in auth/ is auth/token.py.
    shown = relative if joined or path.startswith("/") else spelled
    if pattern is not None and pattern != OUTSIDE_REPOSITORY:
        if action == "reference":
            return f"its code names {shown}, a forbidden path ({pattern})"
        return f"it would {verb} {shown}, a forbidden path ({pattern})"
    if action in ("reference", "point"):
        return None
    holder = _holds_forbidden(relative, forbidden)
    if holder is not None:
        return f"it would {verb} {shown}, which holds forbidden paths ({holder})"
    if action == "extract":
        return f"cannot tell what it writes: it would {verb} {shown}, files it does not name"
    return None


def _in_git_dir(path: str) -> bool:
    return ".git" in posixpath.normpath(path).lower().split("/")


def _is_scratch(path: str) -> bool:
    if not path.startswith("/"):
        return False
    normal = posixpath.normpath(path)
    return any(normal == s.rstrip("/") or normal.startswith(s) for s in SCRATCH_PATHS)


def _holds_forbidden(relative: str, forbidden: ForbiddenPaths) -> str | None:
    """The first forbidden pattern whose literal directory lies under `relative`:
    `rm -rf .github` removes `.github/workflows/**`, `git checkout -- src` reverts the
    user's src/app.py. Patterns that match at any depth (`**/auth/**`) cannot be judged
    from a name."""
    prefix = relative.lower().rstrip("/") + "/"
    for pattern in forbidden.patterns:
        literal = _literal_prefix(pattern)
        if literal and literal.lower().startswith(prefix):
            return pattern
    return None


def _literal_prefix(pattern: str) -> str | None:
    if pattern.startswith("!") or "/" not in pattern.rstrip("/"):
        return None  # a negation, or a name that matches at any depth
    out: list[str] = []
    index = 0
    text = pattern.lstrip("/")
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(text[index + 1])
            index += 2
            continue
        if char in "*?[":
            literal = "".join(out)
            return literal[: literal.rfind("/") + 1] or None
        out.append(char)
        index += 1
    return "".join(out) or None


class _Unparseable(Exception):
    pass


# --- parsing -------------------------------------------------------------------------

# bashlex cannot read a quoted heredoc delimiter (`<<'EOF'`, the usual way to pass code).
# Unquoting it keeps every position (padded with spaces) and only turns off expansion in
# the body, which this analysis never performs anyway.
_QUOTED_DELIMITER = re.compile(r"(<<-?[ \t]*)(?:'([^'\n]*)'|\"([^\"\n]*)\"|\\(\w+))")


def _unquote_delimiters(command: str) -> str:
    def plain(match: re.Match[str]) -> str:
        name = match.group(2) or match.group(3) or match.group(4) or ""
        return (match.group(1) + name).ljust(len(match.group(0)))

    return _QUOTED_DELIMITER.sub(plain, command)


def _analyse_into(command: str, state: State) -> None:
    if state.depth > _MAX_DEPTH:
        state.flag("commands nested too deeply")
        return
    try:
        trees = bashlex.parse(command)
    except Exception:
        unquoted = _unquote_delimiters(command)
        try:
            if unquoted == command:
                raise
            trees = bashlex.parse(unquoted)
            command = unquoted
        except Exception:
            _scan_with_shlex(command, state)
            return
    for tree in trees:
        _walk(tree, state, command)


def _walk(node: Any, state: State, source: str) -> None:
    kind = getattr(node, "kind", None)
    if kind == "command":
        _command_node(node, state, source)
        return
    for attr in ("parts", "list"):
        for child in getattr(node, attr, None) or ():
            _walk(child, state, source)
    inner = getattr(node, "command", None)
    if inner is not None and hasattr(inner, "kind"):
        _walk(inner, state, source)


def _substitutions(node: Any, state: State, source: str) -> bool:
    """Walk the substitutions inside a word; True when the word is computed."""
    dynamic = False
    for child in getattr(node, "parts", None) or ():
        if child.kind in _DYNAMIC_KINDS:
            dynamic = True
        if child.kind in ("commandsubstitution", "processsubstitution"):
            _walk(child.command, state, source)
        else:
            dynamic = _substitutions(child, state, source) or dynamic
    return dynamic


def _word(node: Any, state: State, source: str) -> Word:
    substituted = _substitutions(node, state, source)
    start, end = getattr(node, "pos", (0, 0))
    raw = source[start:end]
    if not raw:
        word = Word(node.word, substituted)
    else:
        # Quote removal of our own: bashlex reads `$'push'` as the parameter `$push`,
        # drops the quotes in `-c"open('x')"` and the backslash in `"\x74"`.
        text, dynamic = decode_word(raw)
        ansi = "$'" in raw or '$"' in raw
        word = Word(text, dynamic if ansi else dynamic or substituted)
    state.mention(word.text)
    return word


def _command_node(node: Any, state: State, source: str) -> None:
    words: list[Word] = []
    stdin: str | None = None
    for part in node.parts:
        if part.kind == "word":
            words.append(_word(part, state, source))
        elif part.kind == "assignment":
            assignment = _word(part, state, source)
            _assignment(assignment.text, state)
        elif part.kind == "redirect":
            output = part.output
            if part.type in {"<<", "<<-"}:
                value = getattr(getattr(part, "heredoc", None), "value", "") or ""
                stdin = value.rsplit("\n", 1)[0] if "\n" in value else ""
                state.mention(stdin)
            elif not hasattr(output, "kind"):
                continue  # `2>&1`: a file descriptor
            elif part.type == "<<<":
                stdin = _word(output, state, source).text + "\n"
            elif part.type in _OUT_REDIRECTS:
                target = _word(output, state, source)
                if not (part.type == ">&" and (target.text.isdigit() or target.text == "-")):
                    state.add(target.text, "write", target.dynamic)
            else:
                _word(output, state, source)  # `< .env` reads it: a mention
    _simple_command(words, state, stdin)


def _assignment(text: str, state: State) -> bool:
    """A `NAME=value` word: refuse one that redirects git; True when it is one."""
    match = _ASSIGNMENT.match(text)
    if match is None:
        return False
    shell_git.refuse_environment(match.group(1), state)
    state.mention(match.group(2))
    return True


_OPERATORS = {";", "&&", "||", "|", "|&", "&", "(", ")", "{", "}", ";;", "\n"}
_REDIRECT = re.compile(r"^(\d*|&)(>>?|>\||<>|>&)(.*)$")


def _scan_with_shlex(command: str, state: State) -> None:
    """The fallback: words, operators and redirections, no grammar."""
    state.fallback = True
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise _Unparseable(str(exc)) from exc
    words: list[Word] = []
    pending: str | None = None
    for token in tokens:
        state.mention(token)
        if pending is not None:
            if pending in _OUT_REDIRECTS and not (pending == ">&" and token.isdigit()):
                state.add(token, "write")
            pending = None
            continue
        match = _REDIRECT.match(token) or (
            re.match(r"^()(<<-?|<<<|<)(.*)$", token) if token.startswith("<") else None
        )
        if token in _OPERATORS or token in {"[[", "]]"}:
            _simple_command(words, state, None)
            words = []
        elif match:
            operator = ("&" if match.group(1) == "&" else "") + match.group(2)
            if match.group(3):
                if operator in _OUT_REDIRECTS:
                    state.add(match.group(3), "write")
            else:
                pending = operator
        else:
            words.append(Word(token))
    _simple_command(words, state, None)


# --- commands ------------------------------------------------------------------------


def _simple_command(words: list[Word], state: State, stdin: str | None) -> None:
    # Leading assignments (`FOO=1 cmd`) are not the command.
    while words and _ASSIGNMENT.match(words[0].text):
        _assignment(words[0].text, state)
        words = words[1:]
    if not words:
        return
    first = words[0]
    name = posixpath.basename(first.text)
    args = words[1:]
    if first.dynamic:
        state.flag(f"the program {first.text!r} is computed at run time")
        return
    if name in _WRAPPERS:
        if name == "command" and args and args[0].text in ("-v", "-V"):
            return  # prints what the name is
        options, rest = _split_leading_options(args, _WRAPPERS[name])
        if name in ("strace", "ltrace"):
            for index, option in enumerate(options[:-1]):
                if option == "-o":
                    state.add(options[index + 1], "write")
        _simple_command(rest, state, stdin)
    elif (name, args[0].text if args else "") in _RUNNERS or name in _NPX:
        skip = _NPX[name] if name in _NPX else _RUNNERS[(name, args[0].text)]
        options, rest = _split_leading_options(args if name in _NPX else args[1:], skip)
        for index, option in enumerate(options[:-1]):
            if option in ("-c", "--call"):
                _nested(options[index + 1], state)
        _simple_command(rest, state, stdin)
    elif name in _POSITIONAL_WRAPPERS:
        _, rest = _split_leading_options(args, {"-E", "-w", "-c"})
        _simple_command(rest[1:], state, stdin)
    elif name == "env":
        _env(args, state, stdin)
    elif name == "timeout":
        _, rest = _split_leading_options(args, {"-s", "-k", "--signal", "--kill-after"})
        _simple_command(rest[1:], state, stdin)
    elif name in ("xargs", "parallel"):
        _, rest = _split_leading_options(args, {"-I", "-n", "-P", "-L", "-d", "-s", "-a", "-E"})
        _behind_input(rest, state, name)
    elif name == "find":
        _find(args, state)
    elif name in _SHELLS:
        _shell(args, state, stdin, name)
    elif name in ("eval", "watch"):
        if any(w.dynamic for w in args):
            state.flag(f"{name} of a computed string")
        _, rest = _split_leading_options(args, {"-n", "-d", "--interval"})
        _nested(" ".join(w.text for w in (rest if name == "watch" else args)), state)
    elif name in ("su", "runuser", "script"):
        options, _ = _split_leading_options(args, {"-c", "--command", "-u", "-g", "-s"})
        for index, option in enumerate(options[:-1]):
            if option in ("-c", "--command"):
                _nested(options[index + 1], state)
    elif name == "alias":
        # `alias p='git push'` then `p` on a later line: judge the alias's command now.
        for word in args:
            _, equals, value = word.text.partition("=")
            if equals:
                _nested(value, state)
    elif name in ("source", "."):
        state.flag(f"{name} runs a script this analysis does not read")
    elif name in ("export", "declare", "typeset", "local", "readonly"):
        for word in args:
            _assignment(word.text, state)
    elif shell_code.PYTHONS.match(name):
        shell_code.python(args, state, stdin)
    elif name in shell_code.SCRIPTING:
        shell_code.scripting(name, args, state, stdin)
    elif name in ("cd", "pushd"):
        _cd(name, args, state)
    elif name == "git":
        shell_git.git(args, state)
    elif name.startswith("git-"):
        # /usr/lib/git-core/git-push is `git push`.
        shell_git.git([Word(name[4:]), *args], state)
    elif name == "gh":
        shell_git.gh(args, state)
    elif name == "hub":
        shell_git.hub(args, state)
    else:
        handler = HANDLERS.get(name)
        if handler is not None:
            handler(args, state)


def _cd(name: str, args: list[Word], state: State) -> None:
    operands = [w for w in args if not w.text.startswith("-") or w.text == "-"]
    if not operands or operands[0].dynamic or operands[0].text in ("-", "~"):
        state.cwd = None if operands or name == "pushd" else ""
    elif state.cwd is not None:
        state.cwd = posixpath.normpath(posixpath.join(state.cwd, operands[0].text))


def _env(args: list[Word], state: State, stdin: str | None) -> None:
    rest = list(args)
    while rest and (rest[0].text.startswith("-") or _ASSIGNMENT.match(rest[0].text)):
        text = rest[0].text
        if _assignment(text, state):
            rest = rest[1:]
        elif text in ("-S", "--split-string") or text.startswith(("-S", "--split-string=")):
            # `env -S 'git push'`: the string is a command line.
            value = text.partition("=")[2] if text.startswith("--") else text[2:]
            if not value and len(rest) > 1:
                value, rest = rest[1].text, rest[1:]
            _nested(" ".join([value, *(w.text for w in rest[1:])]), state)
            return
        else:
            rest = rest[2:] if text in ("-u", "-C", "--unset", "--chdir") else rest[1:]
    _simple_command(rest, state, stdin)


def _split_leading_options(
    args: Sequence[Word], with_value: set[str]
) -> tuple[list[str], list[Word]]:
    options: list[str] = []
    index = 0
    while index < len(args) and args[index].text.startswith("-"):
        options.append(args[index].text)
        if args[index].text in with_value and index + 1 < len(args):
            options.append(args[index + 1].text)
            index += 1
        index += 1
        if options[-1] == "--":
            break
    return options, list(args[index:])


# Programs whose targets come from their operands, so behind xargs or find -exec they are
# unknown even when the probe finds none.
_GIT_PROGRAMS = {"git", "gh", "hub"}


def _behind_input(rest: list[Word], state: State, via: str) -> None:
    if not rest:
        return
    probe = state.probe()
    _simple_command(rest, probe, None)
    state.absorb(probe)
    name = posixpath.basename(rest[0].text)
    if name in HANDLERS or name in _GIT_PROGRAMS or probe.targets or probe.unknown:
        state.flag(f"{rest[0].text} behind {via} changes files named by its input")


def _find(args: list[Word], state: State) -> None:
    texts = [w.text for w in args]
    if "-delete" in texts or any(t.startswith("-fprint") or t == "-fls" for t in texts):
        state.flag("find -delete/-fprint changes the files it finds")
    for index, text in enumerate(texts):
        if text in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(texts) and texts[end] not in (";", "+"):
                end += 1
            _behind_input(args[index + 1 : end], state, "find " + text)


def _shell(args: list[Word], state: State, stdin: str | None, name: str) -> None:
    index = 0
    script: Word | None = None
    while index < len(args):
        text = args[index].text
        if text.startswith("-") and "c" in text.lstrip("-") and not text.startswith("--"):
            script = args[index + 1] if index + 1 < len(args) else None
            break
        if text in ("-o", "+o", "--rcfile", "--init-file"):
            index += 2
            continue
        if not text.startswith(("-", "+")):
            state.flag(f"{name} runs the script {text}, which this analysis does not read")
            return
        index += 1
    if script is None:
        if stdin is not None:
            _nested(stdin, state)
        else:
            state.flag(f"{name} reads commands from its input")
        return
    if script.dynamic:
        state.flag(f"{name} -c runs a computed string")
    _nested(script.text, state)


def _nested(command: str, state: State) -> None:
    saved = state.cwd
    state.depth += 1
    _analyse_into(command, state)
    state.depth -= 1
    state.cwd = saved
