"""Which files a Bash command may write, move, delete or link, and whether it pushes.

`analyse(command)` is a pure function (no file system, no git, no process): it parses the
command with `bashlex` and walks every simple command it finds, in lists (`;`, `&&`,
`||`), pipelines, subshells, brace groups, `if`/`for`/`while` bodies, functions, and
command and process substitutions. When bashlex cannot parse valid Bash (`[[ ... ]]`,
`case`, arithmetic), a `shlex`-based scanner splits the text on operators and applies
the same per-command rules; when even that fails (unbalanced quotes), the verdict is
`unknown_targets=True`: fail closed.

What counts as a write target:
  * redirections `>`, `>>`, `>|`, `&>`, `&>>`, `<>`, `N>`, `>& file` (not `>&2`);
  * `tee [-a]`, `sed -i`, `perl -i`, `mv` (every operand), `cp` (destination),
    `rm`, `rmdir`, `unlink`, `shred`, `mkdir`, `truncate`, `touch`, `dd of=`,
    `ln` (the link name), `install` (destination), `chmod`/`chown`/`chgrp`,
    `git checkout [-- ]<path>`, `git restore`, `git rm`, `git mv`;
  * `bash -c`, `sh -c` and friends, `eval`, and a shell reading a heredoc are analysed
    recursively; `python -c` (and `python - <<EOF`) code is parsed with `ast`, and
    string literals passed to `open(..., "w")`, `Path(...).write_text` and the like are
    targets; anything dynamic there (a computed name, `os.system`, `exec`) is unknown;
  * wrappers: `command`, `builtin`, `exec`, `sudo`, `env`, `nohup`, `time`, `nice`,
    `timeout`, `xargs` (a writer behind `xargs` or `find -exec`, or `find -delete`,
    has targets from its input: unknown).
`git apply`, `git am`, `patch`, `git stash`, `git pull`/`merge`/`rebase`/`cherry-pick`/
`revert`, `git reset --hard` and `git clean` change files the command does not name:
unknown. A target containing a variable, a command substitution or `~` keeps its literal
text and makes the verdict unknown; relative targets after `cd DIR` are joined to DIR.
Globs (`auth/*`) are kept literally and matched as paths by `ForbiddenPaths`.

Reading is not writing: `cat auth/token.py`, `grep -r auth src`, `echo auth/x` name a
forbidden path but write nothing, and this module allows them.

What shell analysis cannot catch, by construction:
  * programs that write files themselves: `python script.py`, `make`, `npm run x`, a
    test that writes a fixture, `node -e`, `awk` with `print > f`, `vim -c wq`, `git
    commit` hooks, anything not in the table above;
  * paths computed at run time: `$VAR`, `$(...)`, backticks, `~`, brace expansion,
    globs that expand to a forbidden file (`rm -rf *`, `a*/token.py`), symlinks that
    point into a forbidden directory, `cd` into a variable;
  * `eval` or `source` of anything but a literal, aliases and functions defined outside
    the command, a `PATH` that makes `ls` mean something else, encoded commands
    (`echo cm0gYQ== | base64 -d | sh`), and shells reading a script from a pipe;
  * Bash features neither parser models exactly (the `shlex` fallback cannot see heredoc
    bodies or substitutions as such, so it may also over-report).
That is why this is defence in depth only: after every attempt agentloop diffs the
worktree against the rails, and that diff check is the backstop for everything above.
"""

from __future__ import annotations

import ast
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bashlex  # type: ignore[import-untyped]

from agentloop.rails.paths import OUTSIDE_REPOSITORY, ForbiddenPaths

__all__ = ["SCRATCH_PATHS", "ShellVerdict", "Target", "analyse", "forbidden_writes"]

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

