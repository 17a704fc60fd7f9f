"""Facts about a Python test file, read with `ast` so that formatting never matters.

Tests are what pytest collects by default: `test*` functions at module level and `test*`
methods of classes (pytest's `Test*` classes and unittest's TestCase subclasses alike).
A name defined twice keeps its last definition, as Python does: a second, empty
`def test_x` that shadows the real one reads as an emptied test.

What this reader cannot see:
- expected values or inputs held outside the assertion (`expected = 3` changed to 4,
  a fixture returning other data, a changed argument to the code under test);
- skips through an alias (`from unittest import skip as later`), deselection in
  `pytest_collection_modifyitems` or config (`-k`, `-m`, `collect_ignore`), and
  hypothesis settings (`deadline=None`, fewer `max_examples`);
- unreachable assertions other than after a top-level `return` or inside a swallowing
  `try`/`suppress` (`if False:` hides one from it).
An assertion moved from a test into a helper reads as removed from the test: a false
positive on the safe side.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from agentloop.rails.facts import (
    Assertion,
    FileFacts,
    FunctionFacts,
    Marker,
    MarkerKind,
    Timeout,
    Tolerance,
)

_Function = ast.FunctionDef | ast.AsyncFunctionDef
# `except*` (3.11+) swallows like `except`; mypy checks this package as 3.10.
_TRY: tuple[type[ast.Try], ...] = (ast.Try, getattr(ast, "TryStar", ast.Try))

_SKIP = frozenset(
    {"skip", "skipif", "xfail", "skipIf", "skipUnless", "expectedFailure", "SkipTest"}
    | {"skipTest", "importorskip"}
)
_RETRY = frozenset({"flaky"})
# Positional strings of these are reasons: a reworded reason is the same skip.
_REASON_FIRST = frozenset({"skip", "skipTest", "SkipTest", "xfail", "expectedFailure"})
_RAISES = frozenset({"raises", "warns", "deprecated_call"})
_BROAD = frozenset({"Exception", "BaseException"})
_SWALLOWED = _BROAD | {"AssertionError"}

_EXACT_METHODS = frozenset(
    {"assertEqual", "assertEquals", "assertIs", "assertIsNone", "assertDictEqual"}
    | {"assertListEqual", "assertTupleEqual", "assertSetEqual", "assertSequenceEqual"}
    | {"assertMultiLineEqual", "assertCountEqual", "assertRaisesRegex", "assertWarnsRegex"}
    | {"assert_called_once_with", "assert_called_with", "assert_any_call", "assert_has_calls"}
    | {"assert_not_called", "assert_awaited_once_with", "assert_awaited_with"}
    | {"assert_frame_equal", "assert_series_equal", "assert_array_equal", "assert_equal"}
)
_WEAK_METHODS = frozenset(
    {"assertFalse", "assertIsNotNone", "assertNotEqual", "assertNotEquals", "assertIsNot"}
    | {"assertNotIn", "assertNotIsInstance", "assertNotRegex", "assertNotAlmostEqual"}
    | {"assert_called", "assert_awaited"}
)
# unittest's camelCase methods take a message after their operands; it is not compared.
_ONE_OPERAND = frozenset({"assertTrue", "assertFalse", "assertIsNone", "assertIsNotNone"})
_THREE_OPERANDS = frozenset({"assertAlmostEqual", "assertNotAlmostEqual"})
_MESSAGE_KEYWORDS = frozenset({"msg", "err_msg", "reason"})

# name: (parameter, position or None when keyword-only, default, larger is looser).
_TOLERANCES: dict[str, tuple[tuple[str, int | None, float, bool], ...]] = {
    "approx": (("rel", 1, 1e-6, True), ("abs", 2, 1e-12, True)),
    # math.isclose (keyword-only) and numpy.isclose share the name.
    "isclose": (
        ("rel_tol", None, 1e-9, True),
        ("abs_tol", None, 0.0, True),
        ("rtol", 2, 1e-5, True),
        ("atol", 3, 1e-8, True),
    ),
    "allclose": (("rtol", 2, 1e-5, True), ("atol", 3, 1e-8, True)),
    "assert_allclose": (("rtol", 2, 1e-7, True), ("atol", 3, 0.0, True)),
    # delta replaces places when given; 0 stands for "not given".
    "assertAlmostEqual": (("places", 2, 7, False), ("delta", 4, 0.0, True)),
    "assert_almost_equal": (("decimal", 2, 7, False),),
    "assert_approx_equal": (("significant", 2, 7, False),),
}

# Counted in raw text when a file does not parse; the same on both sides, so comparable.
_ROUGH_ASSERT = re.compile(
    r"\bassert\b|\.assert\w*\s*\(|\bassert_\w+\s*\(|\braises\s*\(|\bwarns\s*\("
)
_ROUGH_MARKER = re.compile(
    r"\b(?:skip|skipif|xfail|skipIf|skipUnless|expectedFailure|skipTest|SkipTest"
    r"|importorskip|flaky)\b"
)


def python_facts(source: str) -> FileFacts:
    counted = FileFacts(
        rough_assertions=len(_ROUGH_ASSERT.findall(source)),
        rough_markers=len(_ROUGH_MARKER.findall(source)),
    )
    try:
        # Python reads a file's bytes and drops a BOM; a decoded str keeps it.
        tree = ast.parse(source.removeprefix("\ufeff"))
        reader = _Reader()
        reader.read_scope(tree.body, classes=(), class_markers=(), class_timeouts=())
        module_markers = tuple(_markers(reader.module_nodes, origin=""))
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return replace(counted, problem=f"does not parse: {exc.msg}{where}")
    except ValueError as exc:
        # e.g. a NUL byte in the source
        return replace(counted, problem=f"does not parse: {exc}")
    except RecursionError:
        return replace(counted, problem="is nested too deeply to read")
    module_timeout = _timeout_of(_pytestmark(tree.body))
    tests = tuple(
        test if test.timeout is not None else replace(test, timeout=module_timeout)
        for test in reader.tests.values()
    )
    return replace(
        counted, tests=tests, helpers=tuple(reader.helpers.values()), markers=module_markers
    )


class _Reader:
    def __init__(self) -> None:
        # Dicts keyed by qualified name: a redefinition replaces, as at import time.
        self.tests: dict[str, FunctionFacts] = {}
        self.helpers: dict[str, FunctionFacts] = {}
        self.module_nodes: list[ast.AST] = []

    def read_scope(
        self,
        body: Sequence[ast.stmt],
        *,
        classes: tuple[str, ...],
        class_markers: tuple[Marker, ...],
        class_timeouts: tuple[Timeout, ...],
    ) -> None:
        for node in body:
            if isinstance(node, _Function) and node.name.startswith("test"):
                name = ".".join((*classes, node.name))
                self.tests.pop(name, None)
                self.tests[name] = _test(node, name, class_markers, class_timeouts)
            elif isinstance(node, ast.ClassDef) and _holds_tests(node):
                qualified = ".".join((*classes, node.name))
                own = [*node.decorator_list, *_class_level(node)]
                self.read_scope(
                    node.body,
                    classes=(*classes, node.name),
                    class_markers=(*class_markers, *_markers(own, origin=qualified)),
                    class_timeouts=(
                        _timeout_of([*node.decorator_list, *_pytestmark(node.body)]),
                        *class_timeouts,
                    ),
                )
            else:
                if not classes:
                    self.module_nodes.append(node)
                if isinstance(node, _Function):
                    name = ".".join((*classes, node.name))
                    self.helpers[name] = _helper(node, name)


def _holds_tests(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(child, _Function) and child.name.startswith("test"))
        or (isinstance(child, ast.ClassDef) and _holds_tests(child))
        for child in node.body
    )


def _class_level(node: ast.ClassDef) -> list[ast.AST]:
    """A test class's own statements: `pytestmark`, setUp, fixtures. A skip there reaches
    every test of the class."""
    return [
        child
        for child in node.body
        if not (isinstance(child, _Function) and child.name.startswith("test"))
        and not (isinstance(child, ast.ClassDef) and _holds_tests(child))
    ]


def _test(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    name: str,
    class_markers: tuple[Marker, ...],
    class_timeouts: tuple[Timeout, ...],
) -> FunctionFacts:
    # The innermost timeout wins: the test's own, then its classes' (inner first).
    own_timeout = _timeout_of(node.decorator_list)
    timeout = next((t for t in (own_timeout, *class_timeouts) if t is not None), None)
    return FunctionFacts(
        name=name,
        leaf=node.name,
        shape="".join(ast.dump(stmt) for stmt in node.body),
        assertions=tuple(_assertions(node.body)),
        empty=_is_empty(node.body),
        markers=(*class_markers, *_markers([*node.decorator_list, *node.body], origin=None)),
        timeout=timeout,
        cases=_cases(node.decorator_list),
        table=tuple(_table(node.decorator_list)),
    )


def _helper(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> FunctionFacts:
    return FunctionFacts(
        name=name,
        leaf=node.name,
        shape="",
        assertions=tuple(_assertions(node.body)),
        empty=False,
        markers=(),
        timeout=None,
        cases=1,
    )


def _is_empty(body: Sequence[ast.stmt]) -> bool:
    """Only `pass`, `...`, a docstring or a bare `return`."""
    return all(
        isinstance(stmt, ast.Pass)
        or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
        or (isinstance(stmt, ast.Return) and stmt.value is None)
        for stmt in body
    )


def _last(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "…")
    return ".".join(reversed(parts))


# --- skips, retries, timeouts, parametrize -------------------------------------------


def _marker_kind(node: ast.AST) -> MarkerKind | None:
    name = _last(node)
    if name in _SKIP:
        return "skip"
    if name in _RETRY:
        return "retry"
    return None


def _markers(nodes: Iterable[ast.AST], origin: str | None) -> Iterator[Marker]:
    for node in nodes:
        yield from _markers_in(node, origin)


def _markers_in(node: ast.AST, origin: str | None) -> Iterator[Marker]:
    if isinstance(node, ast.Call) and (kind := _marker_kind(node.func)):
        yield Marker(kind, _call_identity(node), origin)
        return
    if isinstance(node, ast.Attribute | ast.Name) and (kind := _marker_kind(node)):
        yield Marker(kind, _dotted(node), origin)
        return
    for child in ast.iter_child_nodes(node):
        yield from _markers_in(child, origin)


def _call_identity(call: ast.Call) -> str:
    name = _last(call.func)
    args = [
        ast.unparse(arg)
        for arg in call.args
        if not (
            name in _REASON_FIRST and isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        )
    ]
    args += [
        f"{kw.arg}={ast.unparse(kw.value)}"
        for kw in call.keywords
        if kw.arg not in _MESSAGE_KEYWORDS and kw.arg != "allow_module_level"
    ]
    return f"{_dotted(call.func)}({', '.join(args)})"


def _pytestmark(body: Sequence[ast.stmt]) -> list[ast.AST]:
    values: list[ast.AST] = []
    for stmt in body:
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign):
            targets = [stmt.target]
        else:
            continue
        named = any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets)
        if named and stmt.value is not None:
            values.append(stmt.value)
    return values


def _timeout_of(nodes: Iterable[ast.AST]) -> Timeout:
    """`@pytest.mark.timeout(N)` among decorators or `pytestmark` values."""
    for node in nodes:
        for call in ast.walk(node):
            if (
                isinstance(call, ast.Call)
                and _last(call.func) == "timeout"
                and "mark" in _dotted(call.func).split(".")
            ):
                value = call.args[0] if call.args else _keyword(call, "timeout")
                if value is None:
                    return None
                number = _number(value)
                return number if number is not None else ast.unparse(value)
    return None


def _argvalues(decorators: Sequence[ast.expr]) -> Iterator[ast.expr | None]:
    """The argvalues of each `parametrize`, None when it is not a literal list."""
    for decorator in decorators:
        if isinstance(decorator, ast.Call) and _last(decorator.func) == "parametrize":
            values = decorator.args[1] if len(decorator.args) > 1 else None
            values = values or _keyword(decorator, "argvalues")
            yield values if isinstance(values, ast.List | ast.Tuple | ast.Set) else None


def _cases(decorators: Sequence[ast.expr]) -> int | None:
    cases = 1
    for values in _argvalues(decorators):
        if not isinstance(values, ast.List | ast.Tuple | ast.Set):
            return None
        cases *= len(values.elts)
    return cases


def _table(decorators: Sequence[ast.expr]) -> Iterator[str]:
    for values in _argvalues(decorators):
        if isinstance(values, ast.List | ast.Tuple | ast.Set):
            yield from (_case(case) for case in values.elts)


def _case(case: ast.expr) -> str:
    """A case's values; `pytest.param`'s marks and id are not values (a skip among the
    marks is found as a marker)."""
    if isinstance(case, ast.Call) and _last(case.func) == "param":
        if len(case.args) == 1:
            return ast.dump(case.args[0])
        return ast.dump(ast.Tuple(elts=case.args, ctx=ast.Load()))
    return ast.dump(case)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _number(node: ast.AST) -> float | None:
    """A numeric literal, also `-1`, `1e-6`, `10**-6`, `5 * 60`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _number(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        try:
            if isinstance(node.op, ast.Pow) and abs(right) <= 400:
                return float(left**right)
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return left / right
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
        except (ArithmeticError, ValueError, TypeError):
            # Overflow, division by zero, a complex power: not a tolerance we can compare.
            return None
    return None


# --- assertions ------------------------------------------------------------------------


def _assertions(body: Sequence[ast.stmt]) -> list[Assertion]:
    found: list[Assertion] = []
    returned = False
    for stmt in body:
        _collect(stmt, found, "after an early `return`" if returned else None)
        returned = returned or isinstance(stmt, ast.Return)
    return found


def _collect(node: ast.AST, found: list[Assertion], defeated: str | None) -> None:
    if isinstance(node, _TRY):
        swallowing = "inside a try/except that swallows it"
        inner = defeated or (swallowing if any(map(_swallows, node.handlers)) else None)
        for stmt in node.body:
            _collect(stmt, found, inner)
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            _collect(part, found, defeated)
        return
    if isinstance(node, ast.With | ast.AsyncWith):
        for item in node.items:
            _collect(item.context_expr, found, defeated)
        suppressing = "inside a `suppress` that swallows it"
        inner = defeated or (
            suppressing if any(_suppresses(i.context_expr) for i in node.items) else None
        )
        for stmt in node.body:
            _collect(stmt, found, inner)
        return
    if isinstance(node, ast.Assert):
        found.append(_from_assert(node, defeated))
        return
    if isinstance(node, ast.Call) and (fact := _from_call(node, defeated)):
        found.append(fact)
        return
    for child in ast.iter_child_nodes(node):
        _collect(child, found, defeated)


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Tuple):
        return {_last(elt) for elt in node.elts}
    return {_last(node)}


