"""`.claude/settings.json`: agentloop's hook registrations, merged into the user's file and
taken out again, and the check that the result is a file Claude Code will accept.

The check matters more than it looks: in `-p` mode Claude Code silently ignores a settings
file that fails its validation, and with it every hook in it, so a broken file would
switch agentloop's guard off without a word. A file we cannot read is refused, never
"repaired"; a file we write is checked against schemas/claude-settings.schema.json first.

Our handlers are recognised by the script path in their command (`.claude/hooks/<script>`),
so an older version of them (another timeout, another command line) is replaced in place
instead of being added a second time.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from agentloop.errors import ConfigError

PATH = ".claude/settings.json"


@dataclass(frozen=True)
class HookEntry:
    """One registration: a script under .claude/hooks/ for one event."""

    event: str
    matcher: str | None
    script: str
    timeout: int
    # `|| exit 2`: when the script is missing or sh cannot run it (exit 127) Claude Code
    # would treat the failure as non-blocking and let the tool call through; the guard
    # must block instead. The other hooks fail open on purpose (see their scripts).
    fail_closed: bool = False

    def command(self) -> str:
        run = f'sh "$CLAUDE_PROJECT_DIR/.claude/hooks/{self.script}"'
        return f"{run} || exit 2" if self.fail_closed else run

    def group(self) -> dict[str, Any]:
        handler = {"type": "command", "command": self.command(), "timeout": self.timeout}
        if self.matcher is None:
            return {"hooks": [handler]}
        return {"matcher": self.matcher, "hooks": [handler]}


HOOKS: tuple[HookEntry, ...] = (
    # Read, Grep and Glob too: a secret file must not reach the model through a read any
    # more than through `cat`. (Claude Code 2.1.332's native build has no Grep and Glob
    # tools, it greps through Bash; other builds and later versions do have them.)
    HookEntry(
        "PreToolUse",
        "Edit|Write|MultiEdit|NotebookEdit|Bash|Read|Grep|Glob",
        "guard.sh",
        30,
        True,
    ),
    # Stop takes no matcher (Claude Code ignores one there).
    HookEntry("Stop", None, "stop-gate.sh", 60),
    HookEntry("PostToolUse", "Edit|Write|MultiEdit", "post-edit.sh", 120),
    # Typing /autofix: the session starts outside the sandbox, and the user's uncommitted
    # files are made read-only to Bash before the model runs a command. Fails closed: no
    # /autofix without that.
    HookEntry("UserPromptExpansion", "autofix", "autofix.sh", 60, True),
    # The end of the session gives the user's files back (as the stop gate does when
    # the /autofix turn ends).
    HookEntry("SessionEnd", None, "session-end.sh", 30),
)

_OURS = re.compile(
    r"\.claude/hooks/(" + "|".join(re.escape(h.script) for h in HOOKS) + r")(?![\w.-])"
)


def our_script(handler: object) -> str | None:
    """The agentloop script a handler runs, or None when the handler is not ours."""
    if not isinstance(handler, dict):
        return None
    command = handler.get("command")
    match = _OURS.search(command) if isinstance(command, str) else None
    return match.group(1) if match else None


def generated() -> dict[str, Any]:
    """The settings file agentloop writes where there is none."""
    return merge({})


# ---------------------------------------------------------------- validation


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath("claude-settings.schema.json")
    return Draft202012Validator(json.loads(text.read_text("utf-8")))


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def problem(doc: object) -> str | None:
    """What makes `doc` a settings file Claude Code may ignore (the most telling problem),
    or None when it is fine."""
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

    error = best_match(_validator().iter_errors(doc))
    if error is None:
        return None
    where = _where(error.absolute_path)
    if error.validator == "type":
        expected = error.validator_value
        article = "an" if expected in ("object", "array") else "a"
        return f"{where}: expected {article} {expected}, got {_json_type(error.instance)}"
    if error.validator == "enum" and error.absolute_schema_path[-2] == "propertyNames":
        return f"{where}: {error.instance!r} is not a Claude Code hook event"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {', '.join(error.validator_value)}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    message = str(error.message)
    return f"{where}: {message if len(message) <= 160 else message[:159] + '…'}"


def parse(raw: bytes, *, path: str = PATH, retry: str = "agentloop init") -> dict[str, Any]:
    """The user's settings file, or ConfigError saying why agentloop will not touch it."""
    hint = f"fix {path} (or move it away) and run `{retry}` again; nothing was changed"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason})", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint=hint,
        ) from exc
    found = problem(doc)
    if found is not None:
        raise ConfigError(f"{path} is not a valid Claude Code settings file: {found}", hint=hint)
    assert isinstance(doc, dict)  # the schema requires an object
    return doc


