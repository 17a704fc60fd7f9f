"""Facts about a JS/TS test file (jest, vitest, mocha, node:test, chai), read with regexes.

There is no JS parser in a Python-only install, so this reads a *masked* copy of the
source: comments blanked, the insides of strings, template literals and regex literals
blanked, every offset kept. Patterns then never match inside a string or a comment and
brackets balance, while names and expected values are read from the original text at the
same offsets. Formatting (line breaks, quotes, trailing commas) changes no fact.

What these regexes cannot see, where a parser could:
- tests declared through a wrapper or an alias (`const t = test; t(...)`,
  `test.extend(...)`, `myIt(...)`) or with a computed name; such tests are invisible;
- assertions in helper functions called from a test (only the test's own body counts),
  and a changed expected value held in a variable assigned more than once, or computed
  (a `const` declared once to a value written out is resolved: changing it changes the
  expectation of every assertion that reads it);
- unreachable assertions (an early `return`, a swallowing `try/catch`, `if (false)`);
- a mocha `this.timeout()` in a describe block counts for the whole file (timeouts and
  retries in jest/vitest config files are `testinfra`'s: any change there counts);
- where the heuristic for a regex literal guesses wrong (`/` after `)` is division) or
  JSX text holds a quote, a string may run to the end of its line.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from agentloop.rails.facts import Assertion, FileFacts, FunctionFacts, Marker, Timeout, Tolerance

JS_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts")

_CALLEE = re.compile(
    r"(?<![\w$.])(?P<prefix>[xf]?)(?P<base>describe|context|suite|it|test|specify)(?![\w$])"
)
_DESCRIBES = frozenset({"describe", "context", "suite"})
_SKIP_WORDS = frozenset({"skip", "todo", "fails", "fixme", "skipIf", "runIf"})
# Words a test's callee chain may hold; `test.extend(...)` or `it.foo()` are not tests.
_CHAIN_WORDS = _SKIP_WORDS | {"only", "each", "concurrent", "sequential", "shuffle", "for"}
# Chain words called before the test call itself: `test.each(table)(name, fn)`.
_CHAIN_CALLS = frozenset({"each", "skipIf", "runIf", "for"})

_EXPECT = re.compile(r"(?<![\w$.])expect\s*(?:\.\s*soft\s*)?\(")
_EXPECT_COUNT = re.compile(r"(?<![\w$.])expect\s*\.\s*(?:assertions|hasAssertions)\s*\(")
_ASSERT = re.compile(r"(?<![\w$.])assert\s*(?:\.\s*(?P<method>[\w$]+)\s*)?\(")
_BODY_SKIP = re.compile(r"(?<![\w$.])(?P<owner>[\w$]+)\s*\.\s*skip\s*\(")
_THIS_TIMEOUT = re.compile(r"(?<![\w$.])this\s*\.\s*timeout\s*\(\s*(?P<value>[^)\s]+)\s*\)")
_THIS_RETRIES = re.compile(r"(?<![\w$.])this\s*\.\s*retries\s*\(\s*(?P<value>[^)\s]+)\s*\)")
_FILE_TIMEOUT = re.compile(
    r"(?<![\w$.])(?:jest\s*\.\s*setTimeout\s*\(\s*"
    r"|(?:vi|vitest)\s*\.\s*setConfig\s*\(\s*\{[^}]*?\btestTimeout\s*:\s*"
    r"|jasmine\s*\.\s*DEFAULT_TIMEOUT_INTERVAL\s*=\s*)(?P<value>[\w$.]+)"
)
_FILE_RETRY = re.compile(r"(?<![\w$.])jest\s*\.\s*retryTimes\s*\(\s*(?P<value>[^),\s]+)")
_OPTION = re.compile(
    r"(?<![\w$])(?P<key>skip|todo|fails|only|retry|timeout)\s*:\s*(?P<value>[\w$.]+)"
)
_DOT_WORD = re.compile(r"\s*\.\s*([\w$]+)")
_NUMBER = re.compile(r"(?<![\w$.])-?\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?n?(?![\w$])")
_KEYWORD = re.compile(r"(?<![\w$.])(?:true|false|null|undefined|NaN)(?![\w$])")
_REGEX_AFTER = frozenset("(,=:[!&|?{};+-*%<>~^")
_REGEX_KEYWORDS = frozenset(
    {"return", "typeof", "case", "do", "else", "in", "of", "void", "yield", "await", "new"}
    | {"delete", "instanceof", "throw"}
)

_EXACT = frozenset(
    {"toBe", "toEqual", "toStrictEqual", "toHaveBeenCalledWith", "toHaveBeenLastCalledWith"}
    | {"toHaveBeenNthCalledWith", "toHaveBeenCalledTimes", "toHaveBeenCalledOnce"}
    | {"toBeCalledWith", "toBeCalledTimes", "toHaveReturnedWith", "toHaveLength"}
    | {"toBeNull", "toBeUndefined", "toBeNaN", "toMatchSnapshot", "toMatchInlineSnapshot"}
    | {"toMatchFileSnapshot", "toThrowErrorMatchingSnapshot"}
    | {"toThrowErrorMatchingInlineSnapshot", "equal", "equals", "eql", "strictEqual"}
    | {"deepEqual", "deepStrictEqual", "lengthOf", "true", "false", "null", "undefined"}
    | {"NaN", "isTrue", "isFalse", "isNull", "isUndefined", "calledWith", "calledOnce"}
    | {"sameMembers", "fail"}
)
_WEAK = frozenset(
    {"toBeTruthy", "toBeFalsy", "toBeDefined", "toHaveBeenCalled", "toBeCalled"}
    | {"toHaveReturned", "ok", "isOk", "exist", "exists", "isDefined", "isNotNull", "called"}
    | {"notEqual", "notStrictEqual", "notDeepEqual", "notDeepStrictEqual", "isNotEmpty"}
)
# Precise only with an argument: `toThrow("boom")` vs `toThrow()`.
_EXACT_WITH_ARGUMENT = frozenset({"toThrow", "toThrowError", "throw", "throws", "rejects"})
# Chai's readable chain words, and jest's modifiers: not the matcher.
_FILLERS = frozenset(
    {"to", "be", "been", "is", "that", "which", "and", "has", "have", "with", "at", "of"}
    | {"same", "but", "does", "still", "also", "deep", "resolves", "rejects", "not"}
)
# name: (argument index, default, larger is looser)
_JS_TOLERANCES = {"toBeCloseTo": (1, 2.0, False), "closeTo": (1, None, True)}
_ONE_OPERAND_ASSERTS = frozenset({"ok", "isOk", "isTrue", "isFalse", "isNull", "isNotNull"})


@dataclass(frozen=True)
class Source:
    text: str
    # Comments blanked; string, template and regex contents blanked.
    code: str
    # Literal start offset -> offset after its closing quote.
    literals: dict[int, int]
    # True where a character is inside a literal (kept in shapes, whitespace and all).
    inside: bytes
    # The keys of `literals`, sorted, to find the literals in a span by bisection.
    starts: tuple[int, ...]

    def shape(self, start: int, end: int) -> str:
        """The text without what a formatter changes: whitespace outside literals, quote
        style, trailing commas."""
        pieces: list[str] = []
        k = start
        while k < end:
            char = self.text[k]
            closing = self.literals.get(k)
            if closing is not None and char in "'\"":
                pieces.append('"' + self.text[k + 1 : closing - 1] + '"')
                k = closing
                continue
            if char in ")]}" and pieces and pieces[-1] == "," and not self.inside[k]:
                pieces.pop()
            if self.inside[k] or not char.isspace():
                pieces.append(char)
            k += 1
        return "".join(pieces)

    def words(self, start: int, end: int) -> str:
        return " ".join(self.text[start:end].split())


def mask(text: str) -> Source:
    """The source with its comments and the insides of its literals blanked, offsets kept
    (also read by `js_patches` and `testinfra`)."""
    out = list(text)
    inside = bytearray(len(text))
    literals: dict[int, int] = {}
    n = len(text)

    def blank(start: int, end: int) -> None:
        for k in range(start, end):
            inside[k] = 1
            if out[k] != "\n":
                out[k] = " "

    braces = 0
    # Brace depth at each open `${`, to know which `}` returns into the template.
    template_stack: list[tuple[int, int]] = []
    template_start = -1
    previous = ""
    i = 0
    while i < n:
        char = text[i]
        if template_start >= 0:
            if char == "\\":
                blank(i, min(i + 2, n))
                i += 2
            elif char == "`":
                literals[template_start] = i + 1
                template_start = -1
                previous = "`"
                i += 1
            elif text.startswith("${", i):
                template_stack.append((braces, template_start))
                braces += 1
                template_start = -1
                previous = "{"
                i += 2
            else:
                blank(i, i + 1)
                i += 1
            continue
        following = text[i + 1 : i + 2]
        if char == "/" and following == "/":
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif char == "/" and following == "*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            blank(i, end)
            i = end
        elif char in "'\"":
            end = i + 1
            while end < n and text[end] not in (char, "\n"):
                end += 2 if text[end] == "\\" else 1
            end = min(end, n - 1)
            blank(i + 1, end)
            literals[i] = end + 1
            previous = char
            i = end + 1
        elif char == "`":
            template_start = i
            i += 1
        elif char == "/" and _regex_may_start(previous, "".join(out[max(0, i - 12) : i])):
            closing = _regex_end(text, i)
            if closing is None:
                previous = char
                i += 1
                continue
            blank(i + 1, closing)
            literals[i] = closing + 1
            # A regex literal is an operand: a `/` after it divides.
            previous = ")"
            i = closing + 1
        else:
            if char == "{":
                braces += 1
            elif char == "}":
                braces -= 1
                if template_stack and braces == template_stack[-1][0]:
                    _, template_start = template_stack.pop()
                    i += 1
                    continue
            if not char.isspace():
                previous = char
            i += 1
    if template_start >= 0:
        literals[template_start] = n
    return Source(text, "".join(out), literals, bytes(inside), tuple(sorted(literals)))


def _regex_may_start(previous: str, before: str) -> bool:
    if previous == "" or previous in _REGEX_AFTER:
        return True
    word = re.search(r"[\w$]+$", before.rstrip())
    return word is not None and word.group() in _REGEX_KEYWORDS


def _regex_end(text: str, start: int) -> int | None:
    """Offset of the closing `/` of a regex literal, or None when it is not one."""
    in_class = False
    k = start + 1
    while k < len(text):
        char = text[k]
        if char == "\\":
            k += 2
            continue
        if char == "\n":
            return None
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "/":
            return k if k > start + 1 else None
        k += 1
    return None


def close(code: str, opening: int) -> int:
    """Offset of the bracket closing the one at `opening` (the end when unbalanced)."""
    depth = 0
    for k in range(opening, len(code)):
        char = code[k]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return k
    return len(code)


def split(code: str, start: int, end: int) -> list[tuple[int, int]]:
    """Top-level comma-separated spans between `start` and `end` (exclusive)."""
    spans: list[tuple[int, int]] = []
    depth = 0
    begin = start
    for k in range(start, end):
        char = code[k]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            spans.append((begin, k))
            begin = k + 1
    spans.append((begin, end))
    return [(a, b) for a, b in spans if code[a:b].strip()]


def _skip_space(code: str, k: int) -> int:
    while k < len(code) and code[k].isspace():
        k += 1
    return k


@dataclass(frozen=True)
class _Call:
    describe: bool
    start: int
    opening: int
    closing: int
    base: str
    prefix: str
    # Chain words with the text of their own call, if any: [("skipIf", "isCI")].
    chain: tuple[tuple[str, str | None], ...]
    args: tuple[tuple[int, int], ...]
    # `.each` rows in a formatting-independent form, None when the table is no literal.
    rows: tuple[str, ...] | None
    cases: int | None


def _calls(source: Source) -> Iterator[_Call]:
    code = source.code
    for match in _CALLEE.finditer(code):
        chain: list[tuple[str, str | None]] = []
        rows: tuple[str, ...] | None = ()
        cases: int | None = 1
        k = _skip_space(code, match.end())
        opening = -1
        while k < len(code):
            if code[k] == ".":
                word = _DOT_WORD.match(code, k)
                if word is None or word.group(1) not in _CHAIN_WORDS:
                    break
                chain.append((word.group(1), None))
                k = _skip_space(code, word.end())
            elif code[k] == "(" and chain and chain[-1][0] in _CHAIN_CALLS and chain[-1][1] is None:
                end = close(code, k)
                chain[-1] = (chain[-1][0], source.words(k + 1, end))
                if chain[-1][0] == "each":
                    rows = _table_rows(source, k + 1, end)
                    cases = None if rows is None else len(rows)
                k = _skip_space(code, end + 1)
            elif code[k] == "`" and chain and chain[-1][0] == "each" and chain[-1][1] is None:
                end = source.literals.get(k, len(code))
                lines = source.text[k + 1 : end - 1].splitlines()
                # The first line names the columns; alignment spaces are formatting.
                rows = tuple("".join(line.split()) for line in lines if line.strip())[1:]
                chain[-1] = ("each", "`table`")
                cases = len(rows)
                k = _skip_space(code, end)
            elif code[k] == "(":
                opening = k
                break
            else:
                break
        if opening < 0:
            continue
        closing = close(code, opening)
        args = split(code, opening + 1, closing)
        if not args:
            continue
        yield _Call(
            describe=match.group("base") in _DESCRIBES,
            start=match.start(),
            opening=opening,
            closing=closing,
            base=match.group("base"),
            prefix=match.group("prefix"),
            chain=tuple(chain),
            args=tuple(args),
            rows=rows,
            cases=cases,
        )


def _table_rows(source: Source, start: int, end: int) -> tuple[str, ...] | None:
    inner = source.code[start:end].strip()
    if not inner.startswith("["):
        return None
    opening = source.code.index("[", start)
    spans = split(source.code, opening + 1, close(source.code, opening))
    return tuple(source.shape(a, b) for a, b in spans)


def _name(source: Source, span: tuple[int, int]) -> str:
    start, end = span
    text = source.text
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if text[start : start + 1] in ("'", '"', "`") and source.literals.get(start) == end:
        return text[start + 1 : end - 1]
    return source.words(start, end)


def _body(source: Source, call: _Call) -> tuple[int, int] | None:
    """The span of the test function's body, or None when there is none (`it.todo`)."""
    code = source.code
    for start, end in call.args[1:]:
        text = code[start:end]
        arrow = text.find("=>")
        if arrow >= 0:
            k = _skip_space(code, start + arrow + 2)
            if k < end and code[k] == "{":
                return k + 1, close(code, k)
            return k, end
        if re.match(r"\s*(?:async\s+)?function\b", text):
            brace = code.find("{", start, end)
            if brace >= 0:
                return brace + 1, close(code, brace)
    return None


