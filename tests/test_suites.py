"""Configured suites: a suite in a subdirectory, a JUnit suite that hangs, and rerun
prefixes derived from the configured command."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest

from agentloop.testing.detect import detect, run_selector
from agentloop.testing.repos import run_cli, write_tree


def test_a_suite_in_a_subdirectory_speaks_repository_paths(tmp_path: Path) -> None:
    python = shlex.quote(sys.executable)
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": f"""\
                suites:
                  - name: backend
                    run: {python} -m pytest -q
                    cwd: backend
                """,
            "backend/pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
            "backend/api/__init__.py": "",
            "backend/api/views.py": "def render(x):\n    return x.title() + 1\n",
            "backend/tests/test_views.py": """\
                from api import views

                def test_render():
                    assert views.render("a") == "A"
                """,
        },
    )
    run = detect(tmp_path, tmp_path / "h", "--flaky-reruns", "1")
    assert run.returncode == 1, run.stderr
    (task,) = run.doc["tasks"]
    (failure,) = task["failures"]
    assert failure["cwd"] == "backend"
    assert failure["file"] == "backend/tests/test_views.py"
    assert task["crash_location"] == {"file": "backend/api/views.py", "line": 2}
    assert task["level"] == 0
    # The suite's own -q stays.
    assert failure["selector"] == f"{python} -m pytest -q tests/test_views.py::test_render"
    rerun = run_selector(
        failure["selector"], cwd=tmp_path / failure["cwd"], env=run.env, timeout=60
    )
    assert rerun.returncode == 1
    assert "1 failed" in rerun.stdout


def test_a_hanging_junit_suite_is_one_timeout_failure(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": """\
                suites:
                  - name: e2e
                    run: echo starting; sleep 120
                    format: junit
                    report: out.xml
                    timeout: 2
                """
        },
    )
    start = time.monotonic()
    run = detect(tmp_path, tmp_path / "h")
    assert time.monotonic() - start < 15
    assert run.returncode == 1, run.stderr
    (task,) = run.doc["tasks"]
    assert task["category"] == "timeout"
    assert task["failures"][0]["test_id"] == "<suite e2e>"
    assert task["failures"][0]["selector"] is None
    assert "2s timeout" in task["message"]
    assert run.doc["suites"][0]["timed_out"] is True


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ("uv run pytest -x tests", "uv run pytest"),
        ("python -m pytest -q", "python -m pytest -q"),
        (".venv/bin/pytest tests/unit", ".venv/bin/pytest"),
        ("pytest --timeout=5 -q python_testcases", "pytest --timeout=5 -q"),
        ("pytest --timeout 5 -k 'not slow' python_testcases", "pytest --timeout 5"),
        ("make test", "python -m pytest"),
    ],
)
def test_rerun_prefix_is_the_runner_with_the_suites_own_options(
    run: str, expected: str, tmp_path: Path
) -> None:
    from agentloop.suites import _rerun_prefix

    for folder in ("tests/unit", "python_testcases"):
        (tmp_path / folder).mkdir(parents=True)
    assert _rerun_prefix(run, "pytest-json", tmp_path) == expected


def test_only_the_named_suite_runs(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": """\
                suites:
                  - {name: one, run: "echo one", format: junit, report: one.xml}
                  - {name: two, run: "exit 3", format: junit, report: two.xml}
                """
        },
    )
    done = run_cli("detect", "--suite", "nope", cwd=tmp_path, home=tmp_path / "h")
    assert done.returncode == 2
    assert "no suite named nope" in done.stderr
    assert "known suites: one, two" in done.stderr


# ---------------------------------------------------------------- configured like discovered

PYTHON = shlex.quote(sys.executable)
# What `agentloop init` writes for a pytest project without pytest-json-report.
INIT_JUNIT_RUN = (
    f"{PYTHON} -m pytest --continue-on-collection-errors -p no:cacheprovider "
    "-o junit_family=xunit1 --junitxml=.agentloop/reports/pytest.xml"
)

HANGING_TESTS = """\
    import time

    def test_passes():
        assert True

    def test_fails():
        assert 1 + 1 == 3

    def test_hangs():
        time.sleep(120)

    def test_never_reached():
        assert True
    """


def test_a_configured_junit_pytest_suite_that_hangs_keeps_its_results(tmp_path: Path) -> None:
    """The probe goes into every pytest run, not only the ones agentloop adds flags to: a
    kill keeps what had finished, names the running test and counts what never ran."""
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": f"""\
                suites:
                  - name: pytest
                    run: {INIT_JUNIT_RUN}
                    format: junit
                    report: .agentloop/reports/pytest.xml
                    timeout: 8
                """,
            "tests/test_slow.py": HANGING_TESTS,
        },
    )
    start = time.monotonic()
    run = detect(tmp_path, tmp_path / "h", "--flaky-reruns", "0")
    assert time.monotonic() - start < 60
    assert run.returncode == 1, run.stderr
    [suite] = run.doc["suites"]
    assert suite["timed_out"] is True
    assert "-p agentloop_pytest_probe" in suite["command"]
    assert (suite["tests"], suite["not_run"]) == (3, 1)
    found = {f["test_id"]: f for t in run.doc["tasks"] for f in t["failures"]}
    assert set(found) == {"tests/test_slow.py::test_fails", "tests/test_slow.py::test_hangs"}
    assert found["tests/test_slow.py::test_fails"]["category"] == "logic_bug"
    assert found["tests/test_slow.py::test_hangs"]["category"] == "timeout"
    assert any("1 collected tests never ran" in n for n in run.doc["notes"]), run.doc["notes"]


def test_a_pytest_suite_without_its_json_plugin_shows_pytest_s_own_error(tmp_path: Path) -> None:
    """pytest-json-report absent (here: plugin autoloading off, which leaves pytest exactly
    as if it were not installed): the user sees pytest's own complaint and two ways out."""
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": f"""\
                suites:
                  - name: unit
                    run: env PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {PYTHON} -m pytest -q
                """,
            "tests/test_ok.py": "def test_ok():\n    assert True\n",
        },
    )
    done = run_cli("detect", cwd=tmp_path, home=tmp_path / "h")
    assert done.returncode == 2, done.stderr
    assert "unrecognized arguments: --json-report" in done.stderr
    assert "pip install pytest-json-report" in done.stderr
    assert "format: junit" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_suite_error_shows_npm_s_own_error_line(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "package.json": '{"name": "x", "version": "1.0.0"}\n',
            "agentloop.yaml": """\
                suites:
                  - {name: web, run: npm test, format: junit, report: out.xml}
                """,
        },
    )
    done = run_cli("detect", cwd=tmp_path, home=tmp_path / "h")
    assert done.returncode == 2, done.stderr
    assert 'Missing script: "test"' in done.stderr
    assert "A complete log" not in done.stderr


@pytest.mark.parametrize("fmt", ["pytest-json", "junit"])
def test_a_suite_stopped_at_collection_says_how_many_tests_never_ran(
    tmp_path: Path, fmt: str
) -> None:
    report = "\n    format: junit\n    report: out.xml" if fmt == "junit" else ""
    flags = " --junitxml=out.xml" if fmt == "junit" else ""
    (tmp_path / "agentloop.yaml").write_text(
        f"suites:\n  - name: unit\n    run: {PYTHON} -m pytest{flags}{report}\n"
    )
    write_tree(
        tmp_path,
        {
            "tests/test_ok.py": """\
                def test_one():
                    assert True

                def test_two():
                    assert True

                def test_three():
                    assert True
                """,
            "tests/test_broken.py": "import not_installed_anywhere\n",
        },
    )
    run = detect(tmp_path, tmp_path / "h", "--flaky-reruns", "0")
    assert run.returncode == 1, run.stderr
    [suite] = run.doc["suites"]
    assert (suite["exit_code"], suite["not_run"]) == (2, 3)
    [task] = run.doc["tasks"]
    assert task["category"] == "missing_dependency"
    [note] = [n for n in run.doc["notes"] if "never ran" in n]
    assert "3 collected tests never ran" in note
    assert "--continue-on-collection-errors" in note

    human = run_cli("detect", "--flaky-reruns", "0", cwd=tmp_path, home=tmp_path / "h")
    assert "3 never ran" in human.stdout
    assert "--continue-on-collection-errors" in human.stdout + human.stderr


def test_a_pytest_the_probe_cannot_reach_runs_as_the_user_wrote_it(tmp_path: Path) -> None:
    """A command that runs pytest where agentloop's PYTHONPATH does not arrive (tox, a
    container; here `env -u PYTHONPATH`) must not break for the probe's sake."""
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": f"""\
                suites:
                  - name: unit
                    run: env -u PYTHONPATH {PYTHON} -m pytest --junitxml=out.xml
                    format: junit
                    report: out.xml
                """,
            "tests/test_one.py": "def test_fails():\n    assert 1 == 2\n",
        },
    )
    run = detect(tmp_path, tmp_path / "h", "--flaky-reruns", "0")
    assert run.returncode == 1, run.stderr
    assert [f["test_id"] for f in run.doc["tasks"][0]["failures"]] == [
        "tests/test_one.py::test_fails"
    ]
    [suite] = run.doc["suites"]
    assert "agentloop_pytest_probe" not in suite["command"]
    assert any("without agentloop's probe" in n for n in run.doc["notes"]), run.doc["notes"]


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ("uv run pytest -x tests", "uv run pytest -p agentloop_pytest_probe -x tests"),
        ("pytest -q | tee log", "pytest -p agentloop_pytest_probe -q | tee log"),
        (
            "cd pytest && python -m pytest -q",
            "cd pytest && python -m pytest -p agentloop_pytest_probe -q",
        ),
        (".venv/bin/pytest", ".venv/bin/pytest -p agentloop_pytest_probe"),
    ],
)
def test_the_probe_goes_right_after_pytest(run: str, expected: str) -> None:
    """Wherever pytest sits in the command, the probe reaches pytest, not what follows it."""
    from agentloop.suites import with_probe

    assert with_probe(run) == expected