_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "ash", "busybox"}
_PYTHONS = re.compile(r"^(python|pypy)[0-9.]*$")
_WRAPPERS = {"command", "builtin", "exec", "nohup", "time", "nice", "stdbuf", "sudo", "doas"}
_WRITERS = {
    "rm", "rmdir", "unlink", "shred", "mkdir", "truncate", "touch", "mv", "cp", "ln",
    "install", "chmod", "chown", "chgrp", "tee", "dd", "sed", "perl", "patch",
}  # fmt: skip
_OUT_REDIRECTS = {">", ">>", ">|", "&>", "&>>", "<>", ">&"}
_GIT_UNKNOWN = {"apply", "am", "pull", "merge", "rebase", "cherry-pick", "revert", "clean"}
_DYNAMIC_KINDS = {"parameter", "commandsubstitution", "processsubstitution", "tilde"}
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Target:
    """One path the command may change, as spelled (joined to a literal `cd` directory)."""

    path: str
    action: str  # "write", "move", "delete", "link", "mode"


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

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.path for t in self.targets))


@dataclass
class _State:
    targets: list[Target] = field(default_factory=list)
    pushes: bool = False
    unknown: list[str] = field(default_factory=list)
    # The directory relative targets are in; None once it is not known (`cd $X`).
    cwd: str | None = ""
    depth: int = 0
    # Set when bashlex failed somewhere and the shlex scanner stood in.
    fallback: bool = False

    def add(self, path: str, action: str, dynamic: bool = False) -> None:
        if not path:
            return
        if dynamic or path.startswith("~") or "$" in path or "`" in path:
            self.unknown.append(f"{path!r} is computed at run time")
        if self.cwd is None and not path.startswith("/"):
            self.unknown.append(f"{path!r} is relative to a directory only known at run time")
        elif self.cwd and not path.startswith(("/", "~")):
            path = posixpath.join(self.cwd, path)
        self.targets.append(Target(path, action))

    def flag(self, reason: str) -> None:
        self.unknown.append(reason)


@dataclass(frozen=True)
class _Word:
    text: str
    dynamic: bool = False


def analyse(command: str) -> ShellVerdict:
    """What `command` may write and whether it runs `git push`; never raises."""
    state = _State()
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
    )


def forbidden_writes(command: str, forbidden: ForbiddenPaths, cwd: str | None = None) -> list[str]:
    """Reasons to refuse `command`: forbidden or out-of-repository write targets (scratch
    paths such as /dev/null and /tmp excepted), `git push`, and targets that cannot be
    known. Empty when the command may run. `cwd` is the absolute directory the command
    runs in (Claude Code's Bash keeps the last `cd`); without it relative paths are taken
    relative to the repository root."""
    verdict = analyse(command)
    reasons: list[str] = []
    if verdict.pushes:
        reasons.append("the command runs git push")
    for target in verdict.targets:
        if _is_scratch(target.path):
            continue
        path = target.path
        if cwd and not path.startswith(("/", "~")):
            path = posixpath.join(cwd, path)
        pattern = OUTSIDE_REPOSITORY if path.startswith("~") else forbidden.match(path)
        if pattern == OUTSIDE_REPOSITORY:
            reasons.append(f"it would {target.action} {target.path}, outside the repository")
        elif pattern is not None:
            # Named from the repository root: `token.py` said in auth/ is auth/token.py.
            shown = forbidden.relative(path) if cwd else target.path
            reasons.append(f"it would {target.action} {shown}, a forbidden path ({pattern})")
    reasons.extend(f"cannot tell what it writes: {r}" for r in verdict.unknown_reasons)
    return list(dict.fromkeys(reasons))


def _is_scratch(path: str) -> bool:
    if not path.startswith("/"):
        return False
    normal = posixpath.normpath(path)
    return any(normal == s.rstrip("/") or normal.startswith(s) for s in SCRATCH_PATHS)


class _Unparseable(Exception):
    pass


# --- parsing -------------------------------------------------------------------------


