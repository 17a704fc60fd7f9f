"""Grouping by root cause, fix order from the import graph, and the flaky check, on real
pytest runs."""

from __future__ import annotations

import time
from pathlib import Path

from agentloop.failures.imports import import_graph, levels
from agentloop.reruns import cores
from agentloop.testing.detect import detect, failures
from agentloop.testing.repos import process_alive, pytest_project, write_tree


def test_one_broken_helper_failing_twenty_tests_is_one_task(tmp_path: Path) -> None:
    tests = "\n\n".join(
        f"def test_total_{n}():\n    assert helpers.total([{n}, 1]) == {n + 1}" for n in range(20)
    )
    root = pytest_project(
        tmp_path / "p",
        {
            "app/__init__.py": "",
            "app/helpers.py": "def total(values):\n    return sum(values) + values.missing\n",
            "tests/test_totals.py": f"from app import helpers\n\n\n{tests}\n",
            "tests/test_other.py": "def test_unrelated():\n    assert 1 + 1 == 3\n",
        },
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "0")
    assert run.returncode == 1, run.stderr
    doc = run.doc
    assert doc["summary"] == {
        "failures": 21, "tasks": 2, "flaky": 0, "order_dependent": 0, "green": False,
    }  # fmt: skip
    helper_task = doc["tasks"][0]
    assert len(helper_task["failures"]) == 20
    assert helper_task["crash_location"] == {"file": "app/helpers.py", "line": 2}
    assert helper_task["category"] == "type_error"


def test_low_level_module_is_fixed_before_the_feature_built_on_it(tmp_path: Path) -> None:
    root = pytest_project(
        tmp_path / "p",
        {
            "shop/__init__.py": "",
            "shop/money.py": "def cents(amount):\n    return int(amount * 100) + None\n",
            "shop/cart.py": """\
                from shop import money

                def total(prices):
                    return sum(prices)

                def label(prices):
                    return f"{money.cents(total(prices))} cents"

                def count(prices):
                    return len(prices) + prices.size
                """,
            # More failures in the feature than in the utility: the level must still win.
            "tests/test_cart.py": """\
                from shop import cart

                def test_count_one():
                    assert cart.count([1]) == 1

                def test_count_two():
                    assert cart.count([1, 2]) == 2

                def test_count_three():
                    assert cart.count([1, 2, 3]) == 3
                """,
            "tests/test_money.py": """\
                from shop import money

                def test_cents():
                    assert money.cents(1.5) == 150
                """,
        },
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "0")
    assert run.returncode in (0, 1), run.stderr
    tasks = run.doc["tasks"]
    order = [(t["crash_location"]["file"], t["level"], len(t["failures"])) for t in tasks]
    assert order == [("shop/money.py", 0, 1), ("shop/cart.py", 1, 3)]


