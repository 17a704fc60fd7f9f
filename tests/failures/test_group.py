"""Grouping by shared cause on real runs: the cases of one parametrized test, one missing
name wherever it crashes, one missing package however many files import it, and the
rows of a JS `test.each` and one renamed export under vitest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from agentloop.testing.detect import DetectRun, detect
from agentloop.testing.npm import make_jest_project, make_vitest_project
from agentloop.testing.repos import pytest_project

SHARED_CAUSES = {
    "pkg/__init__.py": "",
    # `slugify` and `clamp` were renamed; the tests were not updated.
    "pkg/text.py": "def make_slug(title):\n    return title.lower().replace(' ', '-')\n",
    "pkg/nums.py": "def clamp_to(value, low, high):\n    return max(low, min(value, high))\n",
    "pkg/listing.py": """\
        def prefix(n):
            return list(range(n))  # one short: the bug

        def evens(n):
            return [2 * i + 1 for i in range(n)]  # odd numbers: another bug

        def lookup(table, key):
            return table.get(key)

        def first_word(record):
            return record.get("title").split()[0]
        """,
    "tests/test_listing.py": """\
        import pytest

        from pkg import listing


        @pytest.mark.parametrize("n", range(10))
        def test_prefix(n):
            assert listing.prefix(n) == list(range(n + 1))


        @pytest.mark.parametrize("n", range(1, 6))
        def test_evens(n):
            assert listing.evens(n) == list(range(0, 2 * n, 2))


        def test_lookup_none_table():
            assert listing.lookup(None, "a") is None


        def test_first_word_of_untitled():
            assert listing.first_word({}) == ""
        """,
    # The renamed helper: an import error at collection here...
    "tests/test_slug_import.py": """\
        from pkg.text import slugify

        def test_simple():
            assert slugify("A B") == "a-b"

        def test_empty():
            assert slugify("") == ""
        """,
    # ...and attribute errors at the call sites there.
    "tests/test_slug_calls.py": """\
        from pkg import text

        def test_spaces():
            assert text.slugify("x y") == "x-y"
        """,
    "tests/test_slug_more.py": """\
        import pkg.text

        def test_upper():
            assert pkg.text.slugify("AB") == "ab"
        """,
    "tests/test_nums.py": """\
        from pkg import nums

        def test_low():
            assert nums.clamp(-1, 0, 9) == 0

        def test_high():
            assert nums.clamp(10, 0, 9) == 9
        """,
    **{
        f"tests/test_remote_{n}.py": f"""\
            import leftpad_not_installed_anywhere

            def test_remote():
                assert leftpad_not_installed_anywhere.pad("a", {n}) == "a"
            """
        for n in range(3)
    },
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> DetectRun:
    root = pytest_project(tmp_path_factory.mktemp("shared"), SHARED_CAUSES)
    run = detect(root, tmp_path_factory.mktemp("home"), "--flaky-reruns", "0")
    assert run.returncode == 1, run.stderr
    return run


def _task_with(doc: dict[str, Any], test_id: str) -> dict[str, Any]:
    (task,) = [t for t in doc["tasks"] if any(f["test_id"] == test_id for f in t["failures"])]
    return task


def _ids(task: dict[str, Any]) -> list[str]:
    return sorted(f["test_id"] for f in task["failures"])


def test_cases_of_one_parametrized_test_are_one_task(shared: DetectRun) -> None:
    task = _task_with(shared.doc, "tests/test_listing.py::test_prefix[0]")
    assert _ids(task) == sorted(f"tests/test_listing.py::test_prefix[{n}]" for n in range(10))
    # Ten different messages (lists of ten different lengths) behind one assertion line.
    assert len({f["message"] for f in task["failures"]}) == 10
    assert task["crash_location"] == {"file": "tests/test_listing.py", "line": 8}


def test_two_parametrized_tests_are_two_tasks(shared: DetectRun) -> None:
    prefix = _task_with(shared.doc, "tests/test_listing.py::test_prefix[0]")
    evens = _task_with(shared.doc, "tests/test_listing.py::test_evens[1]")
    assert prefix["id"] != evens["id"]
    assert _ids(evens) == sorted(f"tests/test_listing.py::test_evens[{n}]" for n in range(1, 6))


def test_one_renamed_helper_is_one_task_wherever_it_crashes(shared: DetectRun) -> None:
    task = _task_with(shared.doc, "tests/test_slug_import.py")
    assert _ids(task) == [
        "tests/test_slug_calls.py::test_spaces",
        "tests/test_slug_import.py",
        "tests/test_slug_more.py::test_upper",
    ]
    assert {f["error_type"] for f in task["failures"]} == {"ImportError", "AttributeError"}
    assert task["message"] == "pkg.text has no attribute slugify"


def test_two_missing_names_are_two_tasks(shared: DetectRun) -> None:
    slug = _task_with(shared.doc, "tests/test_slug_import.py")
    clamp = _task_with(shared.doc, "tests/test_nums.py::test_low")
    assert slug["id"] != clamp["id"]
    assert _ids(clamp) == ["tests/test_nums.py::test_high", "tests/test_nums.py::test_low"]
    assert clamp["message"] == "pkg.nums has no attribute clamp"


def test_one_missing_package_is_one_task(shared: DetectRun) -> None:
    task = _task_with(shared.doc, "tests/test_remote_0.py")
    assert _ids(task) == [f"tests/test_remote_{n}.py" for n in range(3)]
    assert task["category"] == "missing_dependency"
    assert task["message"] == "no module named leftpad_not_installed_anywhere"


def test_different_bugs_stay_apart(shared: DetectRun) -> None:
    # Both raise AttributeError on None, at different lines: two bugs, not a missing name.
    lookup = _task_with(shared.doc, "tests/test_listing.py::test_lookup_none_table")
    first = _task_with(shared.doc, "tests/test_listing.py::test_first_word_of_untitled")
    assert lookup["id"] != first["id"]
    assert len(shared.doc["tasks"]) == 7
    assert shared.doc["summary"]["failures"] == 10 + 5 + 3 + 2 + 3 + 2


# ---------------------------------------------------------------- vitest

NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm"
_NO_NODE = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]

VITEST_PROJECT = {
    # `add` was renamed to `sum`; two test files still import it, each its own way.
    "src/math.js": "export function sum(a, b) {\n  return a + b;\n}\n"
    "export function range(n) {\n  return Array.from({ length: n }, (_, i) => i + 1);\n}\n",
    "test/add.test.js": """\
