"""Facts about a Python test file, read with `ast` so that formatting never matters.

Tests are what pytest collects by default: `test*` functions at module level and `test*`
methods of `Test*` classes without an `__init__`, or of unittest's TestCase subclasses.
A test that stops matching these rules (a class renamed to `Cart`, `__test__ = False`,
`@pytest.fixture` on a test) carries a "hidden" marker. A name bound twice in one scope
keeps its last binding, as Python does: the tests a later `def`, class, assignment or
`del` replaced are listed in `FileFacts.shadowed`. Assertions are read by
`python_assertions`, which also resolves the constants they compare against.

What this reader cannot see:
- inputs changed outside the assertion that are no literal constant (a fixture returning
  other data, a changed helper), and constants imported from another module;
- skips through an alias (`from unittest import skip as later`), and hypothesis settings
  (`deadline=None`, fewer `max_examples`); deselection in hooks or configuration is
  `python_patches`' and `testinfra`'s;
- tests defined under an `if`/`try` at module level, and a custom `python_classes` or
  `python_functions` (a change to those is flagged by `testinfra`);
- unreachable assertions other than after a top-level `return` or inside a swallowing
  `try`/`suppress` (`if False:` hides one from it).
An assertion moved from a test into a helper reads as removed from the test: a false
positive on the safe side.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

from agentloop.rails.facts import FileFacts, FunctionFacts, Marker, MarkerKind, Timeout
from agentloop.rails.python_assertions import (
    Constants,
    assertions,
    dotted,
    is_data,
    keyword,
    last,
    number,
    target_names,
)

_Function = ast.FunctionDef | ast.AsyncFunctionDef

_SKIP = frozenset(
    {"skip", "skipif", "xfail", "skipIf", "skipUnless", "expectedFailure", "SkipTest"}
    | {"skipTest", "importorskip"}
)
_RETRY = frozenset({"flaky"})
# Positional strings of these are reasons: a reworded reason is the same skip.
_REASON_FIRST = frozenset({"skip", "skipTest", "SkipTest", "xfail", "expectedFailure"})
_MESSAGE_KEYWORDS = frozenset({"msg", "err_msg", "reason"})

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
        reader = _Reader(tree)
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
    if _switched_off(tree.body, "__test__"):
        module_markers += (Marker("hidden", "the module sets `__test__ = False`", ""),)
    module_timeout = _timeout_of(_pytestmark(tree.body))
    tests = tuple(
        test if test.timeout is not None else replace(test, timeout=module_timeout)
        for test in reader.tests.values()
    )
    return replace(
        counted,
        tests=tests,
        helpers=tuple(reader.helpers.values()),
        markers=module_markers,
        shadowed=tuple(reader.shadowed),
    )


class _Reader:
    def __init__(self, tree: ast.Module) -> None:
        # Dicts keyed by qualified name: a redefinition replaces, as at import time.
        self.tests: dict[str, FunctionFacts] = {}
        self.helpers: dict[str, FunctionFacts] = {}
        self.module_nodes: list[ast.AST] = []
        self.shadowed: list[tuple[str, str]] = []
        declared = {
            name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names
        }
        self.constants = {k: v for k, v in _constants(tree.body).items() if k not in declared}
        self.fixtures = _literal_fixtures(tree.body)
        # Classes of this file that unittest collects, whatever their name.
        self.test_cases: set[str] = set()
        # Classes read for tests, by qualified name.
        self.test_classes: set[str] = set()

    def read_scope(
        self,
        body: Sequence[ast.stmt],
        *,
        classes: tuple[str, ...],
        class_markers: tuple[Marker, ...],
        class_timeouts: tuple[Timeout, ...],
        class_constants: Mapping[str, ast.expr] | None = None,
    ) -> None:
        attributes = class_constants or {}
        for node in body:
            for name, how in _bindings(node):
                self._rebind(".".join((*classes, name)), how)
            if isinstance(node, _Function) and node.name.startswith("test"):
                name = ".".join((*classes, node.name))
                constants = self._constants_for(node, classes, attributes)
                self.tests[name] = _test(node, name, class_markers, class_timeouts, constants)
            elif isinstance(node, ast.ClassDef) and _holds_tests(node):
                qualified = ".".join((*classes, node.name))
                self.test_classes.add(qualified)
                own = [*node.decorator_list, *_class_level(node)]
                markers = (*class_markers, *_markers(own, origin=qualified))
                why = self._uncollected(node)
                if why is not None:
                    markers += (Marker("hidden", why, qualified),)
                self.read_scope(
                    node.body,
                    classes=(*classes, node.name),
                    class_markers=markers,
                    class_timeouts=(
                        _timeout_of([*node.decorator_list, *_pytestmark(node.body)]),
                        *class_timeouts,
                    ),
                    class_constants={**attributes, **_constants(node.body)},
                )
            else:
                if not classes:
                    self.module_nodes.append(node)
                if isinstance(node, _Function):
                    name = ".".join((*classes, node.name))
                    constants = self._constants_for(node, classes, attributes)
                    self.helpers[name] = _helper(node, name, constants)
        for name in _switched_off(body, None):
            qualified = ".".join((*classes, name))
            test = self.tests.get(qualified)
            if test is not None:
                hidden = Marker("hidden", f"`{name}.__test__ = False`", None)
                self.tests[qualified] = replace(test, markers=(*test.markers, hidden))

    def _rebind(self, qualified: str, how: str) -> None:
        """A name bound again in its scope: the tests under the old binding are gone."""
        gone = [qualified] if qualified in self.tests else []
        if qualified in self.test_classes:
            gone += [n for n in self.tests if n.startswith(qualified + ".")]
        for name in gone:
            del self.tests[name]
            self.shadowed.append((name, how))

    def _uncollected(self, node: ast.ClassDef) -> str | None:
        """Why pytest would not collect this class's tests, None when it would."""
        if _switched_off(node.body, "__test__"):
            return f"class `{node.name}` sets `__test__ = False`"
        if any("TestCase" in last(base) or last(base) in self.test_cases for base in node.bases):
            self.test_cases.add(node.name)
            return None
        if not node.name.startswith("Test"):
            return f"class `{node.name}` is not named `Test*`"
        init = next(
            (c.name for c in node.body if isinstance(c, _Function) and c.name in _CONSTRUCTORS),
            None,
        )
        return f"class `{node.name}` has an `{init}`" if init else None

    def _constants_for(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        classes: tuple[str, ...],
        attributes: Mapping[str, ast.expr],
    ) -> Constants:
        stored = Counter(_stored(node))
        names = {k: v for k, v in self.constants.items() if k not in stored}
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stored[stmt.targets[0].id] == 1
                and is_data(stmt.value)
            ):
                names[stmt.targets[0].id] = stmt.value
        parameters = {
            a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
        }
        return Constants(
            names=names,
            attributes=attributes if classes else {},
            owners=frozenset({"self", "cls", *classes}) if classes else frozenset(),
            fixtures={k: v for k, v in self.fixtures.items() if k in parameters},
        )