def dumps(doc: dict[str, Any], *, path: str = PATH) -> bytes:
    """The bytes agentloop writes, after checking them once more: a file that Claude Code
    would ignore is never written."""
    found = problem(doc)
    if found is not None:  # pragma: no cover - merge() of a valid file stays valid
        raise ConfigError(
            f"agentloop would write an invalid {path}: {found}",
            hint="this is a bug in agentloop; nothing was changed",
        )
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------- merge and unmerge


def _without_ours(group: dict[str, Any], scripts: set[str]) -> dict[str, Any] | None:
    """The group without our handlers (of `scripts`); None when nothing of it is left."""
    rest = [h for h in group["hooks"] if our_script(h) not in scripts]
    if len(rest) == len(group["hooks"]):
        return group
    return {**group, "hooks": rest} if rest else None


def merge(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with our hook groups in it. The user's keys, events and groups stay where
    they are; an older version of a group of ours is replaced where it stands; a missing
    one is appended to its event. Merging twice gives the same document."""
    result = copy.deepcopy(settings)
    hooks: dict[str, Any] = result.setdefault("hooks", {})
    home = {h.script: h.event for h in HOOKS}
    # Ours registered under an event it no longer belongs to (an older layout): out.
    for event in list(hooks):
        strays = {s for s, e in home.items() if e != event}
        kept = [g for g in (_without_ours(g, strays) for g in hooks[event]) if g is not None]
        if kept != hooks[event]:
            if kept:
                hooks[event] = kept
            else:
                del hooks[event]
    for entry in HOOKS:
        want = entry.group()
        groups: list[dict[str, Any]] = []
        placed = False
        for group in hooks.get(entry.event, []):
            rest = _without_ours(group, {entry.script})
            if rest is not None and rest is group:
                groups.append(rest)
                continue
            if not placed:  # the first group of ours: replaced in place
                groups.append(want)
                placed = True
            if rest is not None:  # the user's own handlers that shared our group
                groups.append(rest)
        if not placed:
            groups.append(want)
        hooks[entry.event] = groups
    return result


def unmerge(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` without any handler of ours. An event list or a `hooks` object that only
    held ours goes too; one the user left empty stays."""
    result = copy.deepcopy(settings)
    hooks = result.get("hooks")
    if not isinstance(hooks, dict):
        return result
    scripts = {h.script for h in HOOKS}
    touched = False
    for event in list(hooks):
        groups = hooks[event]
        kept = [g for g in (_without_ours(g, scripts) for g in groups) if g is not None]
        if kept != groups:
            touched = True
            if kept:
                hooks[event] = kept
            else:
                del hooks[event]
    if touched and not hooks:
        del result["hooks"]
    return result


def ours(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The groups holding a handler of ours, by event (for checks and for `uninstall`
    without a record)."""
    found: dict[str, list[dict[str, Any]]] = {}
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return found
    for event, groups in hooks.items():
        for group in groups if isinstance(groups, list) else []:
            handlers = group.get("hooks") if isinstance(group, dict) else None
            if isinstance(handlers, list) and any(our_script(h) for h in handlers):
                found.setdefault(event, []).append(group)
    return found


# ---------------------------------------------------------------- the rails' settings


@dataclass(frozen=True)
class Wanted:
    """Settings init puts in besides its hooks (the sandbox, permission deny rules, the
    MCP server's approval), by dotted key: `values` are set, `items` added to lists."""

    values: Mapping[str, Any]
    items: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Wanted:
        """Flatten a settings fragment: its lists are items, its other leaves values."""
        values: dict[str, Any] = {}
        items: dict[str, tuple[str, ...]] = {}

        def walk(node: Mapping[str, Any], prefix: str) -> None:
            for key, value in node.items():
                if "." in key:  # pragma: no cover - our own keys never hold a dot
                    raise ValueError(f"settings key {key!r} holds a dot")
                name = f"{prefix}{key}"
                if isinstance(value, Mapping):
                    walk(value, name + ".")
                elif isinstance(value, list):
                    items[name] = tuple(dict.fromkeys(str(v) for v in value))
                else:
                    values[name] = value

        walk(doc, "")
        return cls(values, items)


@dataclass(frozen=True)
class Owned:
    """What of a settings file is init's, so that re-running init replaces it in place and
    uninstall takes out exactly that: the list items it added (not the ones the user had
    already), the values it set with the user's value before (`{"was": v}`, or `{}` when
    the key was absent), and the objects and lists it had to create."""

    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    items: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    created: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "values": {k: dict(v) for k, v in sorted(self.values.items())},
            "items": {k: list(v) for k, v in sorted(self.items.items())},
            "created": sorted(self.created),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> Owned:
        if not doc:
            return cls()
        return cls(
            values={str(k): dict(v) for k, v in doc.get("values", {}).items()},
            items={str(k): tuple(str(i) for i in v) for k, v in doc.get("items", {}).items()},
            created=tuple(str(c) for c in doc.get("created", ())),
        )


def _parent(doc: dict[str, Any], key: str, created: set[str]) -> dict[str, Any]:
    """The object holding `key`'s last part, made (and noted in `created`) where missing.
    The schema check before any merge guarantees every existing one is an object."""
    node = doc
    parts = key.split(".")
    for depth in range(1, len(parts)):
        name = ".".join(parts[:depth])
        if parts[depth - 1] not in node:
            node[parts[depth - 1]] = {}
            created.add(name)
        node = node[parts[depth - 1]]
    return node


def _lookup(doc: Mapping[str, Any], key: str) -> tuple[dict[str, Any] | None, str]:
    """The object holding `key`'s last part (None when a step is missing) and that part."""
    node: Any = doc
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None, parts[-1]
    return (node if isinstance(node, dict) else None), parts[-1]


def _prune(doc: dict[str, Any], created: Iterable[str]) -> None:
    """Drop what init created and left empty, deepest first."""
    for key in sorted(set(created), key=lambda k: -k.count(".")):
        parent, last = _lookup(doc, key)
        if parent is not None and last in parent and parent[last] in ({}, []):
            del parent[last]


def merge_owned(
    settings: dict[str, Any], wanted: Wanted, old: Owned | None = None
) -> tuple[dict[str, Any], Owned]:
    """`settings` with `wanted` in it, and what of it is now init's. An item of ours stays
    where it stands; an item we no longer want goes; a missing one is appended. The user's
    items and values are kept (a value of theirs that init must change, such as
    `sandbox.enabled: false`, is remembered for uninstall). Merging twice with the same
    `wanted` gives the same document and the same record."""
    result = copy.deepcopy(settings)
    old = old or Owned()
    created = set(old.created)
    values: dict[str, Mapping[str, Any]] = {}
    for key, value in wanted.values.items():
        parent = _parent(result, key, created)
        last = key.rsplit(".", 1)[-1]
        if key in old.values:
            was = {k: v for k, v in old.values[key].items() if k == "was"}
        elif last in parent:
            if parent[last] == value:
                continue  # the user's own setting already: it stays theirs
            was = {"was": parent[last]}
        else:
            was = {}
        parent[last] = value
        values[key] = {"set": value, **was}
    items: dict[str, tuple[str, ...]] = {}
    for key, want in wanted.items.items():
        parent = _parent(result, key, created)
        last = key.rsplit(".", 1)[-1]
        if last not in parent:
            parent[last] = []
            created.add(key)
        mine = set(old.items.get(key, ()))
        kept = [x for x in parent[last] if x in want or x not in mine]
        added = [x for x in want if x not in kept]
        parent[last] = kept + added
        items[key] = tuple(x for x in want if x in mine or x in added)
    for key, mine_items in old.items.items():
        if key in wanted.items:
            continue
        holder, last = _lookup(result, key)
        if holder is not None and isinstance(holder.get(last), list):
            holder[last] = [x for x in holder[last] if x not in mine_items]
    for key, record in old.values.items():
        if key not in wanted.values:
            _restore(result, key, record)
    _prune(result, created)
    owned = Owned(
        values=values,
        items=items,
        created=tuple(sorted(k for k in created if _exists(result, k))),
    )
    return result, owned


def _exists(doc: Mapping[str, Any], key: str) -> bool:
    parent, last = _lookup(doc, key)
    return parent is not None and last in parent


def _restore(doc: dict[str, Any], key: str, record: Mapping[str, Any]) -> None:
    """Put the user's value back where init set one, unless it was changed since."""
    parent, last = _lookup(doc, key)
    if parent is None or last not in parent or parent[last] != record.get("set"):
        return
    if "was" in record:
        parent[last] = record["was"]
    else:
        del parent[last]


def unmerge_owned(settings: dict[str, Any], owned: Owned) -> dict[str, Any]:
    """`settings` without what init put in: its items taken out, the user's values put
    back (a value changed since init stays the user's), created objects gone if empty."""
    result = copy.deepcopy(settings)
    for key, mine in owned.items.items():
        parent, last = _lookup(result, key)
        if parent is not None and isinstance(parent.get(last), list):
            parent[last] = [x for x in parent[last] if x not in mine]
    for key, record in owned.values.items():
        _restore(result, key, record)
    _prune(result, owned.created)
    return result