def _swallows(handler: ast.ExceptHandler) -> bool:
    catches = handler.type is None or bool(_names(handler.type) & _SWALLOWED)
    return catches and not any(
        isinstance(node, ast.Raise) or (isinstance(node, ast.Call) and _last(node.func) == "fail")
        for stmt in handler.body
        for node in ast.walk(stmt)
    )


def _suppresses(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and _last(node.func) == "suppress"
        and any(_names(arg) & _SWALLOWED for arg in node.args)
    )


def _from_assert(node: ast.Assert, defeated: str | None) -> Assertion:
    rank, conditions = _expression_rank(node.test)
    return Assertion(
        shape=ast.dump(node.test),
        family="assert",
        rank=rank,
        conditions=conditions,
        literals=_literals([node.test]),
        tolerances=_tolerances(node.test),
        text=_short(f"assert {ast.unparse(node.test)}"),
        defeated=defeated,
    )


def _from_call(call: ast.Call, defeated: str | None) -> Assertion | None:
    name = _last(call.func)
    dotted = _dotted(call.func)
    if name.startswith("assert"):
        rank, conditions = _method_rank(name, call), 1
        if name == "assertTrue" and call.args:
            rank, conditions = _expression_rank(call.args[0])
        operands = _operands(name, call)
    elif name in _RAISES and dotted in (name, f"pytest.{name}"):
        expected = call.args[0] if call.args else _keyword(call, "expected_exception")
        match = _keyword(call, "match")
        if expected is not None and _names(expected) & _BROAD:
            rank = 1
        else:
            rank = 3 if match is not None else 2
        conditions = 1
        operands = [match] if match is not None else []
    elif name == "approx" and dotted in ("approx", "pytest.approx"):
        rank, conditions, operands = 2, 1, [call]
    else:
        return None
    return Assertion(
        shape=ast.dump(call),
        family=name,
        rank=rank,
        conditions=conditions,
        literals=_literals(operands),
        tolerances=_tolerances(call),
        text=_short(ast.unparse(call)),
        defeated=defeated,
    )


