"""detect's re-runs on real pytest runs: runner timeouts are never re-run, re-runs keep the
suite's options, share runner processes, and an order-dependent failure is a task naming
the test that pollutes it. Timing bounds leave room for a loaded two-core machine."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentloop.detection import polluters_first
from agentloop.failures.classify import categorize
from agentloop.failures.model import Dialect, Failure, ParsedFailure, Task, short_hash
from agentloop.failures.reports import read_report
from agentloop.reruns import allowance, cores
from agentloop.suites import rerun_options
from agentloop.testing.detect import by_test_id, detect, run_selector, schema_errors
from agentloop.testing.repos import pytest_project, run_cli

# The project's own pytest settings, with pytest-timeout killing a test after 2 s.
TIMEOUT_PYPROJECT = """\
[project]
name = "fixture"
version = "0"

[tool.pytest.ini_options]
pythonpath = ["."]
timeout = 2
"""


def _runs(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []


def test_hanging_parametrized_tests_are_timeouts_and_never_rerun(tmp_path: Path) -> None:
    counter = tmp_path / "hang-runs.txt"
    root = pytest_project(
        tmp_path / "p",
        {
            "pyproject.toml": TIMEOUT_PYPROJECT,
            "tests/test_hang.py": f"""\
import time

import pytest


@pytest.mark.parametrize("n", range(4))
def test_waits_forever(n):
    with open({str(counter)!r}, "a") as runs:
        runs.write(f"{{n}}\\n")
    time.sleep(120)
""",
            "tests/test_bug.py": "def test_wrong():\n    assert 2 + 2 == 5\n",
        },
    )
    start = time.monotonic()
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")
    elapsed = time.monotonic() - start

    assert run.returncode == 1, run.stderr
    assert schema_errors(run.doc) == []
    found = {test_id: f["category"] for test_id, f in by_test_id(run.doc).items()}
    assert found == {
        **{f"tests/test_hang.py::test_waits_forever[{n}]": "timeout" for n in range(4)},
        "tests/test_bug.py::test_wrong": "logic_bug",
    }
    # Each hanging test ran once, in the suite: none was re-run.
    assert sorted(_runs(counter)) == ["0", "1", "2", "3"]
    # The suite itself takes 4 x 2 s; re-running the hangs would add 16 s or more.
    assert elapsed < 8 + 25, f"detect took {elapsed:.0f}s"


def test_a_configured_suite_is_rerun_with_its_own_options(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    root = pytest_project(
        tmp_path / "p",
        {
            "agentloop.yaml": """\
suites:
  - name: unit
    run: python -m pytest --timeout=2 -q -x tests
""",
            # Fails in the suite; hangs when re-run. Only the suite's --timeout=2 stops it
            # before agentloop's own limit for a re-run (30 s and more).
            "tests/test_slow.py": f"""\
import time
from pathlib import Path

COUNTER = Path({str(counter)!r})


def test_fails_then_hangs():
    runs = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(runs))
    if runs > 1:
        time.sleep(120)
    assert runs > 1
""",
        },
    )
    start = time.monotonic()
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")
    elapsed = time.monotonic() - start

    assert run.returncode == 1, run.stderr
    [failure] = by_test_id(run.doc).values()
    # The options stay; the test path and -x (which select and stop tests) go.
    assert failure["selector"] == (
        "python -m pytest --timeout=2 -q tests/test_slow.py::test_fails_then_hangs"
    )
    assert counter.read_text() == "3"  # the suite run and two re-runs
    assert elapsed < 4 + 25, f"detect took {elapsed:.0f}s: the re-runs lost --timeout=2"
    pasted = run_selector(failure["selector"], cwd=root, env=run.env, timeout=60)
    assert "Timeout (>2.0s) from pytest-timeout" in pasted.stdout


def test_rerun_options_drop_only_what_selects_tests(tmp_path: Path) -> None:
    (tmp_path / "python_testcases").mkdir()
    words = [
        "--timeout=5", "-q", "python_testcases", "-k", "not slow", "-m", "fast",
        "--deselect", "t.py::x", "--lf", "--sw", "-x", "--maxfail", "3",
        "-p", "no:cacheprovider", "-c", "pytest.ini", "--tb", "short", "-n", "4",
        "--junitxml=out.xml", "--json-report", "--json-report-file=r.json",
        "tests/test_a.py::test_b",
    ]  # fmt: skip
    kept = rerun_options(words, "pytest", tmp_path)
    assert kept == [
        "--timeout=5", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini", "--tb", "short",
        "-n", "4",
    ]  # fmt: skip
    assert rerun_options(
        ["--config", "vitest.config.ts", "tests/unit", "-t", "adds", "--reporter=dot"], "vitest"
    ) == ["--config", "vitest.config.ts"]


def test_reruns_share_one_runner_process_per_core(tmp_path: Path) -> None:
    started = tmp_path / "pytest-processes.txt"
    failing = 8
    tests = "\n\n".join(f"def test_wrong_{n}():\n    assert {n} < 0" for n in range(failing))
    root = pytest_project(
        tmp_path / "p",
        {
            # One line per pytest process that starts in the project.
            "conftest.py": f"""\
