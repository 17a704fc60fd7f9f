"""The assertions of one Python test or helper, read with `ast`: what each compares, how
strictly, and against which values.

Constants are resolved: `assert total() == EXPECTED` counts the literals of a module-level
`EXPECTED = 5` (likewise a class-level `self.EXPECTED`, or a name the test assigns once to
a literal), so changing the constant changes the expectation as editing the assertion
would. A fixture that returns a literal counts only where an assertion compares against
it directly (`assert add(2, 3) == expected`): elsewhere a fixture is the test's input, and
a fixture brought up to date (`return {"price": 12}` for a stale `10`) does not make a
test weaker. The replayed run with the original tests judges such a change.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from agentloop.rails.facts import Assertion, Tolerance

# `except*` (3.11+) swallows like `except`; mypy checks this package as 3.10.
_TRY: tuple[type[ast.Try], ...] = (ast.Try, getattr(ast, "TryStar", ast.Try))

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


@dataclass(frozen=True)
class Constants:
    """What the names an assertion reads stand for, when they stand for a literal."""

    # Bare names: module-level constants, and the test's own assigned once to a literal.
    names: Mapping[str, ast.expr] = field(default_factory=dict)
    # Class-level constants, read as `<owner>.NAME`.
    attributes: Mapping[str, ast.expr] = field(default_factory=dict)
    # What may stand for the class: `self`, `cls` and the enclosing classes' names.
    owners: frozenset[str] = frozenset()
    # Fixtures that return a literal: resolved only as a direct operand of a comparison.
    fixtures: Mapping[str, ast.expr] = field(default_factory=dict)


def assertions(body: Sequence[ast.stmt], constants: Constants) -> list[Assertion]:
    found: list[Assertion] = []
    returned = False
    for stmt in body:
        _collect(stmt, found, "after an early `return`" if returned else None, constants)
        returned = returned or isinstance(stmt, ast.Return)
    return found


# --- small readers shared with the other Python modules ---------------------------------


def last(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "…")
    return ".".join(reversed(parts))


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def number(node: ast.AST) -> float | None:
    """A numeric literal, also `-1`, `1e-6`, `10**-6`, `5 * 60`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = number(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = number(node.left), number(node.right)
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


def is_data(node: ast.AST) -> bool:
    """A value written out in the source: literals and containers of them, also holding
    `pytest.param(...)` cases. Names, calls and comprehensions are not data."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp | ast.BinOp):
        return number(node) is not None
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(is_data(elt) for elt in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or is_data(k) for k in node.keys) and all(map(is_data, node.values))
    if isinstance(node, ast.Call) and last(node.func) == "param":
        return all(map(is_data, node.args))
    return False


def target_names(target: ast.expr) -> Iterator[str]:
    """The names an assignment target binds: `a`, `a, (b, *c)`; not `a.b` or `a[0]`."""
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from target_names(element)
    elif isinstance(target, ast.Starred):
        yield from target_names(target.value)


def short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- finding the assertions -------------------------------------------------------------


def _collect(node: ast.AST, found: list[Assertion], defeated: str | None, c: Constants) -> None:
    if isinstance(node, _TRY):
        swallowing = "inside a try/except that swallows it"
        inner = defeated or (swallowing if any(map(_swallows, node.handlers)) else None)
        for stmt in node.body:
            _collect(stmt, found, inner, c)
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            _collect(part, found, defeated, c)
        return
    if isinstance(node, ast.With | ast.AsyncWith):
        for item in node.items:
            _collect(item.context_expr, found, defeated, c)
        suppressing = "inside a `suppress` that swallows it"
        inner = defeated or (
            suppressing if any(_suppresses(i.context_expr) for i in node.items) else None
        )
        for stmt in node.body:
            _collect(stmt, found, inner, c)
        return
    if isinstance(node, ast.Assert):
        found.append(_from_assert(node, defeated, c))
        return
    if isinstance(node, ast.Call) and (fact := _from_call(node, defeated, c)):
        found.append(fact)
        return
    for child in ast.iter_child_nodes(node):
        _collect(child, found, defeated, c)


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Tuple):
        return {last(elt) for elt in node.elts}
    return {last(node)}


def _swallows(handler: ast.ExceptHandler) -> bool:
    catches = handler.type is None or bool(_names(handler.type) & _SWALLOWED)
    return catches and not any(
        isinstance(node, ast.Raise) or (isinstance(node, ast.Call) and last(node.func) == "fail")
        for stmt in handler.body
        for node in ast.walk(stmt)
    )


def _suppresses(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and last(node.func) == "suppress"
        and any(_names(arg) & _SWALLOWED for arg in node.args)
    )


def _from_assert(node: ast.Assert, defeated: str | None, c: Constants) -> Assertion:
    rank, conditions = _expression_rank(node.test)
    return _assertion(
        node,
        shape=ast.dump(node.test),
        family="assert",
        rank=rank,
        conditions=conditions,
        operands=[node.test],
        direct=_direct(node.test),
        tolerances=_tolerances(node.test, c),
        text=f"assert {ast.unparse(node.test)}",
        defeated=defeated,
        constants=c,
    )


def _from_call(call: ast.Call, defeated: str | None, c: Constants) -> Assertion | None:
    name = last(call.func)
    path = dotted(call.func)
    operands: list[ast.expr]
    if name.startswith("assert"):
        rank, conditions = _method_rank(name, call), 1
        if name == "assertTrue" and call.args:
            rank, conditions = _expression_rank(call.args[0])
        operands = _operands(name, call)
    elif name in _RAISES and path in (name, f"pytest.{name}"):
        expected = call.args[0] if call.args else keyword(call, "expected_exception")
        match = keyword(call, "match")
        if expected is not None and _names(expected) & _BROAD:
            rank = 1
        else:
            rank = 3 if match is not None else 2
        conditions = 1
        operands = [match] if match is not None else []
    elif name == "approx" and path in ("approx", "pytest.approx"):
        rank, conditions, operands = 2, 1, [call]
    else:
        return None
    return _assertion(
        call,
        shape=ast.dump(call),
        family=name,
        rank=rank,
        conditions=conditions,
        operands=operands,
        direct=operands,
        tolerances=_tolerances(call, c),
        text=ast.unparse(call),
        defeated=defeated,
        constants=c,
    )


def _assertion(
    node: ast.AST,
    *,
    shape: str,
    family: str,
    rank: int,
    conditions: int,
    operands: Sequence[ast.expr],
    direct: Sequence[ast.expr],
    tolerances: tuple[Tolerance, ...],
    text: str,
    defeated: str | None,
    constants: Constants,
) -> Assertion:
    read = _references(operands, direct, constants)
    return Assertion(
        shape=shape,
        family=family,
        rank=rank,
        conditions=conditions,
        literals=tuple(sorted(_literals(operands) + _literals(read.values()))),
        tolerances=tolerances,
        text=short(text),
        defeated=defeated,
        constants=tuple(sorted((name, ast.unparse(value)) for name, value in read.items())),
    )


def _direct(test: ast.expr) -> list[ast.expr]:
    """The operands an `assert` compares: `a == b` gives a and b, `x and y` both sides'."""
    if isinstance(test, ast.Compare):
        return [test.left, *test.comparators]
    if isinstance(test, ast.BoolOp):
        return [operand for value in test.values for operand in _direct(value)]
    return [test]


def _references(
    operands: Iterable[ast.AST], direct: Iterable[ast.AST], c: Constants
) -> dict[str, ast.expr]:
    found: dict[str, ast.expr] = {}
    skipped: set[int] = set()

    def walk(node: ast.AST) -> None:
        if id(node) in skipped:
            return
        if isinstance(node, ast.Name) and node.id in c.names:
            found[node.id] = c.names[node.id]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in c.owners
            and node.attr in c.attributes
        ):
            found[f"{node.value.id}.{node.attr}"] = c.attributes[node.attr]
        if isinstance(node, ast.Call):
            skipped.update(id(value) for _, value in _tolerance_arguments(node))
        for child in ast.iter_child_nodes(node):
            walk(child)

    for node in operands:
        walk(node)
    for node in direct:
        if isinstance(node, ast.Name) and node.id in c.fixtures:
            found[node.id] = c.fixtures[node.id]
    return found


