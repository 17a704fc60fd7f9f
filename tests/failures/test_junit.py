"""JUnit XML: real pytest --junitxml output (xunit1 and xunit2), and committed reports of
the other dialects produced by the real tools (tests/data/reports/README.md says how)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentloop.failures.junit import parse_junit
from agentloop.failures.pytest_json import parse_pytest_json
from agentloop.failures.reports import read_report
from agentloop.testing.repos import pytest_project

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"

PROJECT = {
    "pkg/__init__.py": "",
    "pkg/calc.py": "def half(x):\n    return x['value'] / 2\n",
    "tests/test_calc.py": """\
        import pytest

        from pkg import calc

        def test_half():
            assert calc.half(None) == 1

        @pytest.mark.parametrize("v", [pytest.param(1, id="a b/c")])
        def test_param(v):
            assert v == 2

        class TestK:
            def test_m(self):
                assert [] == [1]

        @pytest.fixture
        def boom():
            raise RuntimeError("fixture boom")

        def test_setup(boom):
            pass

        def test_ok():
            pass
        """,
    "tests/test_broken.py": "import not_installed_anywhere\n",
}


def run_pytest(root: Path, *flags: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         "--continue-on-collection-errors", *flags],
        cwd=root, capture_output=True, stdin=subprocess.DEVNULL, check=False, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = pytest_project(tmp_path_factory.mktemp("junit"), PROJECT)
    run_pytest(root, "--json-report", "--json-report-file=report.json")
    run_pytest(root, "-o", "junit_family=xunit1", "--junitxml=xunit1.xml")
    run_pytest(root, "--junitxml=xunit2.xml")
    return root


def summary(root: Path, name: str) -> dict[str, tuple[str, str, str]]:
    report = read_report(root / name, fmt=None, root=root)
    return {f.test_id: (f.error_type, f.stage, f.file or "") for f in report.failures}


@pytest.mark.parametrize("name", ["xunit1.xml", "xunit2.xml"])
def test_pytest_junit_agrees_with_pytest_json(project: Path, name: str) -> None:
    from_json = summary(project, "report.json")
    assert summary(project, name) == from_json
    assert set(from_json) == {
        "tests/test_broken.py",
        "tests/test_calc.py::test_half",
        "tests/test_calc.py::test_param[a b/c]",
        "tests/test_calc.py::TestK::test_m",
        "tests/test_calc.py::test_setup",
    }
    assert from_json["tests/test_calc.py::test_setup"][:2] == ("RuntimeError", "setup")
    assert from_json["tests/test_broken.py"][:2] == ("ModuleNotFoundError", "collection")


def test_vitest_report() -> None:
    report = read_report(REPORTS / "vitest.xml", fmt=None, root=None)
    assert report.dialect == "vitest"
    by_id = {f.test_id: f for f in report.failures}
    assert set(by_id) == {
        "tests/math.test.js > outer group > inner group > fails an assertion",
        "tests/math.test.js > throws a TypeError from helper",
        "tests/broken.test.js",
    }
    assert by_id["tests/broken.test.js"].stage == "collection"
    typed = by_id["tests/math.test.js > throws a TypeError from helper"]
    assert typed.error_type == "TypeError"
    assert [str(frame) for frame in typed.frames][-1] == "src/helper.js:3"


def test_jest_junit_report_keeps_the_readable_suite_error() -> None:
    report = read_report(REPORTS / "jest_junit.xml", fmt=None, root=None)
    assert report.dialect == "jest"
    by_name = {f.test_name: f for f in report.failures}
    assert set(by_name) == {
        "outer group inner group fails an assertion",
        "throws a TypeError from helper",
        "tests/broken.test.js",
    }
    broken = by_name["tests/broken.test.js"]
    assert broken.stage == "collection"
    assert broken.message.startswith("Cannot find module './does-not-exist'")


def test_gotestsum_report_keeps_only_the_failing_leaves() -> None:
    report = read_report(REPORTS / "gotestsum.xml", fmt=None, root=None)
    assert report.dialect == "go"
    assert sorted(f.test_name for f in report.failures) == [
        "TestDescribeNil",
        "TestGroups/outer/fails_an_assertion",
    ]
    panic = next(f for f in report.failures if f.test_name == "TestDescribeNil")
    assert panic.error_type == "panic"


def test_gotestsum_build_error_is_a_failure_not_a_green_report() -> None:
    report = read_report(REPORTS / "gotestsum_build_error.xml", fmt=None, root=None)
    (failure,) = report.failures
    assert failure.stage == "collection"
    assert "failed to build" in failure.message


def test_surefire_report_directory() -> None:
    report = read_report(REPORTS / "surefire", fmt=None, root=None)
    assert report.dialect == "surefire"
    by_id = {f.test_id: f for f in report.failures}
    assert set(by_id) == {
        "com.example.HelperTest#throwsFromHelper",
        "com.example.HelperTest$Inner#failsAnAssertion",
        "com.example.BrokenInitTest#neverRuns",
    }
    assert by_id["com.example.HelperTest#throwsFromHelper"].error_type == "NullPointerException"
    assert by_id["com.example.HelperTest$Inner#failsAnAssertion"].error_type == (
        "AssertionFailedError"
    )


def test_pytest_reruns_keep_the_last_attempt() -> None:
    # pytest-rerunfailures writes one <testcase> per attempt; only the last one counts.
    xml = (
        b'<testsuites><testsuite name="pytest">'
        b'<testcase classname="tests.test_a" name="test_x"><failure message="boom"/></testcase>'
        b'<testcase classname="tests.test_a" name="test_x"/>'
        b'<testcase classname="tests.test_a" name="test_y"/>'
        b'<testcase classname="tests.test_a" name="test_y"><failure message="boom"/></testcase>'
        b"</testsuite></testsuites>"
    )
    report = parse_junit(xml)
    assert [f.test_id for f in report.failures] == ["tests/test_a.py::test_y"]
    assert report.total == 2


def test_pytest_json_rerun_outcome_counts_as_passed() -> None:
    # pytest-rerunfailures + pytest-json-report: a test that passed on a re-run is
    # reported with outcome "rerun" (numirias/pytest-json-report#85).
    data = """{"exitcode": 0, "tests": [
        {"nodeid": "t.py::test_f", "lineno": 3, "outcome": "rerun",
         "setup": {"outcome": "passed"}, "call": {"outcome": "passed"},
         "teardown": {"outcome": "passed"}}]}"""
    report = parse_pytest_json(data)
    assert report.failures == ()
    assert report.total == 1


def test_an_encoding_python_does_not_know_is_read_as_utf8() -> None:
    # Found by hypothesis: expat raised LookupError for encoding="AUTF-8".
    from agentloop.failures.reports import parse_report

    xml = (
        b'<?xml version="1.0" encoding="AUTF-8"?><testsuites name="vitest tests">'
        b'<testsuite name="a.test.js"><testcase classname="a.test.js" name="x">'
        b'<failure message="boom" type="Error">Error: boom</failure></testcase>'
        b"</testsuite></testsuites>"
    )
    report = parse_report(xml, fmt=None, name="r", root=None)
    assert [f.test_id for f in report.failures] == ["a.test.js > x"]
