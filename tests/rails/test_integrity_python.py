"""Test integrity on Python test files: one BEFORE/AFTER pair per case, and the exact
violations expected (kind and test), so a case also fails when it reports too much."""

from __future__ import annotations

from textwrap import dedent

import pytest

from agentloop.rails.integrity import check_integrity

PATH = "tests/test_cart.py"

# (id, before, after, expected (kind, test) pairs)
VIOLATIONS: list[tuple[str, str, str, list[tuple[str, str | None]]]] = [
    (
        "assert removed",
        """
        def test_total():
            assert total([1, 2]) == 3
            assert total([]) == 0
        """,
        """
        def test_total():
            assert total([1, 2]) == 3
        """,
        [("assertion_removed", "test_total")],
    ),
    (
        "equality loosened to truthiness",
        "def test_total():\n    assert total([1, 2]) == 3\n",
        "def test_total():\n    assert total([1, 2])\n",
        [("assertion_loosened", "test_total")],
    ),
    (
        "assert True",
        "def test_total():\n    assert total([1, 2]) == 3\n",
        "def test_total():\n    assert True\n",
        [("assertion_loosened", "test_total")],
    ),
    (
        "is not None",
        "def test_total():\n    assert total([1, 2]) == 3\n",
        "def test_total():\n    assert total([1, 2]) is not None\n",
        [("assertion_loosened", "test_total")],
    ),
    (
        "== became >=",
        "def test_size():\n    assert len(items()) == 3\n",
        "def test_size():\n    assert len(items()) >= 3\n",
        [("assertion_loosened", "test_size")],
    ),
    (
        "== became !=",
        "def test_total():\n    assert total() == 3\n",
        "def test_total():\n    assert total() != 4\n",
        [("assertion_loosened", "test_total")],
    ),
    (
        "membership to truthiness drops the expected value",
        "def test_log():\n    assert 'error' in log()\n",
        "def test_log():\n    assert log()\n",
        [("assertion_loosened", "test_log")],
    ),
    (
        "an `and` term dropped",
        "def test_pair():\n    assert a() == 1 and b() == 2\n",
        "def test_pair():\n    assert a() == 1\n",
        [("assertion_loosened", "test_pair")],
    ),
    (
        "chained comparison shortened",
        "def test_range():\n    assert 0 < f() < 10\n",
        "def test_range():\n    assert 0 < f()\n",
        [("assertion_loosened", "test_range")],
    ),
    (
        "an `or` alternative added",
        "def test_total():\n    assert total() == 3\n",
        "def test_total():\n    assert total() == 3 or total() == 4\n",
        [("assertion_loosened", "test_total")],
    ),
    (
        "expected value changed",
        "def test_total():\n    assert total([1, 2]) == 3\n",
        "def test_total():\n    assert total([1, 2]) == 4\n",
        [("expectation_changed", "test_total")],
    ),
    (
        "assertEqual became assertTrue",
        """
        class TestCart(unittest.TestCase):
            def test_add(self):
                self.assertEqual(add(1), 2)
        """,
        """
        class TestCart(unittest.TestCase):
            def test_add(self):
                self.assertTrue(add(1))
        """,
        [("assertion_loosened", "TestCart.test_add")],
    ),
    (
        "assertEqual became assertIsNotNone",
        "def test_add(self):\n    self.assertEqual(add(1), 2)\n",
        "def test_add(self):\n    self.assertIsNotNone(add(1))\n",
        [("assertion_loosened", "test_add")],
    ),
    (
        "approx rel raised",
        "def test_mean():\n    assert mean() == pytest.approx(2.5, rel=1e-6)\n",
        "def test_mean():\n    assert mean() == pytest.approx(2.5, rel=0.1)\n",
        [("assertion_loosened", "test_mean")],
    ),
    (
        "approx given an abs tolerance",
        "def test_mean():\n    assert mean() == approx(2.5)\n",
        "def test_mean():\n    assert mean() == approx(2.5, abs=0.5)\n",
        [("assertion_loosened", "test_mean")],
    ),
    (
        "exact comparison became approx",
        "def test_mean():\n    assert mean() == 2.5\n",
        "def test_mean():\n    assert mean() == pytest.approx(2.5)\n",
        [("assertion_loosened", "test_mean")],
    ),
    (
        "assertAlmostEqual places lowered",
        "def test_mean(self):\n    self.assertAlmostEqual(mean(), 2.5, places=6)\n",
        "def test_mean(self):\n    self.assertAlmostEqual(mean(), 2.5, 2)\n",
        [("assertion_loosened", "test_mean")],
    ),
    (
        "math.isclose rel_tol raised",
        "def test_mean():\n    assert math.isclose(mean(), 2.5)\n",
        "def test_mean():\n    assert math.isclose(mean(), 2.5, rel_tol=0.2)\n",
        [("assertion_loosened", "test_mean")],
    ),
    (
        "pytest.raises lost its match",
        "def test_bad():\n    with pytest.raises(ValueError, match='negative'):\n        f(-1)\n",
        "def test_bad():\n    with pytest.raises(ValueError):\n        f(-1)\n",
        [("assertion_loosened", "test_bad")],
    ),
    (
        "pytest.raises widened to Exception",
        "def test_bad():\n    with pytest.raises(ValueError):\n        f(-1)\n",
        "def test_bad():\n    with pytest.raises(Exception):\n        f(-1)\n",
        [("assertion_loosened", "test_bad")],
    ),
    (
        "assertRaises widened to Exception",
        "def test_bad(self):\n    with self.assertRaises(KeyError):\n        f()\n",
        "def test_bad(self):\n    with self.assertRaises(Exception):\n        f()\n",
        [("assertion_loosened", "test_bad")],
    ),
    (
        "mock call check loosened",
        "def test_sends():\n    mailer.send.assert_called_once_with('a@b.c')\n",
        "def test_sends():\n    mailer.send.assert_called()\n",
        [("assertion_loosened", "test_sends")],
    ),
    (
        "mock assert no longer called (a no-op)",
        "def test_sends():\n    mailer.send.assert_called_once()\n",
        "def test_sends():\n    mailer.send.assert_called_once\n",
        [("assertion_removed", "test_sends")],
    ),
    (
        "body replaced by pass",
        "def test_total():\n    cart = Cart()\n    assert cart.total() == 0\n",
        "def test_total():\n    pass\n",
        [("assertion_loosened", "test_total")],
    ),
    (
        "body replaced by ... and a docstring",
        "async def test_total():\n    assert await total() == 0\n",
        'async def test_total():\n    """Later."""\n    ...\n',
        [("assertion_loosened", "test_total")],
    ),
    (
        "early return before the assertions",
        "def test_total():\n    cart = Cart()\n    assert cart.total() == 0\n",
        "def test_total():\n    cart = Cart()\n    return\n    assert cart.total() == 0\n",
        [("assertion_loosened", "test_total")],
    ),
    (
        "assertion swallowed by try/except",
        "def test_total():\n    assert total() == 0\n",
        """
        def test_total():
            try:
                assert total() == 0
            except AssertionError:
                pass
        """,
        [("assertion_loosened", "test_total")],
    ),
    (
        "assertion swallowed by suppress",
        "def test_total():\n    assert total() == 0\n",
        """
        def test_total():
            with contextlib.suppress(Exception):
                assert total() == 0
        """,
        [("assertion_loosened", "test_total")],
    ),
    (
        "an empty redefinition shadows the test",
        "def test_total():\n    assert total() == 0\n",
        "def test_total():\n    assert total() == 0\n\n\ndef test_total():\n    pass\n",
        [("assertion_loosened", "test_total"), ("test_shadowed", "test_total")],
    ),
    (
        "@pytest.mark.skip",
        "def test_total():\n    assert total() == 0\n",
        "@pytest.mark.skip(reason='flaky')\ndef test_total():\n    assert total() == 0\n",
        [("skip_added", "test_total")],
    ),
    (
        "@pytest.mark.xfail",
        "def test_total():\n    assert total() == 0\n",
        "@pytest.mark.xfail\ndef test_total():\n    assert total() == 0\n",
        [("skip_added", "test_total")],
    ),
    (
        "xfail made non-strict",
        "@pytest.mark.xfail(strict=True)\ndef test_total():\n    assert total() == 0\n",
        "@pytest.mark.xfail(strict=False)\ndef test_total():\n    assert total() == 0\n",
        [("skip_added", "test_total")],
    ),
    (
        "skipif condition widened",
        "@pytest.mark.skipif(sys.platform == 'win32', reason='posix')\ndef test_x():\n"
        "    assert f()\n",
        "@pytest.mark.skipif(True, reason='posix')\ndef test_x():\n    assert f()\n",
        [("skip_added", "test_x")],
    ),
    (
        "pytest.skip() call in the body",
        "def test_total():\n    assert total() == 0\n",
        "def test_total():\n    pytest.skip('later')\n    assert total() == 0\n",
        [("skip_added", "test_total")],
    ),
    (
        "pytest.xfail() call in the body",
        "def test_total():\n    assert total() == 0\n",
        "def test_total():\n    pytest.xfail('known')\n    assert total() == 0\n",
        [("skip_added", "test_total")],
    ),
    (
        "@unittest.skip on a class is reported once for the class",
        """
        class TestCart(unittest.TestCase):
            def test_a(self):
                self.assertEqual(a(), 1)

            def test_b(self):
                self.assertEqual(b(), 2)
        """,
        """
        @unittest.skip("broken")
        class TestCart(unittest.TestCase):
            def test_a(self):
                self.assertEqual(a(), 1)

            def test_b(self):
                self.assertEqual(b(), 2)
        """,
        [("skip_added", "TestCart")],
    ),
    (
        "@unittest.expectedFailure",
        "class TestCart(TestCase):\n    def test_a(self):\n        self.assertEqual(a(), 1)\n",
        "class TestCart(TestCase):\n    @unittest.expectedFailure\n    def test_a(self):\n"
        "        self.assertEqual(a(), 1)\n",
        [("skip_added", "TestCart.test_a")],
    ),
    (
        "skipTest in setUp reaches every test of the class",
        """
        class TestCart(TestCase):
            def setUp(self):
                self.cart = Cart()

            def test_a(self):
                self.assertEqual(self.cart.total(), 0)
        """,
        """
        class TestCart(TestCase):
            def setUp(self):
                self.skipTest("no db")

            def test_a(self):
                self.assertEqual(self.cart.total(), 0)
        """,
        [("skip_added", "TestCart")],
    ),
    (
        "class-level pytestmark",
        "class TestCart:\n    def test_a(self):\n        assert a() == 1\n",
        "class TestCart:\n    pytestmark = pytest.mark.skip\n\n    def test_a(self):\n"
        "        assert a() == 1\n",
        [("skip_added", "TestCart")],
    ),
    (
        "module pytestmark is one file-wide violation",
        "def test_a():\n    assert a() == 1\n\n\ndef test_b():\n    assert b() == 2\n",
        "pytestmark = pytest.mark.skip\n\n\ndef test_a():\n    assert a() == 1\n\n\n"
        "def test_b():\n    assert b() == 2\n",
        [("skip_added", None)],
    ),
    (
        "module-level importorskip",
        "import numpy\n\n\ndef test_a():\n    assert a() == 1\n",
        "numpy = pytest.importorskip('numpy')\n\n\ndef test_a():\n    assert a() == 1\n",
        [("skip_added", None)],
    ),
    (
        "a fixture that skips",
        "@pytest.fixture\ndef db():\n    return connect()\n\n\ndef test_a(db):\n    assert db\n",
        "@pytest.fixture\ndef db():\n    pytest.skip('no db')\n\n\n"
        "def test_a(db):\n    assert db\n",
        [("skip_added", None)],
    ),
    (
        "flaky reruns",
        "def test_total():\n    assert total() == 0\n",
        "@pytest.mark.flaky(reruns=3)\ndef test_total():\n    assert total() == 0\n",
        [("retry_added", "test_total")],
    ),
    (
        "one case skipped through pytest.param",
        "@pytest.mark.parametrize('n', [1, 2])\ndef test_n(n):\n    assert f(n) == n\n",
        "@pytest.mark.parametrize('n', [1, pytest.param(2, marks=pytest.mark.skip)])\n"
        "def test_n(n):\n    assert f(n) == n\n",
        [("skip_added", "test_n")],
    ),
    (
        "parametrized cases cut",
        "@pytest.mark.parametrize('n', [1, 2, 3])\ndef test_n(n):\n    assert f(n) == n\n",
        "@pytest.mark.parametrize('n', [1])\ndef test_n(n):\n    assert f(n) == n\n",
        [("cases_removed", "test_n")],
    ),
    (
        "parametrize dropped altogether",
        "@pytest.mark.parametrize('n', [1, 2, 3])\ndef test_n(n):\n    assert f(n) == n\n",
        "def test_n():\n    assert f(1) == 1\n",
        [("cases_removed", "test_n"), ("expectation_changed", "test_n")],
    ),
    (
        "parametrized expected value changed",
        "@pytest.mark.parametrize(('a', 'b'), [(1, 2), (2, 3)])\ndef test_inc(a, b):\n"
        "    assert inc(a) == b\n",
        "@pytest.mark.parametrize(('a', 'b'), [(1, 2), (2, 4)])\ndef test_inc(a, b):\n"
        "    assert inc(a) == b\n",
        [("expectation_changed", "test_inc")],
    ),
    (
        "timeout raised",
        "@pytest.mark.timeout(5)\ndef test_slow():\n    assert run() == 0\n",
        "@pytest.mark.timeout(60)\ndef test_slow():\n    assert run() == 0\n",
        [("timeout_raised", "test_slow")],
    ),
    (
        "timeout removed",
        "@pytest.mark.timeout(5)\ndef test_slow():\n    assert run() == 0\n",
        "def test_slow():\n    assert run() == 0\n",
        [("timeout_raised", "test_slow")],
    ),
    (
        "timeout added over a default this check cannot see",
        "def test_slow():\n    assert run() == 0\n",
        "@pytest.mark.timeout(timeout=600)\ndef test_slow():\n    assert run() == 0\n",
        [("timeout_raised", "test_slow")],
    ),
    (
        "module pytestmark timeout raised",
        "pytestmark = pytest.mark.timeout(5)\n\n\ndef test_slow():\n    assert run() == 0\n",
        "pytestmark = [pytest.mark.timeout(5 * 60)]\n\n\ndef test_slow():\n    assert run() == 0\n",
        [("timeout_raised", "test_slow")],
    ),
    (
        "test deleted",
        "def test_a():\n    assert a() == 1\n\n\ndef test_b():\n    assert b() == 2\n",
        "def test_a():\n    assert a() == 1\n",
        [("test_deleted", "test_b")],
    ),
    (
        "test renamed away from the test prefix",
        "def test_b():\n    assert b() == 2\n",
        "def check_b():\n    assert b() == 2\n",
        [("test_deleted", "test_b")],
    ),
    (
        "helper assertion loosened",
        "def check(x):\n    assert x == 3\n\n\ndef test_a():\n    check(a())\n",
        "def check(x):\n    assert x\n\n\ndef test_a():\n    check(a())\n",
        [("assertion_loosened", "check")],
    ),
    (
        "AFTER does not parse",
        "def test_a():\n    assert a() == 1\n",
        "def test_a(:\n    assert a() == 1\n",
        [("unparseable", None)],
    ),
    (
        "BEFORE does not parse: raw counts still see a removed assert",
        "def test_a(:\n    assert a() == 1\n    assert b() == 2\n",
        "def test_a():\n    assert a() == 1\n",
        [("assertion_removed", None)],
    ),
    (
        "neither side parses: raw counts see an added skip, no `unparseable`",
        "def test_a(:\n    assert a() == 1\n",
        "def test_a(:\n    pytest.skip()\n    assert a() == 1\n",
        [("skip_added", None)],
    ),
]

