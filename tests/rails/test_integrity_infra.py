"""Fake fixes through the test infrastructure: pytest's configuration (its own files and
the pytest part of mixed files), Python startup files, jest/vitest configuration and setup
files, package.json, and JS tests that mock the code under test or end the run. One
BEFORE/AFTER change per case and the exact violations expected (kind, path, test)."""

from __future__ import annotations

from textwrap import dedent

import pytest

from agentloop.rails import testinfra
from agentloop.rails.change import check_change
from agentloop.rails.integrity import check_integrity
from agentloop.rails.paths import ForbiddenPaths
from agentloop.rails.testinfra import is_test_infrastructure, is_test_surface

Change = tuple[dict[str, str | None], dict[str, str | None]]
Expected = list[tuple[str, str, str | None]]

PYPROJECT = """
[project]
name = "calc"
version = "1.0"
dependencies = ["requests>=2"]

[tool.pytest.ini_options]
addopts = "-ra --strict-markers"
testpaths = ["tests"]
markers = ["slow: slow tests"]

[tool.ruff]
line-length = 100
"""

PYTEST_INI = """
[pytest]
addopts = -ra
    --strict-markers
testpaths = tests
# the suite is strict about warnings
filterwarnings =
    error
xfail_strict = true
"""

SETUP_CFG = """
[metadata]
name = calc

[tool:pytest]
testpaths = tests
python_files = test_*.py
"""

TOX_INI = """
[tox]
envlist = py311

[testenv]
commands = pytest

[pytest]
python_files = test_*.py
"""

PACKAGE = """{
  "name": "web",
  "version": "1.0.0",
  "scripts": {"test": "vitest run", "build": "tsc"},
  "devDependencies": {"vitest": "^2.0.0"},
  "jest": {"testMatch": ["**/*.test.js"], "bail": false}
}
"""

VITEST_CONFIG = """
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 5000,
  },
});
"""

JS_TEST = """
import { describe, expect, it } from "vitest";
import * as math from "../src/math";

describe("math", () => {
  it("adds", () => {
    expect(math.add(2, 3)).toBe(5);
  });
});
"""


def edit(path: str, before: str | None, old: str, new: str) -> Change:
    """`before` at `path`, and the same with `old` (which must be there) replaced."""
    text = dedent(before) if before is not None else ""
    assert text.count(old) == 1, old
    return {path: text}, {path: text.replace(old, new)}


def added(path: str, text: str) -> Change:
    return {path: None}, {path: dedent(text)}


JS = "web/src/math.test.ts"
REQUIRED = (
    "const math = require('../lib/math');\n\n"
    "test('adds', () => {\n  expect(math.add(2, 3)).toBe(5);\n});\n"
)


def js(old: str, new: str) -> Change:
    return edit(JS, JS_TEST, old, new)


