"""What a Python file of the test surface (a test module, a conftest.py, a helper under
tests/) does besides asserting: patch the code under test, change pytest's hooks and
plugins, deselect tests, end the run. Read with `ast`; only what the change adds counts.

Whose code a patch replaces is decided from the file's own imports, for a name, or from
the dotted path, for a string target (`"calc.ops.add"`):
- the project's, when the module is imported relatively (`from . import ops`) or its top
  package is neither in the standard library (`sys.stdlib_module_names`), nor one of a
  few third-party libraries tests commonly fake (HTTP clients, cloud SDKs, database
  drivers: `_THIRD_PARTY`), nor the tests' own modules (`tests`, `conftest`, `test_*`).
  Without the environment this cannot tell any other third-party package from the
  project's: it counts as the project's, on the safe side;
- the test runner's, for `pytest`, `_pytest`, `pluggy` and `unittest` (not
  `unittest.mock`), and for unittest's own assertion methods overridden in a class or on
  `self` (`self.assertEqual = ...`).
A patch is: an assignment or `del` on an attribute or item of such a name (`ops.add = f`,
`o.__dict__["add"] = f`, `sys.modules["calc.ops"] = fake`), rebinding an imported name in
the test module (`add = lambda a, b: 3` after `from calc.ops import add`), `setattr`,
any `<x>.setattr/delattr/setitem/delitem` (monkeypatch and the like), `mock.patch`,
`patch.object`, `patch.multiple`, `patch.dict`, and changes to the import path or
machinery (`sys.path`, `sys.meta_path`, `syspath_prepend`, `site.addsitedir`,
`builtins.__import__`).

What it cannot see: a patch through a name it cannot follow (a fixture's return value, a
`getattr` chain, `exec`), of a standard-library function the code under test calls
(`builtins.sum`), or an instance's method replaced (`cart.total = lambda: 3`).
"""

from __future__ import annotations

import ast
import sys
import unittest
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from agentloop.rails.facts import Finding, IntegrityKind
from agentloop.rails.python_assertions import dotted, keyword, last, short, target_names

_Function = ast.FunctionDef | ast.AsyncFunctionDef
_Scope = dict[str, str | None]

_THIRD_PARTY = frozenset(
    {"requests", "httpx", "urllib3", "aiohttp", "boto3", "botocore", "redis", "pymongo"}
    | {"psycopg", "psycopg2", "sqlalchemy", "grpc", "stripe", "openai", "anthropic", "mock"}
)
_RUNNER = frozenset({"pytest", "_pytest", "pluggy"})
_OWN_TESTS = frozenset({"tests", "test", "testing", "conftest"})
# unittest's assertion and control methods: replacing one turns its checks off.
_UNITTEST_METHODS = frozenset(
    name
    for name in dir(unittest.TestCase)
    if name.startswith(("assert", "fail")) or name in ("run", "debug", "__call__")
)
_EXITS = frozenset(
    {"os._exit", "sys.exit", "exit", "quit", "pytest.exit", "_pytest.outcomes.exit"}
    | {"os.abort", "os.kill", "os.killpg", "signal.raise_signal"}
)
_MONKEYPATCH = frozenset({"setattr", "delattr", "setitem", "delitem"})
_PATH_CHANGES = frozenset({"insert", "append", "extend", "__setitem__"})
_IMPORTERS = frozenset({"importlib.import_module", "import_module", "__import__"})
# Replacing one of these hands the tests whatever module it likes.
_IMPORT_MACHINERY = frozenset(
    {"builtins.__import__", "importlib.import_module", "importlib.__import__"}
)
_IGNORES = ("collect_ignore", "collect_ignore_glob")
_STAND_INS = frozenset(
    {"Mock", "MagicMock", "AsyncMock", "NonCallableMock", "create_autospec", "partial"}
)


@dataclass(frozen=True)
class _Hazard:
    kind: IntegrityKind
    # Formatting-independent: the same patch written differently is the same patch.
    identity: str
    detail: str
    # The test a patch is undone after (monkeypatch, mocker, `@patch`, `with patch(...)`
    # in or on the test itself); None when it outlives its test.
    test: str | None = None


