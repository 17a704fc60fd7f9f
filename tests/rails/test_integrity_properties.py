"""Properties of the integrity check over generated test files: formatting and additions
never count, removals always do, and no input makes it raise."""

from __future__ import annotations

import ast
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentloop.rails.integrity import check_integrity

PY = "tests/test_generated.py"
JS = "web/generated.test.ts"

fast = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.sampled_from(["result", "cart", "total", "value", "items"])
numbers = st.integers(-50, 500)
PY_ASSERTS = [
    "assert {v} == {n}",
    "assert {v} != {n}",
    "assert {v} in ({n}, {m})",
    "assert {n} < {v} <= {m}",
    "assert {v} is None",
    "assert {v} == pytest.approx({n}.5, rel=1e-3)",
    "assert isinstance({v}, int) and {v} > {n}",
    "assert {v}, 'message {n}'",
    "mock.assert_called_once_with({n})",
    "self.assertEqual({v}, {n})",
    "self.assertAlmostEqual({v}, {n}, places=3)",
]
py_assert = st.builds(
    lambda template, v, n, m: template.format(v=v, n=n, m=m),
    st.sampled_from(PY_ASSERTS),
    names,
    numbers,
    numbers,
)
py_test_body = st.lists(py_assert, min_size=1, max_size=4)
py_decorator = st.sampled_from(
    ["", "@pytest.mark.timeout(5)\n", "@pytest.mark.parametrize('n', [1, 2, 3])\n"]
)


@st.composite
def python_module(draw: st.DrawFn) -> str:
    parts = ["import pytest\n"]
    for number, body in enumerate(draw(st.lists(py_test_body, min_size=1, max_size=5))):
        decorator = draw(py_decorator)
        setup = f"    {draw(names)} = compute({draw(numbers)})\n"
        asserts = "".join(f"    {line}\n" for line in body)
        parts.append(f"\n{decorator}def test_{number}(self):\n{setup}{asserts}")
    if draw(st.booleans()):
        # The same tests again, as methods of a class.
        methods = "\n".join("    " + line for part in parts[1:] for line in part.splitlines())
        parts.append(f"\n\nclass TestGenerated:\n{methods}\n")
    return "".join(parts)


def py_lines(module: str) -> list[int]:
    """Indexes of lines holding an assertion."""
    return [
        i
        for i, line in enumerate(module.splitlines())
        if re.match(r"\s+(assert |mock\.assert|self\.assert)", line)
    ]


@fast
@given(python_module())
def test_reformatting_a_python_test_file_is_never_a_violation(module: str) -> None:
    reformatted = ast.unparse(ast.parse(module))
    assert check_integrity({PY: module}, {PY: reformatted}) == ()


@fast
@given(python_module(), st.data())
def test_adding_a_python_assertion_is_never_a_violation(module: str, data: st.DataObject) -> None:
    lines = module.splitlines()
    at = data.draw(st.sampled_from(py_lines(module)))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, indent + data.draw(py_assert))
    assert check_integrity({PY: module}, {PY: "\n".join(lines) + "\n"}) == ()


@fast
@given(python_module(), st.data())
def test_removing_a_python_assertion_is_always_a_violation(
    module: str, data: st.DataObject
) -> None:
    lines = module.splitlines()
    at = data.draw(st.sampled_from(py_lines(module)))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    # `pass` keeps the body valid when its only assertion goes.
    lines[at] = indent + "pass"
    kinds = {v.kind for v in check_integrity({PY: module}, {PY: "\n".join(lines) + "\n"})}
    assert kinds & {"assertion_removed", "assertion_loosened"}


JS_EXPECTS = [
    "expect({v}).toBe({n});",
    "expect({v}).toEqual({{ a: {n}, b: [{m}, 'x'] }});",
    "expect(() => run({n})).toThrow('boom {m}');",
    "expect({v}).toBeCloseTo({n}.5, 3);",
    "expect({v}).not.toContain({m});",
    'assert.strictEqual({v}, "{n}");',
]
js_expect = st.builds(
    lambda template, v, n, m: template.format(v=v, n=n, m=m),
    st.sampled_from(JS_EXPECTS),
    names,
    numbers,
    numbers,
)