@dataclass(frozen=True)
class _Settings:
    markers: tuple[Marker, ...]
    only: int
    timeout: Timeout


def _settings(source: Source, call: _Call, origin: str | None) -> _Settings:
    """Skips, `.only`, retries and the timeout a test or describe call declares itself."""
    markers: list[Marker] = []
    only = 0
    timeout: Timeout = None
    if call.prefix == "x":
        markers.append(Marker("skip", f"x{call.base}", origin))
    elif call.prefix == "f":
        only += 1
    for word, argument in call.chain:
        if word == "only":
            only += 1
        elif word in _SKIP_WORDS:
            identity = f"{call.base}.{word}" + (f"({argument})" if argument else "")
            markers.append(Marker("skip", identity, origin))
    for start, end in call.args[1:]:
        text = source.code[start:end].strip()
        if _NUMBER.fullmatch(text):
            timeout = _js_number(text)
        elif text.startswith("{"):
            for option in _OPTION.finditer(source.code, start, end):
                key, value = option.group("key"), option.group("value")
                if key == "timeout":
                    timeout = _timeout_value(value)
                elif key == "retry" and value not in ("0", "false"):
                    markers.append(Marker("retry", f"retry: {value}", origin))
                elif key == "only" and value == "true":
                    only += 1
                elif key != "only" and value == "true":
                    markers.append(Marker("skip", f"{{{key}: true}}", origin))
    return _Settings(tuple(markers), only, timeout)