def _analyse_into(command: str, state: _State) -> None:
    if state.depth > _MAX_DEPTH:
        state.flag("commands nested too deeply")
        return
    try:
        trees = bashlex.parse(command)
    except Exception:
        _scan_with_shlex(command, state)
        return
    for tree in trees:
        _walk(tree, state)


def _walk(node: Any, state: _State) -> None:
    kind = getattr(node, "kind", None)
    if kind == "command":
        _command_node(node, state)
        return
    for attr in ("parts", "list"):
        for child in getattr(node, attr, None) or ():
            _walk(child, state)
    inner = getattr(node, "command", None)
    if inner is not None and hasattr(inner, "kind"):
        _walk(inner, state)


def _substitutions(node: Any, state: _State) -> bool:
    """Walk the substitutions inside a word; True when the word is computed."""
    dynamic = False
    for child in getattr(node, "parts", None) or ():
        if child.kind in _DYNAMIC_KINDS:
            dynamic = True
        if child.kind in ("commandsubstitution", "processsubstitution"):
            _walk(child.command, state)
        else:
            dynamic = _substitutions(child, state) or dynamic
    return dynamic


def _command_node(node: Any, state: _State) -> None:
    words: list[_Word] = []
    heredoc: str | None = None
    for part in node.parts:
        if part.kind == "word":
            words.append(_Word(part.word, _substitutions(part, state)))
        elif part.kind == "assignment":
            _substitutions(part, state)
        elif part.kind == "redirect":
            output = part.output
            if part.type in {"<<", "<<-"}:
                value = getattr(getattr(part, "heredoc", None), "value", "") or ""
                heredoc = value.rsplit("\n", 1)[0] if "\n" in value else ""
            elif part.type == "<<<":
                if hasattr(output, "kind"):
                    _substitutions(output, state)
            elif part.type in _OUT_REDIRECTS and hasattr(output, "kind"):
                dynamic = _substitutions(output, state)
                if not (part.type == ">&" and (output.word.isdigit() or output.word == "-")):
                    state.add(output.word, "write", dynamic)
            elif hasattr(output, "kind"):
                _substitutions(output, state)
    _simple_command(words, state, heredoc)


_OPERATORS = {";", "&&", "||", "|", "|&", "&", "(", ")", "{", "}", ";;", "\n"}
_REDIRECT = re.compile(r"^(\d*|&)(>>?|>\||<>|>&)(.*)$")


def _scan_with_shlex(command: str, state: _State) -> None:
    """The fallback: words, operators and redirections, no grammar."""
    state.fallback = True
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise _Unparseable(str(exc)) from exc
    words: list[_Word] = []
    pending: str | None = None
    for token in tokens:
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
            words.append(_Word(token))
    _simple_command(words, state, None)


# --- commands ------------------------------------------------------------------------


def _split_options(
    args: Sequence[_Word], with_value: Iterable[str] = ()
) -> tuple[list[str], list[_Word]]:
    """Options and operands; options in `with_value` consume the next word."""
    takes = set(with_value)
    options: list[str] = []
    operands: list[_Word] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word.text == "--":
            operands.extend(args[index + 1 :])
            break
        if word.text.startswith("-") and word.text != "-" and not word.dynamic:
            options.append(word.text)
            if word.text in takes and index + 1 < len(args):
                options.append(args[index + 1].text)
                index += 1
        else:
            operands.append(word)
        index += 1
    return options, operands


def _option_value(options: list[str], names: Iterable[str]) -> str | None:
    for index, option in enumerate(options):
        for name in names:
            if option == name and index + 1 < len(options):
                return options[index + 1]
            if name.startswith("--") and option.startswith(name + "="):
                return option[len(name) + 1 :]
    return None


