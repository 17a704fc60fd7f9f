"""The message of a fix commit: what changed, why, and which tests now pass.

The subject names the definitions the diff touches (`fix Cart.total() in shop/cart.py`),
found from the changed lines: Python through `ast` (the innermost enclosing def or class,
or the name a module- or class-level assignment binds), JavaScript and TypeScript through
the declaration lines that enclose the change by indentation (no parser: a template
literal or a string at column 0 can mislead it, and then the subject names a wrong or no
function, never a wrong file), anything else by its path. The body says what failed and
where, the agent's own explanation when it gave one, and the tests.

Everything in the body that comes from outside (the test output, the model's words, test
ids, file names) is made one plain line with a label in front, so none of it can become a
subject line or a git trailer (`Signed-off-by:`, `Co-authored-by:`), which git and forges
read from lines that start with `Token:` in the message's last paragraph.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agentloop import git
from agentloop.failures.model import Task
from agentloop.rails.testinfra import is_test_surface

SUBJECT_MAX = 72
NOTE_MAX = 300
TESTS_SHOWN = 50
# Past this many changed files the subject only counts files: reading each one's diff and
# both versions costs about 30 ms a file (seven git calls), for a subject that could name
# at most three or four of them anyway.
FILES_READ = 10

_JS_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")


@dataclass(frozen=True)
class FileChange:
    """One changed file and what in it changed."""

    path: str  # top-relative, as git names it
    # Changed definitions, innermost qualified by their class or function: "Cart.total()",
    # "VAT_RATE". Empty when only the file as a whole can be named.
    names: tuple[str, ...]
    test: bool


def commit_message(
    task: Task, *, top: Path, start: str, tree: str, prefix: str, note: str = ""
) -> str:
    """The message for committing `tree` on `start` as the fix of `task`.

    `prefix` is the project's path inside the checkout ("" or "pkg/"): the task's paths
    are project-relative, git's are top-relative. `note` is the agent's final answer."""
    changes = file_changes(top, start, tree, prefix)
    paragraphs = [subject(changes), _cause(task, prefix)]
    explanation = agent_note(note)
    if explanation:
        paragraphs.append(f"The agent's explanation: {explanation}")
    paragraphs.append("Tests now passing:\n" + _tests(task))
    return "\n\n".join(paragraphs) + "\n"


FINGERPRINT_TRAILER = "Agentloop-Fingerprint"


def fingerprint_trailer(fingerprint: str) -> str:
    """The trailer naming the failure a commit fixes (`git interpret-trailers` reads it)."""
    return f"{FINGERPRINT_TRAILER}: {fingerprint}"


# ---------------------------------------------------------------- what changed


def file_changes(top: Path, start: str, tree: str, prefix: str) -> list[FileChange]:
    """The changed files, code before tests, each with the definitions changed in it."""
    paths = git.changed_between(top, start, tree)
    read = len(paths) <= FILES_READ
    changes = [
        FileChange(
            path,
            _changed_names(top, start, tree, path) if read else (),
            # The project's own path is no test directory, even when it is under one.
            is_test_surface(path.removeprefix(prefix)),
        )
        for path in paths
    ]
    return sorted(changes, key=lambda c: c.test)


def _changed_names(top: Path, start: str, tree: str, path: str) -> tuple[str, ...]:
    if not path.endswith((".py", *_JS_SUFFIXES)):
        return ()
    old = git.show_file(top, start, path)
    new = git.show_file(top, tree, path)
    if old is None or new is None:
        # Added or removed as a whole: the file is what changed.
        return ()
    new_lines: set[int] = set()
    old_lines: set[int] = set()
    for hunk in git.hunks(top, start, tree, path):
        if hunk.new_count:
            new_lines.update(range(hunk.new_start, hunk.new_start + hunk.new_count))
        else:
            # Lines only removed: they belonged to whatever held them before.
            old_lines.update(range(hunk.old_start, hunk.old_start + hunk.old_count))
    find = _python_names if path.endswith(".py") else _js_names
    found = [*find(new, new_lines), *find(old, old_lines)]
    return tuple(dict.fromkeys(found))


# A definition's extent and the name it goes by: "Cart.total()" (callables end in "()").
@dataclass(frozen=True)
class _Def:
    start: int
    end: int
    name: str


def _python_names(source: str, lines: Iterable[int]) -> list[str]:
    wanted = sorted(lines)
    if not wanted:
        return []
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    defs = list(_python_defs(module, (), in_function=False))
    names = []
    for line in wanted:
        around = [d for d in defs if d.start <= line <= d.end]
        if around:
            # Definitions nest: the innermost one starts last.
            names.append(max(around, key=lambda d: (d.start, -d.end)).name)
    return names


def _python_defs(node: ast.AST, outer: tuple[str, ...], *, in_function: bool) -> Iterable[_Def]:
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.stmt):
            # An `except` or `case` clause holds statements too.
            yield from _python_defs(child, outer, in_function=in_function)
            continue
        end = child.end_lineno or child.lineno
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # A decorator is part of what it decorates.
            start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            qualified = (*outer, child.name)
            is_class = isinstance(child, ast.ClassDef)
            yield _Def(start, end, ".".join(qualified) + ("" if is_class else "()"))
            yield from _python_defs(child, qualified, in_function=not is_class)
            continue
        # A value bound inside a function is a detail of that function.
        target = None if in_function else _assigned_name(child)
        if target is not None:
            yield _Def(child.lineno, end, ".".join((*outer, target)))
        # Definitions inside `if`, `try`, `with`, `for` blocks.
        yield from _python_defs(child, outer, in_function=in_function)


def _assigned_name(node: ast.stmt) -> str | None:
    """The name a simple assignment binds (`VAT_RATE = 0.2`, `x: int = 1`, `N += 1`)."""
    if isinstance(node, ast.Assign):
        target = node.targets[0]
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        target = node.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


_JS_NAME = r"([A-Za-z_$][\w$]*)"
_JS_FUNCTION = re.compile(
    rf"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*{_JS_NAME}"
)
_JS_CLASS = re.compile(rf"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+{_JS_NAME}")
_JS_BINDING = re.compile(
    rf"^\s*(?:export\s+)?(?:const|let|var)\s+{_JS_NAME}\s*(?::[^=]*)?=(?!=)(.*)"
)
# CommonJS: `exports.add = function (a, b) {`, `module.exports.add = (a, b) => …`.
_JS_EXPORT = re.compile(rf"^\s*(?:module\.)?exports\.{_JS_NAME}\s*=(?!=)(.*)")
_JS_FIELD = re.compile(
    rf"^\s*(?:(?:static|public|private|protected|readonly)\s+)*{_JS_NAME}\s*(?::[^=]*)?=(?!=)(.*)"
)
_JS_METHOD = re.compile(
    r"^\s*(?:(?:static|async|get|set|public|private|protected|override)\s+)*\*?\s*"
    rf"{_JS_NAME}\s*(?:<[^>]*>)?\s*\([^)]*\)\s*(?::[^{{]*)?\{{"
)
# A right-hand side that makes the binding a function.
_JS_CALLABLE = re.compile(
    r"^\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*(?::[^=]*)?=>|[A-Za-z_$][\w$]*\s*=>)"
)
_JS_NOT_NAMES = frozenset({"if", "for", "while", "switch", "catch", "with", "return", "function"})


def _js_names(source: str, lines: Iterable[int]) -> list[str]:
    text = source.splitlines()
    names = []
    for line in sorted(lines):
        if 1 <= line <= len(text) and text[line - 1].strip():
            name = _js_enclosing(text, line)
            if name is not None:
                names.append(name)
    return names


def _js_enclosing(text: Sequence[str], line: int) -> str | None:
    """The innermost declaration around `line` (1-based), qualified by the ones around
    it: the enclosing lines are those above with less indentation, nearest first."""
    chain: list[tuple[str, str]] = []  # (name, kind), innermost first
    own = text[line - 1]
    declared = _js_declaration(own)
    if declared is not None:
        chain.append(declared)
    level = _indent(own)
    if own.strip()[0] in "})]":
        # A closing line belongs to the block its own indentation opened.
        level += 1
    for above in reversed(text[: line - 1]):
        if not above.strip() or _indent(above) >= level:
            continue
        level = _indent(above)
        declared = _js_declaration(above)
        if declared is not None:
            chain.append(declared)
        if level == 0:
            break
    # A value bound inside a function is a detail of that function.
    while chain and chain[0][1] == "value" and any(kind == "function" for _, kind in chain[1:]):
        chain.pop(0)
    if not chain:
        return None
    name = ".".join(n for n, _ in reversed(chain))
    return name + "()" if chain[0][1] == "function" else name


def _js_declaration(line: str) -> tuple[str, str] | None:
    """(name, "function" | "class" | "value") when `line` declares something."""
    for pattern, kind in ((_JS_FUNCTION, "function"), (_JS_CLASS, "class")):
        match = pattern.match(line)
        if match:
            return match.group(1), kind
    for pattern in (_JS_BINDING, _JS_EXPORT, _JS_FIELD):
        match = pattern.match(line)
        if match and match.group(1) not in _JS_NOT_NAMES:
            return match.group(1), "function" if _JS_CALLABLE.match(match.group(2)) else "value"
    match = _JS_METHOD.match(line)
    if match and match.group(1) not in _JS_NOT_NAMES:
        return match.group(1), "function"
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# ---------------------------------------------------------------- the subject


def subject(changes: Sequence[FileChange]) -> str:
    """`fix <what> in <where>`, at most SUBJECT_MAX characters; code first, tests after."""
    if not changes:
        return "fix nothing (no file changed)"
    paths = [_line(c.path) for c in changes]
    names = [_line(n) for c in changes for n in c.names]
    if len(changes) == 1:
        (path,) = paths
        tries = [f"fix {path}"]
        if names:
            counted = _count(names)
            tries = [f"fix {_and(names)} in {path}", f"fix {counted} in {path}",
                     f"fix {counted} in {_base(path)}"]  # fmt: skip
    else:
        # In several files, a function is named with its module ("money.vat()"); a method
        # already says its class ("Cart.total()").
        labels = [
            label
            for c, path in zip(changes, paths, strict=True)
            for label in (
                [n if "." in n else f"{_stem(path)}.{n}" for n in map(_line, c.names)]
                or [_base(path)]
            )
        ]
        where = _common_folder(paths)
        within = f" in {where}" if where else ""
        files = f"{len(changes)} files"
        counted = f"{_count(names)} in {files}" if names else files
        tries = [f"fix {_and(labels)}{within}", f"fix {counted}{within}", f"fix {counted}"]
    for text in tries:
        if len(text) <= SUBJECT_MAX:
            return text
    return tries[-1][: SUBJECT_MAX - 3] + "..."


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _count(names: Sequence[str]) -> str:
    noun = "function" if all(n.endswith("()") for n in names) else "definition"
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"


def _base(path: str) -> str:
    return PurePosixPath(path).name


def _stem(path: str) -> str:
    name = PurePosixPath(path).name
    return name.split(".", 1)[0] or name


def _common_folder(paths: Sequence[str]) -> str:
    """The deepest folder holding every path, "/"-ended; "" for the top."""
    folders = [PurePosixPath(p).parent.parts for p in paths]
    common: list[str] = []
    for parts in zip(*folders, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common) + "/" if common else ""


# ---------------------------------------------------------------- the body


def _cause(task: Task, prefix: str) -> str:
    first = task.message.strip().splitlines()[0] if task.message.strip() else ""
    error = ": ".join(part for part in (task.error_type, first) if part)
    said = f" with {_line(error, NOTE_MAX)}" if error else ""
    where = f" at {_line(prefix + str(task.crash_location))}" if task.crash_location else ""
    return f"The tests failed{said}{where}."


def _tests(task: Task) -> str:
    shown = [f"- {_line(f.test_id)}" for f in task.failures[:TESTS_SHOWN]]
    if len(task.failures) > TESTS_SHOWN:
        shown.append(f"- ... and {len(task.failures) - TESTS_SHOWN} more")
    return "\n".join(shown)


_HEADING = re.compile(r"^\s*#{1,6}\s")


def agent_note(text: str) -> str:
    """The agent's final answer cut to one plain line: its first paragraph (a heading
    skipped; an introduction ending in ":" joined to what it introduces), at most NOTE_MAX
    characters. "" when it said nothing."""
    paragraphs = [p for p in re.split(r"\n\s*\n", _strip_escapes(text)) if p.strip()]
    while len(paragraphs) > 1 and _HEADING.match(paragraphs[0]) and "\n" not in paragraphs[0]:
        paragraphs.pop(0)
    if not paragraphs:
        return ""
    first = paragraphs[0]
    if first.rstrip().endswith(":") and len(paragraphs) > 1:
        first += " " + paragraphs[1]
    plain = re.sub(r"\*\*|__", "", _HEADING.sub("", first))
    return _line(plain, NOTE_MAX)


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")


def _strip_escapes(text: str) -> str:
    """Terminal colour and cursor sequences (test output and models both carry them)."""
    return _ESCAPES.sub("", text).replace("\r\n", "\n")


# Control characters, line and paragraph separators, and format characters (bidi
# overrides that make a line read otherwise than it is, zero-width spaces).
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _line(text: str, limit: int | None = None) -> str:
    """`text` as one line of printable characters, cut at a word to `limit`."""
    printable = "".join(
        " " if unicodedata.category(c) in _UNPRINTABLE else c for c in _strip_escapes(text)
    )
    flat = " ".join(printable.split())
    if limit is None or len(flat) <= limit:
        return flat
    cut = flat[: limit - 3]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "..."


def test_change_note(diff: str, *, needed: bool) -> str:
    """Said plainly in the commit message: a reviewer must see that tests changed."""
    why = (
        "The task's tests as they were still fail with this change; it passes only with "
        "these test changes, which the integrity check allowed"
        if needed
        else "The original tests pass with the code change alone; the tests were changed too"
    )
    shown = diff if len(diff) <= 4000 else diff[:4000] + "\n[... diff cut at 4000 characters]\n"
    return f"\nTESTS CHANGED. {why}:\n\n{shown}"