def _js_number(text: str) -> float | None:
    try:
        return float(text.replace("_", "").rstrip("n"))
    except ValueError:
        return None


def _timeout_value(text: str) -> Timeout:
    number = _js_number(text)
    return number if number is not None else text


def js_facts(text: str) -> FileFacts:
    source = mask(text)
    constants = _constants(source)
    calls = list(_calls(source))
    describes = [call for call in calls if call.describe]
    tests: list[FunctionFacts] = []
    only = 0
    bodies: list[tuple[int, int]] = []
    for call in calls:
        own = _settings(source, call, None)
        only += own.only
        if call.describe:
            continue
        enclosing = sorted(
            (d for d in describes if d.opening < call.start < d.closing), key=lambda d: d.start
        )
        path = [_name(source, d.args[0]) for d in enclosing]
        leaf = _name(source, call.args[0])
        name = " > ".join([*path, leaf])
        markers = list(own.markers)
        timeout = own.timeout
        cases = call.cases
        table = list(call.rows or ())
        for depth, describe in reversed(list(enumerate(enclosing))):
            inherited = _settings(source, describe, " > ".join(path[: depth + 1]))
            markers.extend(inherited.markers)
            timeout = timeout if timeout is not None else inherited.timeout
            cases = None if cases is None or describe.cases is None else cases * describe.cases
            table += describe.rows or ()
        body = _body(source, call)
        if body is not None:
            bodies.append(body)
            markers.extend(_body_markers(source, *body))
            timeout = timeout if timeout is not None else _this_timeout(source, *body)
        tests.append(
            FunctionFacts(
                name=name,
                leaf=leaf,
                shape=source.shape(*body) if body else "",
                assertions=tuple(_assertions(source, *body, constants)) if body else (),
                empty=body is None or not source.code[body[0] : body[1]].strip(" \t\r\n;"),
                markers=tuple(markers),
                timeout=timeout,
                cases=cases,
                table=tuple(table),
            )
        )
    return FileFacts(
        tests=tuple(tests),
        markers=tuple(_file_markers(source, bodies)),
        only=only,
        timeout=_file_timeout(source, bodies),
    )


