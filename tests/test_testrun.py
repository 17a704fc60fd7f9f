"""Which tests fail, on real runs: a task's tests in one runner process (pytest, vitest,
jest), a test that hangs or no longer exists counts as failing, and whole suites (or some
of their files) run once for the loop's checks, never green when they crashed."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from agentloop import detection, reruns, suites
from agentloop.config import load_config
from agentloop.failures.model import Failure
from agentloop.testing.detect import NPM_RUNNER_ENV
from agentloop.testing.npm import make_jest_project, make_vitest_project
from agentloop.testing.repos import pytest_project
from agentloop.testrun import failing_tests, run_tests

NPM_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "npm"
_NO_NODE = any(shutil.which(tool) is None for tool in ("node", "npm", "npx"))
needs_npm = [
    pytest.mark.npm,
    pytest.mark.skipif(_NO_NODE, reason="vitest and jest tests need node and npm on PATH"),
]


def _env() -> dict[str, str]:
    return {**os.environ, **NPM_RUNNER_ENV}


def _found(root: Path) -> list[suites.Suite]:
    config, _ = load_config(root, environ={})
    return suites.discover(root, config)


def _detect(root: Path) -> detection.Detection:
    return detection.detect(
        root,
        _found(root),
        git=False,
        reruns=0,
        rerun_timeout=60,
        progress=lambda _m: None,
        env=_env(),
    )


def _failures(root: Path) -> list[Failure]:
    return [f for task in _detect(root).tasks for f in task.failures]


# Every pytest process of the project appends its pid: counts processes independently of
# what run_tests says it started.
PID_CONFTEST = """\
import os


def pytest_configure(config):
    with open(os.path.join(os.path.dirname(__file__), "pids.txt"), "a") as pids:
        pids.write(f"{os.getpid()}\\n")