FINE: list[tuple[str, str, str]] = [
    (
        "reformatted",
        """
        def test_total():
            result = total([1, 2],)
            assert result == 3, 'sum'
            assert (result
                    == 3)
        """,
        """
        def test_total():
            result = total(
                [1, 2],
            )
            assert result == 3, "sum"
            assert result == 3
        """,
    ),
    (
        "local variable renamed",
        "def test_total():\n    result = total([1, 2])\n    assert result == 3\n",
        "def test_total():\n    value = total([1, 2])\n    assert value == 3\n",
    ),
    (
        "new test added",
        "def test_a():\n    assert a() == 1\n",
        "def test_a():\n    assert a() == 1\n\n\ndef test_b():\n    assert b() == 2\n",
    ),
    (
        "new test added with a skip of its own",
        "def test_a():\n    assert a() == 1\n",
        "def test_a():\n    assert a() == 1\n\n\n"
        "@pytest.mark.skip\ndef test_b():\n    assert b()\n",
    ),
    (
        "assertion added",
        "def test_a():\n    assert a() == 1\n",
        "def test_a():\n    assert a() == 1\n    assert a() > 0\n",
    ),
    (
        "tests reordered, docstrings and messages changed",
        'def test_a():\n    assert a() == 1, "one"\n\n\ndef test_b():\n    """B."""\n'
        "    assert b() == 2\n",
        'def test_b():\n    """Bee."""\n    assert b() == 2\n\n\ndef test_a():\n'
        '    assert a() == 1, "uno"\n',
    ),
    (
        "assertEqual became an equal assert",
        "def test_a(self):\n    self.assertEqual(a(), 1, 'msg')\n",
        "def test_a(self):\n    assert a() == 1\n",
    ),
    (
        "operands flipped",
        "def test_a():\n    assert a() == 1\n",
        "def test_a():\n    assert 1 == a()\n",
    ),
    (
        "assertion made stricter",
        "def test_a():\n    assert a()\n",
        "def test_a():\n    assert a() == 1\n",
    ),
    (
        "tolerance tightened",
        "def test_m():\n    assert m() == pytest.approx(2.5, rel=1e-3)\n",
        "def test_m():\n    assert m() == pytest.approx(2.5, rel=1e-9)\n",
    ),
    (
        "approx replaced by exact equality",
        "def test_m():\n    assert m() == pytest.approx(2.5)\n",
        "def test_m():\n    assert m() == 2.5\n",
    ),
    (
        "timeout lowered",
        "@pytest.mark.timeout(60)\ndef test_s():\n    assert s()\n",
        "@pytest.mark.timeout(5)\ndef test_s():\n    assert s()\n",
    ),
    (
        "skip removed",
        "@pytest.mark.skip\ndef test_s():\n    assert s()\n",
        "def test_s():\n    assert s()\n",
    ),
    (
        "skip reason reworded",
        "@pytest.mark.skipif(WIN, reason='posix')\ndef test_s():\n    assert s()\n",
        "@pytest.mark.skipif(WIN, reason='needs posix')\ndef test_s():\n    assert s()\n",
    ),
    (
        "test moved into a class",
        "def test_a():\n    assert a() == 1\n",
        "class TestA:\n    def test_a(self):\n        assert a() == 1\n",
    ),
    (
        "parametrized case added",
        "@pytest.mark.parametrize('n', [1, 2])\ndef test_n(n):\n    assert f(n) == n\n",
        "@pytest.mark.parametrize('n', [1, 2, 3])\ndef test_n(n):\n    assert f(n) == n\n",
    ),
    (
        "try/except that re-raises",
        "def test_a():\n    assert a() == 1\n",
        "def test_a():\n    try:\n        assert a() == 1\n    except AssertionError:\n"
        "        dump()\n        raise\n",
    ),
    (
        "pytest.raises given a match",
        "def test_bad():\n    with pytest.raises(ValueError):\n        f(-1)\n",
        "def test_bad():\n    with pytest.raises(ValueError, match='negative'):\n        f(-1)\n",
    ),
    (
        "a byte order mark and CRLF line endings",
        "\ufeffdef test_a():\r\n    assert a() == 1\r\n",
        "\ufeffdef test_a():\r\n    assert a() == 1\r\n    assert a()\r\n",
    ),
    (
        "a placeholder test stays a placeholder",
        "def test_later():\n    pass\n",
        "def test_later():\n    ...\n",
    ),
]