import os


def pytest_configure(config):
    with open({str(started)!r}, "a") as out:
        out.write(f"{{os.getpid()}}\\n")
""",
            **{
                f"tests/test_mod{m}.py": f"def test_fine():\n    pass\n\n\n{tests}\n"
                for m in range(3)
            },
        },
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")

    assert run.returncode == 1, run.stderr
    assert run.doc["summary"]["failures"] == 3 * failing
    assert run.doc["flaky"] == []
    # The suite, then each re-run pass with one batch per core (was: 48 processes).
    assert len(_runs(started)) == 1 + 2 * min(cores(), 3 * failing)


POLLUTED = {
    "app/__init__.py": "",
    "app/registry.py": "HANDLERS = []\n\n\ndef register(name):\n    HANDLERS.append(name)\n",
    "tests/test_registry.py": """\
from app import registry


def test_a_lookup():
    assert registry.HANDLERS == []


def test_b_register_twice():
    registry.register("email")
    registry.register("sms")
    assert len(registry.HANDLERS) == 2


def test_c_unrelated():
    assert "email".upper() == "EMAIL"


def test_d_starts_empty():
    assert registry.HANDLERS == []
""",
    "tests/test_other.py": "".join(
        f"def test_fine_{n}():\n    assert {n} == {n}\n\n\n" for n in range(6)
    ),
    "tests/test_z_real.py": "def test_broken():\n    assert sum([1, 2]) == 4\n",
}


def test_an_order_dependent_failure_is_a_task_naming_its_polluter(tmp_path: Path) -> None:
    root = pytest_project(tmp_path / "p", POLLUTED)
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")

    assert run.returncode == 1, run.stderr
    assert schema_errors(run.doc) == []
    found = by_test_id(run.doc)
    assert set(found) == {
        "tests/test_registry.py::test_d_starts_empty",
        "tests/test_z_real.py::test_broken",
    }
    victim = found["tests/test_registry.py::test_d_starts_empty"]
    assert victim["order_dependent"] is True
    assert victim["polluter"] == "tests/test_registry.py::test_b_register_twice"
    assert victim["selector"].endswith(
        " -m pytest tests/test_registry.py::test_b_register_twice "
        "tests/test_registry.py::test_d_starts_empty"
    )
    assert found["tests/test_z_real.py::test_broken"]["order_dependent"] is False
    assert run.doc["flaky"] == []
    assert run.doc["summary"] == {
        "failures": 2, "tasks": 2, "flaky": 0, "order_dependent": 1, "green": False,
    }  # fmt: skip
    # The selector reproduces the failure; the test alone passes.
    pasted = run_selector(victim["selector"], cwd=root, env=run.env)
    assert pasted.returncode == 1, pasted.stdout
    assert "1 failed, 1 passed" in pasted.stdout
    alone = run_selector(victim["selector"].replace(victim["polluter"], ""), cwd=root, env=run.env)
    assert alone.returncode == 0, alone.stdout

    # A human reads the same: the polluter and how to see it.
    human = run_cli("detect", cwd=root, home=tmp_path / "home", extra_env={"COLUMNS": "300"})
    assert human.returncode == 1
    assert "order-dependent" in human.stdout
    assert "fails after tests/test_registry.py::test_b_register_twice" in human.stdout


def test_a_truly_flaky_test_stays_flaky(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    root = pytest_project(
        tmp_path / "p",
        {
            "tests/test_earlier.py": "def test_fine():\n    pass\n",
            # Fails on runs 1 and 3, passes on 2 and 4: fails in the suite, passes one re-run
            # of two. With one re-run it passes, fails after its predecessor, and passes when
            # that is checked once more.
            "tests/test_flaky.py": f"""\
