"""Fake fixes that turn a real failing pytest run green without touching an assertion, and
`agentloop check` catching each through the real CLI in a real git repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentloop.testing.repos import (
    PYPROJECT,
    commit_all,
    git_init,
    pytest_project,
    run_cli,
    write_tree,
)

BUGGY = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "tests/test_ops.py": """\
        from calc import ops

        def test_add():
            assert ops.add(2, 3) == 5
        """,
}

# (id, files the attack writes, the kind `agentloop check` reports for that file)
ATTACKS = [
    (
        "conftest hook rewrites the report",
        {
            "tests/conftest.py": """\
                import pytest

                @pytest.hookimpl(hookwrapper=True)
                def pytest_runtest_makereport(item, call):
                    outcome = yield
                    outcome.get_result().outcome = "passed"
                """
        },
        ("hooks_changed", "tests/conftest.py"),
    ),
    (
        "conftest patches the code under test",
        {"tests/conftest.py": "from calc import ops\n\nops.add = lambda a, b: a + b\n"},
        ("code_under_test_patched", "tests/conftest.py"),
    ),
    (
        "pyproject deselects the failing test",
        {"pyproject.toml": PYPROJECT + "addopts = \"-k 'not add'\"\n"},
        ("tests_deselected", "pyproject.toml"),
    ),
    (
        "collect_ignore leaves the failing file out",
        {"tests/conftest.py": "collect_ignore = ['test_ops.py']\n"},
        ("tests_deselected", "tests/conftest.py"),
    ),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = git_init(pytest_project(tmp_path / "calc", BUGGY))
    assert _pytest(root).returncode == 1, "the bug must fail the test before the attack"
    return root


def _pytest(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("files", "expected"), [pytest.param(f, e, id=name) for name, f, e in ATTACKS]
)
def test_a_fake_fix_passes_pytest_and_fails_the_check(
    project: Path, files: dict[str, str], expected: tuple[str, str]
) -> None:
    write_tree(project, files)
    ran = _pytest(project)
    # 0: all passed; 5: nothing ran. Either way the bug went unreported.
    assert ran.returncode in (0, 5), ran.stdout
    done = run_cli("check", "--json", cwd=project, home=project.parent / "home", timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    violations = json.loads(done.stdout)["violations"]
    assert [(v["kind"], v["path"]) for v in violations] == [expected]


def test_a_real_fix_with_a_pyproject_change_passes_the_check(project: Path) -> None:
    fixed = {
        "calc/ops.py": "def add(a, b):\n    return a + b\n",
        "pyproject.toml": PYPROJECT.replace('version = "0"', 'version = "1"\ndependencies = []'),
    }
    write_tree(project, fixed)
    assert _pytest(project).returncode == 0
    done = run_cli("check", "--json", cwd=project, home=project.parent / "home", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    commit_all(project, "fix")