def found(before: str, after: str) -> list[tuple[str, str | None]]:
    return [
        (v.kind, v.test) for v in check_integrity({PATH: dedent(before)}, {PATH: dedent(after)})
    ]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [pytest.param(b, a, e, id=name) for name, b, a, e in VIOLATIONS],
)
def test_violation(before: str, after: str, expected: list[tuple[str, str | None]]) -> None:
    assert found(before, after) == expected


@pytest.mark.parametrize(("before", "after"), [pytest.param(b, a, id=name) for name, b, a in FINE])
def test_not_a_violation(before: str, after: str) -> None:
    assert found(before, after) == []


def test_details_say_what_changed() -> None:
    (violation,) = check_integrity(
        {PATH: "def test_total():\n    assert total([1, 2]) == 3\n"},
        {PATH: "def test_total():\n    assert total([1, 2])\n"},
    )
    assert str(violation) == (
        "tests/test_cart.py::test_total: `assert total([1, 2]) == 3` became `assert total([1, 2])`"
    )


def test_a_rename_is_named() -> None:
    (violation,) = check_integrity(
        {PATH: "def test_old():\n    assert a() == 1\n"},
        {PATH: "def test_new():\n    assert a() == 1\n"},
    )
    assert violation.kind == "test_deleted"
    assert violation.detail == "test deleted (renamed to test_new)"


def test_tolerance_detail_names_both_values() -> None:
    (violation,) = check_integrity(
        {PATH: "def test_m():\n    assert m() == pytest.approx(2.5, rel=1e-6)\n"},
        {PATH: "def test_m():\n    assert m() == pytest.approx(2.5, rel=10**-1)\n"},
    )
    assert violation.detail.endswith("(approx(rel) from 1e-06 to 0.1)")