def _simple_command(words: list[_Word], state: _State, heredoc: str | None) -> None:
    # Leading assignments (`FOO=1 cmd`) are not the command.
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0].text):
        words = words[1:]
    if not words:
        return
    name = posixpath.basename(words[0].text)
    args = words[1:]
    if words[0].dynamic:
        state.flag(f"the program {words[0].text!r} is computed at run time")
        return
    if name in _WRAPPERS:
        skip = {"sudo": {"-u", "-g", "-C", "-D"}, "nice": {"-n"}}.get(name, set())
        _, rest = _split_leading_options(args, skip)
        _simple_command(rest, state, heredoc)
        return
    if name == "env":
        rest = list(args)
        while rest and (
            rest[0].text.startswith("-") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", rest[0].text)
        ):
            rest = rest[2:] if rest[0].text in ("-u", "-C", "-S") else rest[1:]
        _simple_command(rest, state, heredoc)
        return
    if name == "timeout":
        _, rest = _split_leading_options(args, {"-s", "-k", "--signal", "--kill-after"})
        _simple_command(rest[1:], state, heredoc)
        return
    if name in ("xargs", "parallel"):
        _, rest = _split_leading_options(args, {"-I", "-n", "-P", "-L", "-d", "-s", "-a", "-E"})
        _behind_input(rest, state, name)
        return
    if name == "find":
        _find(args, state)
        return
    if name in _SHELLS:
        _shell(args, state, heredoc, name)
        return
    if name == "eval":
        if any(w.dynamic for w in args):
            state.flag("eval of a computed string")
        state.depth += 1
        _analyse_into(" ".join(w.text for w in args), state)
        state.depth -= 1
        return
    if name in ("source", "."):
        state.flag(f"{name} runs a script this analysis does not read")
        return
    if _PYTHONS.match(name):
        _python(args, state, heredoc)
        return
    if name in ("cd", "pushd"):
        _, operands = _split_options(args)
        if not operands or operands[0].dynamic or operands[0].text in ("-", "~"):
            state.cwd = None if operands or name == "pushd" else ""
        elif state.cwd is not None:
            state.cwd = posixpath.normpath(posixpath.join(state.cwd, operands[0].text))
        return
    if name == "git":
        _git(args, state)
        return
    handler = _HANDLERS.get(name)
    if handler is not None:
        handler(args, state)


def _split_leading_options(
    args: Sequence[_Word], with_value: set[str]
) -> tuple[list[str], list[_Word]]:
    options: list[str] = []
    index = 0
    while index < len(args) and args[index].text.startswith("-"):
        options.append(args[index].text)
        if args[index].text in with_value:
            index += 1
        index += 1
        if options[-1] == "--":
            break
    return options, list(args[index:])


def _behind_input(rest: list[_Word], state: _State, via: str) -> None:
    if not rest:
        return
    probe = _State(cwd=state.cwd, depth=state.depth + 1)
    _simple_command(rest, probe, None)
    state.pushes = state.pushes or probe.pushes
    state.targets.extend(probe.targets)
    state.unknown.extend(probe.unknown)
    if posixpath.basename(rest[0].text) in _WRITERS or probe.targets or probe.unknown:
        state.flag(f"{rest[0].text} behind {via} changes files named by its input")


def _find(args: list[_Word], state: _State) -> None:
    texts = [w.text for w in args]
    if "-delete" in texts or any(t.startswith("-fprint") or t == "-fls" for t in texts):
        state.flag("find -delete/-fprint changes the files it finds")
    for index, text in enumerate(texts):
        if text in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(texts) and texts[end] not in (";", "+"):
                end += 1
            _behind_input(args[index + 1 : end], state, "find " + text)


def _shell(args: list[_Word], state: _State, heredoc: str | None, name: str) -> None:
    index = 0
    script: _Word | None = None
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
        if heredoc is not None:
            _nested(heredoc, state)
        else:
            state.flag(f"{name} reads commands from its input")
        return
    if script.dynamic:
        state.flag(f"{name} -c runs a computed string")
    _nested(script.text, state)


def _nested(command: str, state: _State) -> None:
    saved = state.cwd
    state.depth += 1
    _analyse_into(command, state)
    state.depth -= 1
    state.cwd = saved


