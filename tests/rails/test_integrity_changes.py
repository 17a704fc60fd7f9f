"""Test integrity across a whole change: moves between files, deleted and renamed files,
which files count as tests, snapshots."""

from __future__ import annotations

import pytest

from agentloop.rails.integrity import IntegrityViolation, check_integrity

TESTS_A = "def test_a():\n    assert a() == 1\n\n\ndef test_b():\n    assert b() == 2\n"
JS_A = "test('a', () => {\n  expect(a()).toBe(1);\n});\n"
SNAP = (
    "// Jest Snapshot v1, https://goo.gl/fbAQLP\n\n"
    "exports[`cart > renders 1`] = `\n<b>\n  3\n</b>\n`;\n\n"
    'exports[`quote 1`] = `"say \\`hi\\`"`;\n'
)

# (id, before, after, expected (kind, path, test) triples)
CHANGES: list[
    tuple[
        str,
        dict[str, str | None],
        dict[str, str | None],
        list[tuple[str, str, str | None]],
    ]
] = [
    (
        "python test moved to another file",
        {"tests/test_a.py": TESTS_A, "tests/test_b.py": None},
        {
            "tests/test_a.py": "def test_a():\n    assert a() == 1\n",
            "tests/test_b.py": "def test_b():\n    assert b() == 2\n",
        },
        [],
    ),
    (
        "python test moved and loosened on the way",
        {"tests/test_a.py": TESTS_A},
        {
            "tests/test_a.py": "def test_a():\n    assert a() == 1\n",
            "tests/unit/test_b.py": "class TestB:\n    def test_b(self):\n        assert b()\n",
        },
        [("assertion_loosened", "tests/unit/test_b.py", "TestB.test_b")],
    ),
    (
        "js test moved to another file",
        {"web/a.test.ts": JS_A + "test('b', () => {\n  expect(b()).toBe(2);\n});\n"},
        {"web/a.test.ts": JS_A, "web/b.spec.js": "test('b', () => { expect(b()).toBe(2) })\n"},
        [],
    ),
    (
        "file renamed with its tests",
        {"tests/test_a.py": TESTS_A},
        {"tests/test_a.py": None, "tests/test_renamed.py": TESTS_A},
        [],
    ),
    (
        "file missing from AFTER counts as deleted",
        {"tests/test_a.py": TESTS_A},
        {},
        [("test_file_deleted", "tests/test_a.py", None)],
    ),
    (
        "test file deleted is one violation, not one per test",
        {"tests/test_a.py": TESTS_A, "web/a.test.ts": JS_A},
        {"tests/test_a.py": None, "web/a.test.ts": None},
        [
            ("test_file_deleted", "tests/test_a.py", None),
            ("test_file_deleted", "web/a.test.ts", None),
        ],
    ),
    (
        "test file deleted but some of its tests live on elsewhere",
        {"tests/test_a.py": TESTS_A},
        {"tests/test_a.py": None, "tests/test_c.py": "def test_a():\n    assert a() == 1\n"},
        [("test_file_deleted", "tests/test_a.py", None)],
    ),
    (
        "helper module deleted",
        {"tests/helpers.py": "def make_cart():\n    return Cart()\n"},
        {"tests/helpers.py": None},
        [("test_file_deleted", "tests/helpers.py", None)],
    ),
    (
        "helper module moved unchanged",
        {"tests/helpers.py": "def make_cart():\n    return Cart()\n"},
        {
            "tests/helpers.py": None,
            "tests/support/carts.py": "def make_cart():\n    return Cart()\n",
        },
        [],
    ),
    (
        "blank __init__ deleted",
        {"tests/__init__.py": ""},
        {"tests/__init__.py": None},
        [],
    ),
    (
        "test data deleted",
        {"tests/data/expected.json": '{"total": 3}\n'},
        {"tests/data/expected.json": None},
        [("test_file_deleted", "tests/data/expected.json", None)],
    ),
    (
        "test data edited is not read",
        {"tests/data/expected.json": '{"total": 3}\n'},
        {"tests/data/expected.json": '{"total": 4}\n'},
        [],
    ),
    (
        "go test file deleted",
        {"pkg/cart_test.go": "package cart\n\nfunc TestAdd(t *testing.T) {}\n"},
        {"pkg/cart_test.go": None},
        [("test_file_deleted", "pkg/cart_test.go", None)],
    ),
    (
        "non-test files are ignored",
        {"src/app/cart.py": "def f():\n    assert x == 1\n", "src/app/cart.ts": "expect(1)"},
        {"src/app/cart.py": "def f():\n    pass\n", "src/app/cart.ts": None},
        [],
    ),
    (
        "a new test file",
        {},
        {"tests/test_new.py": TESTS_A, "web/new.test.ts": JS_A},
        [],
    ),
    (
        "a new test file that does not parse",
        {"tests/test_new.py": None},
        {"tests/test_new.py": "def test_x(:\n"},
        [("unparseable", "tests/test_new.py", None)],
    ),
    (
        "a new file skipping everything in it is flagged",
        {},
        {"tests/test_new.py": "import pytest\n\npytestmark = pytest.mark.skip\n" + TESTS_A},
        [("skip_added", "tests/test_new.py", None)],
    ),
    (
        "AFTER does not parse: its tests are not also reported deleted",
        {"tests/test_a.py": TESTS_A},
        {"tests/test_a.py": TESTS_A + "def broken(:\n"},
        [("unparseable", "tests/test_a.py", None)],
    ),
    (
        "a new conftest fixture that skips",
        {"tests/conftest.py": None},
        {
            "tests/conftest.py": "import pytest\n\n\n@pytest.fixture(autouse=True)\n"
            "def _no_db():\n    pytest.skip('no db')\n"
        },
        [("skip_added", "tests/conftest.py", None)],
    ),
    (
        "snapshot added",
        {"src/__snapshots__/cart.test.ts.snap": SNAP},
        {"src/__snapshots__/cart.test.ts.snap": SNAP + "\nexports[`new 1`] = `1`;\n"},
        [],
    ),
    (
        "snapshot rewritten",
        {"src/__snapshots__/cart.test.ts.snap": SNAP},
        {"src/__snapshots__/cart.test.ts.snap": SNAP.replace("  3\n", "  4\n")},
        [("expectation_changed", "src/__snapshots__/cart.test.ts.snap", "cart > renders 1")],
    ),
    (
        "snapshot removed",
        {"src/__snapshots__/cart.test.ts.snap": SNAP},
        {"src/__snapshots__/cart.test.ts.snap": SNAP.split("exports[`quote", maxsplit=1)[0]},
        [("assertion_removed", "src/__snapshots__/cart.test.ts.snap", "quote 1")],
    ),
    (
        "snapshot file deleted",
        {"src/__snapshots__/cart.test.ts.snap": SNAP},
        {"src/__snapshots__/cart.test.ts.snap": None},
        [("test_file_deleted", "src/__snapshots__/cart.test.ts.snap", None)],
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [pytest.param(b, a, e, id=name) for name, b, a, e in CHANGES],
)
def test_change(
    before: dict[str, str | None],
    after: dict[str, str | None],
    expected: list[tuple[str, str, str | None]],
) -> None:
    assert [(v.kind, v.path, v.test) for v in check_integrity(before, after)] == expected


def test_violations_are_ordered_by_path_and_render_with_the_test() -> None:
    violations = check_integrity(
        {"tests/test_z.py": TESTS_A, "tests/test_a.py": TESTS_A},
        {"tests/test_z.py": None, "tests/test_a.py": TESTS_A.replace("== 2", "== 3")},
    )
    assert violations == (
        IntegrityViolation(
            "expectation_changed",
            "tests/test_a.py",
            "test_b",
            "`assert b() == 2` became `assert b() == 3`",
        ),
        IntegrityViolation(
            "test_file_deleted",
            "tests/test_z.py",
            None,
            "test file deleted with 2 test(s) found nowhere else: test_a, test_b",
        ),
    )
    assert str(violations[0]) == (
        "tests/test_a.py::test_b: `assert b() == 2` became `assert b() == 3`"
    )
    assert str(violations[1]).startswith("tests/test_z.py: test file deleted")


def test_a_large_change_is_checked_quickly() -> None:
    tests = "\n\n".join(f"def test_{n}():\n    assert f({n}) == {n + 1}" for n in range(1000))
    js = "\n".join(f"test('t{n}', () => {{ expect(f({n})).toBe({n + 1}); }});" for n in range(1000))
    before = {"tests/test_big.py": tests, "web/big.test.ts": js}
    after = {"tests/test_moved.py": tests, "web/moved.test.ts": js}
    assert check_integrity(before, after) == ()
