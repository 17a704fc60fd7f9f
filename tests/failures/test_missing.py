"""What a failure says is missing, on messages as pytest 9 (Python 3.11), vitest 4, jest 30
and node 20 print them; and the messages that name no missing thing, which must not merge
different bugs into one task."""

from __future__ import annotations

import pytest

from agentloop.failures.missing import missing
from agentloop.failures.model import Dialect

NAMED: list[tuple[Dialect, str, str, str]] = [
    ("pytest", "AttributeError", "module 'pkg.text' has no attribute 'slugify'",
     "pkg.text has no attribute slugify"),
    ("pytest", "ImportError",
     "cannot import name 'slugify' from 'pkg.text' (/home/u/p/pkg/text.py)",
     "pkg.text has no attribute slugify"),
    ("pytest", "ImportError",
     "cannot import name 'a' from partially initialized module 'pkg.m' (most likely due to a "
     "circular import) (/p/pkg/m.py)", "pkg.m has no attribute a"),
    ("pytest", "AttributeError",
     "module 'pkg.text' has no attribute 'slugify'. Did you mean: 'slugs'?",
     "pkg.text has no attribute slugify"),
    ("pytest", "AttributeError", "type object 'Parser' has no attribute 'parse_line'",
     "Parser has no attribute parse_line"),
    ("pytest", "AttributeError", "'Parser' object has no attribute 'parse_line'",
     "Parser has no attribute parse_line"),
    ("pytest", "NameError", "name 'helper' is not defined", "name helper is not defined"),
    ("pytest", "ModuleNotFoundError", "No module named 'requests'", "no module named requests"),
    ("vitest", "TypeError", "add is not a function", "add is not a function (no such export)"),
    ("jest", "TypeError", "(0 , _math.add) is not a function", "math has no export add"),
    ("vitest", "SyntaxError",
     "The requested module './math.js' does not provide an export named 'add'",
     "math has no export add"),
    ("vitest", "TypeError", "z.strung is not a function", "z.strung is not a function"),
    ("vitest", "ReferenceError", "helper is not defined", "name helper is not defined"),
    ("vitest", "Error", "Cannot find package 'lodash' imported from /p/test/a.test.js",
     "no module named lodash"),
    ("jest", "Error", "Cannot find module 'lodash/fp' from 'test/a.test.js'",
     "no module named lodash"),
    ("vitest", "Error", "Failed to resolve import \"../src/gone.js\" from \"test/a.test.js\". "
     "Does the file exist?", "no module named src/gone"),
]  # fmt: skip


@pytest.mark.parametrize(("dialect", "kind", "message", "described"), NAMED)
def test_a_missing_name_is_read(dialect: Dialect, kind: str, message: str, described: str) -> None:
    found = missing(dialect, kind, message)
    assert found is not None
    assert found.describe() == described


def test_one_missing_thing_has_one_key_however_it_is_reached() -> None:
    def key(dialect: Dialect, kind: str, message: str) -> tuple[str, ...]:
        found = missing(dialect, kind, message)
        assert found is not None
        return found.key()

    imported = key("pytest", "ImportError", "cannot import name 'f' from 'pkg.m' (/p/pkg/m.py)")
    assert imported == key("pytest", "AttributeError", "module 'pkg.m' has no attribute 'f'")
    assert imported != key("pytest", "AttributeError", "module 'pkg.n' has no attribute 'f'")
    assert imported != key("pytest", "AttributeError", "module 'pkg.m' has no attribute 'g'")
    export = key("vitest", "TypeError", "add is not a function")
    assert export == key("jest", "TypeError", "(0 , _math.add) is not a function")
    # vitest's JSON report names the binding its SSR transform made for the import.
    assert export == key("vitest", "TypeError", "__vite_ssr_import_1__.add is not a function")
    assert export == key(
        "vitest", "SyntaxError",
        "The requested module './math.js' does not provide an export named 'add'",
    )  # fmt: skip
    # The same file, reached from two directories.
    assert key("jest", "Error", "Cannot find module '../src/x' from 'test/a.test.js'") == key(
        "jest", "Error", "Cannot find module '../../src/x.js' from 'test/unit/b.test.js'"
    )


@pytest.mark.parametrize(
    ("dialect", "kind", "message"),
    [
        # A value of the wrong type: two of these can be two different bugs.
        ("pytest", "AttributeError", "'NoneType' object has no attribute 'get'"),
        ("pytest", "AttributeError", "'dict' object has no attribute 'title'"),
        ("pytest", "AttributeError", "Mock object has no attribute 'assert_called_twice'"),
        ("vitest", "TypeError", "data.map is not a function"),
        ("vitest", "TypeError", "Cannot read properties of undefined (reading 'x')"),
        ("pytest", "AssertionError", "assert 'name' in {}"),
        ("go", "panic", "runtime error: invalid memory address or nil pointer dereference"),
    ],
)
def test_a_wrong_value_names_nothing_missing(dialect: Dialect, kind: str, message: str) -> None:
    assert missing(dialect, kind, message) is None