def _git(args: list[_Word], state: _State) -> None:
    index = 0
    base = ""
    while index < len(args) and args[index].text.startswith("-"):
        text = args[index].text
        if text in ("-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"):
            if text == "-C" and index + 1 < len(args):
                if args[index + 1].dynamic:
                    state.flag("git -C with a computed directory")
                base = posixpath.join(base, args[index + 1].text)
            index += 2
            continue
        index += 1
    if index >= len(args):
        return
    sub = args[index].text
    rest = args[index + 1 :]
    saved = state.cwd
    if base and state.cwd is not None:
        state.cwd = posixpath.join(state.cwd, base)
    try:
        _git_subcommand(sub, rest, state)
    finally:
        state.cwd = saved


def _git_subcommand(sub: str, rest: list[_Word], state: _State) -> None:
    texts = [w.text for w in rest]
    if sub in ("push", "send-pack"):
        state.pushes = True
    elif sub in _GIT_UNKNOWN:
        state.flag(f"git {sub} changes files the command does not name")
    elif sub == "stash" and (not texts or texts[0] not in ("list", "show", "create")):
        state.flag("git stash changes files the command does not name")
    elif sub == "reset" and any(t in ("--hard", "--merge", "--keep") for t in texts):
        state.flag(f"git reset {texts[0]} changes files the command does not name")
    elif sub in ("checkout", "restore", "rm", "mv"):
        values = {"-b", "-B", "--orphan", "-s", "--source", "--conflict", "--pathspec-from-file"}
        options, operands = _split_options(rest, values)
        if "--pathspec-from-file" in options or any(
            o.startswith("--pathspec-from-file=") for o in options
        ):
            state.flag(f"git {sub} takes its paths from a file")
        if sub == "checkout" and "--" not in texts and operands:
            # `git checkout main` switches branches; `git checkout a b` restores b from a.
            if len(operands) == 1:
                state.flag("git checkout may switch branches or restore a path")
            else:
                operands = operands[1:]
        elif sub == "checkout" and "--" in texts:
            operands = [_Word(w.text, w.dynamic) for w in rest[texts.index("--") + 1 :]]
        action = {"rm": "delete", "mv": "move"}.get(sub, "write")
        for word in operands:
            state.add(word.text, action, word.dynamic)
    elif sub == "switch":
        state.flag("git switch changes files the command does not name")


def _operands(args: list[_Word], values: Iterable[str] = ()) -> tuple[list[str], list[_Word]]:
    return _split_options(args, values)


def _all(action: str, values: Iterable[str] = ()) -> Any:
    def handle(args: list[_Word], state: _State) -> None:
        _, operands = _operands(args, values)
        for word in operands:
            state.add(word.text, action, word.dynamic)

    return handle


def _destination(action: str, values: Iterable[str] = (), sources_too: str | None = None) -> Any:
    def handle(args: list[_Word], state: _State) -> None:
        options, operands = _operands(args, {*values, "-t"})
        directory = _option_value(options, ["-t", "--target-directory"])
        if directory is not None:
            state.add(directory, action)
        elif operands:
            state.add(operands[-1].text, action, operands[-1].dynamic)
            operands = operands[:-1]
        if sources_too:
            for word in operands:
                state.add(word.text, sources_too, word.dynamic)

    return handle


def _tee(args: list[_Word], state: _State) -> None:
    _all("write")(args, state)


def _sed(args: list[_Word], state: _State) -> None:
    options, operands = _operands(args, {"-e", "-f", "-l", "--expression", "--file"})
    in_place = any(
        o.startswith("--in-place") or (o.startswith("-") and not o.startswith("--") and "i" in o)
        for o in options
        if o.startswith("-")
    )
    if not in_place:
        return
    has_script = any(o in ("-e", "-f") or o.startswith(("--expression", "--file")) for o in options)
    files = operands if has_script else operands[1:]
    for word in files:
        state.add(word.text, "write", word.dynamic)