from pathlib import Path

COUNTER = Path({str(counter)!r})


def test_sometimes():
    runs = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(runs))
    assert runs % 2 == 0
""",
        },
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")
    assert run.returncode == 0, run.stderr
    assert [(f["kind"], f["passes"]) for f in run.doc["flaky"]] == [("flaky", 1)]
    assert run.doc["tasks"] == []

    counter.unlink()
    again = detect(root, tmp_path / "home", "--flaky-reruns", "1")
    assert again.returncode == 0, again.stderr
    assert [(f["kind"], f["passes"]) for f in again.doc["flaky"]] == [("flaky", 1)]
    assert again.doc["tasks"] == []
    assert counter.read_text() == "4"  # suite, alone, after test_earlier, once more


def test_a_failing_polluter_in_the_same_rerun_batch_is_still_found(tmp_path: Path) -> None:
    # As in examples/shop: the polluter fails too, so both are re-run, side by side.
    root = pytest_project(
        tmp_path / "p",
        {
            **POLLUTED,
            "tests/test_registry.py": POLLUTED["tests/test_registry.py"].replace(
                "    assert len(registry.HANDLERS) == 2", "    assert len(registry.HANDLERS) == 3"
            ),
        },
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")

    assert run.returncode == 1, run.stderr
    found = by_test_id(run.doc)
    polluter = "tests/test_registry.py::test_b_register_twice"
    assert {test_id: f["polluter"] for test_id, f in found.items()} == {
        polluter: None,
        "tests/test_registry.py::test_d_starts_empty": polluter,
        "tests/test_z_real.py::test_broken": None,
    }
    assert run.doc["flaky"] == []
    # The victim's selector runs the polluter first: it can pass only once the polluter's
    # own task is fixed, so that task comes first.
    order = [t["failures"][0]["test_id"] for t in run.doc["tasks"]]
    assert order[-1] == "tests/test_registry.py::test_d_starts_empty", order


def test_pytest_timeout_is_a_timeout_in_both_report_formats(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(
        "import time\n\n\ndef test_hangs():\n    time.sleep(60)\n"
    )
    report, xml = tmp_path / "r.json", tmp_path / "r.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--timeout=1",
         "--json-report", f"--json-report-file={report}", f"--junitxml={xml}"],
        cwd=tmp_path, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    for path, fmt in ((report, "pytest-json"), (xml, "junit")):
        [failure] = read_report(path, fmt=fmt, root=tmp_path).failures
        assert "Timeout (>1.0s) from pytest-timeout" in f"{failure.error_type}: {failure.message}"
        assert categorize(failure, str(tmp_path)) == "timeout", fmt
        assert failure.duration is not None
        assert 0.9 < failure.duration < 30


@pytest.mark.parametrize(
    ("dialect", "error_type", "message", "text"),
    [
        # As vitest 4 and jest 30 write them to JUnit (from real runs).
        ("vitest", "Error", "Test timed out in 200ms.\nIf this is a long-running test, pass a "
         'timeout value as the last argument or configure it globally with "testTimeout".', ""),
        ("jest", "Error", 'thrown: "Exceeded timeout of 200 ms for a test.', ""),
        ("go", "Failed", "", "panic: test timed out after 2s\n\trunning tests:\n\t\tTestSlow (2s)"),
        ("junit", "Error", "Timeout of 2000ms exceeded. For async tests and hooks, ensure "
         '"done()" is called; if returning a Promise, ensure it resolves.', ""),
    ],
)  # fmt: skip
def test_the_runners_own_timeouts_are_timeouts(
    dialect: Dialect, error_type: str, message: str, text: str
) -> None:
    failure = ParsedFailure(
        dialect=dialect, test_id="t", test_name="t", file=None, line=None,
        error_type=error_type, message=message, text=text, stage="call",
    )  # fmt: skip
    assert categorize(failure) == "timeout"
    # ...and a test whose own assertion mentions a timeout is not one.
    assert categorize(dataclasses.replace(failure, message="assert 'timeout' in x", text="")) == (
        "logic_bug"
    )


def _failure(test_id: str = "t.py::x", **fields: object) -> Failure:
    base: dict[str, object] = {
        "id": short_hash("s", test_id), "suite": "s", "runner": "pytest", "test_id": test_id,
        "file": "t.py", "line": 1, "test_name": "x", "selector": f"pytest {test_id}",
        "cwd": ".", "error_type": "AssertionError", "message": "", "stack_trace": "",
        "crash_location": None, "stage": "call", "category": "logic_bug",
    }  # fmt: skip
    return Failure(**{**base, **fields})  # type: ignore[arg-type]


def test_a_reruns_timeout_follows_the_tests_own_durations() -> None:
    def took(seconds: float | None) -> Failure:
        return _failure(duration=seconds)

    # Start-up, then 5x each test's time, at least 1 s; the configured value when unknown.
    assert allowance([took(0.002), took(4.0), took(None)], unknown=120) == 30 + 1 + 20 + 120
    assert allowance([took(0.01)] * 100, unknown=120) == 130  # not 100 x 120 s


def test_a_task_polluted_by_a_failing_test_comes_after_the_polluters_task() -> None:
    polluter = _failure("t.py::test_b")
    victim = _failure("t.py::test_d", order_dependent=True, polluter="t.py::test_b")
    other = _failure("u.py::test_x")

    def task(failure: Failure) -> Task:
        return Task(
            id=failure.id, category="logic_bug", error_type="AssertionError", message="",
            crash_location=None, failures=(failure,),
        )  # fmt: skip

    tasks = [task(victim), task(polluter), task(other)]
    assert [t.failures[0].test_id for t in polluters_first(tasks)] == [
        "t.py::test_b", "u.py::test_x", "t.py::test_d",
    ]  # fmt: skip
    # A polluter that passes in the suite leaves the order alone.
    alone = [task(victim), task(other)]
    assert polluters_first(alone) == alone


def test_one_polluter_of_many_tests_is_found_once_and_is_one_task(tmp_path: Path) -> None:
    # humanize's shape: one test switches a global (a locale) and never switches it back,
    # and every later test that reads it fails. 30 victims must not mean 30 bisections.
    started = tmp_path / "pytest-processes.txt"
    victims = {
        f"tests/test_v{m}.py": "from app import settings\n\n\n"
        + "".join(
            f"def test_english_{n}():\n    assert settings.LOCALE == 'en'\n\n\n" for n in range(10)
        )
        for m in range(3)
    }
    root = pytest_project(
        tmp_path / "p",
        {
            "conftest.py": f"""\