@st.composite
def js_module(draw: st.DrawFn) -> str:
    tests = []
    for number, body in enumerate(draw(st.lists(st.lists(js_expect, min_size=1, max_size=4)))):
        timeout = draw(st.sampled_from(["", ", 5000"]))
        lines = "".join(f"    {line}\n" for line in body)
        tests.append(f'  it("case {number}", () => {{\n{lines}  }}{timeout});\n')
    return 'describe("generated", () => {\n' + "".join(tests) + "});\n"


def reformat_js(module: str, quotes: bool, breaks: bool, semicolons: bool) -> str:
    """What prettier-like tools change: quote style, line breaks in calls, semicolons."""
    if quotes:
        module = module.replace('"', "\x00").replace("'", '"').replace("\x00", "'")
    if breaks:
        module = module.replace(").to", ")\n      .to").replace("({ ", "({\n        ")
    if semicolons:
        module = module.replace(";\n", "\n")
    return module


@fast
@given(js_module(), st.booleans(), st.booleans(), st.booleans())
def test_reformatting_a_js_test_file_is_never_a_violation(
    module: str, quotes: bool, breaks: bool, semicolons: bool
) -> None:
    after = reformat_js(module, quotes, breaks, semicolons)
    assert check_integrity({JS: module}, {JS: after}) == ()


@fast
@given(js_module(), js_expect, st.data())
def test_adding_an_expect_is_never_a_violation(
    module: str, added: str, data: st.DataObject
) -> None:
    lines = module.splitlines()
    spots = [i for i, line in enumerate(lines) if line.startswith("    ")]
    if not spots:
        return
    lines.insert(data.draw(st.sampled_from(spots)), "    " + added)
    assert check_integrity({JS: module}, {JS: "\n".join(lines) + "\n"}) == ()


@fast
@given(st.text(max_size=300), st.text(max_size=300))
def test_any_text_gives_violations_never_an_exception(before: str, after: str) -> None:
    for path in (PY, JS, "tests/data/x.snap"):
        violations = check_integrity({path: before}, {path: after})
        assert all(v.path == path for v in violations)


@fast
@given(st.lists(st.sampled_from(list("()[]{}'\"`/\\*${}\n ;=>.itxpecsk")), max_size=200))
def test_js_punctuation_soup_never_raises(chars: list[str]) -> None:
    soup = "".join(chars)
    check_integrity({JS: soup}, {JS: "it('x', () => {" + soup})


# --- the test surface ------------------------------------------------------------------

SURFACE_PIECES = [
    "from calc import ops\nimport calc.cart as cart\n",
    "pytest_plugins = ['tests.plugins.{v}']\n",
    "collect_ignore = ['{v}.py']\n",
    "EXPECTED_{n} = {{'{v}': {m}, 'items': [{n}, {m}]}}\n",
    "ops.{v} = lambda a, b: {n}\n",
    "sys.path.insert(0, 'tests/{v}')\n",
    (
        "@pytest.fixture(autouse=True)\ndef _{v}_{n}(monkeypatch):\n"
        "    monkeypatch.setattr('calc.ops.{v}', lambda: {m})\n    yield\n"
    ),
    "@mock.patch('calc.ops.{v}', return_value={n})\ndef test_{v}_{n}(mocked):\n"
    "    assert ops.{v}() == EXPECTED_{n}['{v}']\n",
    "def pytest_collection_modifyitems(config, items):\n    items.sort(key=lambda i: i.name)\n",
    "class Plugin{n}:\n    def pytest_runtest_setup(self, item):\n        item.{v} = {m}\n",
    "class TestCase{n}(unittest.TestCase):\n    def test_{v}(self):\n"
    "        self.assertEqual(cart.total({n}), {m})\n",
]
surface_piece = st.builds(
    lambda template, v, n, m: template.format(v=v, n=abs(n), m=m),
    st.sampled_from(SURFACE_PIECES),
    names,
    numbers,
    numbers,
)


@fast
@given(st.lists(surface_piece, min_size=1, max_size=8))
def test_reformatting_a_conftest_or_a_patching_test_is_never_a_violation(
    pieces: list[str],
) -> None:
    module = "\n\n".join(pieces)
    reformatted = ast.unparse(ast.parse(module))
    for path in ("tests/conftest.py", PY):
        assert check_integrity({path: module}, {path: reformatted}) == ()