def _perl(args: list[_Word], state: _State) -> None:
    options, operands = _operands(args, {"-e", "-E", "-I", "-M", "-m"})
    in_place = any(o.startswith("-") and not o.startswith("--") and "i" in o for o in options)
    if not in_place:
        return
    has_script = "-e" in options or "-E" in options
    for word in operands if has_script else operands[1:]:
        state.add(word.text, "write", word.dynamic)


def _dd(args: list[_Word], state: _State) -> None:
    for word in args:
        if word.text.startswith("of="):
            state.add(word.text[3:], "write", word.dynamic)


def _ln(args: list[_Word], state: _State) -> None:
    options, operands = _operands(args, {"-t", "-S", "--suffix"})
    directory = _option_value(options, ["-t", "--target-directory"])
    if directory is not None:
        state.add(directory, "link")
    elif len(operands) >= 2:
        state.add(operands[-1].text, "link", operands[-1].dynamic)
    elif operands:
        name = posixpath.basename(operands[0].text.rstrip("/")) or operands[0].text
        state.add(name, "link", operands[0].dynamic)


def _install(args: list[_Word], state: _State) -> None:
    values = {"-m", "-o", "-g", "-S", "-t", "--mode", "--owner", "--group", "--suffix"}
    options, _ = _operands(args, values)
    if "-d" in options or "--directory" in options:
        _all("write", values)(args, state)
    else:
        _destination("write", values)(args, state)


def _mode(args: list[_Word], state: _State) -> None:
    options: list[str] = []
    operands: list[_Word] = []
    for word in args:
        # `chmod -x f`: a mode, not an option.
        if re.match(r"^-(R|v|f|c|h|H|L|P|-[a-z-]+(=.*)?)$", word.text):
            options.append(word.text)
        else:
            operands.append(word)
    if not any(o.startswith("--reference") for o in options):
        operands = operands[1:]
    for word in operands:
        state.add(word.text, "mode", word.dynamic)


def _patch(args: list[_Word], state: _State) -> None:
    state.flag("patch changes files named inside the patch")


_HANDLERS: dict[str, Any] = {
    "tee": _tee,
    "sed": _sed,
    "gsed": _sed,
    "perl": _perl,
    "mv": _destination("move", (), sources_too="move"),
    "cp": _destination("write", ("-S", "--suffix")),
    "rm": _all("delete"),
    "rmdir": _all("delete"),
    "unlink": _all("delete"),
    "shred": _all("delete", ("-n", "-s", "--iterations", "--size")),
    "mkdir": _all("write", ("-m", "--mode")),
    "truncate": _all("write", ("-s", "-r", "--size", "--reference")),
    "touch": _all("write", ("-r", "-d", "-t", "--reference", "--date")),
    "dd": _dd,
    "ln": _ln,
    "install": _install,
    "chmod": _mode,
    "chown": _mode,
    "chgrp": _mode,
    "patch": _patch,
}


# --- python -c -----------------------------------------------------------------------

_WRITE_METHODS = {"write_text", "write_bytes", "touch", "mkdir", "unlink", "rmdir", "symlink_to"}
_PATH_MOVES = {"rename", "replace"}
_OS_WRITES = {
    "remove", "unlink", "rmdir", "removedirs", "mkdir", "makedirs", "rename", "renames",
    "replace", "symlink", "link", "truncate", "chmod", "chown", "rmtree", "move", "copy",
    "copy2", "copyfile", "copytree", "copymode", "copystat",
}  # fmt: skip
_PY_DYNAMIC = {"system", "popen", "exec", "eval", "compile", "__import__", "run", "call",
               "check_call", "check_output", "Popen", "spawnl", "execv", "execvp",
               "import_module", "open_code"}  # fmt: skip


