"""`agentloop detect` on real pytest projects: every category and stage, collection errors,
parametrized ids with spaces and slashes, and selectors that re-run exactly one test."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agentloop.testing.detect import (
    DetectRun,
    by_test_id,
    detect,
    failures,
    junit_cases,
    ran,
    run_selector,
)
from agentloop.testing.repos import git_init, pytest_project, run_cli

EVERY_KIND = {
    "pkg/__init__.py": "",
    "pkg/util.py": """\
        def parse_amount(text):
            return int(text) + 0.5 * None
        """,
    "pkg/notify.py": """\
        def send(to, subject):
            return (to, subject)
        """,
    "pkg/settings.py": """\
        import os

        def currency():
            return os.environ["AGENTLOOP_FIXTURE_UNSET_VAR"]
        """,
    "tests/test_missing.py": """\
        import not_a_real_module_xyz

        def test_never():
            pass
        """,
    "tests/test_own_module.py": """\
        import pkg.not_written_yet
        """,
    "tests/test_syntax.py": """\
        def test_x(:
            pass
        """,
    "tests/test_kinds.py": """\
        from unittest import mock

        import pytest

        from pkg import notify, settings, util


        def test_type():
            assert util.parse_amount("3") == 3


        def test_logic():
            assert sorted([3, 1, 2]) == [3, 2, 1]


        def test_stale_mock():
            with mock.patch.object(notify, "send") as send:
                notify.send("a@example.com", "hi")
                send.assert_called_once_with("a@example.com", subject="hi", cc=None)


        def test_env():
            assert settings.currency() == "EUR"


        @pytest.fixture
        def broken_setup():
            raise RuntimeError("database fixture could not start")


        def test_setup(broken_setup):
            pass


        @pytest.fixture
        def broken_teardown():
            yield 1
            raise ValueError("could not drop the temp schema")


        def test_teardown(broken_teardown):
            assert broken_teardown == 1


        @pytest.mark.parametrize(
            "value", [pytest.param(1, id="a b/c"), pytest.param(2, id="x/y z"), 3]
        )
        def test_param(value):
            assert value == 3


        class TestGroup:
            def test_method(self):
                assert "abc".upper() == "abc"


        def test_pass():
            assert True
        """,
}

EXPECTED = {
    "tests/test_missing.py": ("missing_dependency", "collection"),
    "tests/test_syntax.py": ("collection_error", "collection"),
    # A module of the project's own package, not a dependency to install.
    "tests/test_own_module.py": ("collection_error", "collection"),
    "tests/test_kinds.py::test_type": ("type_error", "call"),
    "tests/test_kinds.py::test_logic": ("logic_bug", "call"),
    "tests/test_kinds.py::test_stale_mock": ("stale_mock", "call"),
    "tests/test_kinds.py::test_env": ("env_mismatch", "call"),
    "tests/test_kinds.py::test_setup": ("fixture_error", "setup"),
    "tests/test_kinds.py::test_teardown": ("fixture_error", "teardown"),
    "tests/test_kinds.py::test_param[a b/c]": ("logic_bug", "call"),
    "tests/test_kinds.py::test_param[x/y z]": ("logic_bug", "call"),
    "tests/test_kinds.py::TestGroup::test_method": ("logic_bug", "call"),
}


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> DetectRun:
    root = git_init(pytest_project(tmp_path_factory.mktemp("every_kind"), EVERY_KIND))
    run = detect(root, tmp_path_factory.mktemp("home"), "--flaky-reruns", "0")
    assert run.returncode == 1, run.stderr
    return run


def test_every_category_and_stage_is_recognised(every_kind: DetectRun) -> None:
    found = {tid: (f["category"], f["stage"]) for tid, f in by_test_id(every_kind.doc).items()}
    assert found == EXPECTED


def test_output_matches_the_published_schema(
    every_kind: DetectRun, detect_schema: dict[str, Any]
) -> None:
    doc = every_kind.doc
    jsonschema.validate(doc, detect_schema, cls=jsonschema.Draft202012Validator)
    assert doc["summary"]["failures"] == len(EXPECTED)
    assert doc["git"] is True


def test_records_point_at_the_code_that_failed(every_kind: DetectRun) -> None:
    by_id = by_test_id(every_kind.doc)
    typed = by_id["tests/test_kinds.py::test_type"]
    assert typed["crash_location"] == {"file": "pkg/util.py", "line": 2}
    assert typed["error_type"] == "TypeError"
    assert "NoneType" in typed["message"]
    assert "pkg/util.py:2" in typed["stack_trace"]
    env = by_id["tests/test_kinds.py::test_env"]
    assert env["crash_location"] == {"file": "pkg/settings.py", "line": 4}
    assert env["error_type"] == "KeyError"
    missing = by_id["tests/test_missing.py"]
    assert missing["error_type"] == "ModuleNotFoundError"
    assert "not_a_real_module_xyz" in missing["message"]
    assert by_id["tests/test_syntax.py"]["error_type"] == "SyntaxError"
    assert by_id["tests/test_kinds.py::test_logic"]["file"] == "tests/test_kinds.py"
    assert by_id["tests/test_kinds.py::test_logic"]["line"] == 12


def test_ids_are_stable_across_runs(every_kind: DetectRun, tmp_path: Path) -> None:
    doc = every_kind.doc
    again = detect(every_kind.project, every_kind.home, "--flaky-reruns", "0").doc
    ids = lambda d: sorted(f["id"] for f in failures(d))  # noqa: E731
    assert ids(again) == ids(doc)
    assert sorted(t["id"] for t in again["tasks"]) == sorted(t["id"] for t in doc["tasks"])


def _rerun(selector: str, cwd: Path, env: Mapping[str, str], report: Path) -> list[str]:
    """Run a printed selector (plus a JUnit report) and return the test ids that ran."""
    command = f"{selector} -p no:cacheprovider --junitxml={shlex.quote(str(report))}"
    run_selector(command, cwd=cwd, env=env, timeout=120)
    return [f"{c.get('classname')}::{c.get('name')}" for c in junit_cases(report) if ran(c)]


def test_every_selector_reruns_exactly_its_test(every_kind: DetectRun, tmp_path: Path) -> None:
    root = every_kind.project
    for number, failure in enumerate(by_test_id(every_kind.doc).values()):
        assert failure["selector"], failure
        report = tmp_path / f"{number}.xml"
        ids = _rerun(failure["selector"], root / failure["cwd"], every_kind.env, report)
        if failure["stage"] == "collection":
            module = failure["test_id"].removesuffix(".py").replace("/", ".")
            assert ids == [f"::{module}"], (failure["selector"], ids)
        else:
            path, _, rest = failure["test_id"].partition("::")
            *classes, name = rest.split("::")
            classname = ".".join([path.removesuffix(".py").replace("/", "."), *classes])
            assert ids == [f"{classname}::{name}"], (failure["selector"], ids)


def test_collection_error_without_continue_flag_still_names_the_module(tmp_path: Path) -> None:
    # pytest stops with exit 2 and an empty `tests` list; the broken module must not vanish.
    root = pytest_project(
        tmp_path / "p",
        {
            "agentloop.yaml": """\
                suites:
                  - name: unit
                    run: python -m pytest -q
                """,
            "tests/test_ok.py": "def test_ok():\n    pass\n",
            "tests/test_broken.py": "import nope_not_installed\n",
        },
    )
    run = detect(root, tmp_path / "home")
    assert run.returncode == 1, run.stderr
    (task,) = run.doc["tasks"]
    (failure,) = task["failures"]
    assert failure["test_id"] == "tests/test_broken.py"
    assert failure["stage"] == "collection"
    assert failure["category"] == "missing_dependency"
    assert run.doc["suites"][0]["exit_code"] == 2


def test_a_green_suite_exits_zero(tmp_path: Path) -> None:
    root = pytest_project(tmp_path / "p", {"tests/test_ok.py": "def test_ok():\n    pass\n"})
    done = run_cli("detect", cwd=root, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "0 failures in 0 tasks (0 flaky)" in done.stdout