def _body_markers(source: Source, start: int, end: int) -> Iterator[Marker]:
    for match in _BODY_SKIP.finditer(source.code, start, end):
        yield Marker("skip", f"{match.group('owner')}.skip()")
    for match in _THIS_RETRIES.finditer(source.code, start, end):
        yield Marker("retry", f"this.retries({match.group('value')})")


def _this_timeout(source: Source, start: int, end: int) -> Timeout:
    match = _THIS_TIMEOUT.search(source.code, start, end)
    return _timeout_value(match.group("value")) if match else None


def _outside(position: int, bodies: list[tuple[int, int]]) -> bool:
    return not any(start <= position < end for start, end in bodies)


def _file_markers(source: Source, bodies: list[tuple[int, int]]) -> Iterator[Marker]:
    for match in _FILE_RETRY.finditer(source.code):
        yield Marker("retry", f"jest.retryTimes({match.group('value')})", "")
    for match in _THIS_RETRIES.finditer(source.code):
        if _outside(match.start(), bodies):
            yield Marker("retry", f"this.retries({match.group('value')})", "")


def _file_timeout(source: Source, bodies: list[tuple[int, int]]) -> Timeout:
    values = [_timeout_value(m.group("value")) for m in _FILE_TIMEOUT.finditer(source.code)]
    values += [
        _timeout_value(m.group("value"))
        for m in _THIS_TIMEOUT.finditer(source.code)
        if _outside(m.start(), bodies)
    ]
    numbers = [v for v in values if isinstance(v, float)]
    if numbers:
        return max(numbers)
    return next((v for v in values if v is not None), None)