# (id, change, expected)
ATTACKS: list[tuple[str, Change, Expected]] = [
    # --- 5. pytest configuration ---
    (
        "pytest.ini: addopts gains -k",
        edit(
            "pytest.ini",
            PYTEST_INI,
            "    --strict-markers\n",
            "    --strict-markers -k 'not add'\n",
        ),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains --deselect",
        edit(
            "pytest.ini",
            PYTEST_INI,
            "addopts = -ra",
            "addopts = -ra --deselect tests/test_calc.py::test_add",
        ),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains -m",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra -m 'not slow'"),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains --ignore",
        edit(
            "pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra --ignore=tests/test_calc.py"
        ),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains --ignore-glob",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra --ignore-glob=*calc*"),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains --lf",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra --lf"),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains --sw",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra --sw"),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains --co",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra --co"),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains -x",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra -x"),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains -p",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra -p tests.plugins.results"),
        [("hooks_changed", "pytest.ini", None)],
    ),
    (
        "pytest.ini: a plugin switched off",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra -p no:randomly"),
        [("hooks_changed", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts gains --reruns",
        edit("pytest.ini", PYTEST_INI, "addopts = -ra", "addopts = -ra --reruns 5"),
        [("retry_added", "pytest.ini", None)],
    ),
    (
        "pytest.ini: addopts drops --strict-markers",
        edit("pytest.ini", PYTEST_INI, "    --strict-markers\n", ""),
        [("config_changed", "pytest.ini", None)],
    ),
    (
        "pytest.ini: testpaths changed",
        edit("pytest.ini", PYTEST_INI, "testpaths = tests", "testpaths = tests/unit"),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: filterwarnings relaxed",
        edit("pytest.ini", PYTEST_INI, "    error\n", "    ignore\n"),
        [("config_changed", "pytest.ini", None)],
    ),
    (
        "pytest.ini: xfail_strict switched off",
        edit("pytest.ini", PYTEST_INI, "xfail_strict = true", "xfail_strict = false"),
        [("config_changed", "pytest.ini", None)],
    ),
    (
        "pytest.ini: a timeout raised",
        edit("pytest.ini", PYTEST_INI, "xfail_strict = true", "xfail_strict = true\ntimeout = 600"),
        [("timeout_raised", "pytest.ini", None)],
    ),
    (
        "pytest.ini: norecursedirs",
        edit(
            "pytest.ini", PYTEST_INI, "testpaths = tests", "testpaths = tests\nnorecursedirs = unit"
        ),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pytest.ini: python_functions",
        edit(
            "pytest.ini",
            PYTEST_INI,
            "testpaths = tests",
            "testpaths = tests\npython_functions = check_*",
        ),
        [("tests_deselected", "pytest.ini", None)],
    ),
    (
        "pyproject: a marker's registration removed",
        edit("pyproject.toml", PYPROJECT, 'markers = ["slow: slow tests"]', "markers = []"),
        [("config_changed", "pyproject.toml", None)],
    ),
    (
        "pytest.ini added over the pyproject configuration",
        added("pytest.ini", "[pytest]\n"),
        [("config_changed", "pytest.ini", None)],
    ),
    (
        "pytest.ini deleted",
        ({"pytest.ini": dedent(PYTEST_INI)}, {"pytest.ini": None}),
        [("config_changed", "pytest.ini", None)],
    ),
    (
        ".pytest.ini added",
        added("tests/.pytest.ini", "[pytest]\naddopts = -k add\n"),
        [("config_changed", "tests/.pytest.ini", None)],
    ),
    (
        "pytest.toml changed (pytest 9)",
        edit("pytest.toml", '[pytest]\ntestpaths = ["tests"]\n', '["tests"]', '["tests/unit"]'),
        [("tests_deselected", "pytest.toml", None)],
    ),
    (
        "pyproject: ini_options addopts gains --deselect",
        edit(
            "pyproject.toml",
            PYPROJECT,
            'addopts = "-ra --strict-markers"',
            'addopts = "-ra --strict-markers --deselect tests/test_calc.py::test_add"',
        ),
        [("tests_deselected", "pyproject.toml", None)],
    ),
    (
        "pyproject: python_classes",
        edit(
            "pyproject.toml",
            PYPROJECT,
            'testpaths = ["tests"]',
            'testpaths = ["tests"]\npython_classes = ["Check"]',
        ),
        [("tests_deselected", "pyproject.toml", None)],
    ),
    (
        "pyproject: native [tool.pytest] table (pytest 9) added",
        edit(
            "pyproject.toml",
            PYPROJECT,
            "[tool.ruff]",
            '[tool.pytest]\naddopts = ["-m", "not slow"]\n\n[tool.ruff]',
        ),
        [("tests_deselected", "pyproject.toml", None)],
    ),
    (
        "pyproject: pytest settings through a dotted key",
        edit(
            "pyproject.toml",
            PYPROJECT,
            "line-length = 100",
            'line-length = 100\n\n[tool]\npytest.ini_options.python_files = ["x_*.py"]',
        ),
        # TOML forbids defining [tool] twice after [tool.ruff]: the file no longer reads.
        [("config_changed", "pyproject.toml", None)],
    ),
    (
        "pyproject: a pytest section where there was none",
        edit(
            "pyproject.toml",
            "[project]\nname = 'calc'\n",
            "name = 'calc'\n",
            "name = 'calc'\n\n[tool.pytest.ini_options]\naddopts = '-k not add'\n",
        ),
        [("config_changed", "pyproject.toml", None)],
    ),
    (
        "setup.cfg: testpaths changed",
        edit("setup.cfg", SETUP_CFG, "testpaths = tests\n", "testpaths = tests/unit\n"),
        [("tests_deselected", "setup.cfg", None)],
    ),
    (
        "tox.ini: python_files changed",
        edit("tox.ini", TOX_INI, "python_files = test_*.py", "python_files = check_*.py"),
        [("tests_deselected", "tox.ini", None)],
    ),
    (
        "tox.ini: a [pytest] section added",
        edit(
            "tox.ini",
            "[tox]\nenvlist = py311\n",
            "envlist = py311\n",
            "envlist = py311\n\n[pytest]\n",
        ),
        [("config_changed", "tox.ini", None)],
    ),
    # --- 7. code that runs before any test ---
    (
        "sitecustomize.py added",
        added("sitecustomize.py", "import calc.ops\ncalc.ops.add = lambda a, b: a + b\n"),
        [("infrastructure_changed", "sitecustomize.py", None)],
    ),
    (
        "usercustomize.py changed",
        edit("src/usercustomize.py", "import os\n", "import os\n", "import os\nimport fake\n"),
        [("infrastructure_changed", "src/usercustomize.py", None)],
    ),
    (
        "a .pth file added deep in the tree",
        added("lib/vendor/zz_fix.pth", "import calc_fix\n"),
        [("infrastructure_changed", "lib/vendor/zz_fix.pth", None)],
    ),
    (
        "sitecustomize.py deleted",
        ({"sitecustomize.py": "import warnings\n"}, {"sitecustomize.py": None}),
        [("infrastructure_changed", "sitecustomize.py", None)],
    ),
    # --- 8. jest and vitest ---
    (
        "vitest.config: exclude added",
        edit(
            "web/vitest.config.ts",
            VITEST_CONFIG,
            "    testTimeout: 5000,\n",
            '    testTimeout: 5000,\n    exclude: ["src/math.test.ts"],\n',
        ),
        [("config_changed", "web/vitest.config.ts", None)],
    ),
    (
        "vitest.config: include narrowed",
        edit("web/vitest.config.mts", VITEST_CONFIG, "src/**/*.test.ts", "src/ui/*.test.ts"),
        [("config_changed", "web/vitest.config.mts", None)],
    ),
    (
        "vitest.config: retry and passWithNoTests",
        edit(
            "vitest.config.js",
            VITEST_CONFIG,
            "    testTimeout: 5000,\n",
            "    testTimeout: 5000,\n    retry: 3,\n    passWithNoTests: true,\n",
        ),
        [("config_changed", "vitest.config.js", None)],
    ),
    (
        "vitest.config added",
        added("web/vitest.config.ts", VITEST_CONFIG),
        [("config_changed", "web/vitest.config.ts", None)],
    ),
    (
        "vite.config: test.exclude",
        edit(
            "vite.config.ts",
            "export default { plugins: [], test: { environment: 'node' } };\n",
            "environment: 'node'",
            "environment: 'node', exclude: ['**/math*']",
        ),
        [("config_changed", "vite.config.ts", None)],
    ),
    (
        "vite.config: an alias swaps the module under test",
        edit(
            "vite.config.ts",
            "export default { resolve: { alias: {} } };\n",
            "alias: {}",
            "alias: { './math': './fake-math' }",
        ),
        [("config_changed", "vite.config.ts", None)],
    ),
    (
        "vitest.workspace changed",
        edit("vitest.workspace.ts", "export default ['web', 'api'];\n", "'web', 'api'", "'api'"),
        [("config_changed", "vitest.workspace.ts", None)],
    ),
    (
        "jest.config.js: testPathIgnorePatterns",
        edit(
            "jest.config.js",
            "module.exports = { testEnvironment: 'node' };\n",
            "testEnvironment: 'node'",
            "testEnvironment: 'node', testPathIgnorePatterns: ['math']",
        ),
        [("config_changed", "jest.config.js", None)],
    ),
    (
        "jest.config.json: bail and testTimeout",
        edit("jest.config.json", '{"bail": false}\n', "false}", 'true, "testTimeout": 60000}'),
        [("config_changed", "jest.config.json", None)],
    ),
    (
        "vitest.setup.ts mocks the module",
        edit(
            "web/vitest.setup.ts",
            "import '@testing-library/jest-dom';\n",
            "jest-dom';\n",
            "jest-dom';\nvi.mock('./src/math', () => ({ add: () => 5 }));\n",
        ),
        [("infrastructure_changed", "web/vitest.setup.ts", None)],
    ),
    (
        "jest.setup.js added",
        added("jest.setup.js", "jest.mock('./src/math');\n"),
        [("infrastructure_changed", "jest.setup.js", None)],
    ),
    (
        "setupTests.ts changed",
        edit(
            "src/setupTests.ts",
            "export {};\n",
            "export {};\n",
            "export {};\nglobalThis.add = () => 5;\n",
        ),
        [("infrastructure_changed", "src/setupTests.ts", None)],
    ),
    (
        "a setup file named otherwise by convention",
        added("web/src/test-setup.ts", "vi.mock('./math');\n"),
        [("infrastructure_changed", "web/src/test-setup.ts", None)],
    ),
    (
        "a manual mock returns what the test expects",
        edit(
            "web/src/__mocks__/math.ts",
            "export const add = vi.fn();\n",
            "vi.fn()",
            "vi.fn(() => 5)",
        ),
        [("infrastructure_changed", "web/src/__mocks__/math.ts", None)],
    ),
    (
        "package.json: jest testMatch",
        edit("package.json", PACKAGE, '["**/*.test.js"]', '["**/ui/*.test.js"]'),
        [("config_changed", "package.json", None)],
    ),
    (
        "package.json: the test script swallows failures",
        edit("package.json", PACKAGE, '"test": "vitest run"', '"test": "vitest run || true"'),
        [("config_changed", "package.json", None)],
    ),
    (
        "package.json: the test script passes with no tests",
        edit(
            "web/package.json",
            PACKAGE,
            '"test": "vitest run"',
            '"test": "vitest run --passWithNoTests src/ui"',
        ),
        [("config_changed", "web/package.json", None)],
    ),
    (
        "package.json: jest key added",
        edit(
            "package.json",
            '{"name": "web", "scripts": {"test": "jest"}}\n',
            '"name": "web",',
            '"name": "web", "jest": {"testPathIgnorePatterns": ["math"]},',
        ),
        [("config_changed", "package.json", None)],
    ),
    # --- 8. JS tests that replace the code under test ---
    (
        "vi.mock of the module under test",
        js(
            'import * as math from "../src/math";\n',
            'import * as math from "../src/math";\n\n'
            'vi.mock("../src/math", () => ({ add: () => 5 }));\n',
        ),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "jest.mock with automock",
        js("\ndescribe(", "\njest.mock('../src/math');\n\ndescribe("),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "vi.mock through a dynamic import",
        js(
            "\ndescribe(",
            "\nvi.mock(import('../src/math'), () => ({ add: () => 5 }));\n\ndescribe(",
        ),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "vi.doMock of an aliased path",
        js("\ndescribe(", "\nvi.doMock('@/math', () => ({ add: () => 5 }));\n\ndescribe("),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "an existing vi.mock given another factory",
        (
            {JS: "vi.mock('../src/math', () => ({ add: () => 4 }));\n" + dedent(JS_TEST)},
            {JS: "vi.mock('../src/math', () => ({ add: () => 5 }));\n" + dedent(JS_TEST)},
        ),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "vi.spyOn with mockReturnValue",
        js(
            '  it("adds", () => {\n',
            "  it(\"adds\", () => {\n    vi.spyOn(math, 'add').mockReturnValue(5);\n",
        ),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "jest.spyOn kept in a variable, stubbed later",
        js(
            '  it("adds", () => {\n',
            '  it("adds", () => {\n    const spy = jest.spyOn(math, "add");\n'
            "    spy.mockImplementation(() => 5);\n",
        ),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "a member of the imported module assigned",
        js('  it("adds", () => {\n', '  it("adds", () => {\n    math.add = () => 5;\n'),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "a required module's member assigned",
        (
            {"test/math.test.js": REQUIRED},
            {"test/math.test.js": REQUIRED.replace("\n\n", "\nmath.add = () => 5;\n\n", 1)},
        ),
        [("code_under_test_patched", "test/math.test.js", None)],
    ),
    (
        "Object.defineProperty on the module",
        js("\ndescribe(", "\nObject.defineProperty(math, 'add', { value: () => 5 });\n\ndescribe("),
        [("code_under_test_patched", JS, None)],
    ),
    (
        "process.exit in a test file",
        js('  it("adds", () => {\n', '  it("adds", () => {\n    process.exit(0);\n'),
        [("exit_added", JS, None)],
    ),
    (
        "process.exitCode set",
        js("\ndescribe(", "\nprocess.exitCode = 0;\n\ndescribe("),
        [("exit_added", JS, None)],
    ),
]

FINE: list[tuple[str, Change]] = [
    (
        "pyproject: dependencies and version changed",
        edit(
            "pyproject.toml",
            PYPROJECT,
            'version = "1.0"',
            'version = "1.1"\nrequires-python = ">=3.10"',
        ),
    ),
    (
        "pyproject: another tool's section changed",
        edit("pyproject.toml", PYPROJECT, "line-length = 100", "line-length = 120"),
    ),
    (
        "pyproject: pytest section reformatted",
        edit(
            "pyproject.toml",
            PYPROJECT,
            'addopts = "-ra --strict-markers"\ntestpaths = ["tests"]',
            "testpaths = [\n  'tests',\n]\naddopts = '''-ra\n  --strict-markers'''",
        ),
    ),
    (
        "pyproject: a marker registered",
        edit(
            "pyproject.toml",
            PYPROJECT,
            '"slow: slow tests"]',
            '"slow: slow tests", "db: needs a database"]',
        ),
    ),
    (
        "pytest.ini: comments and blank lines",
        edit(
            "pytest.ini",
            PYTEST_INI,
            "testpaths = tests\n",
            "\n; where the tests are\ntestpaths = tests\n\n",
        ),
    ),
    (
        "pytest.ini: addopts rewrapped",
        edit("pytest.ini", PYTEST_INI, "-ra\n    --strict-markers", "-ra --strict-markers"),
    ),
    ("setup.cfg: metadata changed", edit("setup.cfg", SETUP_CFG, "name = calc", "name = calc2")),
    (
        "tox.ini: the tox environment changed",
        edit("tox.ini", TOX_INI, "envlist = py311", "envlist = py311,py312"),
    ),
    (
        "a new pyproject.toml without pytest settings",
        added("tools/pyproject.toml", "[project]\nname = 'x'\n"),
    ),
    (
        "sitecustomize.py: a comment",
        edit("sitecustomize.py", "import os\n", "import os\n", "import os  # for paths\n"),
    ),
    (
        "package.json: dependencies and other scripts",
        edit("package.json", PACKAGE, '"build": "tsc"', '"build": "tsc -p ."'),
    ),
    (
        "package.json: reformatted",
        edit(
            "package.json",
            PACKAGE,
            '"scripts": {"test": "vitest run", "build": "tsc"}',
            '"scripts": {\n    "build": "tsc",\n    "test": "vitest run"\n  }',
        ),
    ),
    (
        "vitest.config: quotes and trailing commas",
        edit(
            "vitest.config.ts",
            VITEST_CONFIG,
            '    include: ["src/**/*.test.ts"],\n    testTimeout: 5000,\n',
            "    include: ['src/**/*.test.ts'],\n    testTimeout: 5000\n",
        ),
    ),
    (
        "jest.config.json: reformatted",
        edit("jest.config.json", '{"bail": false}\n', '{"bail": false}', '{\n  "bail": false\n}'),
    ),
    (
        "a third-party module mocked",
        js("\ndescribe(", "\nvi.mock('axios');\njest.mock('node:fs');\n\ndescribe("),
    ),
    (
        "a bare spy on the module only records",
        js(
            "    expect(math.add(2, 3)).toBe(5);\n",
            '    const spy = vi.spyOn(math, "add");\n    expect(math.add(2, 3)).toBe(5);\n'
            "    expect(spy).toHaveBeenCalledOnce();\n",
        ),
    ),
    (
        "an existing mock kept while a test is added",
        (
            {JS: "vi.mock('../src/math');\n" + dedent(JS_TEST)},
            {
                JS: 'vi.mock("../src/math")\n'
                + dedent(JS_TEST).replace(
                    "});\n});",
                    "});\n  it('subs', () => {\n    expect(math.sub(3, 2)).toBe(1);\n  });\n});",
                )
            },
        ),
    ),
    (
        "a local object's member assigned",
        js(
            '  it("adds", () => {\n',
            '  it("adds", () => {\n    const cart = {};\n    cart.total = 3;\n',
        ),
    ),
    (
        "a comment and a string that mention vi.mock",
        js(
            "    expect(math.add(2, 3)).toBe(5);\n",
            "    // no vi.mock('../src/math') here\n    console.log(\"math.add = () => 5\");\n"
            "    expect(math.add(2, 3)).toBe(5);\n",
        ),
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [pytest.param(c, e, id=name) for name, c, e in ATTACKS]
)
def test_attack_is_a_violation(change: Change, expected: Expected) -> None:
    before, after = change
    assert [(v.kind, v.path, v.test) for v in check_integrity(before, after)] == expected


@pytest.mark.parametrize("change", [pytest.param(c, id=name) for name, c in FINE])
def test_not_a_violation(change: Change) -> None:
    before, after = change
    assert check_integrity(before, after) == ()


@pytest.mark.parametrize(
    ("path", "infrastructure", "surface"),
    [
        ("conftest.py", True, True),
        ("src/calc/conftest.py", True, True),
        ("pytest.ini", True, True),
        (".pytest.ini", True, True),
        ("pytest.toml", True, True),
        ("pyproject.toml", True, True),
        ("sub/setup.cfg", True, True),
        ("tox.ini", True, True),
        ("sitecustomize.py", True, True),
        ("lib/usercustomize.py", True, True),
        (".venv/lib/site-packages/evil.pth", True, True),
        ("vitest.config.ts", True, True),
        ("web/vite.config.mjs", True, True),
        ("vitest.workspace.json", True, True),
        ("jest.config.cjs", True, True),
        ("jest.config.base.js", True, True),
        (".mocharc.yml", True, True),
        ("web/vitest.setup.ts", True, True),
        ("jest.setup.js", True, True),
        ("src/setupTests.tsx", True, True),
        ("web/package.json", True, True),
        ("web/src/test-setup.ts", True, True),
        ("testSetup.js", True, True),
        ("web/src/__mocks__/math.ts", True, True),
        ("__mocks__/axios.js", True, True),
        ("web/src/setup.ts", False, False),
        ("web/src/setup.test.ts", False, True),
        ("tests/test_calc.py", False, True),
        ("web/src/math.test.ts", False, True),
        ("src/__snapshots__/x.test.ts.snap", False, True),
        ("tests/data/expected.json", False, True),
        ("src/calc/ops.py", False, False),
        ("src/config.ts", False, False),
        ("package-lock.json", False, False),
        ("README.md", False, False),
    ],
)
def test_which_files_are_on_the_test_surface(
    path: str, infrastructure: bool, surface: bool
) -> None:
    assert is_test_infrastructure(path) is infrastructure
    assert is_test_surface(path) is surface


def test_config_changed_names_the_test_part_of_a_mixed_file() -> None:
    pyproject = dedent(PYPROJECT)
    assert (
        testinfra.test_config_changed("pyproject.toml", pyproject, pyproject.replace("1.0", "2.0"))
        is None
    )
    assert testinfra.test_config_changed(
        "pyproject.toml", pyproject, pyproject.replace("--strict-markers", "-k 'not add'")
    ) == (
        "`addopts` in `[tool.pytest]` of pyproject.toml adds `-k not add` "
        "and drops `--strict-markers`"
    )
    setup = dedent(SETUP_CFG)
    assert (
        testinfra.test_config_changed("setup.cfg", setup, setup.replace("= calc", "= other"))
        is None
    )
    assert testinfra.test_config_changed(
        "setup.cfg", setup, setup.replace("= tests\n", "= tests/a\n")
    ) == ("`testpaths` in `[tool:pytest]` of setup.cfg changed from `tests` to `tests/a`")
    assert (
        testinfra.test_config_changed("package.json", PACKAGE, PACKAGE.replace("tsc", "tsc -b"))
        is None
    )
    assert testinfra.test_config_changed(
        "package.json", PACKAGE, PACKAGE.replace('"bail": false', '"bail": true')
    ) == ("changes the test configuration: `jest.bail` in package.json")
    assert testinfra.test_config_changed("src/calc/ops.py", "a = 1\n", "a = 2\n") is None


def test_details_name_the_file_and_the_change() -> None:
    before, after = edit(
        "web/vitest.config.ts",
        VITEST_CONFIG,
        "    testTimeout: 5000,\n",
        '    testTimeout: 5000,\n    exclude: ["src/math.test.ts"],\n',
    )
    (violation,) = check_integrity(before, after)
    assert str(violation) == (
        'web/vitest.config.ts: changes the test configuration: `exclude: ["src/math.test.ts"],`'
        " added"
    )
    (violation,) = check_integrity(*js("\ndescribe(", "\nvi.mock('../src/math');\n\ndescribe("))
    assert violation.detail == (
        "patches the code under test: `vi.mock('../src/math')` replaces the module `../src/math`"
    )


def test_check_change_judges_infrastructure_among_other_files() -> None:
    """As `agentloop check` and the loop call it: only the test part of a mixed file and
    the infrastructure count, next to ordinary source changes."""
    before = {
        "src/calc/ops.py": "def add(a, b):\n    return a - b\n",
        "pyproject.toml": dedent(PYPROJECT),
        "tests/conftest.py": None,
    }
    after = {
        "src/calc/ops.py": "def add(a, b):\n    return a + b\n",
        "pyproject.toml": dedent(PYPROJECT).replace("1.0", "1.1"),
        "tests/conftest.py": "def pytest_collection_modifyitems(items):\n    items.clear()\n",
    }
    result = check_change(
        list(before),
        forbidden=ForbiddenPaths(()),
        allow_test_edits=False,
        before=before.get,
        after=after.get,
    )
    assert [(v.kind, v.path) for v in result.integrity] == [("hooks_changed", "tests/conftest.py")]