@dataclass(frozen=True)
class _Surface:
    hazards: tuple[_Hazard, ...]
    # `pytest_*` functions (plugin classes' methods too), qualified name -> body.
    hooks: Mapping[str, str]
    # What `collect_ignore` and `collect_ignore_glob` hold: each literal entry, or the
    # dump of a statement that builds them otherwise.
    ignored: tuple[str, ...]
    plugins: tuple[str, ...]
    # The file's test functions, by qualified name.
    tests: frozenset[str] = frozenset()


def _surface(source: str) -> _Surface | None:
    """None when the file does not parse (the test reader reports that)."""
    try:
        tree = ast.parse(source.removeprefix("\ufeff"))
        scanner = _Scanner(tree)
        scanner.scan(tree.body, [scanner.module])
        return _Surface(
            hazards=tuple(scanner.hazards),
            hooks=dict(_hooks(tree.body, "")),
            ignored=tuple(_ignored(tree.body)),
            plugins=tuple(
                ast.dump(stmt) for stmt in tree.body if "pytest_plugins" in _assigned_names(stmt)
            ),
            tests=frozenset(scanner.tests),
        )
    except (SyntaxError, ValueError, RecursionError):
        return None


def python_surface_findings(before: str | None, after: str | None) -> list[Finding]:
    new = _surface(after) if after is not None else None
    if new is None:
        return []
    old = (_surface(before) if before is not None else None) or _Surface((), {}, (), ())
    found: list[Finding] = []
    known = Counter(hazard.identity for hazard in old.hazards)
    for hazard in new.hazards:
        if known[hazard.identity] > 0:
            known[hazard.identity] -= 1
        elif hazard.test is None or hazard.test in old.tests:
            # A new test may mock what it likes for itself: undone when it ends, the
            # patch reaches no other test.
            found.append(Finding(hazard.kind, hazard.detail))
    for name in sorted({*old.hooks, *new.hooks}):
        if old.hooks.get(name) == new.hooks.get(name):
            continue
        how = "changed"
        if name not in old.hooks:
            how = "added"
        elif name not in new.hooks:
            how = "removed"
        found.append(Finding("hooks_changed", f"changes pytest's hooks: `{name}` {how}"))
    if new.plugins != old.plugins:
        found.append(Finding("hooks_changed", "changes `pytest_plugins`: other plugins load"))
    added = sorted(set(new.ignored) - set(old.ignored))
    if added:
        shown = ", ".join(f"`{short(entry, 60)}`" for entry in added[:3])
        found.append(Finding("tests_deselected", f"`collect_ignore` now leaves out {shown}"))
    return found