import os


def pytest_configure(config):
    with open({str(started)!r}, "a") as out:
        out.write(f"{{os.getpid()}}\\n")
""",
            "app/__init__.py": "",
            "app/settings.py": "LOCALE = 'en'\n\n\ndef activate(locale):\n"
            "    global LOCALE\n    LOCALE = locale\n",
            "tests/test_a.py": "".join(f"def test_fine_{n}():\n    pass\n\n\n" for n in range(8))
            + "def test_french():\n    from app import settings\n\n"
            "    settings.activate('fr')\n    assert settings.LOCALE == 'fr'\n",
            **victims,
        },
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")

    assert run.returncode == 1, run.stderr
    assert run.doc["flaky"] == []
    assert run.doc["summary"]["failures"] == 30
    assert run.doc["summary"]["order_dependent"] == 30
    [task] = run.doc["tasks"]
    assert {f["polluter"] for f in task["failures"]} == {"tests/test_a.py::test_french"}
    assert task["message"].startswith("30 tests fail after tests/test_a.py::test_french")
    # The suite, the batched re-runs, one run in order, one bisection (2·log2(9) runs at
    # most, and its confirmation), one run of the polluter before the other victims.
    processes = len(_runs(started))
    assert processes <= 1 + 2 * min(cores(), 30) + 1 + 8 + 1 + 1, processes