# --- assertions ------------------------------------------------------------------------


def _assertions(source: Source, start: int, end: int, constants: _Constants) -> Iterator[Assertion]:
    code = source.code
    found: list[tuple[int, Assertion]] = []
    for match in _EXPECT.finditer(code, start, end):
        found.append((match.start(), _expect(source, match.start(), match.end() - 1, constants)))
    for match in _EXPECT_COUNT.finditer(code, start, end):
        closing = close(code, match.end() - 1)
        found.append((match.start(), _simple(source, match.start(), closing + 1, "expect.count")))
    for match in _ASSERT.finditer(code, start, end):
        found.append((match.start(), _assert(source, match, constants)))
    for _, assertion in sorted(found, key=lambda item: item[0]):
        yield assertion


def _expect(source: Source, start: int, opening: int, constants: _Constants) -> Assertion:
    code = source.code
    closing = close(code, opening)
    spans = [(opening + 1, closing)]
    words: list[str] = []
    matcher_args: tuple[int, int] | None = None
    k = closing + 1
    while True:
        word = _DOT_WORD.match(code, k)
        if word is None:
            break
        words.append(word.group(1))
        k = word.end()
        after = _skip_space(code, k)
        if after < len(code) and code[after] == "(":
            end = close(code, after)
            matcher_args = (after + 1, end)
            k = end + 1
    matchers = [w for w in words if w not in _FILLERS]
    matcher = matchers[-1] if matchers else ""
    arguments = split(code, *matcher_args) if matcher_args else []
    tolerances: list[Tolerance] = []
    if matcher in _JS_TOLERANCES:
        index, default, larger = _JS_TOLERANCES[matcher]
        value = (
            _js_number(code[slice(*arguments[index])].strip()) if len(arguments) > index else None
        )
        tolerances.append(
            Tolerance(f"{matcher}(precision)", value if value is not None else default, larger)
        )
        arguments = arguments[:index]
    spans.extend(arguments)
    rank = _rank(matcher, bool(arguments))
    if matcher == "toHaveProperty":
        rank = 3 if len(arguments) > 1 else 2
    if "not" in words:
        rank = min(rank, 1)
    read = _read_constants(source, spans, constants)
    return Assertion(
        shape=source.shape(start, k),
        family=matcher or "expect",
        rank=rank,
        conditions=1,
        literals=_literals(source, [*spans, *read.values()]),
        tolerances=tuple(tolerances),
        text=_short(source.words(start, k)),
        constants=_shown_constants(source, read),
    )