class _Scanner:
    """Walks the module once, following which names stand for which imported modules."""

    def __init__(self, tree: ast.Module) -> None:
        self.hazards: list[_Hazard] = []
        self.tests: set[str] = set()
        self.module: _Scope = {}
        # Where the scan is: the enclosing classes and functions, and the test function
        # (if any) with what it patches through that is undone when it ends: its
        # parameters (`monkeypatch`, `mocker`), `with ... as m` names, and the patch calls
        # that decorate it or open a `with`.
        self.classes: list[str] = []
        self.depth = 0
        self.test: str | None = None
        self.receivers: set[str] = set()
        self.scoped: set[int] = set()
        # Imports and assignments anywhere at module level (under `if`/`try` too).
        for node in _nested(tree.body):
            self._bind(node, [self.module], self.module)

    def scan(self, body: Sequence[ast.AST], scopes: list[_Scope], test_case: bool = False) -> None:
        for node in body:
            if isinstance(node, ast.stmt):
                self._statement(node, scopes, test_case)
            elif isinstance(node, ast.expr):
                self._expression(node, scopes)
            else:
                # except handlers, match cases, comprehensions' parts
                self.scan(list(ast.iter_child_nodes(node)), scopes, test_case)

    def _statement(self, stmt: ast.stmt, scopes: list[_Scope], test_case: bool) -> None:
        if isinstance(stmt, _Function):
            self._function(stmt, scopes, test_case)
            return
        if isinstance(stmt, ast.ClassDef):
            self._rebinding(stmt.name, stmt, scopes)
            self.scan([*stmt.decorator_list, *stmt.bases], scopes)
            unittest_class = any("TestCase" in last(base) for base in stmt.bases)
            if unittest_class:
                for child in stmt.body:
                    if isinstance(child, _Function) and child.name in _UNITTEST_METHODS:
                        self._add_runner(f"unittest.TestCase.{child.name}", child, "overrides")
            self.classes.append(stmt.name)
            # Methods see the module's names, not the class body's.
            self.scan(stmt.body, scopes, unittest_class)
            self.classes.pop()
            return
        if isinstance(stmt, ast.With | ast.AsyncWith) and self.test is not None:
            for item in stmt.items:
                self.scoped.add(id(item.context_expr))
                if item.optional_vars is not None:
                    self.receivers.update(target_names(item.optional_vars))
        if isinstance(stmt, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = stmt.targets if isinstance(stmt, ast.Assign | ast.Delete) else [stmt.target]
            for target in targets:
                self._target(target, stmt, scopes, test_case)
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            raised = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            if last(raised) == "SystemExit":
                self._add_exit(stmt)
        self.scan(list(ast.iter_child_nodes(stmt)), scopes, test_case)

    def _function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, scopes: list[_Scope], test_case: bool
    ) -> None:
        self._rebinding(node.name, node, scopes)
        parameters = [
            a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
        ]
        saved = (self.test, self.receivers, self.scoped)
        if self.depth == 0 and node.name.startswith("test"):
            self.test = ".".join((*self.classes, node.name))
            self.tests.add(self.test)
            self.receivers = set(parameters)
            self.scoped = {id(decorator) for decorator in node.decorator_list}
        self.scan([*node.decorator_list, *_defaults(node.args)], scopes)
        local: _Scope = dict.fromkeys(parameters)
        for child in _nested(node.body):
            self._bind(child, [*scopes, local], local)
        self.depth += 1
        self.scan(node.body, [*scopes, local], test_case)
        self.depth -= 1
        self.test, self.receivers, self.scoped = saved

    def _undone(self, call: ast.Call) -> bool:
        """Whether a patch made by this call is undone when the test being read ends."""
        if self.test is None:
            return False
        return id(call) in self.scoped or dotted(call.func).split(".")[0] in self.receivers

    def _expression(self, node: ast.expr, scopes: list[_Scope]) -> None:
        for call in ast.walk(node):
            if isinstance(call, ast.Call):
                self._call(call, scopes)

    # --- what a statement or call does ---------------------------------------------

    def _target(
        self, target: ast.expr, stmt: ast.stmt, scopes: list[_Scope], test_case: bool
    ) -> None:
        if isinstance(target, ast.Tuple | ast.List | ast.Starred):
            for element in ast.iter_child_nodes(target):
                if isinstance(element, ast.expr):
                    self._target(element, stmt, scopes, test_case)
        elif isinstance(target, ast.Attribute):
            owner = self._resolve(target.value, scopes)
            if dotted(target) in ("sys.path", "sys.meta_path", "sys.path_hooks"):
                self._add_path(stmt)
            elif owner is not None:
                self._add(f"{owner}.{target.attr}", stmt, "replaces")
            elif test_case and last(target.value) == "self" and target.attr in _UNITTEST_METHODS:
                self._add_runner(f"unittest.TestCase.{target.attr}", stmt, "replaces")
        elif isinstance(target, ast.Subscript):
            self._item(target.value, target.slice, stmt, scopes)
        elif isinstance(target, ast.Name) and isinstance(stmt, ast.Assign | ast.AnnAssign):
            self._rebinding(target.id, stmt, scopes)

    def _item(self, mapping: ast.expr, key: ast.expr, node: ast.AST, scopes: list[_Scope]) -> None:
        text = _string(key)
        if dotted(mapping) == "sys.modules":
            if text is not None:
                self._add(text, node, "replaces the module")
            return
        if dotted(mapping) in ("sys.path", "sys.meta_path", "sys.path_hooks"):
            self._add_path(node)
            return
        if isinstance(mapping, ast.Attribute) and mapping.attr == "__dict__":
            owner = self._resolve(mapping.value, scopes)
        elif isinstance(mapping, ast.Call) and last(mapping.func) == "vars" and mapping.args:
            owner = self._resolve(mapping.args[0], scopes)
        else:
            owner = self._resolve(mapping, scopes)
            if owner is not None:
                self._add(f"{owner}[{ast.unparse(key)}]", node, "changes")
            return
        if owner is not None and text is not None:
            self._add(f"{owner}.{text}", node, "replaces")

    def _rebinding(self, name: str, node: ast.AST, scopes: list[_Scope]) -> None:
        """A name that stands for imported project code, bound again: the tests then call
        the new one. At module level any new binding counts; in a function a local that
        merely shares the name (`total = compute()`) does not, a stand-in does (`def`,
        `lambda`, a `Mock`)."""
        value = getattr(node, "value", None)
        if isinstance(value, ast.expr) and self._resolve(value, scopes) is not None:
            # An alias of imported code (`o = ops`), not a replacement.
            return
        if len(scopes) > 1 and not (
            isinstance(node, _Function | ast.ClassDef) or _stands_in(value)
        ):
            return
        origin = next((s[name] for s in reversed(scopes) if s.get(name) is not None), None)
        if origin is not None and _owner(origin) == "project":
            detail = (
                f"patches the code under test: `{_text(node)}` replaces `{origin}` "
                "for the tests of this module"
            )
            identity = f"rebind:{origin}:{ast.dump(node)}"
            self.hazards.append(_Hazard("code_under_test_patched", identity, detail))

    def _call(self, call: ast.Call, scopes: list[_Scope]) -> None:
        name = dotted(call.func)
        full = self._resolve(call.func, scopes) or name
        args = call.args
        if (full in _EXITS or name in _EXITS) and _ends_this_process(full, call):
            self._add_exit(call)
        elif isinstance(call.func, ast.Name) and name in ("setattr", "delattr") and args:
            owner = self._resolve(args[0], scopes)
            attribute = _string(args[1]) if len(args) > 1 else None
            if owner is not None and attribute is not None:
                self._add(f"{owner}.{attribute}", call, "replaces")
        elif isinstance(call.func, ast.Attribute) and call.func.attr in _MONKEYPATCH and args:
            self._monkeypatch(call, call.func.attr, scopes)
        elif _is_patch(full):
            self._patch(call, full, scopes)
        elif (
            isinstance(call.func, ast.Attribute)
            and dotted(call.func.value) in ("sys.path", "sys.meta_path", "sys.path_hooks")
            and call.func.attr in _PATH_CHANGES
        ) or last(call.func) in ("syspath_prepend", "addsitedir"):
            self._add_path(call)

    def _monkeypatch(self, call: ast.Call, method: str, scopes: list[_Scope]) -> None:
        first, args = call.args[0], call.args
        if method in ("setitem", "delitem"):
            if len(args) > 1:
                self._item(first, args[1], call, scopes)
            return
        text = _string(first)
        if text is not None and _is_dotted(text):
            self._add(text, call, "replaces")
            return
        owner = self._resolve(first, scopes)
        attribute = _string(args[1]) if len(args) > 1 else None
        if owner is not None and attribute is not None:
            self._add(f"{owner}.{attribute}", call, "replaces")

    def _patch(self, call: ast.Call, full: str, scopes: list[_Scope]) -> None:
        """`mock.patch` and its `.object`, `.multiple` and `.dict` forms."""
        args = call.args
        form = full.rsplit(".", 1)[-1]
        first = args[0] if args else keyword(call, "target") or keyword(call, "in_dict")
        if first is None:
            return
        text = _string(first)
        if form == "object":
            owner = self._resolve(first, scopes)
            attribute = _string(args[1]) if len(args) > 1 else None
            if owner is not None and attribute is not None:
                self._add(f"{owner}.{attribute}", call, "patches")
        elif form == "multiple":
            owner = text if text is not None else self._resolve(first, scopes)
            for kw in call.keywords:
                if owner is not None and kw.arg is not None:
                    self._add(f"{owner}.{kw.arg}", call, "patches")
        elif form == "dict":
            values = args[1] if len(args) > 1 else None
            if dotted(first) == "sys.modules" and isinstance(values, ast.Dict):
                for key in values.keys:
                    module = _string(key) if key is not None else None
                    if module is not None:
                        self._add(module, call, "replaces the module")
            else:
                owner = text if text is not None else self._resolve(first, scopes)
                if owner is not None:
                    self._add(owner, call, "patches")
        elif text is not None and _is_dotted(text):
            self._add(text, call, "patches")

    # --- recording ------------------------------------------------------------------

    def _add(self, target: str, node: ast.AST, verb: str) -> None:
        if target in _IMPORT_MACHINERY:
            self._add_path(node)
            return
        owner = _owner(target)
        if owner == "runner":
            self._add_runner(target, node, verb)
        elif owner == "project":
            detail = f"patches the code under test: `{_text(node)}` {verb} `{target}`"
            identity = f"{target}:{ast.dump(node)}"
            undone = isinstance(node, ast.Call) and self._undone(node)
            self.hazards.append(
                _Hazard("code_under_test_patched", identity, detail, self.test if undone else None)
            )

    def _add_runner(self, target: str, node: ast.AST, verb: str) -> None:
        detail = f"patches the test runner: `{_text(node)}` {verb} `{target}`"
        self.hazards.append(_Hazard("hooks_changed", f"{target}:{ast.dump(node)}", detail))

    def _add_exit(self, node: ast.AST) -> None:
        detail = f"`{_text(node)}` added: it ends the run before pytest reports a failure"
        self.hazards.append(_Hazard("exit_added", f"exit:{ast.dump(node)}", detail))

    def _add_path(self, node: ast.AST) -> None:
        detail = (
            f"changes where the tests import code from: `{_text(node)}` (a module found "
            "there first replaces the project's)"
        )
        self.hazards.append(_Hazard("code_under_test_patched", f"path:{ast.dump(node)}", detail))

    # --- names ----------------------------------------------------------------------

    def _bind(self, node: ast.stmt, scopes: list[_Scope], into: _Scope) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                into[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name != "*":
                    joined = (
                        module + alias.name if module.endswith(".") else f"{module}.{alias.name}"
                    )
                    into[alias.asname or alias.name] = joined
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = self._resolve(node.value, scopes)
            for target in targets:
                for name in target_names(target):
                    # A later plain value does not hide that the name held project code.
                    if value is not None or name not in into:
                        into[name] = value
        elif isinstance(node, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            targets = (
                [node.target]
                if isinstance(node, ast.For | ast.AsyncFor)
                else [i.optional_vars for i in node.items if i.optional_vars is not None]
            )
            for target in targets:
                for name in target_names(target):
                    into.setdefault(name, None)

    def _resolve(self, node: ast.expr, scopes: list[_Scope]) -> str | None:
        """The dotted path of the module or object `node` stands for, when it comes from an
        import (`ops` -> "calc.ops", `ops.Cart` -> "calc.ops.Cart"); None otherwise."""
        if isinstance(node, ast.Name):
            return next((s[node.id] for s in reversed(scopes) if node.id in s), None)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value, scopes)
            return f"{base}.{node.attr}" if base is not None else None
        if isinstance(node, ast.Call) and dotted(node.func) in _IMPORTERS and node.args:
            return _string(node.args[0])
        if isinstance(node, ast.Subscript) and dotted(node.value) == "sys.modules":
            return _string(node.slice)
        return None


def _hooks(body: Sequence[ast.stmt], prefix: str) -> Iterator[tuple[str, str]]:
    """`pytest_*` functions, also methods of plugin classes: (qualified name, body)."""
    for node in _nested(body):
        if isinstance(node, _Function) and node.name.startswith("pytest_"):
            yield prefix + node.name, ast.dump(node)
        elif isinstance(node, ast.ClassDef):
            yield from _hooks(node.body, f"{prefix}{node.name}.")


def _ends_this_process(full: str, call: ast.Call) -> bool:
    """`os.kill` and `os.killpg` end the run only aimed at it (`os.getpid()`, group 0);
    a test that stops a child process it started is fine."""
    if full.rsplit(".", 1)[-1] not in ("kill", "killpg"):
        return True
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Constant) and first.value == 0:
        return True
    return any(
        isinstance(node, ast.Call) and last(node.func) in ("getpid", "getpgrp", "getpgid")
        for arg in call.args[:1]
        for node in ast.walk(arg)
    )