def _method_rank(name: str, call: ast.Call) -> int:
    raising = ("assertRaises", "assertWarns", "assertRaisesRegex", "assertWarnsRegex")
    if name in raising and call.args and _names(call.args[0]) & _BROAD:
        return 1
    if name in _EXACT_METHODS:
        return 3
    if name in _WEAK_METHODS:
        return 1
    return 2


def _operands(name: str, call: ast.Call) -> list[ast.AST]:
    """What an assert call compares, without its message."""
    camel = len(name) > 6 and name[6].isupper()
    if not camel:
        count = len(call.args)
    elif name in _ONE_OPERAND:
        count = 1
    elif name in _THREE_OPERANDS:
        count = 3
    else:
        count = 2
    keywords = [kw.value for kw in call.keywords if kw.arg not in _MESSAGE_KEYWORDS]
    return [*call.args[:count], *keywords]


def _expression_rank(node: ast.expr) -> tuple[int, int]:
    """(rank, conditions) of what `assert` tests; see Assertion.rank."""
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.Or):
            return 1, 1
        parts = [_expression_rank(value) for value in node.values]
        return max(rank for rank, _ in parts), sum(count for _, count in parts)
    if isinstance(node, ast.Constant):
        # `assert False` always fails, which is as strict as it gets.
        return (0 if node.value else 3), 1
    if isinstance(node, ast.Compare):
        ranks = [
            _operator_rank(op, right) for op, right in zip(node.ops, node.comparators, strict=True)
        ]
        return max(ranks), len(ranks)
    if isinstance(node, ast.Call) and _last(node.func) in ("isinstance", "issubclass"):
        return 2, 1
    if isinstance(node, ast.Call) and _last(node.func) in _TOLERANCES:
        return 2, 1
    return 1, 1


