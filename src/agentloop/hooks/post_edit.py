"""The post-edit check (`agentloop hook post-edit`, a PostToolUse hook on Edit, Write and
MultiEdit): run the project's fast checks (`hooks.post_edit`) on the file just edited and
feed back to Claude the problems its edit introduced, while the edit is still fresh.

What counts as a NEW problem — the definition of "new errors" here:

- The touched lines are computed from the tool input and the file as it is now (never
  from the shape of the tool's response): for Edit, the lines where `new_string` stands
  in the file — every occurrence, because Claude Code only requires `old_string` to be
  unique, so the first occurrence of `new_string` need not be the edited one; for
  MultiEdit, the union over its edits; for Write, every line of the file. A `new_string`
  that is empty (a pure deletion) or no longer in the file touches no line.
- A finding is a line of a command's output (stdout and stderr) of the form
  `path:line:col: msg`, `path:line: msg`, `path:line:col - msg` (ruff, mypy, flake8,
  eslint's unix format, pyright, tsc --pretty), `path(line,col): msg` (tsc), or ruff's
  and rustc's `-->` location under a message line. Notes (`note:`, `information:`) are
  not problems.
- A finding is NEW when its path, taken from the project root unless absolute, is the
  edited file and its line is one of the touched lines. Findings anywhere else — other
  files, other lines of this file — were there before the edit or are not this edit's
  doing, and are not reported: `agentloop run` checks the whole project after each
  attempt (`run.checks`).

A command that times out or cannot be started never blocks the session: the hook lets the
edit stand and says so on stderr (Claude Code's debug log).
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agentloop import proc
from agentloop.config import Config
from agentloop.hooks.protocol import PASS, HookAnswer, HookEvent, block
from agentloop.loop.prompt import fence

EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit"})
FILE_PLACEHOLDER = "{file}"

# How much of the checks' output goes back to Claude at most.
_MAX_LINES = 20
_MAX_CHARS = 4000

# An inclusive range of 1-based line numbers.
LineRange = tuple[int, int]
_WHOLE_FILE: tuple[LineRange, ...] = ((0, sys.maxsize),)

# `path:line:col: msg`, `path:line: msg`, and pyright's/tsc --pretty's `path:line:col - msg`.
# The path may hold spaces but no colon.
_COLON_FORM = re.compile(
    r"^\s*(?P<path>[^\s:][^:]*?):(?P<line>\d+)(?::(?P<col>\d+))?(?::\s*|\s+-\s+)(?P<msg>\S.*)$"
)
# tsc: `src/a.ts(3,7): error TS2322: …`
_PAREN_FORM = re.compile(
    r"^\s*(?P<path>[^\s(][^(]*?)\((?P<line>\d+),(?P<col>\d+)\):\s*(?P<msg>\S.*)$"
)
# ruff's default ("full") format and rustc: the message, then ` --> path:line:col`.
_ARROW_FORM = re.compile(r"^\s*-->\s*(?P<path>.+?):(?P<line>\d+)(?::(?P<col>\d+))?\s*$")
_NOTE = re.compile(r"^(note|info|information)\s*:", re.IGNORECASE)
# /bin/sh: 127 command not found, 126 found but not executable.
_NOT_STARTED = (126, 127)


@dataclass(frozen=True)
class Finding:
    path: str  # as the tool printed it
    line: int
    column: int | None
    message: str

    def render(self) -> str:
        where = f"{self.path}:{self.line}" + (f":{self.column}" if self.column else "")
        return f"{where}: {self.message}"


def parse_findings(output: str) -> list[Finding]:
    """Every line of `output` that names a file and a line, in order, duplicates dropped."""
    found: list[Finding] = []
    seen: set[Finding] = set()
    previous = ""
    for raw in output.splitlines():
        line = raw.rstrip()
        finding: Finding | None = None
        arrow = _ARROW_FORM.match(line)
        if arrow:
            if previous and not previous[0].isspace():
                finding = _finding(arrow, previous.strip())
        else:
            match = _COLON_FORM.match(line) or _PAREN_FORM.match(line)
            if match:
                finding = _finding(match, match["msg"].strip())
        if finding is not None and finding not in seen and not _NOTE.match(finding.message):
            seen.add(finding)
            found.append(finding)
        if line.strip():
            previous = line
    return found


def _finding(match: re.Match[str], message: str) -> Finding:
    column = match["col"]
    return Finding(
        match["path"].strip(), int(match["line"]), int(column) if column else None, message
    )


def _occurrences(text: str, snippet: str) -> list[LineRange]:
    snippet = snippet.replace("\r\n", "\n")
    if not snippet:
        return []
    # A trailing newline ends the snippet's last line; it does not start another.
    spans = snippet.count("\n", 0, len(snippet) - 1)
    ranges: list[LineRange] = []
    line, counted, start = 1, 0, 0
    while (index := text.find(snippet, start)) != -1:
        line += text.count("\n", counted, index)
        counted = start = index + len(snippet)
        ranges.append((line, line + spans))
        line += snippet.count("\n")
    return ranges


def touched_lines(tool: str, tool_input: Mapping[str, Any], text: str) -> tuple[LineRange, ...]:
    """The lines of `text` (the file after the edit, newlines normalised) that the tool
    call wrote; see the module docstring."""
    if tool == "Write":
        return _WHOLE_FILE
    if tool == "Edit":
        snippets: Iterable[object] = [tool_input.get("new_string")]
    elif tool == "MultiEdit":
        edits = tool_input.get("edits")
        snippets = (
            [e.get("new_string") for e in edits if isinstance(e, Mapping)]
            if isinstance(edits, list)
            else []
        )
    else:
        return ()
    ranges = {r for s in snippets if isinstance(s, str) for r in _occurrences(text, s)}
    return tuple(sorted(ranges))


def _within(line: int, ranges: Sequence[LineRange]) -> bool:
    return any(first <= line <= last for first, last in ranges)


def _command(template: str, relative: str) -> str:
    quoted = shlex.quote(relative)
    if FILE_PLACEHOLDER in template:
        return template.replace(FILE_PLACEHOLDER, quoted)
    return f"{template} {quoted}"


def _edited_file(event: HookEvent) -> tuple[Path, Path, str] | None:
    """(project root, edited file, its path relative to the root), both resolved, or None
    when the file is outside the project or gone."""
    raw = event.tool_input.get("file_path")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        project = Path(event.project_dir).resolve()
        # An absolute file_path (what Claude Code sends) wins over the cwd it is joined to.
        file = (Path(event.cwd) / raw).resolve()
        relative = file.relative_to(project)
    except (OSError, RuntimeError, ValueError):
        return None
    if not file.is_file():
        return None
    return project, file, relative.as_posix()


def _names(project: Path, file: Path) -> Callable[[str], bool]:
    """Does a path as a tool printed it (relative to the project, or absolute) name `file`?"""
    cache: dict[str, bool] = {}

    def names(path: str) -> bool:
        if path not in cache:
            try:
                cache[path] = (project / path).resolve() == file
            except (OSError, RuntimeError, ValueError):
                cache[path] = False
        return cache[path]

    return names


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _reason(found: Sequence[tuple[str, list[Finding]]], relative: str) -> str:
    lines_left, chars_left = _MAX_LINES, _MAX_CHARS
    sections = []
    for command, findings in found:
        shown: list[str] = []
        for finding in findings:
            text = finding.render()
            if lines_left == 0 or chars_left <= 0:
                break
            if len(text) > chars_left:
                text = text[: max(chars_left - 1, 0)] + "…"
            shown.append(text)
            lines_left -= 1
            chars_left -= len(text) + 1
        section = (
            f"agentloop post-edit check: `{command}` reports "
            f"{_plural(len(findings), 'new problem')} on the lines you just edited in "
            f"{relative}; fix them before going on:\n"
            + fence("\n".join(shown), f"output of `{command}`")
        )
        if len(shown) < len(findings):
            section += f"\n({len(findings) - len(shown)} more not shown)"
        sections.append(section)
    return "\n\n".join(sections)


def post_edit(event: HookEvent, config: Config) -> HookAnswer:
    """The answer to a PostToolUse event: block with the new findings, else PASS."""
    templates = config.hooks.post_edit
    if not templates or event.tool_name not in EDIT_TOOLS:
        return PASS
    edited = _edited_file(event)
    if edited is None:
        return PASS
    project, file, relative = edited
    try:
        # Universal newlines: Claude Code keeps a file's CRLF endings; new_string has \n.
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return PASS
    ranges = touched_lines(event.tool_name, event.tool_input, text)
    if not ranges:
        return PASS
    timeout = config.hooks.post_edit_timeout
    names = _names(project, file)
    found: list[tuple[str, list[Finding]]] = []
    notes: list[str] = []
    for template in templates:
        command = _command(template, relative)
        try:
            done = proc.run(command, cwd=project, timeout=timeout)
        except OSError as exc:
            notes.append(f"`{command}` could not be started ({exc}); skipped")
            continue
        if done.timed_out:
            notes.append(f"`{command}` timed out after {timeout:g}s; skipped")
            continue
        if done.returncode in _NOT_STARTED:
            why = done.tail(3) or f"exit code {done.returncode}"
            notes.append(f"`{command}` could not be started ({why}); skipped")
            continue
        output = done.stdout + ("\n" if done.stdout else "") + done.stderr
        new = [f for f in parse_findings(output) if names(f.path) and _within(f.line, ranges)]
        if new:
            found.append((command, new))
    stderr = "".join(f"agentloop post-edit check: {note}\n" for note in notes)
    if not found:
        return HookAnswer(stderr=stderr) if stderr else PASS
    answer = block(_reason(found, relative), "PostToolUse")
    return replace(answer, stderr=stderr) if stderr else answer