def _defaults(arguments: ast.arguments) -> list[ast.expr]:
    return [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]


def _stands_in(value: object) -> bool:
    """A value that can replace a function: a lambda or a mock."""
    if isinstance(value, ast.Lambda):
        return True
    return isinstance(value, ast.Call) and last(value.func) in _STAND_INS


def _nested(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """A body's statements, also those under `if`, `try`, `with`, `for` (not those of
    nested functions or classes, which bind in their own scopes)."""
    for stmt in body:
        yield stmt
        if not isinstance(stmt, _Function | ast.ClassDef):
            children = [c for c in ast.iter_child_nodes(stmt) if isinstance(c, ast.stmt)]
            for handler in getattr(stmt, "handlers", ()):
                children += handler.body
            yield from _nested(children)


def _owner(target: str) -> str | None:
    """Whose code a dotted path names: "project", "runner", or None for the standard
    library, third-party libraries and the tests' own modules."""
    if target.startswith("."):
        return "project"
    parts = target.split(".")
    top = parts[0]
    if top in _RUNNER or (top == "unittest" and parts[1:2] != ["mock"]):
        return "runner"
    if top in sys.stdlib_module_names or top in _THIRD_PARTY or top in _OWN_TESTS:
        return None
    if any(part == "conftest" or part.startswith("test_") for part in parts):
        return None
    return "project"


def _is_patch(full: str) -> bool:
    """`patch`, `mock.patch`, `mocker.patch`, `unittest.mock.patch` and their forms."""
    parts = full.split(".")
    if parts[-1] in ("object", "multiple", "dict"):
        parts = parts[:-1]
    if not parts or parts[-1] != "patch":
        return False
    return len(parts) == 1 or parts[-2] in ("mock", "mocker")


def _is_dotted(text: str) -> bool:
    parts = text.split(".")
    return len(parts) > 1 and all(part.isidentifier() for part in parts)


def _string(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _text(node: ast.AST) -> str:
    if isinstance(node, _Function | ast.ClassDef):
        return f"def {node.name}" if isinstance(node, _Function) else f"class {node.name}"
    return short(ast.unparse(node), 70)


def _assigned_names(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        targets = [stmt.target]
    else:
        return set()
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _ignored(body: Sequence[ast.stmt]) -> Iterator[str]:
    for stmt in _nested(body):
        if _assigned_names(stmt) & set(_IGNORES):
            value = getattr(stmt, "value", None)
            yield from _entries(value, stmt)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            method = stmt.value.func
            if isinstance(method, ast.Attribute) and last(method.value) in _IGNORES:
                values = stmt.value.args[1:] if method.attr == "insert" else stmt.value.args
                for value in values:
                    yield from _entries(value, stmt)


def _entries(value: ast.AST | None, stmt: ast.stmt) -> Iterator[str]:
    if isinstance(value, ast.List | ast.Tuple | ast.Set):
        for element in value.elts:
            text = _string(element)
            yield text if text is not None else ast.unparse(element)
    elif value is not None and _string(value) is not None:
        yield str(_string(value))
    else:
        yield ast.unparse(stmt)