def _assert(source: Source, match: re.Match[str], constants: _Constants) -> Assertion:
    code = source.code
    opening = match.end() - 1
    closing = close(code, opening)
    method = match.group("method") or ""
    arguments = split(code, opening + 1, closing)
    if not method:
        expression = code[slice(*arguments[0])] if arguments else ""
        rank = _expression_rank(expression)
        conditions = 1 + expression.count("&&")
        operands = arguments[:1]
    else:
        rank = _rank(method, len(arguments) > 1)
        conditions = 1
        operands = arguments[: 1 if method in _ONE_OPERAND_ASSERTS else 2]
    read = _read_constants(source, operands, constants)
    return Assertion(
        shape=source.shape(match.start(), closing + 1),
        family=f"assert.{method}" if method else "assert",
        rank=rank,
        conditions=conditions,
        literals=_literals(source, [*operands, *read.values()]),
        tolerances=(),
        text=_short(source.words(match.start(), closing + 1)),
        constants=_shown_constants(source, read),
    )


def _simple(source: Source, start: int, end: int, family: str) -> Assertion:
    return Assertion(
        shape=source.shape(start, end),
        family=family,
        rank=2,
        conditions=1,
        literals=_literals(source, [(start, end)]),
        tolerances=(),
        text=_short(source.words(start, end)),
    )