def _method_rank(name: str, call: ast.Call) -> int:
    raising = ("assertRaises", "assertWarns", "assertRaisesRegex", "assertWarnsRegex")
    if name in raising and call.args and _names(call.args[0]) & _BROAD:
        return 1
    if name in _EXACT_METHODS:
        return 3
    if name in _WEAK_METHODS:
        return 1
    return 2


def _operands(name: str, call: ast.Call) -> list[ast.expr]:
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
    if isinstance(node, ast.Call) and last(node.func) in ("isinstance", "issubclass"):
        return 2, 1
    if isinstance(node, ast.Call) and last(node.func) in _TOLERANCES:
        return 2, 1
    return 1, 1


def _operator_rank(op: ast.cmpop, right: ast.expr) -> int:
    if isinstance(op, ast.Eq | ast.Is):
        return 3
    if isinstance(op, ast.In | ast.Lt | ast.LtE | ast.Gt | ast.GtE):
        return 2
    # !=, is not (None), not in: rule out one value only.
    return 1


def _literals(nodes: Iterable[ast.AST]) -> list[str]:
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
    return found


def _tolerance_arguments(call: ast.Call) -> Iterator[tuple[str, ast.expr]]:
    for parameter, position, _, _ in _TOLERANCES.get(last(call.func), ()):
        value = keyword(call, parameter)
        if value is None and position is not None and len(call.args) > position:
            value = call.args[position]
        if value is not None:
            yield parameter, value


def _resolved(node: ast.expr, c: Constants) -> ast.expr:
    if isinstance(node, ast.Name) and node.id in c.names:
        return c.names[node.id]
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in c.owners
    ):
        return c.attributes.get(node.attr, node)
    return node


def _tolerances(node: ast.AST, c: Constants) -> tuple[Tolerance, ...]:
    found: list[Tolerance] = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call) or last(call.func) not in _TOLERANCES:
            continue
        name = last(call.func)
        given = dict(_tolerance_arguments(call))
        for parameter, _, default, larger in _TOLERANCES[name]:
            value: float | None = default
            if parameter in given:
                value = number(_resolved(given[parameter], c))
            elif name == "approx" and parameter == "rel" and "abs" in given:
                # pytest: with abs alone the relative tolerance is not considered.
                value = 0.0
            if value is not None and not math.isfinite(value):
                value = math.inf if larger else -math.inf
            found.append(Tolerance(f"{name}({parameter})", value, larger))
    return tuple(found)