def _python(args: list[_Word], state: _State, heredoc: str | None) -> None:
    code: _Word | None = None
    index = 0
    while index < len(args):
        text = args[index].text
        if text == "-c":
            code = args[index + 1] if index + 1 < len(args) else None
            break
        if text in ("-m", "-W", "-X", "--check-hash-based-pycs"):
            return  # a module or a script: it writes what it writes (see the docstring)
        if text == "-":
            break
        if not text.startswith("-"):
            return
        index += 1
    if code is None:
        if heredoc is not None and (index >= len(args) or args[index].text == "-"):
            _python_code(heredoc, False, state)
        return
    _python_code(code.text, code.dynamic, state)


def _python_code(code: str, dynamic: bool, state: _State) -> None:
    if dynamic:
        state.flag("python -c runs computed code")
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        state.flag("python code that does not parse")
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _python_call(node, state)


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and node.args and _name(node.func) in ("Path", "PurePath"):
        return _literal(node.args[0])
    return None


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _python_call(node: ast.Call, state: _State) -> None:
    name = _name(node.func)
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    if name == "open" and isinstance(node.func, ast.Attribute) and not node.args:
        # Path(...).open("w")
        owner = node.func.value
        mode_node = keywords.get("mode")
        _python_open(_literal(owner), mode_node, state)
        return
    if name == "open" and isinstance(node.func, ast.Attribute) and node.args:
        if _name(node.func.value) == "os":
            flags = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            if any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")):
                _python_target(node.args[0], "write", state)
            return
        owner_path = _literal(node.func.value)
        if owner_path is not None:  # Path("x").open("w")
            _python_open(owner_path, node.args[0], state)
            return
        _python_open_call(node, keywords, state)
        return
    if name == "open":
        _python_open_call(node, keywords, state)
    elif name in _WRITE_METHODS and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if _literal(owner) is not None or isinstance(owner, ast.Call):
            _python_target(owner, "write", state)
        else:
            state.flag(f"python calls .{name}() on a computed path")
    elif (
        name in _PATH_MOVES
        and isinstance(node.func, ast.Attribute)
        and (_name(node.func.value) != "os")
    ):
        _python_target(node.func.value, "move", state)
        for arg in node.args:
            _python_target(arg, "move", state)
    elif name in _OS_WRITES and isinstance(node.func, ast.Attribute):
        module = _name(node.func.value)
        if module in ("os", "shutil"):
            targets = (
                node.args
                if name not in ("copy", "copy2", "copyfile", "copytree")
                else (node.args[1:2])
            )
            if not targets:
                state.flag(f"python {module}.{name} with computed arguments")
            for arg in targets:
                _python_target(arg, "write", state)
    elif name in _PY_DYNAMIC:
        state.flag(f"python calls {name}(), which may write anything")


def _python_open_call(node: ast.Call, keywords: dict[str, ast.expr], state: _State) -> None:
    path = node.args[0] if node.args else keywords.get("file")
    mode = node.args[1] if len(node.args) > 1 else keywords.get("mode")
    if path is None:
        state.flag("python open() with a computed path")
        return
    literal = _literal(path)
    if literal is None:
        if mode is None or _write_mode(mode) is not False:
            state.flag("python open() of a computed path")
        return
    _python_open(literal, mode, state)


def _python_open(path: str | None, mode: ast.expr | None, state: _State) -> None:
    writes = _write_mode(mode) if mode is not None else False
    if writes is False:
        return
    if path is None:
        state.flag("python opens a computed path for writing")
        return
    state.add(path, "write")
    if writes is None:
        state.flag(f"python opens {path!r} with a computed mode")


def _write_mode(mode: ast.expr) -> bool | None:
    """True for a write mode, False for a read mode, None when computed."""
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(c in mode.value for c in "wax+")
    return None


def _python_target(node: ast.expr, action: str, state: _State) -> None:
    literal = _literal(node)
    if literal is None:
        state.flag(f"python {action}s a computed path")
    else:
        state.add(literal, action)