"""

CALC = "FACTOR = 0\n"


def _pids(root: Path) -> list[str]:
    path = root / "pids.txt"
    return path.read_text().split() if path.exists() else []


def test_five_failing_tests_are_checked_in_one_pytest_process(tmp_path: Path) -> None:
    root = pytest_project(
        tmp_path / "p",
        {
            "conftest.py": PID_CONFTEST,
            "calc.py": CALC,
            "tests/test_a.py": "from calc import FACTOR\n\n\n"
            + "".join(f"def test_a{n}():\n    assert FACTOR * {n} == {n}\n\n\n" for n in (1, 2))
            + "def test_fine():\n    pass\n",
            "tests/test_b.py": "from calc import FACTOR\n\n\n"
            + "".join(f"def test_b{n}():\n    assert FACTOR + {n} > {n}\n\n\n" for n in (1, 2, 3)),
        },
    )
    failures = _failures(root)
    assert len(failures) == 5
    (root / "pids.txt").unlink()

    run = run_tests(failures, root=root, timeout=60, env=_env())
    assert run.failing == {f.test_id for f in failures}
    assert not run.passed
    assert run.processes == 1
    assert len(_pids(root)) == 1
    assert "assert (0 * 1) == 1" in run.output or "assert 0 == 1" in run.output

    # A fix for three of them: exactly the two still failing, from one more process.
    (root / "calc.py").write_text("FACTOR = 1\n")
    (root / "tests/test_b.py").write_text(
        "from calc import FACTOR\n\n\n"
        "def test_b1():\n    assert FACTOR + 1 > 1\n\n\n"
        "def test_b2():\n    assert FACTOR == 2\n\n\n"
        "def test_b3():\n    assert FACTOR == 3\n"
    )
    run = run_tests(failures, root=root, timeout=60, env=_env())
    assert run.failing == {"tests/test_b.py::test_b2", "tests/test_b.py::test_b3"}
    assert run.processes == 1
    assert len(_pids(root)) == 2

    (root / "tests/test_b.py").write_text(
        "def test_b1():\n    pass\n\n\ndef test_b2():\n    pass\n\n\ndef test_b3():\n    pass\n"
    )
    run = run_tests(failures, root=root, timeout=60, env=_env())
    assert run.passed
    assert run.processes == 1


def test_a_hanging_test_is_failing_and_the_others_keep_their_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = pytest_project(
        tmp_path / "p",
        {
            "conftest.py": PID_CONFTEST,
            "calc.py": "MODE = 'broken'\n",
            "tests/test_t.py": """\
                import time

                import calc


                def test_1_fixed():
                    assert calc.MODE != 'broken'


                def test_2_hangs():
                    if calc.MODE == 'hang':
                        time.sleep(600)
                    assert calc.MODE == 'ok'


                def test_3_still_wrong():
                    assert calc.MODE == 'never'
                """,
        },
    )
    failures = _failures(root)
    assert len(failures) == 3
    (root / "pids.txt").unlink()
    (root / "calc.py").write_text("MODE = 'hang'\n")
    # Each process may take the startup allowance plus each test's share (1 s each here):
    # a smaller startup keeps the test short; the hang still dwarfs it.
    monkeypatch.setattr(reruns, "STARTUP_S", 5.0)

    start = time.monotonic()
    run = run_tests(failures, root=root, timeout=60, env=_env())
    elapsed = time.monotonic() - start

    assert run.failing == {"tests/test_t.py::test_2_hangs", "tests/test_t.py::test_3_still_wrong"}
    # The kill, then one process for the test that never started.
    assert run.processes == 2
    assert len(_pids(root)) == 2
    assert elapsed < 40, f"run_tests took {elapsed:.0f}s"


def test_a_selected_test_that_no_longer_exists_is_failing(tmp_path: Path) -> None:
    root = pytest_project(
        tmp_path / "p",
        {
            "calc.py": "VALUE = 0\n",
            "tests/test_v.py": """\
                from calc import VALUE


                def test_gone():
                    assert VALUE == 1


                def test_fixed():
                    assert VALUE == 1


                def test_wrong():
                    assert VALUE == 2
                """,
        },
    )
    failures = _failures(root)
    assert len(failures) == 3
    (root / "calc.py").write_text("VALUE = 1\n")
    text = (root / "tests/test_v.py").read_text()
    (root / "tests/test_v.py").write_text(text.replace("def test_gone", "def test_renamed"))

    run = run_tests(failures, root=root, timeout=60, env=_env())
    assert run.failing == {"tests/test_v.py::test_gone", "tests/test_v.py::test_wrong"}
    # pytest refuses a command line naming a missing test: once more without it.
    assert run.processes == 2
    assert "not found" in run.output


def test_a_test_file_that_no_longer_imports_keeps_no_other_test_from_running(
    tmp_path: Path,
) -> None:
    root = pytest_project(
        tmp_path / "p",
        {
            "calc.py": "VALUE = 0\n",
            "tests/test_a.py": "from calc import VALUE\n\n\ndef test_a():\n    assert VALUE\n",
            "tests/test_b.py": "from calc import VALUE\n\n\ndef test_b():\n    assert VALUE\n",
        },
    )
    failures = _failures(root)
    assert len(failures) == 2
    (root / "calc.py").write_text("VALUE = 1\n")
    (root / "tests/test_a.py").write_text("from calc import GONE\n\n\ndef test_a():\n    pass\n")

    run = run_tests(failures, root=root, timeout=60, env=_env())
    assert run.failing == {"tests/test_a.py::test_a"}
    # pytest refuses the node id of a file that does not import: once more without it.
    assert run.processes == 2
    assert "ImportError" in run.output


# ---------------------------------------------------------------- failing_tests

SUITE = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "tests/test_add.py": """\
        from calc import add


        def test_add():
            assert add(2, 2) == 4


        def test_zero():
            assert add(0, 0) == 0
        """,
    "tests/test_broken.py": "import nowhere_to_be_found\n\n\ndef test_x():\n    pass\n",
    "tests/test_more.py": """\
        from calc import add


        def test_negative():
            assert add(-1, -1) == -2


        def test_fine():
            assert 1 + 1 == 2
        """,
}


def test_failing_tests_of_a_whole_suite_are_what_detect_finds(tmp_path: Path) -> None:
    root = pytest_project(tmp_path / "p", {**SUITE, "conftest.py": PID_CONFTEST})
    found = _found(root)
    expected = {(f.suite, f.test_id) for t in _detect(root).tasks for f in t.failures}
    assert ("pytest", "tests/test_broken.py") in expected
    assert len(expected) == 3
    (root / "pids.txt").unlink()

    result = failing_tests(root, found, env=_env())
    assert result.failing == expected
    assert result.tests == 5  # as pytest's report counts: 4 tests and the broken file
    assert result.processes == 1
    assert len(_pids(root)) == 1
    assert result.errors == ()


def test_failing_tests_of_some_files_run_only_those(tmp_path: Path) -> None:
    root = pytest_project(tmp_path / "p", SUITE)
    result = failing_tests(root, _found(root), env=_env(), files={"pytest": ["tests/test_more.py"]})
    assert result.failing == {("pytest", "tests/test_more.py::test_negative")}
    assert result.tests == 2
    # A broken file among those asked about keeps none of the others from running.
    result = failing_tests(
        root,
        _found(root),
        env=_env(),
        files={"pytest": ["tests/test_broken.py", "tests/test_add.py"]},
    )
    assert result.failing == {
        ("pytest", "tests/test_broken.py"),
        ("pytest", "tests/test_add.py::test_add"),
    }


@pytest.mark.parametrize("files", [None, {"pytest": ["tests/test_add.py"]}])
def test_a_suite_that_crashes_is_not_green(
    tmp_path: Path, files: dict[str, list[str]] | None
) -> None:
    root = pytest_project(tmp_path / "p", SUITE)
    found = _found(root)
    (root / "conftest.py").write_text("def broken(:\n")
    result = failing_tests(root, found, env=_env(), files=files)
    assert result.failing == {("pytest", "<suite pytest>")}
    assert result.tests == 0
    (error,) = result.errors
    assert error.startswith("suite 'pytest': ")


# ---------------------------------------------------------------- vitest and jest

VITEST_TESTS = {
    "src/calc.js": "export const add = (a, b) => a - b;\n",
    "tests/a.test.js": """\