def test_flaky_tests_are_set_apart_and_order_dependent_ones_are_tasks(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    root = pytest_project(
        tmp_path / "p",
        {
            # Fails on odd-numbered runs: the full run fails, re-run 1 passes, re-run 2 fails.
            # Last in the suite: no other test's order check runs it, so the counter counts
            # only its own runs.
            "tests/test_z_flaky.py": f"""\
                from pathlib import Path

                def test_sometimes():
                    counter = Path({str(counter)!r})
                    runs = int(counter.read_text()) + 1 if counter.exists() else 1
                    counter.write_text(str(runs))
                    assert runs % 2 == 0
                """,
            # Fails only after test_a polluted shared state; alone it always passes.
            "tests/test_order.py": """\
                STATE = []

                def test_a_pollutes():
                    STATE.append("dirty")

                def test_b_expects_clean_state():
                    assert STATE == []
                """,
            "tests/test_real.py": "def test_broken():\n    assert 2 * 2 == 5\n",
        },
    )
    run = detect(root, tmp_path / "home", "--flaky-reruns", "2")
    assert run.returncode == 1, run.stderr
    doc = run.doc
    apart = {f["failure"]["test_id"]: (f["kind"], f["passes"], f["reruns"]) for f in doc["flaky"]}
    assert apart == {"tests/test_z_flaky.py::test_sometimes": ("flaky", 1, 2)}
    found = {f["test_id"]: f["polluter"] for f in failures(doc)}
    assert found == {
        "tests/test_real.py::test_broken": None,
        "tests/test_order.py::test_b_expects_clean_state": "tests/test_order.py::test_a_pollutes",
    }
    assert doc["summary"]["flaky"] == 1
    assert doc["summary"]["order_dependent"] == 1
    # One full run and exactly two re-runs. (On a single core the three re-run candidates
    # share one process, so the flaky test is also run alone and after its predecessors:
    # a batch-mate might have polluted it.)
    if cores() > 1:
        assert int(counter.read_text()) == 3


def test_a_hanging_test_is_killed_with_its_children_and_reported(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    root = pytest_project(
        tmp_path / "p",
        {
            "tests/test_a_first.py": "def test_wrong():\n    assert 1 == 2\n",
            "tests/test_b_hangs.py": f"""\
                import subprocess
                import time
                from pathlib import Path

                def test_hangs():
                    child = subprocess.Popen(["sleep", "300"])
                    Path({str(pid_file)!r}).write_text(str(child.pid))
                    time.sleep(300)
                """,
            "tests/test_c_never_reached.py": "def test_fine():\n    pass\n",
        },
    )
    start = time.monotonic()
    run = detect(root, tmp_path / "home", "--timeout", "4", "--flaky-reruns", "2")
    elapsed = time.monotonic() - start
    assert run.returncode == 1, run.stderr
    doc = run.doc
    assert elapsed < 20, f"detect took {elapsed:.1f}s with a 4s suite timeout"
    found = {f["test_id"]: f["category"] for f in failures(doc)}
    assert found == {
        "tests/test_a_first.py::test_wrong": "logic_bug",
        "tests/test_b_hangs.py::test_hangs": "timeout",
    }
    assert doc["suites"][0]["timed_out"] is True
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not process_alive(child), f"the hanging test's child {child} outlived the kill"


def test_import_graph_levels_for_python_and_typescript(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "src/lib/__init__.py": "",
            "src/lib/base.py": "import os\n",
            "src/lib/mid.py": "from . import base\n",
            "src/lib/top.py": "from lib.mid import thing\nimport lib.base\n",
            "src/lib/cycle_a.py": "from lib import cycle_b\n",
            "src/lib/cycle_b.py": "from lib import cycle_a, top\n",
            "web/util.ts": "export const x = 1;\n",
            "web/api.ts": "import { x } from './util';\n",
            "web/page.tsx": "import { api } from './api'\nconst u = require('./util.ts')\n",
            "node_modules/dep/index.js": "module.exports = 1\n",
        },
    )
    found = levels(import_graph(tmp_path))
    assert found["src/lib/base.py"] == 0
    assert found["src/lib/mid.py"] == 1
    assert found["src/lib/top.py"] == 2
    assert found["src/lib/cycle_a.py"] == found["src/lib/cycle_b.py"] == 3
    assert (found["web/util.ts"], found["web/api.ts"], found["web/page.tsx"]) == (0, 1, 2)
    assert not any(path.startswith("node_modules") for path in found)


def test_a_fingerprint_is_the_same_in_another_process_where_the_id_is_not(
    tmp_path: Path,
) -> None:
    """What toolz showed: an assertion's message holds a dict in hash order, cut short, so
    the task id (from the message) changes from one process to the next. The
    fingerprint (the tests and their error types) must not: `agentloop pr` dedupes by it,
    and a matrix job finds the task `plan` named by it."""
    root = pytest_project(
        tmp_path / "p",
        {
            "tests/test_counts.py": """\
                def test_counts():
                    seen = {k: 2 for k in {"cat", "pig", "dog", "eel", "cow", "ant", "bee"}}
                    assert seen == {"cat": 1, "pig": 1}

                def test_other():
                    assert [1, 2] == [2, 1]
                """,
        },
    )
    runs = [
        detect(root, tmp_path / "home", "--flaky-reruns", "0", extra_env={"PYTHONHASHSEED": seed})
        for seed in ("1", "2", "3")
    ]
    assert all(run.returncode == 1 for run in runs)
    tasks = [{t["failures"][0]["test_id"]: t for t in run.doc["tasks"]} for run in runs]
    for test in ("tests/test_counts.py::test_counts", "tests/test_counts.py::test_other"):
        assert len({t[test]["fingerprint"] for t in tasks}) == 1
    # The id did change with the hash seed (pytest cuts the dict's repr short, in hash
    # order), or this test would prove nothing.
    assert len({t["tests/test_counts.py::test_counts"]["id"] for t in tasks}) > 1
