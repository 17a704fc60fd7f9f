"""`agentloop run --task` takes what `agentloop detect`'s table shows: a task's number or
its id."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentloop.commands.run import select_tasks
from agentloop.errors import UsageError
from agentloop.failures.model import Task
from agentloop.testing.repos import git_init, pytest_project, run_cli


def _tasks(*ids: str) -> list[Task]:
    return [Task(id=i, category="logic_bug", error_type="E", message="", crash_location=None,
                 failures=()) for i in ids]  # fmt: skip


TASKS = _tasks("a1b2c3d4e5f6", "a1b2ffffffff", "123400000000", "9f9f9f9f9f9f")


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (["1"], ["a1b2c3d4e5f6"]),
        (["4", "1"], ["a1b2c3d4e5f6", "9f9f9f9f9f9f"]),  # the baseline's order, not the asked
        (["9f9f9f9f9f9f"], ["9f9f9f9f9f9f"]),
        (["A1B2C3"], ["a1b2c3d4e5f6"]),  # a prefix, in any case
        (["2", "a1b2ff"], ["a1b2ffffffff"]),  # twice the same task
        (["123400000000"], ["123400000000"]),  # a whole id made of digits is the id
    ],
)
def test_numbers_and_ids(wanted: list[str], expected: list[str]) -> None:
    assert [t.id for t in select_tasks(TASKS, wanted)] == expected


@pytest.mark.parametrize(
    ("wanted", "fragment"),
    [
        (["5"], "no task '5' (this run's baseline has 4 tasks, numbered 1-4)"),
        (["0"], "no task '0'"),
        (["a1b2"], "'a1b2' could be task 1 (a1b2c3d4e5f6) or 2 (a1b2ffffffff)"),
        (["ffff"], "no task 'ffff'"),
        (["1", "zz"], "no task 'zz'"),
    ],
)
def test_unknown_and_ambiguous_tasks(wanted: list[str], fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        select_tasks(TASKS, wanted)
    assert fragment in caught.value.message
    assert "agentloop detect" in (caught.value.hint or "")


def test_a_four_digit_number_that_is_also_an_id_prefix_is_ambiguous() -> None:
    many = _tasks(*(f"{n:012x}" for n in range(1, 1300)), "123400000000")
    with pytest.raises(UsageError, match="could be task 1234"):
        select_tasks(many, ["1234"])


TWO = {
    "agentloop.yaml": "detect:\n  flaky_reruns: 0\n",
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "tests/test_ops.py": "from calc import ops\n\ndef test_add():\n    assert ops.add(2, 3) == 5\n",
    "text/__init__.py": "",
    "text/shout.py": "def shout(s):\n    return s.lower() + '!'\n",
    "tests/test_text.py": (
        "from text.shout import shout\n\ndef test_shout():\n    assert shout('hi') == 'HI!'\n"
    ),
}


def test_the_table_number_and_id_both_select_a_task(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    home = tmp_path / "home"
    table = run_cli("detect", cwd=root, home=home, extra_env={"COLUMNS": "200"})
    assert table.returncode == 1, table.stderr
    rows = re.findall(r"│\s+(\d+) │ ([0-9a-f]{12}) │", table.stdout)
    assert [n for n, _ in rows] == ["1", "2"], table.stdout
    doc = json.loads(run_cli("detect", "--json", cwd=root, home=home).stdout)
    assert [(str(t["order"]), t["id"]) for t in doc["tasks"]] == rows
    for wanted in ("2", rows[1][1], rows[1][1][:6]):
        done = run_cli("run", "--dry-run", "--json", "--task", wanted, cwd=root, home=home)
        assert done.returncode == 1, done.stderr  # a plan with a task in it
        assert [t["id"] for t in json.loads(done.stdout)["tasks"]] == [rows[1][1]]
    done = run_cli("run", "--dry-run", "--task", "3", cwd=root, home=home)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: --task: no task '3' (this run's baseline has 2 tasks, numbered 1-2)"]
    assert "Traceback" not in done.stderr
