"""What a JS/TS test file does besides asserting: replace the code it tests, or end the
run. Read from masked source (`js_tests.mask`), so nothing in a string or a comment
counts; only what a change adds is reported.

A module is the project's when its specifier is a path (`./`, `../`, `/`) or one of the
usual aliases of one (`@/`, `~/`, `#`, `src/`); a bare package name (`axios`,
`@scope/pkg`, `node:fs`) is third-party. A name is project code when an `import` or a
`require` of a project module bound it. Reported:
- `vi.mock`, `vi.doMock`, `jest.mock`, `jest.doMock`, `jest.unstable_mockModule`,
  `jest.setMock` of a project module (a factory or not: automocking replaces it too);
- `vi.spyOn(math, 'add')` / `jest.spyOn` on project code given an implementation
  (`.mockReturnValue(3)`, `.mockImplementation(...)`, on the spy's variable too): a bare
  spy calls through and only records;
- an assignment to a member of project code (`math.add = () => 3`), and
  `Object.defineProperty` / `Object.assign` / `jest.replaceProperty` on it;
- `process.exit`, `process.abort`, `process.kill` and `process.exitCode = ...`.

What these regexes cannot see: a mock of a workspace package imported by name
(`@myorg/math`), a module replaced through the runner's configuration (`alias`,
`moduleNameMapper`: `testinfra` flags any change there), a project object reached through
another name (`const m = math; m.add = ...`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from agentloop.rails.facts import Finding, IntegrityKind
from agentloop.rails.js_tests import Source, close, expression_end, mask

_RUNNERS = r"(?:vi|vitest|jest)"
_MODULE_MOCK = re.compile(
    rf"(?<![\w$.]){_RUNNERS}\s*\.\s*(?:mock|doMock|unstable_mockModule|setMock)\s*\(\s*"
    r"(?:import\s*\(\s*)?(?=['\"`])"
)
_SPY = re.compile(rf"(?<![\w$.]){_RUNNERS}\s*\.\s*spyOn\s*\(\s*(?P<owner>[\w$]+)\s*,")
_SPY_VARIABLE = re.compile(r"(?:const|let|var)\s+(?P<name>[\w$]+)\s*=\s*$")
_IMPLEMENTATION = re.compile(
    r"\s*\.\s*mock(?:Implementation|ReturnValue|ResolvedValue|RejectedValue)\w*\s*\("
)
_MEMBER_ASSIGNMENT = re.compile(
    r"(?<![\w$.])(?P<owner>[\w$]+)(?:\s*\.\s*[\w$]+|\s*\[[^\]\n]*\])+\s*=(?![=>])"
)
_REDEFINE = re.compile(
    r"(?<![\w$.])(?:Object\s*\.\s*(?:defineProperty|defineProperties|assign)"
    rf"|{_RUNNERS}\s*\.\s*replaceProperty)\s*\(\s*(?P<owner>[\w$]+)\s*,"
)
_EXIT = re.compile(
    r"(?<![\w$.])process\s*\.\s*(?:(?:exit|abort|kill|reallyExit)\s*\(|exitCode\s*=(?!=))"
)
_IMPORT = re.compile(
    r"(?<![\w$.])import\s+(?:type\s+)?(?P<clause>[\w$\s{},*]+?)\s*from\s*(?=['\"])"
)
_REQUIRE = re.compile(
    r"(?:const|let|var)\s*(?P<clause>[\w$]+|\{[^}]*\})\s*=\s*(?:await\s+)?"
    r"(?:require|import)\s*\(\s*(?=['\"])"
)
_PROJECT = re.compile(r"^(?:\.{1,2}/|/|@/|~/|#|src/)")


@dataclass(frozen=True)
class _Hazard:
    kind: IntegrityKind
    identity: str
    detail: str


def js_surface_findings(before: str | None, after: str | None) -> list[Finding]:
    if after is None:
        return []
    known = Counter(h.identity for h in _hazards(before)) if before is not None else Counter()
    found: list[Finding] = []
    for hazard in _hazards(after):
        if known[hazard.identity] > 0:
            known[hazard.identity] -= 1
        else:
            found.append(Finding(hazard.kind, hazard.detail))
    return found


def _hazards(text: str) -> Iterator[_Hazard]:
    source = mask(text)
    code = source.code
    imports = dict(_imports(source))
    for match in _MODULE_MOCK.finditer(code):
        specifier = _specifier(source, match.end())
        if specifier is not None and _PROJECT.match(specifier):
            end = close(code, code.index("(", match.start())) + 1
            yield _patched(source, match.start(), end, f"replaces the module `{specifier}`")
    for match in _SPY.finditer(code):
        owner = match.group("owner")
        if owner not in imports:
            continue
        end = close(code, code.index("(", match.start())) + 1
        chained = _IMPLEMENTATION.match(code, end)
        variable = _SPY_VARIABLE.search(code, 0, match.start())
        stubbed = variable is not None and re.search(
            rf"(?<![\w$.]){re.escape(variable.group('name'))}{_IMPLEMENTATION.pattern}", code
        )
        if chained:
            end = close(code, chained.end() - 1) + 1
        if chained or stubbed:
            yield _patched(source, match.start(), end, f"replaces code of `{imports[owner]}`")
    for pattern in (_MEMBER_ASSIGNMENT, _REDEFINE):
        for match in pattern.finditer(code):
            owner = match.group("owner")
            if owner in imports:
                end = expression_end(code, match.end(), ";\n")
                yield _patched(source, match.start(), end, f"replaces code of `{imports[owner]}`")
    for match in _EXIT.finditer(code):
        end = expression_end(code, match.end(), ";\n")
        text = _short(source.words(match.start(), end))
        detail = f"`{text}` added: it ends the run before the runner reports a failure"
        yield _Hazard("exit_added", "exit:" + source.shape(match.start(), end), detail)


def _patched(source: Source, start: int, end: int, what: str) -> _Hazard:
    text = _short(source.words(start, end))
    return _Hazard(
        "code_under_test_patched",
        source.shape(start, end),
        f"patches the code under test: `{text}` {what}",
    )


def _imports(source: Source) -> Iterator[tuple[str, str]]:
    """(name, specifier) for each name an import or require of a project module binds."""
    for pattern in (_IMPORT, _REQUIRE):
        for match in pattern.finditer(source.code):
            specifier = _specifier(source, match.end())
            if specifier is None or not _PROJECT.match(specifier):
                continue
            for name in _bound(match.group("clause")):
                yield name, specifier


def _bound(clause: str) -> Iterator[str]:
    """`math`, `* as math`, `{ add, sub as minus }`, `{ add: plus }`, `math, { add }`."""
    for part in re.split(r"[{},]", clause):
        words = part.replace(":", " as ").split()
        if words and words[0] == "type":
            words = words[1:]
        if words:
            yield words[-1]


def _specifier(source: Source, offset: int) -> str | None:
    k = offset
    while k < len(source.code) and source.code[k].isspace():
        k += 1
    end = source.literals.get(k)
    if end is None:
        return None
    return source.text[k + 1 : end - 1]


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
