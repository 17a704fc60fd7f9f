"""The test surface: every file that decides which tests run and how their results are
judged, besides the tests themselves.

Test infrastructure (`is_test_infrastructure`):
- pytest: `conftest.py` at any depth, `pytest.ini`/`.pytest.ini`/`pytest.toml`/
  `.pytest.toml`, and the mixed files `pyproject.toml`, `tox.ini`, `setup.cfg`;
- Python startup: `sitecustomize.py`, `usercustomize.py` and `*.pth` anywhere, which
  run before any test;
- JS: `vitest.config.*`, `vite.config.*`, `vitest.workspace.*`, `jest.config.*`,
  `.mocharc.*`, the setup files named by convention (`vitest.setup.*`, `jest.setup.*`,
  `setupTests.*`, `test-setup.*`), manual mocks under `__mocks__/`, and the mixed
  `package.json`.
A mixed file also holds what is no test's business (project metadata, dependencies): it
is on the surface, so the replay with the original tests restores it, but only a change
in its test part is a violation (`test_config_changed`): `[tool.pytest]` and
`[tool.pytest.ini_options]` of pyproject.toml, `[pytest]` of tox.ini, `[tool:pytest]` of
setup.cfg, the `jest` and `mocha` keys and the `test`/`pretest`/`posttest` scripts of
package.json.

Which pytest settings count: all of them. Any changed key is a violation, named with what
changed; its kind says how it matters (`tests_deselected` for `testpaths`,
`python_files`, `-k`, `--deselect`...; `hooks_changed` for `-p`; `config_changed` for the
rest, e.g. `filterwarnings`, `xfail_strict`). One exception: `markers` may gain lines (a
new test may need a marker registered). Formatting and comments never count. A config
file pytest reads first appearing or disappearing is a violation by itself: it changes
which configuration applies.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import shlex
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import PurePosixPath

from agentloop.failures.classify import is_test_path
from agentloop.rails.facts import Finding, IntegrityKind
from agentloop.rails.js_patches import js_surface_findings
from agentloop.rails.js_tests import JS_SUFFIXES, mask
from agentloop.rails.python_patches import python_surface_findings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_PYTEST_FILES = frozenset({"pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"})
_MIXED = frozenset({"pyproject.toml", "tox.ini", "setup.cfg", "package.json"})
_STARTUP = frozenset({"sitecustomize.py", "usercustomize.py"})
_JS_CONFIG = re.compile(
    r"^(?:vitest\.config|vite\.config|vitest\.workspace|vitest\.projects|jest\.config"
    r"|\.mocharc)(?:\.[\w-]+)*\.(?:[cm]?[jt]s|json|jsonc|ya?ml)$"
)
# Setup files by the usual names: vitest.setup.ts, jest.setup.js, setupTests.ts,
# test-setup.ts, testSetup.js (a `setupFiles` entry named otherwise is not seen).
_JS_SETUP = re.compile(
    r"^(?=[\w.-]*setup)(?=[\w.-]*(?:test|jest|vitest))(?![\w.-]*\.(?:test|spec)\.)"
    r"[\w.-]+\.[cm]?[jt]sx?$",
    re.IGNORECASE,
)

# (section, label) holding pytest's settings in each INI file.
_INI_SECTIONS = {
    "pytest.ini": "pytest",
    ".pytest.ini": "pytest",
    "tox.ini": "pytest",
    "setup.cfg": "tool:pytest",
}
_PACKAGE_KEYS = ("jest", "mocha", "scripts.test", "scripts.pretest", "scripts.posttest")

_SELECTION_KEYS = frozenset(
    {"testpaths", "python_files", "python_classes", "python_functions", "norecursedirs"}
    | {"collect_imported_tests"}
)
_LINE_KEYS = frozenset({"markers", "filterwarnings", "required_plugins"})
_SELECTION_FLAGS = frozenset(
    {"-k", "-m", "--deselect", "--ignore", "--ignore-glob", "--lf", "--last-failed"}
    | {"--lfnf", "--last-failed-no-failures", "--sw", "--stepwise", "--sw-skip"}
    | {"--stepwise-skip", "--co", "--collect-only", "-x", "--exitfirst", "--maxfail"}
)
_PLUGIN_FLAGS = frozenset({"-p", "--noconftest", "--confcutdir"})
_RETRY_FLAGS = frozenset({"--reruns", "--reruns-delay", "--only-rerun"})
# Options whose value is the next word when not joined to it (`-k slow`, `-kslow`).
_TAKES_VALUE = frozenset(
    {"-k", "-m", "--deselect", "--ignore", "--ignore-glob", "-p", "--maxfail", "-W"}
    | {"--pythonwarnings", "-c", "--config-file", "--rootdir", "--confcutdir", "-o"}
    | {"--override-ini", "--import-mode", "--tb", "-r", "--durations", "--basetemp"}
    | {"--timeout", "--reruns", "--reruns-delay", "-n", "--dist", "--cov-fail-under"}
)


def is_test_infrastructure(path: str) -> bool:
    name = PurePosixPath(path).name
    return (
        name == "conftest.py"
        or name in _PYTEST_FILES
        or name in _MIXED
        or name in _STARTUP
        or name.endswith(".pth")
        or bool(_JS_CONFIG.match(name) or _JS_SETUP.match(name))
        or "__mocks__" in PurePosixPath(path).parts[:-1]
    )


def is_test_surface(path: str) -> bool:
    """Every file whose base version the replay with the original tests restores."""
    return is_test_path(path) or path.endswith(".snap") or is_test_infrastructure(path)


def test_config_changed(path: str, before: str | None, after: str | None) -> str | None:
    """What changed in the test configuration a file holds (a mixed file: only in its test
    part); None when nothing did, or the file holds no test configuration."""
    details = [finding.detail for finding in _config_findings(path, before, after)]
    return "; ".join(details) or None


# Named like a test: pytest would collect it from any test module importing it by name.
test_config_changed.__test__ = False  # type: ignore[attr-defined]


def surface_findings(path: str, before: str | None, after: str | None) -> list[Finding]:
    """What a change to one file of the test surface does besides its tests' assertions
    (those `integrity` compares itself)."""
    if before == after:
        return []
    name = PurePosixPath(path).name
    if name in _STARTUP or name.endswith(".pth"):
        return _startup(name, before, after)
    if name in _PYTEST_FILES or name in _MIXED or _JS_CONFIG.match(name):
        return _config_findings(path, before, after)
    if _JS_SETUP.match(name) or "__mocks__" in PurePosixPath(path).parts[:-1]:
        change = _code_change(before, after)
        if change is None:
            return []
        what = (
            "a test setup file, which runs before every test file"
            if _JS_SETUP.match(name)
            else "a manual mock, which replaces a module in the tests"
        )
        return [Finding("infrastructure_changed", f"changes {what}: {change}")]
    if name.endswith(".py"):
        return python_surface_findings(before, after)
    if name.endswith(JS_SUFFIXES) and is_test_path(path):
        return js_surface_findings(before, after)
    return []


# --- startup files ---------------------------------------------------------------------


def _startup(name: str, before: str | None, after: str | None) -> list[Finding]:
    if _python_identity(before) == _python_identity(after):
        return []
    how = "added" if before is None else "deleted" if after is None else "changed"
    detail = f"`{name}` {how}: Python runs it at startup, before any test"
    return [Finding("infrastructure_changed", detail)]


def _python_identity(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return ast.dump(ast.parse(text))
    except (SyntaxError, ValueError, RecursionError):
        # A `.pth` file is lines, not Python.
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())


# --- configuration files ---------------------------------------------------------------


def _config_findings(path: str, before: str | None, after: str | None) -> list[Finding]:
    name = PurePosixPath(path).name
    if name == "package.json":
        return _package_json(before, after)
    if _JS_CONFIG.match(name):
        return _js_config(name, before, after)
    if name in _PYTEST_FILES and (before is None) != (after is None):
        how = "added: pytest reads its configuration from it first" if after else "deleted"
        return [Finding("config_changed", f"`{name}` {how}")]
    old, new = _pytest_settings(name, before), _pytest_settings(name, after)
    if old == new:
        return []
    label = _label(name)
    if old is _UNREADABLE or new is _UNREADABLE:
        return [Finding("config_changed", f"{label} no longer reads as pytest reads it")]
    if old.get(_PRESENT) != new.get(_PRESENT) and name in _MIXED:
        keys = sorted(set(new or old) - {_PRESENT})
        setting = f" (setting {', '.join(f'`{key}`' for key in keys)})" if keys else ""
        how = "added: pytest now reads its configuration here" if new else "removed"
        return [Finding("config_changed", f"{label} {how}{setting}")]
    return _settings_changes(old, new, label)


# Marks a section that exists but is empty, which still decides where pytest reads from.
_PRESENT = "\0present"
_UNREADABLE: dict[str, object] = {"\0unreadable": True}


def _label(name: str) -> str:
    if name == "pyproject.toml":
        return "`[tool.pytest]` of pyproject.toml"
    if name in _INI_SECTIONS:
        return f"`[{_INI_SECTIONS[name]}]` of {name}"
    return f"`[pytest]` of {name}"


def _pytest_settings(name: str, text: str | None) -> dict[str, object]:
    """pytest's settings in a file, by key; {} when it holds none."""
    if text is None:
        return {}
    text = text.removeprefix("\ufeff")
    if name.endswith(".toml"):
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return _UNREADABLE
        if name == "pyproject.toml":
            tool = document.get("tool")
            table = tool.get("pytest") if isinstance(tool, dict) else None
        else:
            table = document.get("pytest", {})
        if not isinstance(table, dict):
            return {}
        settings: dict[str, object] = {_PRESENT: True}
        for key, value in table.items():
            if key == "ini_options" and isinstance(value, dict):
                settings.update(value)
            else:
                settings[key] = value
        return settings
    sections = _ini(text)
    if sections is None:
        return _UNREADABLE
    section = sections.get(_INI_SECTIONS.get(name, "pytest"))
    return {} if section is None else {_PRESENT: True, **section}