_CONSTRUCTORS = frozenset({"__init__", "__new__"})


def _bindings(node: ast.stmt) -> Iterator[tuple[str, str]]:
    """The names a statement binds in its own scope, with how, for `FileFacts.shadowed`."""
    line = getattr(node, "lineno", "?")
    if isinstance(node, _Function):
        yield node.name, f"defined again on line {line}"
    elif isinstance(node, ast.ClassDef):
        yield node.name, f"replaced by a class on line {line}"
    elif isinstance(node, ast.Assign | ast.AnnAssign | ast.Delete):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        if isinstance(node, ast.AnnAssign) and node.value is None:
            return
        how = "deleted" if isinstance(node, ast.Delete) else "assigned over"
        for target in targets:
            for name in target_names(target):
                yield name, f"{how} on line {line}"
    elif isinstance(node, ast.Import | ast.ImportFrom):
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            yield bound, f"replaced by an import on line {line}"


def _stored(node: ast.AST) -> Iterator[str]:
    """Names a function binds: its parameters and what it assigns."""
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store | ast.Del):
            yield child.id
        elif isinstance(child, ast.arg):
            yield child.arg


def _constants(body: Sequence[ast.stmt]) -> dict[str, ast.expr]:
    """Names a module or class body assigns once, to data (`EXPECTED = 5`)."""
    bound = Counter(name for stmt in body for name, _ in _bindings(stmt))
    bound.update(
        stmt.target.id
        for stmt in body
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name)
    )
    found: dict[str, ast.expr] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and bound[target.id] == 1 and is_data(value):
                found[target.id] = value
    return found


def _literal_fixtures(body: Sequence[ast.stmt]) -> dict[str, ast.expr]:
    """Module-level fixtures whose body returns a literal: `def expected(): return 5`."""
    found: dict[str, ast.expr] = {}
    for node in body:
        if not isinstance(node, _Function):
            continue
        fixture = next((d for d in node.decorator_list if _is_fixture(d)), None)
        statements = [s for s in node.body if not _is_docstring(s)]
        if fixture is None or len(statements) != 1:
            continue
        (stmt,) = statements
        if isinstance(stmt, ast.Return) and stmt.value is not None and is_data(stmt.value):
            renamed = keyword(fixture, "name") if isinstance(fixture, ast.Call) else None
            name = node.name
            if isinstance(renamed, ast.Constant) and isinstance(renamed.value, str):
                name = renamed.value
            found[name] = stmt.value
    return found


