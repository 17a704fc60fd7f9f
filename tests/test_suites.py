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