def _rank(matcher: str, has_argument: bool) -> int:
    if not matcher:
        # A bare `expect(x)` asserts nothing.
        return 0
    if matcher in _EXACT_WITH_ARGUMENT:
        return 3 if has_argument else 2
    if matcher in _EXACT:
        return 3
    if matcher in _WEAK:
        return 1
    return 2


def _expression_rank(expression: str) -> int:
    if re.search(r"!==?", expression):
        return 1
    if re.search(r"===?", expression):
        return 3
    if re.search(r"[<>]|\binstanceof\b|\bin\b", expression):
        return 2
    if re.fullmatch(r"\s*(?:true|1|!0|'[^']*'|\"[^\"]*\")\s*", expression):
        return 0
    return 1


# --- constants -------------------------------------------------------------------------

# A name declared once, to a value written out: name -> the value's span.
_Constants = dict[str, tuple[int, int]]
_DECLARATION = re.compile(
    r"(?<![\w$.])(?:const|let|var)\s+(?P<name>[A-Za-z_$][\w$]*)\s*(?::[^=;\n]+)?=(?![=>])\s*"
)
_IDENTIFIER = re.compile(r"(?<![\w$.])[A-Za-z_$][\w$]*(?![\w$])")
_KEY = re.compile(r"[\w$]+\s*:")
_LITERAL_WORDS = re.compile(r"\b(?:true|false|null|undefined|NaN|Infinity)\b")
_AS_CONST = re.compile(r"\bas\s+const\b")


def _constants(source: Source) -> _Constants:
    """`const EXPECTED = 5`, `let want = { sum: 3 }`: names an assertion may compare
    against, declared once in the file to a value written out, and never assigned again."""
    code = source.code
    found: _Constants = {}
    for match in _DECLARATION.finditer(code):
        name = match.group("name")
        end = expression_end(code, match.end())
        value = _AS_CONST.sub("", code[match.end() : end])
        # What is left once literals (blanked by the mask), numbers, object keys and
        # literal words go must be punctuation: `[`, `{`, `,`, quotes.
        residue = _NUMBER.sub("", _LITERAL_WORDS.sub("", _KEY.sub("", value)))
        elsewhere = code[: match.start()] + code[end:]
        assigned = re.search(
            rf"(?<![\w$.]){re.escape(name)}\s*(?:[-+*/%&|^]?=(?![=>])|\+\+|--)", elsewhere
        )
        if value.strip() and not re.search(r"[\w$`(]", residue) and not assigned:
            found[name] = (match.end(), end)
    return found


def expression_end(code: str, start: int, stops: str = ";,\n") -> int:
    """Where the expression from `start` ends: at one of `stops` outside brackets, or at a
    bracket closing one opened before `start`."""
    depth = 0
    for k in range(start, len(code)):
        char = code[k]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                return k
        elif char in stops and depth == 0:
            return k
    return len(code)


def _read_constants(
    source: Source, spans: list[tuple[int, int]], constants: _Constants
) -> dict[str, tuple[int, int]]:
    read: dict[str, tuple[int, int]] = {}
    for start, end in spans:
        for match in _IDENTIFIER.finditer(source.code, start, end):
            if match.group() in constants:
                read[match.group()] = constants[match.group()]
    return read


def _shown_constants(
    source: Source, read: dict[str, tuple[int, int]]
) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, source.shape(*span)) for name, span in read.items()))


def _literals(source: Source, spans: list[tuple[int, int]]) -> tuple[str, ...]:
    found: list[str] = []
    for start, end in spans:
        first = bisect_left(source.starts, start)
        for position in source.starts[first : bisect_left(source.starts, end)]:
            text = source.text[position : source.literals[position]]
            # `'x'` and `"x"` are one value; prettier may swap the quotes.
            found.append(text[1:-1] if text[:1] in ("'", '"') else text)
        segment = source.code[start:end]
        found += [m.group().replace("_", "") for m in _NUMBER.finditer(segment)]
        found += [m.group() for m in _KEYWORD.finditer(segment)]
    return tuple(sorted(found))


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