def _operator_rank(op: ast.cmpop, right: ast.expr) -> int:
    if isinstance(op, ast.Eq | ast.Is):
        return 3
    if isinstance(op, ast.In | ast.Lt | ast.LtE | ast.Gt | ast.GtE):
        return 2
    # !=, is not (None), not in: rule out one value only.
    return 1


def _literals(nodes: Iterable[ast.AST]) -> tuple[str, ...]:
    found: list[str] = []
    skipped: set[int] = set()

    def walk(node: ast.AST) -> None:
        if id(node) in skipped:
            return
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
        ):
            found.append(ast.unparse(node))
            return
        if isinstance(node, ast.Constant):
            if node.value is not Ellipsis:
                found.append(repr(node.value))
            return
        if isinstance(node, ast.Call):
            # Tolerances are compared as tolerances, not as expected values.
            skipped.update(id(value) for _, value in _tolerance_arguments(node))
        for child in ast.iter_child_nodes(node):
            walk(child)

    for node in nodes:
        walk(node)
    return tuple(sorted(found))


def _tolerance_arguments(call: ast.Call) -> Iterator[tuple[str, ast.expr]]:
    for parameter, position, _, _ in _TOLERANCES.get(_last(call.func), ()):
        value = _keyword(call, parameter)
        if value is None and position is not None and len(call.args) > position:
            value = call.args[position]
        if value is not None:
            yield parameter, value


def _tolerances(node: ast.AST) -> tuple[Tolerance, ...]:
    found: list[Tolerance] = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call) or _last(call.func) not in _TOLERANCES:
            continue
        name = _last(call.func)
        given = dict(_tolerance_arguments(call))
        for parameter, _, default, larger in _TOLERANCES[name]:
            value: float | None = default
            if parameter in given:
                value = _number(given[parameter])
            elif name == "approx" and parameter == "rel" and "abs" in given:
                # pytest: with abs alone the relative tolerance is not considered.
                value = 0.0
            if value is not None and not math.isfinite(value):
                value = math.inf if larger else -math.inf
            found.append(Tolerance(f"{name}({parameter})", value, larger))
    return tuple(found)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