import { describe, expect, it } from 'vitest';
import { add } from '../src/calc.js';

describe('add', () => {
  it('adds two', () => { expect(add(2, 2)).toBe(4); });
  it('adds zero', () => { expect(add(1, 0)).toBe(1); });
});
it('adds negatives', () => { expect(add(-1, -1)).toBe(-2); });
""",
    "tests/b.test.js": """\
import { expect, it } from 'vitest';
import { add } from '../src/calc.js';

it('is symmetric', () => { expect(add(1, 2)).toBe(add(2, 1)); });
it('is wrong on purpose', () => { expect(add(1, 1)).toBe(3); });
""",
}


@pytest.mark.npm
@pytest.mark.skipif(_NO_NODE, reason="vitest tests need node and npm on PATH")
def test_vitest_tests_are_checked_in_one_process(tmp_path: Path) -> None:
    root = make_vitest_project(tmp_path / "v", VITEST_TESTS, NPM_CACHE)
    failures = _failures(root)
    ids = {f.test_id for f in failures}
    assert ids == {
        "tests/a.test.js > add > adds two",
        "tests/a.test.js > adds negatives",
        "tests/b.test.js > is symmetric",
        "tests/b.test.js > is wrong on purpose",
    }
    (root / "src/calc.js").write_text("export const add = (a, b) => a + b;\n")
    b = (root / "tests/b.test.js").read_text()
    (root / "tests/b.test.js").write_text(b.replace("is symmetric", "commutes"))

    run = run_tests(failures, root=root, timeout=120, env=_env())
    # Renamed: it never ran under its old name.
    assert run.failing == {
        "tests/b.test.js > is symmetric",
        "tests/b.test.js > is wrong on purpose",
    }
    assert run.processes == 1


JEST_TESTS = {
    "src/calc.js": "exports.add = (a, b) => a - b;\n",
    "tests/a.test.js": """\
const { add } = require('../src/calc');

describe('add', () => {
  test('adds two', () => { expect(add(2, 2)).toBe(4); });
  test('adds zero', () => { expect(add(1, 0)).toBe(1); });
});
test('adds negatives', () => { expect(add(-1, -1)).toBe(-2); });
""",
    "tests/b.test.js": """\
const { add } = require('../src/calc');

test('is wrong on purpose', () => { expect(add(1, 1)).toBe(3); });
""",
}


@pytest.mark.npm
@pytest.mark.skipif(_NO_NODE, reason="jest tests need node and npm on PATH")
def test_jest_tests_are_checked_in_one_process(tmp_path: Path) -> None:
    root = make_jest_project(tmp_path / "j", JEST_TESTS, NPM_CACHE)
    failures = _failures(root)
    assert {f.test_id for f in failures} == {
        "tests/a.test.js > add adds two",
        "tests/a.test.js > adds negatives",
        "tests/b.test.js > is wrong on purpose",
    }
    run = run_tests(failures, root=root, timeout=120, env=_env())
    assert run.failing == {f.test_id for f in failures}
    assert run.processes == 1

    (root / "src/calc.js").write_text("exports.add = (a, b) => a + b;\n")
    run = run_tests(failures, root=root, timeout=120, env=_env())
    assert run.failing == {"tests/b.test.js > is wrong on purpose"}
    assert run.processes == 1
    assert "is wrong on purpose" in run.output


@pytest.mark.npm
@pytest.mark.skipif(_NO_NODE, reason="vitest tests need node and npm on PATH")
def test_failing_tests_of_some_vitest_files_run_only_those(tmp_path: Path) -> None:
    root = make_vitest_project(tmp_path / "v", VITEST_TESTS, NPM_CACHE)
    found = _found(root)
    whole = failing_tests(root, found, env=_env())
    assert whole.failing == {(f.suite, f.test_id) for f in _failures(root)}
    assert whole.tests == 5

    some = failing_tests(root, found, env=_env(), files={"vitest": ["tests/b.test.js"]})
    assert some.failing == {
        ("vitest", "tests/b.test.js > is symmetric"),
        ("vitest", "tests/b.test.js > is wrong on purpose"),
    }
    assert some.tests == 2
    assert some.processes == 1
