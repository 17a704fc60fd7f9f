"""Test integrity: did an attempt make the tests easier to pass instead of fixing the code?

Input is the BEFORE and AFTER contents of the files a change touched (None: absent on that
side; a path missing from one mapping is absent there too). Only the test surface counts,
as `testinfra.is_test_surface` decides: test files (`failures.classify.is_test_path`),
snapshots, and the test infrastructure (conftest.py, pytest's configuration, jest and
vitest configs and setup files, sitecustomize, `.pth`). Python tests are read with `ast`
(`python_tests`), JS/TS with regexes over masked source (`js_tests`, which lists what it
cannot see); any other test file (Go, Java, data under `tests/`) is only checked for
deletion. Jest and vitest snapshot files (`*.snap`) count as tests wherever they are:
rewriting a stored snapshot changes what a test expects, which is what `jest -u` would do
to a failing one.

Tests are matched across the whole change, not file by file, so moving a test to another
file (or class, or describe block) is not deleting it: by path and name first, then by
name anywhere, then by the bare test name. A matched pair is then compared fact by fact.
Adding tests, assertions or files is always fine, and so is any change of formatting.

Then every file of the surface is read for what fakes a pass without touching a test's
assertions (`testinfra.surface_findings`): the code under test patched from a test or a
conftest, pytest hooks and plugins, deselection, a changed runner configuration, code
that runs before the tests, an early exit. There only what the change adds counts: a
mock that was already there is the test's own business.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agentloop.failures.classify import is_test_path
from agentloop.rails.facts import (
    Assertion,
    FileFacts,
    FunctionFacts,
    IntegrityKind,
    Marker,
    Timeout,
)
from agentloop.rails.js_tests import JS_SUFFIXES, js_facts
from agentloop.rails.python_tests import python_facts
from agentloop.rails.testinfra import is_test_surface, surface_findings

__all__ = ["IntegrityKind", "IntegrityViolation", "check_integrity"]


@dataclass(frozen=True)
class IntegrityViolation:
    kind: IntegrityKind
    # The file as it is after the change (before it, for deletions).
    path: str
    # The test (qualified name), or the class/describe block a marker was put on; None for
    # the whole file.
    test: str | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.path}::{self.test}" if self.test else self.path
        return f"{where}: {self.detail}"


def check_integrity(
    before: Mapping[str, str | None], after: Mapping[str, str | None]
) -> tuple[IntegrityViolation, ...]:
    surface = sorted(path for path in {*before, *after} if is_test_surface(path))
    paths = [path for path in surface if _is_test(path)]
    old = {path: _read(path, before.get(path)) for path in paths}
    new = {path: _read(path, after.get(path)) for path in paths}
    found: list[IntegrityViolation] = []
    for path in paths:
        facts, was = new[path], old[path]
        # A file that did not parse before either (say, syntax newer than this Python) was
        # not broken by the change; _compare_files counts its text instead.
        if facts is not None and facts.problem and not (was is not None and was.problem):
            found.append(IntegrityViolation("unparseable", path, None, facts.problem))
    tests = _pair(_functions(old, helpers=False), _functions(new, helpers=False))
    for (_, test), (new_path, new_test) in tests.pairs:
        found += _compare_tests(test, new_test, new_path)
    helpers = _pair(_functions(old, helpers=True), _functions(new, helpers=True))
    for (_, helper), (new_path, new_helper) in helpers.pairs:
        found += _compare_assertions(new_path, new_helper.name, helper, new_helper, "helper ")
    found += _lost(old, new, tests.lost, tests.unclaimed, before, after)
    for path in paths:
        found += _compare_files(path, old[path], new[path])
        old_text, new_text = before.get(path), after.get(path)
        if path.endswith(".snap") and old_text is not None and new_text is not None:
            found += _compare_snapshots(path, old_text, new_text)
        found += _shadowed(path, old[path], new[path])
    for path in surface:
        found += (
            IntegrityViolation(f.kind, path, f.test, f.detail)
            for f in surface_findings(path, before.get(path), after.get(path))
        )
    # A marker on a class or describe block is reported once, not once per test in it.
    return tuple(dict.fromkeys(sorted(found, key=lambda v: v.path)))


def _is_test(path: str) -> bool:
    return is_test_path(path) or path.endswith(".snap")


def _language(path: str) -> str | None:
    if path.endswith(".py"):
        return "python"
    if path.endswith(JS_SUFFIXES):
        return "js"
    return None


def _read(path: str, content: str | None) -> FileFacts | None:
    if content is None:
        return None
    language = _language(path)
    if language == "python":
        return python_facts(content)
    if language == "js":
        return js_facts(content)
    return FileFacts()


# --- matching tests across the change --------------------------------------------------

_Located = tuple[str, FunctionFacts]


@dataclass(frozen=True)
class _Pairing:
    pairs: tuple[tuple[_Located, _Located], ...]
    # Before-side functions with no partner after the change.
    lost: tuple[_Located, ...]
    # After-side functions with no partner before it (new, or a rename's new name).
    unclaimed: tuple[_Located, ...]


def _functions(files: Mapping[str, FileFacts | None], *, helpers: bool) -> list[_Located]:
    return [
        (path, function)
        for path, facts in files.items()
        if facts is not None
        for function in (facts.helpers if helpers else facts.tests)
    ]


def _pair(old: list[_Located], new: list[_Located]) -> _Pairing:
    free = dict(enumerate(new))
    pairs: list[tuple[_Located, _Located]] = []
    waiting = list(old)
    for level in range(3):
        index: dict[tuple[str | None, str], list[int]] = {}
        for number, located in free.items():
            index.setdefault(_key(level, *located), []).append(number)
        still: list[_Located] = []
        for located in waiting:
            candidates = index.get(_key(level, *located))
            if candidates:
                pairs.append((located, free.pop(candidates.pop(0))))
            else:
                still.append(located)
        waiting = still
    return _Pairing(tuple(pairs), tuple(waiting), tuple(free.values()))


def _key(level: int, path: str, function: FunctionFacts) -> tuple[str | None, str]:
    """Same file and name; else same name in any file of the language; else the bare
    name (moved to another class or describe block)."""
    if level == 0:
        return path, function.name
    return _language(path), function.name if level == 1 else function.leaf


def _lost(
    old: Mapping[str, FileFacts | None],
    new: Mapping[str, FileFacts | None],
    lost: Iterable[_Located],
    unclaimed: Iterable[_Located],
    before: Mapping[str, str | None],
    after: Mapping[str, str | None],
) -> list[IntegrityViolation]:
    found: list[IntegrityViolation] = []
    lost_by_file: dict[str, list[FunctionFacts]] = {}
    for path, test in lost:
        lost_by_file.setdefault(path, []).append(test)
    for path, facts in old.items():
        if facts is None or new[path] is not None:
            continue
        names = [test.name for test in lost_by_file.pop(path, [])]
        content = before.get(path) or ""
        moved = any(after.get(other) == content and before.get(other) is None for other in after)
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            detail = f"test file deleted with {len(names)} test(s) found nowhere else: {shown}"
            found.append(IntegrityViolation("test_file_deleted", path, None, detail))
        elif not facts.tests and content.strip() and not moved:
            detail = "test file deleted (no copy of it elsewhere in the change)"
            found.append(IntegrityViolation("test_file_deleted", path, None, detail))
    for path, tests in lost_by_file.items():
        after_facts = new[path]
        if after_facts is not None and after_facts.problem:
            # The AFTER file does not parse: reported as such, its tests are unknown.
            continue
        shadowed = {name for name, _ in after_facts.shadowed} if after_facts else set()
        for test in tests:
            if test.name in shadowed:
                continue
            renamed = next(
                (
                    f.name
                    for p, f in unclaimed
                    if p == path and test.shape and f.shape == test.shape
                ),
                None,
            )
            detail = "test deleted" + (f" (renamed to {renamed})" if renamed else "")
            found.append(IntegrityViolation("test_deleted", path, test.name, detail))
    return found


# --- comparing one test ----------------------------------------------------------------


def _compare_tests(old: FunctionFacts, new: FunctionFacts, path: str) -> list[IntegrityViolation]:
    found: list[IntegrityViolation] = []
    changed_cases = Counter(old.table) - Counter(new.table)
    if old.cases is not None and new.cases is not None and new.cases < old.cases:
        detail = f"parametrized cases cut from {old.cases} to {new.cases}"
        found.append(IntegrityViolation("cases_removed", path, new.name, detail))
    elif changed_cases:
        detail = f"{changed_cases.total()} parametrized case(s) changed or removed"
        found.append(IntegrityViolation("expectation_changed", path, new.name, detail))
    for marker in _added(old.markers, new.markers):
        where = new.name if marker.origin is None else marker.origin
        found.append(IntegrityViolation(_KINDS[marker.kind], path, where, _marker_detail(marker)))
    change = _timeout_change(old.timeout, new.timeout)
    if change:
        found.append(IntegrityViolation("timeout_raised", path, new.name, change))
    if new.empty and not old.empty:
        detail = "test body emptied (only `pass`, `...`, `{}` or nothing left)"
        found.append(IntegrityViolation("assertion_loosened", path, new.name, detail))
    else:
        found += _compare_assertions(path, new.name, old, new, "")
    return found


_KINDS: dict[str, IntegrityKind] = {
    "skip": "skip_added",
    "retry": "retry_added",
    "hidden": "tests_deselected",
}


def _marker_detail(marker: Marker) -> str:
    if marker.kind == "hidden":
        return f"pytest no longer collects it: {marker.identity}"
    return f"`{marker.identity}` added"


def _added(old: Iterable[Marker], new: Iterable[Marker]) -> list[Marker]:
    remaining = Counter(marker.identity for marker in old)
    added: list[Marker] = []
    for marker in new:
        if remaining[marker.identity] > 0:
            remaining[marker.identity] -= 1
        else:
            added.append(marker)
    return added


def _format(value: Timeout) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _timeout_change(old: Timeout, new: Timeout) -> str | None:
    """Any change but a lower number is suspect: a new timeout may override a stricter
    default that lives in config, which this check does not see."""
    if old == new:
        return None
    if isinstance(old, float) and isinstance(new, float):
        return f"timeout raised from {_format(old)} to {_format(new)}" if new > old else None
    if new is None:
        return f"timeout {_format(old)} removed"
    if old is None:
        return f"timeout {_format(new)} added"
    return f"timeout changed from {_format(old)} to {_format(new)}"


def _compare_assertions(
    path: str, name: str, old: FunctionFacts, new: FunctionFacts, label: str
) -> list[IntegrityViolation]:
    """Same assertions (by shape) are fine; every other old one needs a partner at least
    as strict among the new ones, or it was removed or loosened."""
    found: list[IntegrityViolation] = []
    live = [a for a in new.assertions if a.defeated is None]
    dead = [a for a in new.assertions if a.defeated is not None]
    unmatched: list[tuple[int, Assertion]] = []
    for index, assertion in enumerate(a for a in old.assertions if a.defeated is None):
        same = next((a for a in live if _same(a, assertion)), None)
        if same is None:
            unmatched.append((index, assertion))
        else:
            live.remove(same)
    positions = {id(a): i for i, a in enumerate(new.assertions)}
    for index, assertion in unmatched:
        defeated = next((a for a in dead if a.shape == assertion.shape), None)
        if defeated is not None:
            dead.remove(defeated)
            detail = f"{label}`{assertion.text}` can no longer fail: {defeated.defeated}"
            found.append(IntegrityViolation("assertion_loosened", path, name, detail))
            continue
        if not live:
            detail = f"{label}`{assertion.text}` removed"
            found.append(IntegrityViolation("assertion_removed", path, name, detail))
            continue
        partner = max(
            live,
            key=lambda a: (
                a.shape == assertion.shape,
                a.literals == assertion.literals,
                a.rank >= assertion.rank,
                a.family == assertion.family,
                -abs(positions[id(a)] - index),
            ),
        )
        live.remove(partner)
        weaker = _weaker(assertion, partner)
        changed = _changed_constants(assertion, partner)
        if changed and (weaker is None or weaker[0] == "expectation_changed"):
            detail = f"{label}{changed}; `{partner.text}` compares against it"
            found.append(IntegrityViolation("constant_changed", path, name, detail))
        elif weaker is not None:
            kind, why = weaker
            detail = f"{label}`{assertion.text}` became `{partner.text}`{why}"
            found.append(IntegrityViolation(kind, path, name, detail))
    return found


def _same(new: Assertion, old: Assertion) -> bool:
    # Tolerances count too: a constant tolerance (`rel=REL`) changes with no other trace.
    return (new.shape, new.constants, new.tolerances) == (old.shape, old.constants, old.tolerances)


def _changed_constants(old: Assertion, new: Assertion) -> str | None:
    """What became of the constants of an assertion that reads as before."""
    if new.shape != old.shape:
        return None
    values = dict(new.constants)
    changes = [
        f"`{name}` changed from `{_short(value)}` to `{_short(values[name])}`"
        for name, value in old.constants
        if name in values and values[name] != value
    ]
    return "; ".join(changes) or None


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _weaker(old: Assertion, new: Assertion) -> tuple[IntegrityKind, str] | None:
    if new.rank < old.rank:
        return "assertion_loosened", ""
    if new.conditions < old.conditions:
        return "assertion_loosened", " (fewer conditions)"
    tolerance = _looser_tolerance(old, new)
    if tolerance:
        return "assertion_loosened", f" ({tolerance})"
    # A stricter kind of check may name new values (`assert x` -> `assert x == 3`).
    if new.literals != old.literals and new.rank == old.rank:
        old_values, new_values = Counter(old.literals), Counter(new.literals)
        if new_values < old_values:
            return "assertion_loosened", " (an expected value dropped)"
        return "expectation_changed", ""
    return None


def _looser_tolerance(old: Assertion, new: Assertion) -> str | None:
    before = {t.name: t for t in old.tolerances}
    for tolerance in new.tolerances:
        previous = before.get(tolerance.name)
        if previous is None:
            return f"compares with tolerance {tolerance.name} now"
        if previous.value is None or tolerance.value is None:
            continue
        larger = tolerance.value > previous.value
        smaller = tolerance.value < previous.value
        if larger if tolerance.looser_when_larger else smaller:
            return f"{tolerance.name} from {previous.value:g} to {tolerance.value:g}"
    return None


# --- whole files -----------------------------------------------------------------------


def _compare_files(
    path: str, old: FileFacts | None, new: FileFacts | None
) -> list[IntegrityViolation]:
    old = old or FileFacts()
    if new is None or (new.problem and not old.problem):
        return []
    found: list[IntegrityViolation] = []
    if old.problem:
        # BEFORE did not parse, so its tests are unknown: compare what raw text shows.
        note = " (counted in the text: BEFORE does not parse)"
        if new.rough_assertions < old.rough_assertions:
            detail = f"assertions fell from {old.rough_assertions} to {new.rough_assertions}"
            found.append(IntegrityViolation("assertion_removed", path, None, detail + note))
        if new.rough_markers > old.rough_markers:
            detail = f"skip-like markers rose from {old.rough_markers} to {new.rough_markers}"
            found.append(IntegrityViolation("skip_added", path, None, detail + note))
        return found
    for marker in _added(old.markers, new.markers):
        detail = _marker_detail(marker)
        if marker.kind != "hidden":
            detail = "file-wide " + detail
        found.append(IntegrityViolation(_KINDS[marker.kind], path, None, detail))
    if new.only > old.only:
        detail = "`.only` (or `fit`/`fdescribe`) added: the rest of the file stops running"
        found.append(IntegrityViolation("only_added", path, None, detail))
    change = _timeout_change(old.timeout, new.timeout)
    if change:
        found.append(IntegrityViolation("timeout_raised", path, None, f"file-wide {change}"))
    return found


def _shadowed(path: str, old: FileFacts | None, new: FileFacts | None) -> list[IntegrityViolation]:
    if new is None:
        return []
    known = Counter(name for name, _ in old.shadowed) if old is not None else Counter()
    found: list[IntegrityViolation] = []
    for name, how in new.shadowed:
        if known[name] > 0:
            known[name] -= 1
            continue
        detail = f"{how}: the test before it no longer runs"
        found.append(IntegrityViolation("test_shadowed", path, name, detail))
    return found


# `exports[`name 1`] = `value`;` with backticks inside escaped, as jest and vitest write.
_SNAPSHOT = re.compile(r"^exports\[`((?:[^`\\]|\\.)*)`\] = `((?:[^`\\]|\\.)*)`;", re.M | re.S)


def _compare_snapshots(path: str, old: str, new: str) -> list[IntegrityViolation]:
    """New snapshots are fine (a new test writes one); a stored one must stay as it is."""
    found: list[IntegrityViolation] = []
    stored, written = dict(_SNAPSHOT.findall(old)), dict(_SNAPSHOT.findall(new))
    for name, value in stored.items():
        if name not in written:
            found.append(IntegrityViolation("assertion_removed", path, name, "snapshot removed"))
        elif written[name] != value:
            detail = "stored snapshot rewritten"
            found.append(IntegrityViolation("expectation_changed", path, name, detail))
    return found
