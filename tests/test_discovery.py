"""Finding a pytest suite without configuration: tests inside the package (`toolz/tests/`),
not tests that belong to environments, dependencies or build outputs; fast on big trees."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agentloop.suites import _looks_like_pytest
from agentloop.testing.repos import git_init, run_cli, write_tree

A_TEST = "def test_one():\n    assert 1 + 1 == 2\n"


@pytest.mark.parametrize(
    "layout",
    [
        {"toolz/__init__.py": "", "toolz/tests/test_dicttoolz.py": A_TEST},
        {"src/pkg/__init__.py": "", "src/pkg/tests/test_core.py": A_TEST},
        {"tests/unit/deep/test_x.py": A_TEST},
        {"lib/test/parser_test.py": A_TEST},
        {"test_alone.py": A_TEST},
    ],
)
def test_tests_anywhere_pytest_collects_them(tmp_path: Path, layout: dict[str, str]) -> None:
    write_tree(tmp_path, {"setup.py": "", **layout})
    assert _looks_like_pytest(tmp_path)


@pytest.mark.parametrize(
    "layout",
    [
        {"node_modules/pkg/tests/test_x.py": A_TEST},
        {".venv/lib/python3.12/site-packages/pkg/tests/test_x.py": A_TEST},
        {"env/pyvenv.cfg": "", "env/lib/pkg/tests/test_x.py": A_TEST},
        {"build/lib/pkg/tests/test_x.py": A_TEST},
        {"dist/pkg/tests/test_x.py": A_TEST},
        {".git/tests/test_x.py": A_TEST},
        {"pkg.egg-info/tests/test_x.py": A_TEST},
        {"pkg/tests/helpers.py": "", "scripts/test_data.json": ""},  # no test file at all
        {"pkg/test_like.py": A_TEST},  # outside a test folder
    ],
)
def test_what_is_not_the_projects_tests(tmp_path: Path, layout: dict[str, str]) -> None:
    write_tree(tmp_path, layout)
    assert not _looks_like_pytest(tmp_path)


def test_a_big_tree_without_tests_is_searched_quickly(tmp_path: Path) -> None:
    for a in range(40):
        for b in range(40):
            (tmp_path / f"pkg{a}" / f"mod{b}" / "sub").mkdir(parents=True)
    for a in range(200):
        (tmp_path / "node_modules" / f"dep{a}" / "tests").mkdir(parents=True)
        (tmp_path / "node_modules" / f"dep{a}" / "tests" / "test_x.py").write_text(A_TEST)
    started = time.perf_counter()
    assert not _looks_like_pytest(tmp_path)
    assert time.perf_counter() - started < 0.5
    # A test folder near the top is found first, however big the rest of the tree.
    write_tree(tmp_path, {"zz/tests/test_late.py": A_TEST})
    started = time.perf_counter()
    assert _looks_like_pytest(tmp_path)
    assert time.perf_counter() - started < 0.5


def test_detect_runs_the_tests_inside_the_package(tmp_path: Path) -> None:
    """toolz's layout: no tests/ at the root, no pytest configuration."""
    root = git_init(
        write_tree(
            tmp_path / "toolz",
            {
                "setup.py": "",
                "toolz/__init__.py": "def inc(x):\n    return x - 1\n",
                "toolz/tests/test_inc.py": (
                    "from toolz import inc\n\ndef test_inc():\n    assert inc(1) == 2\n"
                ),
                "toolz/tests/test_ok.py": A_TEST,
            },
        )
    )
    done = run_cli("detect", "--json", "--flaky-reruns", "0", cwd=root, home=tmp_path / "home")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["suites"][0]["tests"] == 2
    (task,) = doc["tasks"]
    assert task["failures"][0]["test_id"] == "toolz/tests/test_inc.py::test_inc"