def _ini(text: str) -> dict[str, dict[str, str]] | None:
    """INI sections as pytest's parser (iniconfig) reads them; None when it would fail."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    key: str | None = None
    for raw in text.splitlines():
        if raw.lstrip()[:1] in ("#", ";"):
            continue
        line = raw.rstrip()
        if not line:
            continue
        if line[0] == "[":
            head = re.split(r"[#;]", line)[0].rstrip()
            if not head.endswith("]"):
                return None
            current, key = sections.setdefault(head[1:-1], {}), None
        elif not line[0].isspace():
            name, sep, value = line.partition("=")
            if not sep or ":" in name:
                name, sep, value = line.partition(":")
            if not sep or current is None:
                return None
            key = name.strip()
            current[key] = [value.strip()] if value.strip() else []
        else:
            if current is None or key is None:
                return None
            current[key].append(line.strip())
    return {
        section: {k: "\n".join(v) for k, v in values.items()}
        for section, values in sections.items()
    }


def _settings_changes(
    old: Mapping[str, object], new: Mapping[str, object], label: str
) -> list[Finding]:
    found: list[Finding] = []
    for key in sorted({*old, *new} - {_PRESENT}):
        before, after = _items(key, old.get(key)), _items(key, new.get(key))
        if before == after:
            continue
        if key == "addopts":
            found += _addopts(before, after, label)
            continue
        added = list((Counter(after) - Counter(before)).elements())
        removed = list((Counter(before) - Counter(after)).elements())
        if key == "markers" and not removed:
            continue
        kind: IntegrityKind = "config_changed"
        if key in _SELECTION_KEYS:
            kind = "tests_deselected"
        elif key == "timeout":
            kind = "timeout_raised"
        if key not in old:
            detail = f"`{key}` set to `{_shown(after)}` in {label}"
        elif key not in new:
            detail = f"`{key}` removed from {label} (was `{_shown(before)}`)"
        elif added or removed:
            detail = f"`{key}` in {label} changed from `{_shown(before)}` to `{_shown(after)}`"
        else:
            detail = f"`{key}` in {label} reordered"
        found.append(Finding(kind, detail))
    return found


def _items(key: str, value: object) -> list[str]:
    """A setting as a list of comparable items, whatever its formatting."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    items: list[str] = []
    for element in values:
        text = str(element).lower() if isinstance(element, bool) else str(element)
        if key == "addopts":
            try:
                items += shlex.split(text, comments=False)
            except ValueError:
                items += text.split()
        elif key in _LINE_KEYS:
            items += [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        else:
            items += text.split()
    return items


def _addopts(before: list[str], after: list[str], label: str) -> list[Finding]:
    old, new = Counter(_options(before)), Counter(_options(after))
    added, removed = list((new - old).elements()), list((old - new).elements())
    flags = {_flag(option) for option in (*added, *removed)}
    kind: IntegrityKind = "config_changed"
    if flags & _SELECTION_FLAGS:
        kind = "tests_deselected"
    elif flags & _PLUGIN_FLAGS:
        kind = "hooks_changed"
    elif flags & _RETRY_FLAGS:
        kind = "retry_added"
    parts = []
    if added:
        parts.append("adds " + ", ".join(f"`{option}`" for option in added))
    if removed:
        parts.append("drops " + ", ".join(f"`{option}`" for option in removed))
    detail = f"`addopts` in {label} " + (" and ".join(parts) or "reordered")
    return [Finding(kind, detail)]


def _options(tokens: list[str]) -> list[str]:
    """Tokens grouped with their values: ["-k", "slow"] -> ["-k slow"]."""
    options: list[str] = []
    waiting = False
    for token in tokens:
        if waiting:
            options[-1] += " " + token
            waiting = False
        else:
            options.append(token)
            waiting = token in _TAKES_VALUE
    return options


def _flag(option: str) -> str:
    word = option.split(" ", 1)[0]
    if word.startswith("--"):
        return word.split("=", 1)[0]
    return word[:2] if word.startswith("-") else word


def _shown(items: list[str], limit: int = 60) -> str:
    text = " ".join(items)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- JS configuration ------------------------------------------------------------------


def _package_json(before: str | None, after: str | None) -> list[Finding]:
    old, new = _json_keys(before), _json_keys(after)
    if old is None or new is None:
        if old == new or after is None:
            return []
        return [
            Finding("config_changed", "package.json does not parse: its test settings are unknown")
        ]
    found: list[Finding] = []
    for key in _PACKAGE_KEYS:
        if old.get(key) == new.get(key):
            continue
        found.append(
            Finding(
                "config_changed",
                f"changes the test configuration: {_json_change(key, old.get(key), new.get(key))}",
            )
        )
    return found


def _json_keys(text: str | None) -> dict[str, object] | None:
    if text is None:
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return {}
    scripts = document.get("scripts")
    scripts = scripts if isinstance(scripts, dict) else {}
    return {
        key: (
            scripts.get(key.split(".", 1)[1]) if key.startswith("scripts.") else document.get(key)
        )
        for key in _PACKAGE_KEYS
    }


def _json_change(key: str, old: object, new: object) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        return ", ".join(f"`{key}.{k}`" for k in changed) + " in package.json"
    if old is None:
        return f"`{key}` set to `{_dumped(new)}` in package.json"
    if new is None:
        return f"`{key}` removed from package.json"
    return f"`{key}` in package.json changed from `{_dumped(old)}` to `{_dumped(new)}`"


def _dumped(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _js_config(name: str, before: str | None, after: str | None) -> list[Finding]:
    if before is None or after is None:
        how = "added" if before is None else "deleted"
        return [Finding("config_changed", f"changes the test configuration: `{name}` {how}")]
    if name.endswith((".json", ".jsonc")):
        try:
            if json.loads(before) == json.loads(after):
                return []
        except ValueError:
            pass
    change = _code_change(before, after)
    return (
        []
        if change is None
        else [Finding("config_changed", f"changes the test configuration: {change}")]
    )


def _code_change(before: str | None, after: str | None) -> str | None:
    """None when only formatting differs; else the first changed line."""
    if before is None or after is None:
        return "added" if before is None else "deleted"
    old, new = mask(before), mask(after)
    if old.shape(0, len(old.text)) == new.shape(0, len(new.text)):
        return None
    old_lines, new_lines = _lines(before), _lines(after)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, a1, _a2, b1, _b2 in matcher.get_opcodes():
        if tag == "insert":
            return f"`{_short(new_lines[b1])}` added"
        if tag == "delete":
            return f"`{_short(old_lines[a1])}` removed"
        if tag == "replace":
            return f"`{_short(old_lines[a1])}` became `{_short(new_lines[b1])}`"
    return "reformatted in a way that changes it"


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
