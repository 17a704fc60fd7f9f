"""What the shell analysis (rails/shell.py) shares with its per-program rules
(shell_git.py, shell_programs.py, shell_code.py): words as Bash will see them, GNU-style
options, and the findings a command adds up to."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """One path the command may change, as spelled (joined to a literal `cd` directory)."""

    # "write", "move", "delete", "link", "mode"; "stage" (git add), "extract" (unpacks
    # files it does not name into this directory), "point" (a link will point there: a
    # way to write it later, so forbidden paths and .git count, not the outside world),
    # "reference" (code names the path; the guard cannot tell what the code does with
    # it, so only forbidden paths count).
    path: str
    action: str


@dataclass(frozen=True)
class Word:
    text: str
    # True when Bash computes part of it at run time (`$X`, `$(...)`, backticks).
    dynamic: bool = False


@dataclass
class State:
    # An interactive /autofix session, where the agent stages, commits and reverts its own
    # files (the skill tells it to); headless, agentloop does that itself.
    interactive: bool = False
    targets: list[Target] = field(default_factory=list)
    pushes: bool = False
    # What agentloop never lets the agent run, whatever it writes: each a full reason.
    refusals: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    # Every literal the command names (words, redirections, code literals): the guard looks
    # for secret files among them.
    mentions: list[str] = field(default_factory=list)
    # The directory relative targets are in; None once it is not known (`cd $X`).
    cwd: str | None = ""
    depth: int = 0
    # Set when bashlex failed somewhere and the shlex scanner stood in.
    fallback: bool = False

    def add(self, path: str, action: str, dynamic: bool = False) -> None:
        if not path:
            return
        if action == "reference":
            # Only a forbidden path counts: never a reason to call the targets unknown.
            if "\n" not in path and len(path) < 4096:
                if self.cwd and not path.startswith(("/", "~")):
                    path = posixpath.join(self.cwd, path)
                self.targets.append(Target(path, action))
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

    def refuse(self, reason: str) -> None:
        self.refusals.append(reason)

    def mention(self, text: str) -> None:
        if text:
            self.mentions.append(text)

    def probe(self) -> State:
        """A scratch state for a command whose findings the caller judges before keeping."""
        return State(interactive=self.interactive, cwd=self.cwd, depth=self.depth + 1)

    def absorb(self, other: State) -> None:
        self.targets.extend(other.targets)
        self.pushes = self.pushes or other.pushes
        self.refusals.extend(other.refusals)
        self.unknown.extend(other.unknown)
        self.mentions.extend(other.mentions)
        self.fallback = self.fallback or other.fallback


# --- words ---------------------------------------------------------------------------

_ANSI_C = {
    "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
    "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip
_SPECIAL_PARAMETERS = "@*#?$!-0123456789"


def decode_word(raw: str) -> tuple[str, bool]:
    """A word's text after quote removal, as Bash runs it, and whether it is computed.

    bashlex reads `$'push'` (ANSI-C quoting) and `$"push"` (locale quoting) as the
    parameter `$push`: a disguise for `git push`. Expansions (`$X`, `${X}`, `$(...)`,
    backticks) keep their source text, so a reason can show them."""
    out: list[str] = []
    dynamic = False
    in_double = False
    index = 0
    end = len(raw)
    while index < end:
        char = raw[index]
        following = raw[index + 1] if index + 1 < end else ""
        if char == "'" and not in_double:
            close = raw.find("'", index + 1)
            close = end if close < 0 else close
            out.append(raw[index + 1 : close])
            index = close + 1
        elif char == "\\":
            if not following:
                out.append("\\")
            elif in_double and following not in '$`"\\\n':
                out.append("\\" + following)
            elif following != "\n":
                out.append(following)
            index += 2
        elif char == '"':
            in_double = not in_double
            index += 1
        elif char == "$" and following == "'" and not in_double:
            text, index = _ansi_c(raw, index + 2)
            out.append(text)
        elif char == "$" and following == '"' and not in_double:
            in_double = True  # locale translation: the text itself, in any locale we run
            index += 2
        elif char == "$" and following in ("(", "{"):
            close = _matching(raw, index + 1)
            out.append(raw[index:close])
            dynamic = True
            index = close
        elif char == "$" and (following.isalpha() or following == "_"):
            stop = index + 1
            while stop < end and (raw[stop].isalnum() or raw[stop] == "_"):
                stop += 1
            out.append(raw[index:stop])
            dynamic = True
            index = stop
        elif char == "$" and following and following in _SPECIAL_PARAMETERS:
            out.append(raw[index : index + 2])
            dynamic = True
            index += 2
        elif char == "`":
            close = index + 1
            while close < end and raw[close] != "`":
                close += 2 if raw[close] == "\\" else 1
            out.append(raw[index : close + 1])
            dynamic = True
            index = close + 1
        else:
            out.append(char)
            index += 1
    return "".join(out), dynamic


def _ansi_c(raw: str, index: int) -> tuple[str, int]:
    """The text of `$'...'` from just after its opening quote, and the index after it."""
    out: list[str] = []
    end = len(raw)
    while index < end and raw[index] != "'":
        char = raw[index]
        if char != "\\" or index + 1 >= end:
            out.append(char)
            index += 1
            continue
        code = raw[index + 1]
        index += 2
        if code in _ANSI_C:
            out.append(_ANSI_C[code])
        elif code in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = _run(raw, index, "0123456789abcdefABCDEF", width)
            if digits:
                out.append(_char(int(digits, 16)))
                index += len(digits)
            else:
                out.append("\\" + code)
        elif code in "01234567":
            digits = code + _run(raw, index, "01234567", 2)
            out.append(_char(int(digits, 8) & 0xFF))
            index += len(digits) - 1
        elif code == "c" and index < end:
            out.append(chr(ord(raw[index]) & 0x1F))
            index += 1
        else:
            out.append("\\" + code)
    return "".join(out), index + 1


def _run(text: str, start: int, allowed: str, most: int) -> str:
    stop = start
    while stop < len(text) and stop - start < most and text[stop] in allowed:
        stop += 1
    return text[start:stop]


def _char(code: int) -> str:
    try:
        return chr(code)
    except (ValueError, OverflowError):
        return "\ufffd"


def _matching(raw: str, index: int) -> int:
    """The index just after the bracket that closes the one at `index` (or the end)."""
    opening = raw[index]
    closing = ")" if opening == "(" else "}"
    depth = 0
    quote = ""
    while index < len(raw):
        char = raw[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                index += 1
        elif char in "'\"":
            quote = char
        elif char == "\\":
            index += 1
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(raw)


# --- options -------------------------------------------------------------------------


@dataclass
class Options:
    """Parsed GNU-style arguments: `-abc` clusters, `-ovalue`, `--long=value`, `--`."""

    # (name, value) in order; names keep their dashes ("-t", "--target-directory").
    given: list[tuple[str, str | None]] = field(default_factory=list)
    operands: list[Word] = field(default_factory=list)
    # True when `--` ended the options.
    dashdash: bool = False

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.given]

    def has(self, *names: str) -> bool:
        return any(name in names for name, _ in self.given)

    def values(self, *names: str) -> list[str]:
        return [value for name, value in self.given if name in names and value is not None]

    def value(self, *names: str) -> str | None:
        found = self.values(*names)
        return found[-1] if found else None


def parse_options(
    args: Sequence[Word],
    short_values: str = "",
    long_values: Iterable[str] = (),
    *,
    permute: bool = True,
) -> Options:
    """Options anywhere (GNU permutation) unless `permute` is False, when the first operand
    ends them. Short options in `short_values` and long ones in `long_values` take a value
    (attached or the next word); a computed word is never an option."""
    takes = set(long_values)
    parsed = Options()
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        index += 1
        if text == "--" and not word.dynamic:
            parsed.dashdash = True
            parsed.operands.extend(args[index:])
            break
        if word.dynamic or not text.startswith("-") or text == "-":
            parsed.operands.append(word)
            if not permute:
                parsed.operands.extend(args[index:])
                break
            continue
        if text.startswith("--"):
            name, equals, value = text.partition("=")
            if equals:
                parsed.given.append((name, value))
            elif name in takes and index < len(args):
                parsed.given.append((name, args[index].text))
                index += 1
            else:
                parsed.given.append((name, None))
            continue
        for position, letter in enumerate(text[1:], start=1):
            if letter in short_values:
                rest = text[position + 1 :]
                if rest:
                    parsed.given.append(("-" + letter, rest))
                elif index < len(args):
                    parsed.given.append(("-" + letter, args[index].text))
                    index += 1
                else:
                    parsed.given.append(("-" + letter, None))
                break
            parsed.given.append(("-" + letter, None))
    return parsed