def _is_fixture(decorator: ast.expr) -> bool:
    return last(decorator.func if isinstance(decorator, ast.Call) else decorator) == "fixture"


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _switched_off(body: Sequence[ast.stmt], attribute: str | None) -> list[str]:
    """With "__test__": whether the body sets `__test__ = False` (returns ["__test__"]).
    With None: the names whose `__test__` attribute the body sets false
    (`test_x.__test__ = False`)."""
    found: list[str] = []
    for stmt in body:
        if not isinstance(stmt, ast.Assign):
            continue
        if not (isinstance(stmt.value, ast.Constant) and not stmt.value.value):
            continue
        for target in stmt.targets:
            if attribute is not None and isinstance(target, ast.Name) and target.id == attribute:
                found.append(attribute)
            elif (
                attribute is None
                and isinstance(target, ast.Attribute)
                and target.attr == "__test__"
                and isinstance(target.value, ast.Name)
            ):
                found.append(target.value.id)
    return found


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
    constants: Constants,
) -> FunctionFacts:
    # The innermost timeout wins: the test's own, then its classes' (inner first).
    own_timeout = _timeout_of(node.decorator_list)
    timeout = next((t for t in (own_timeout, *class_timeouts) if t is not None), None)
    markers = [*class_markers, *_markers([*node.decorator_list, *node.body], origin=None)]
    if any(map(_is_fixture, node.decorator_list)):
        # pytest collects a fixture as a fixture, never as a test.
        markers.append(Marker("hidden", f"`{node.name}` is decorated as a fixture"))
    return FunctionFacts(
        name=name,
        leaf=node.name,
        shape="".join(ast.dump(stmt) for stmt in node.body),
        assertions=tuple(assertions(node.body, constants)),
        empty=_is_empty(node.body),
        markers=tuple(markers),
        timeout=timeout,
        cases=_cases(node.decorator_list, constants.names),
        table=tuple(_table(node.decorator_list, constants.names)),
    )


def _helper(
    node: ast.FunctionDef | ast.AsyncFunctionDef, name: str, constants: Constants
) -> FunctionFacts:
    return FunctionFacts(
        name=name,
        leaf=node.name,
        shape="",
        assertions=tuple(assertions(node.body, constants)),
        empty=False,
        markers=(),
        timeout=None,
        cases=1,
    )


def _is_empty(body: Sequence[ast.stmt]) -> bool:
    """Only `pass`, `...`, a docstring or a bare `return`."""
    return all(
        isinstance(stmt, ast.Pass)
        or _is_docstring(stmt)
        or (isinstance(stmt, ast.Return) and stmt.value is None)
        for stmt in body
    )


# --- skips, retries, timeouts, parametrize -------------------------------------------


def _marker_kind(node: ast.AST) -> MarkerKind | None:
    name = last(node)
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
        yield Marker(kind, dotted(node), origin)
        return
    for child in ast.iter_child_nodes(node):
        yield from _markers_in(child, origin)


def _call_identity(call: ast.Call) -> str:
    name = last(call.func)
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
    return f"{dotted(call.func)}({', '.join(args)})"


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
                and last(call.func) == "timeout"
                and "mark" in dotted(call.func).split(".")
            ):
                value = call.args[0] if call.args else keyword(call, "timeout")
                if value is None:
                    return None
                seconds = number(value)
                return seconds if seconds is not None else ast.unparse(value)
    return None


def _argvalues(
    decorators: Sequence[ast.expr], constants: Mapping[str, ast.expr]
) -> Iterator[ast.expr | None]:
    """The argvalues of each `parametrize`, None when it is not a literal list (or a
    constant holding one)."""
    for decorator in decorators:
        if isinstance(decorator, ast.Call) and last(decorator.func) == "parametrize":
            values = decorator.args[1] if len(decorator.args) > 1 else None
            values = values or keyword(decorator, "argvalues")
            if isinstance(values, ast.Name):
                values = constants.get(values.id, values)
            yield values if isinstance(values, ast.List | ast.Tuple | ast.Set) else None


def _cases(decorators: Sequence[ast.expr], constants: Mapping[str, ast.expr]) -> int | None:
    cases = 1
    for values in _argvalues(decorators, constants):
        if not isinstance(values, ast.List | ast.Tuple | ast.Set):
            return None
        cases *= len(values.elts)
    return cases


def _table(decorators: Sequence[ast.expr], constants: Mapping[str, ast.expr]) -> Iterator[str]:
    for values in _argvalues(decorators, constants):
        if isinstance(values, ast.List | ast.Tuple | ast.Set):
            yield from (_case(case) for case in values.elts)


def _case(case: ast.expr) -> str:
    """A case's values; `pytest.param`'s marks and id are not values (a skip among the
    marks is found as a marker)."""
    if isinstance(case, ast.Call) and last(case.func) == "param":
        if len(case.args) == 1:
            return ast.dump(case.args[0])
        return ast.dump(ast.Tuple(elts=case.args, ctx=ast.Load()))
    return ast.dump(case)