@fast
@given(st.lists(surface_piece, min_size=1, max_size=6), st.data())
def test_a_conftest_that_gains_any_of_these_pieces_is_a_violation(
    pieces: list[str], data: st.DataObject
) -> None:
    """Every piece but a constant and a new test changes what the tests see."""
    added = data.draw(st.sampled_from([SURFACE_PIECES[i] for i in (1, 2, 4, 5, 6, 8, 9)]))
    piece = added.format(v="zz", n=7, m=8)
    module = "\n\n".join([SURFACE_PIECES[0], *pieces])
    assume(piece not in module)
    violations = check_integrity(
        {"tests/conftest.py": module}, {"tests/conftest.py": module + "\n\n" + piece}
    )
    assert violations, piece


@fast
@given(st.integers(1, 50), st.integers(1, 50), st.sampled_from(["==", "<=", "in"]))
def test_changing_a_constant_an_assertion_reads_is_always_a_violation(
    old: int, new: int, operator: str
) -> None:
    assume(old != new)
    right = "EXPECTED" if operator != "in" else "(EXPECTED, 0)"
    template = f"EXPECTED = {{}}\n\n\ndef test_x():\n    assert f() {operator} {right}\n"
    kinds = {
        v.kind for v in check_integrity({PY: template.format(old)}, {PY: template.format(new)})
    }
    assert kinds == {"constant_changed"}


PYTEST_SETTINGS = {
    "addopts": ["-ra", "--strict-markers", "-p no:cacheprovider"],
    "testpaths": ["tests", "integration"],
    "python_files": ["test_*.py", "*_test.py"],
    "xfail_strict": ["true"],
}


@fast
@given(st.permutations(list(PYTEST_SETTINGS)), st.booleans(), st.booleans())
def test_reformatting_pytest_settings_is_never_a_violation(
    order: list[str], lists: bool, comments: bool
) -> None:
    """The same settings as INI and as TOML, in any order, as strings or lists."""

    def ini(keys: list[str]) -> str:
        lines = ["[pytest]"]
        for key in keys:
            if comments:
                lines.append(f"# {key}")
            lines.append(f"{key} =\n    " + "\n    ".join(PYTEST_SETTINGS[key]))
        return "\n".join(lines) + "\n"

    def toml(keys: list[str]) -> str:
        lines = ["[project]\nname = 'x'\n", "[tool.pytest.ini_options]"]
        for key in keys:
            values = PYTEST_SETTINGS[key]
            if lists and key != "xfail_strict":
                lines.append(f"{key} = {values!r}")
            else:
                lines.append(f"{key} = {' '.join(values)!r}")
        return "\n".join(lines) + "\n"

    assert (
        check_integrity({"pytest.ini": ini(list(PYTEST_SETTINGS))}, {"pytest.ini": ini(order)})
        == ()
    )
    assert (
        check_integrity(
            {"pyproject.toml": toml(list(PYTEST_SETTINGS))}, {"pyproject.toml": toml(order)}
        )
        == ()
    )


SURFACE_PATHS = [
    "tests/conftest.py",
    "pyproject.toml",
    "pytest.ini",
    "setup.cfg",
    "tox.ini",
    "package.json",
    "vitest.config.ts",
    "jest.config.json",
    "web/setupTests.ts",
    "sitecustomize.py",
    "lib/x.pth",
]


@fast
@given(st.text(max_size=300), st.text(max_size=300), st.sampled_from(SURFACE_PATHS))
def test_any_text_on_the_surface_gives_violations_never_an_exception(
    before: str, after: str, path: str
) -> None:
    violations = check_integrity({path: before}, {path: after})
    assert all(v.path == path for v in violations)


@fast
@given(
    st.lists(st.tuples(names, numbers, numbers), min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_reformatting_js_constants_and_their_expects_is_never_a_violation(
    constants: list[tuple[str, int, int]], quotes: bool, breaks: bool, semicolons: bool
) -> None:
    declarations = "".join(
        f'const WANT_{i} = {{ "{v}": {n}, items: [{m}, "x"] }};\n'
        for i, (v, n, m) in enumerate(constants)
    )
    expects = "".join(f"    expect(f({i})).toEqual(WANT_{i});\n" for i in range(len(constants)))
    module = (
        declarations + f'\ndescribe("c", () => {{\n  it("reads", () => {{\n{expects}  }});\n}});\n'
    )
    after = reformat_js(module, quotes, breaks, semicolons)
    assert check_integrity({JS: module}, {JS: after}) == ()