import { test, expect } from 'vitest';
import { add } from '../src/math.js';

test('adds small numbers', () => {
  expect(add(1, 2)).toBe(3);
});
""",
    "test/more.test.js": """\
import { test, expect } from 'vitest';
import * as math from '../src/math.js';

test('adds negative numbers', () => {
  expect(math.add(-1, -2)).toBe(-3);
});

test.each([1, 2, 3, 4])('range(%i) starts at zero', (n) => {
  expect(math.range(n)).toEqual([...Array(n).keys()]);
});

test('sums to zero', () => {
  expect(math.sum(1, -1)).toBe(1);
});
""",
    # One package that is not installed, imported by two test files.
    **{
        f"test/pad{n}.test.js": f"""\
import {{ test, expect }} from 'vitest';
import pad from 'left-pad-not-installed-anywhere';

test('pads {n}', () => {{
  expect(pad('a', {n})).toBe('a');
}});
"""
        for n in (1, 2)
    },
}


@pytest.mark.npm
@pytest.mark.skipif(bool(_NO_NODE), reason=f"needs node and npm; missing: {_NO_NODE}")
def test_vitest_renamed_export_each_rows_and_missing_package_are_one_task_each(
    tmp_path: Path,
) -> None:
    root = make_vitest_project(tmp_path / "p", VITEST_PROJECT, NPM_CACHE)
    run = detect(root, tmp_path / "home", "--flaky-reruns", "0", extra_env={"CI": "1"})
    assert run.returncode == 1, run.stderr
    # Named by message: how a report names a file that failed to load is the reporter's.
    tasks = {t["message"]: t for t in run.doc["tasks"]}
    assert len(tasks) == 4, list(tasks)
    renamed = tasks["add is not a function (no such export)"]
    assert sorted(f["file"] for f in renamed["failures"]) == [
        "test/add.test.js",
        "test/more.test.js",
    ]
    missing = tasks["no module named left-pad-not-installed-anywhere"]
    assert sorted(f["file"] for f in missing["failures"]) == [
        "test/pad1.test.js",
        "test/pad2.test.js",
    ]
    rows = [t for t in tasks.values() if len(t["failures"]) == 4]
    assert [sorted(f["test_name"].split(" > ")[-1] for f in t["failures"]) for t in rows] == [
        [f"range({n}) starts at zero" for n in (1, 2, 3, 4)]
    ]


@pytest.mark.npm
@pytest.mark.skipif(bool(_NO_NODE), reason=f"needs node and npm; missing: {_NO_NODE}")
def test_jest_renamed_export_and_each_rows_are_one_task_each(tmp_path: Path) -> None:
    root = make_jest_project(
        tmp_path / "p",
        {
            "src/math.js": "function sum(a, b) {\n  return a + b;\n}\n"
            "function range(n) {\n  return Array.from({ length: n }, (_, i) => i + 1);\n}\n"
            "module.exports = { sum, range };\n",
            "test/add.test.js": """\
const { add } = require('../src/math');

test('adds small numbers', () => {
  expect(add(1, 2)).toBe(3);
});
""",
            "test/more.test.js": """\
const { add, range } = require('../src/math');

test('adds negative numbers', () => {
  expect(add(-1, -2)).toBe(-3);
});

test.each([1, 2, 3])('range(%i) starts at zero', (n) => {
  expect(range(n)).toEqual([...Array(n).keys()]);
});
""",
        },
        NPM_CACHE,
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "0", extra_env={"CI": "1"})
    assert run.returncode == 1, run.stderr
    tasks = sorted(sorted(f["test_name"] for f in t["failures"]) for t in run.doc["tasks"])
    assert tasks == [
        ["adds negative numbers", "adds small numbers"],
        [f"range({n}) starts at zero" for n in (1, 2, 3)],
    ]
