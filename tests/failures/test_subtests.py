"""Failed subtests (`unittest`'s `subTest`, pytest's `subtests` fixture) on real pytest 9
runs: each is one failure with its own message and crash site, read from the probe plugin,
never reported twice, re-run through its test, and grouped like any other failure."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from agentloop.failures import probe
from agentloop.failures.classify import crash_location
from agentloop.failures.junit import parse_junit
from agentloop.failures.model import Location
from agentloop.testing.detect import DetectRun, by_test_id, detect, junit_cases, ran, run_selector
from agentloop.testing.repos import pytest_project

SUBTESTS = {
    "pkg/__init__.py": "",
    "pkg/calc.py": """\
        def half(value):
            return value["amount"] / 2
        """,
    "tests/test_units.py": """\
        import unittest

        from pkg import calc


        class TestHalf(unittest.TestCase):
            def test_half(self):
                for amount in (2, 4, 6):
                    with self.subTest("plain number", amount=amount):
                        self.assertEqual(calc.half(amount), amount / 2)

            def test_lengths(self):
                for n in range(1, 4):
                    with self.subTest(n=n):
                        self.assertEqual(list(range(n)), list(range(n + 1)))
        """,
    "tests/test_fixture.py": """\
        from pkg import calc


        def test_half_many(subtests):
            for amount in (8, 10):
                with subtests.test(msg="fixture", amount=amount):
                    assert calc.half(amount) == amount / 2
            with subtests.test(msg="a dict"):
                assert calc.half({"amount": 4}) == 2


        def test_fails_on_its_own_too(subtests):
            with subtests.test(msg="inner"):
                assert 1 + 1 == 3
            assert "own" == "failure"
        """,
}

HALF = [
    *(f"tests/test_units.py::TestHalf::test_half [plain number] (amount={n})" for n in (2, 4, 6)),
    *(f"tests/test_fixture.py::test_half_many [fixture] (amount={n})" for n in (8, 10)),
]
LENGTHS = [f"tests/test_units.py::TestHalf::test_lengths (n={n})" for n in (1, 2, 3)]
OWN = [
    "tests/test_fixture.py::test_fails_on_its_own_too",
    "tests/test_fixture.py::test_fails_on_its_own_too [inner]",
]


@pytest.fixture(scope="module")
def subtests_run(tmp_path_factory: pytest.TempPathFactory) -> DetectRun:
    root = pytest_project(tmp_path_factory.mktemp("subtests"), SUBTESTS)
    run = detect(root, tmp_path_factory.mktemp("home"), "--flaky-reruns", "0")
    assert run.returncode == 1, run.stderr
    return run


def test_each_failed_subtest_is_one_failure_with_its_message(subtests_run: DetectRun) -> None:
    found = by_test_id(subtests_run.doc)
    # pytest-json-report keeps one entry per test and no subtest's message: none of those
    # entries (`contains 2 failed subtests`, or a unittest test whose call `passed`) is left.
    assert sorted(found) == sorted([*HALF, *LENGTHS, *OWN])
    assert subtests_run.doc["summary"]["failures"] == len(found)
    for test_id in HALF:
        assert found[test_id]["error_type"] == "TypeError", test_id
        assert "not subscriptable" in found[test_id]["message"], test_id
        assert found[test_id]["crash_location"] == {"file": "pkg/calc.py", "line": 2}
    assert found[LENGTHS[2]]["message"].startswith("Lists differ: [0, 1, 2] != [0, 1, 2, 3]")
    assert found[LENGTHS[2]]["crash_location"] == {"file": "tests/test_units.py", "line": 15}
    inner = found["tests/test_fixture.py::test_fails_on_its_own_too [inner]"]
    assert inner["message"].startswith("assert (1 + 1) == 3")
    assert inner["crash_location"] == {"file": "tests/test_fixture.py", "line": 14}
    own = found["tests/test_fixture.py::test_fails_on_its_own_too"]
    assert own["message"].startswith("assert 'own' == 'failure'")
    assert own["crash_location"] == {"file": "tests/test_fixture.py", "line": 15}


def test_subtests_group_by_cause(subtests_run: DetectRun) -> None:
    tasks = sorted(sorted(f["test_id"] for f in t["failures"]) for t in subtests_run.doc["tasks"])
    # unittest's subTest and the fixture's subtests that fail in the same helper line are
    # one task; the cases of one test failing at one assertion line are one task.
    assert tasks == sorted([sorted(HALF), sorted(LENGTHS), [OWN[0]], [OWN[1]]])


def test_a_subtest_selector_reruns_its_test(subtests_run: DetectRun, tmp_path: Path) -> None:
    failure = by_test_id(subtests_run.doc)[HALF[0]]
    assert failure["selector"].endswith(shlex.quote("tests/test_units.py::TestHalf::test_half"))
    report = tmp_path / "rerun.xml"
    run_selector(
        f"{failure['selector']} -p no:cacheprovider --junitxml={shlex.quote(str(report))}",
        cwd=subtests_run.project,
        env=subtests_run.env,
    )
    assert [c.get("name") for c in junit_cases(report) if ran(c)] == ["test_half"]


def test_junit_reports_subtests_the_same_way(tmp_path: Path) -> None:
    # Without pytest-json-report agentloop reads pytest's JUnit XML, which keeps a
    # <failure> per subtest under one <testcase>: the probe still tells them apart.
    root = pytest_project(tmp_path / "p", SUBTESTS)
    events, xml = tmp_path / "probe.jsonl", tmp_path / "report.xml"
    probe_dir = str(resources.files("agentloop.resources") / "pytest_probe")
    env = {**os.environ, "AGENTLOOP_PROBE_FILE": str(events), "PYTHONPATH": probe_dir}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "agentloop_pytest_probe",
         f"--junitxml={xml}"],
        cwd=root, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False,
        timeout=120,
    )  # fmt: skip
    report = probe.with_subtests(parse_junit(xml.read_bytes(), root=root), probe.events(events))
    by_id = {f.test_id: f for f in report.failures}
    assert sorted(by_id) == sorted([*HALF, *LENGTHS, *OWN])
    for test_id in HALF:
        assert by_id[test_id].error_type == "TypeError", test_id
        assert "not subscriptable" in by_id[test_id].message, test_id
        assert crash_location(by_id[test_id], str(root)) == Location("pkg/calc.py", 2)
    # The test's first <failure> is its subtest's; its own is the one the probe saw.
    assert by_id[OWN[0]].message.startswith("assert 'own' == 'failure'")
    assert by_id[OWN[1]].message.startswith("assert (1 + 1) == 3")


def test_subtests_of_a_killed_run_are_kept(tmp_path: Path) -> None:
    root = pytest_project(
        tmp_path / "p",
        {
            **SUBTESTS,
            "tests/test_zz_hangs.py": "import time\n\ndef test_hangs():\n    time.sleep(300)\n",
        },
    )
    run = detect(root, tmp_path / "home", "--timeout", "4", "--flaky-reruns", "0")
    assert run.returncode == 1, run.stderr
    found = by_test_id(run.doc)
    assert sorted(found) == sorted([*HALF, *LENGTHS, *OWN, "tests/test_zz_hangs.py::test_hangs"])
    assert all(found[test_id]["message"] for test_id in [*HALF, *LENGTHS, *OWN])
    assert found[OWN[0]]["message"].startswith("assert 'own' == 'failure'")


def test_a_report_read_alone_says_its_subtests_are_not_described(tmp_path: Path) -> None:
    root = pytest_project(tmp_path / "p", SUBTESTS)
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--json-report",
         f"--json-report-file={report}"],
        cwd=root, capture_output=True, stdin=subprocess.DEVNULL, check=False, timeout=120,
    )  # fmt: skip
    run = detect(root, tmp_path / "home", "--report", str(report), "--flaky-reruns", "0")
    messages = {f["test_id"]: f["message"] for f in by_test_id(run.doc).values()}
    # Without the probe nothing names the subtests, but no failure is left without a word.
    assert messages["tests/test_units.py::TestHalf::test_half"] == (
        "failed in subtests this report does not describe"
    )
    assert messages["tests/test_fixture.py::test_half_many"] == "contains 2 failed subtests"
