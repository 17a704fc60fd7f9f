"""`agentloop detect` on real jest projects: discovery, jest-junit parsing, categories,
grouping, selectors that re-run exactly one test, the flaky / order-dependent split, and
the error for a jest project without jest-junit.

jest and jest-junit (pinned in agentloop.testing.npm) are installed once into the
repository's gitignored `.cache/npm` and shared by every project these tests write, across
sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import agentloop
from agentloop.testing.npm import make_jest_project

_MISSING_TOOLS = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]

pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(
        bool(_MISSING_TOOLS),
        reason=f"jest tests need node and npm on PATH; missing: {', '.join(_MISSING_TOOLS)}",
    ),
]

NPM_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "npm"
SCHEMA_PATH = Path(agentloop.__file__).resolve().parent / "schemas" / "detect.schema.json"
TIMEOUT = 300
# What agentloop sets for jest-junit; a selector re-run adds the same.
JEST_JUNIT_ENV = {
    "JEST_JUNIT_ADD_FILE_ATTRIBUTE": "true",
    "JEST_JUNIT_REPORT_TEST_SUITE_ERRORS": "true",
}

# ---------------------------------------------------------------- the failing project

PRICE_JS = """\
// Prices are strings such as "12.50"; anything else is a caller's bug.
function parsePrice(input) {
  if (typeof input !== 'string') {
    throw new TypeError(`price must be a string, got ${JSON.stringify(input)}`);
  }
  return Number(input);
}

function splitAmount(amount, parts) {
  return amount / parts;
}

module.exports = { parsePrice, splitAmount };
"""

MONEY_TEST_JS = """\
const { parsePrice, splitAmount } = require('../src/price');

describe('money', () => {
  describe('parsing', () => {
    test('parses a plain price', () => {
      expect(parsePrice('12.50')).toBe(12.5);
    });
    test('rejects a number', () => {
      expect(parsePrice(42)).toBe(42);
    });
  });
  test('splits eur 10/2', () => {
    expect(splitAmount(10, 2)).toBe(4);
  });
  test.skip('rounds to cents', () => {
    expect(parsePrice('0.005')).toBe(0.01);
  });
});
"""

CART_TEST_JS = """\
const { parsePrice } = require('../src/price');

describe('cart', () => {
  describe('totals', () => {
    test('sums line prices', () => {
      const total = [parsePrice('1.50'), parsePrice(3)].reduce((a, b) => a + b, 0);
      expect(total).toBe(4.5);
    });
  });
});
"""

# A third-party package that is not installed: the whole file fails to load.
PAD_TEST_JS = """\
const leftPad = require('left-pad-not-installed');

test('pads a number', () => {
  expect(leftPad('1', 3, '0')).toBe('001');
});
"""

SHOP_FILES = {
    "src/price.js": PRICE_JS,
    "tests/money.test.js": MONEY_TEST_JS,
    "tests/cart.test.js": CART_TEST_JS,
    "tests/pad.test.js": PAD_TEST_JS,
}

# jest-junit joins the describe titles and the test title with single spaces.
REJECTS_A_NUMBER = "tests/money.test.js > money parsing rejects a number"
SPLITS_EUR = "tests/money.test.js > money splits eur 10/2"
SUMS_LINE_PRICES = "tests/cart.test.js > cart totals sums line prices"
# A suite that failed to run (jest-junit classname "Test suite failed to run") is named by
# its file, as vitest's load errors are.
PAD_FILE = "tests/pad.test.js"
PAD_LOAD_ERROR = PAD_FILE
SHOP_FAILURES = {REJECTS_A_NUMBER, SPLITS_EUR, SUMS_LINE_PRICES, PAD_LOAD_ERROR}

# ---------------------------------------------------------------- flaky and order-dependent

# Fails on odd-numbered runs and passes on even ones, counting runs in a file outside the
# project: the suite run is run 1 (fails), the two re-runs alone are runs 2 (passes) and
# 3 (fails), so it passed 1 of 2 re-runs.
FLAKY_TEST_JS = """\
const { existsSync, readFileSync, writeFileSync } = require('node:fs');

const COUNTER = __COUNTER__;

function nextRun() {
  const run = existsSync(COUNTER) ? Number(readFileSync(COUNTER, 'utf8')) + 1 : 1;
  writeFileSync(COUNTER, String(run));
  return run;
}

describe('retry', () => {
  test('passes on even runs', () => {
    expect(nextRun() % 2).toBe(0);
  });
});
"""

BASKET_JS = """\
// Module state shared by every test in a file that requires it.
const basket = { items: [] };

function addItem(item) {
  basket.items.push(item);
}

module.exports = { basket, addItem };
"""

# `starts empty` fails only after `adds an item` has mutated the shared basket; alone
# (`-t` skips the other test) it passes every time.
ORDER_TEST_JS = """\
const { basket, addItem } = require('../src/basket');

describe('basket', () => {
  test('adds an item', () => {
    addItem('apple');
    expect(basket.items).toEqual(['apple']);
  });
  test('starts empty', () => {
    expect(basket.items).toEqual([]);
  });
});
"""

REAL_TEST_JS = """\
test('always fails', () => {
  expect(1 + 1).toBe(3);
});
"""

FLAKY_ID = "tests/flaky.test.js > retry passes on even runs"
ORDER_ID = "tests/order.test.js > basket starts empty"
REAL_ID = "tests/real.test.js > always fails"

GREEN_TEST_JS = """\
const { parsePrice } = require('../src/price');

describe('money', () => {
  test('parses a plain price', () => {
    expect(parsePrice('12.50')).toBe(12.5);
  });
  test.skip('rounds to cents', () => {
    expect(parsePrice('0.005')).toBe(0.01);
  });
});
"""


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True)
class DetectRun:
    project: Path
    env: dict[str, str]
    returncode: int
    doc: dict[str, Any]
    stderr: str


def _env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEST_JUNIT_")}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        npm_config_update_notifier="false",
        npm_config_fund="false",
        NO_COLOR="1",
        CI="1",
    )
    return env


def _run_cli(
    project: Path, home: Path, *flags: str, as_json: bool = True
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    env = _env(home)
    json_flag = ["--json"] if as_json else []
    done = subprocess.run(
        [sys.executable, "-m", "agentloop", "detect", *json_flag, "--repo", str(project), *flags],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    return done, env


def _detect(project: Path, home: Path, *flags: str) -> DetectRun:
    done, env = _run_cli(project, home, *flags)
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"detect printed no JSON (exit {done.returncode})\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return DetectRun(project, env, done.returncode, doc, done.stderr)


def _failures(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [failure for task in doc["tasks"] for failure in task["failures"]]


def _by_test_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {failure["test_id"]: failure for failure in _failures(doc)}


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def _testcases(report: Path) -> list[ET.Element]:
    return list(ET.parse(report).getroot().iter("testcase"))


def _ran(case: ET.Element) -> bool:
    return case.find("skipped") is None


def _identity(case: ET.Element) -> tuple[str | None, str]:
    # Without a describe block jest-junit starts the name with a space.
    return case.get("file"), case.get("name", "").strip()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> DetectRun:
    base = tmp_path_factory.mktemp("jest-shop")
    project = make_jest_project(base / "shop", SHOP_FILES, NPM_CACHE)
    return _detect(project, base / "home", "--flaky-reruns", "0")


# ---------------------------------------------------------------- the failing project


def test_failing_project_exits_1_with_schema_valid_json(shop: DetectRun) -> None:
    assert shop.returncode == 1, shop.stderr
    assert "Traceback" not in shop.stderr
    assert _schema_errors(shop.doc) == []
    assert shop.doc["root"] == str(shop.project.resolve())
    assert shop.doc["summary"]["green"] is False
    assert shop.doc["flaky"] == []
    [suite] = shop.doc["suites"]
    assert suite["name"] == "jest"
    assert suite["format"] == "junit"
    assert suite["command"] == (
        "npx --no-install jest --ci --reporters=default --reporters=jest-junit"
    )
    assert suite["exit_code"] == 1
    # 4 in money (1 skipped), 1 in cart, and the suite that failed to run (jest-junit
    # writes it twice; it counts once).
    assert suite["tests"] == 6


def test_failing_project_reports_exactly_the_failing_tests(shop: DetectRun) -> None:
    failures = _failures(shop.doc)
    assert {f["test_id"] for f in failures} == SHOP_FAILURES
    assert len(failures) == len(SHOP_FAILURES)
    assert shop.doc["summary"]["failures"] == len(SHOP_FAILURES)
    assert all(f["runner"] == "jest" and f["suite"] == "jest" for f in failures)
    assert all(f["cwd"] == "." for f in failures)
    # Neither the passing nor the skipped test is a failure.
    names = {f["test_name"] for f in failures}
    assert "money parsing parses a plain price" not in names
    assert "money rounds to cents" not in names


def test_failing_project_categories_and_stages(shop: DetectRun) -> None:
    by_id = _by_test_id(shop.doc)
    for test_id in (REJECTS_A_NUMBER, SUMS_LINE_PRICES):
        assert by_id[test_id]["category"] == "type_error", test_id
        assert by_id[test_id]["error_type"] == "TypeError", test_id
        assert by_id[test_id]["stage"] == "call", test_id
        assert by_id[test_id]["message"].startswith("price must be a string, got "), test_id

    splits = by_id[SPLITS_EUR]
    assert splits["category"] == "logic_bug"
    assert splits["stage"] == "call"
    assert splits["test_name"] == "money splits eur 10/2"
    assert splits["file"] == "tests/money.test.js"
    assert splits["crash_location"] == {"file": "tests/money.test.js", "line": 13}
    assert "toBe" in splits["message"]

    pad = by_id[PAD_LOAD_ERROR]
    assert pad["category"] == "missing_dependency"
    assert pad["stage"] == "collection"
    assert pad["file"] == PAD_FILE
    assert pad["test_name"] == PAD_FILE
    assert "left-pad-not-installed" in pad["message"]
    assert pad["selector"] == f"npx jest {PAD_FILE}"


def test_helper_type_errors_group_into_one_task(shop: DetectRun) -> None:
    tasks = shop.doc["tasks"]
    assert shop.doc["summary"]["tasks"] == len(tasks) == 3
    [helper] = [t for t in tasks if t["error_type"] == "TypeError"]
    # "got 42" and "got 3" normalise to one message; both crash on the same line of price.js.
    assert {f["test_id"] for f in helper["failures"]} == {REJECTS_A_NUMBER, SUMS_LINE_PRICES}
    assert helper["category"] == "type_error"
    assert helper["crash_location"] == {"file": "src/price.js", "line": 4}
    for failure in helper["failures"]:
        assert failure["crash_location"] == {"file": "src/price.js", "line": 4}
    # price.js requires no project file: the lowest level, so it is fixed first.
    assert helper["level"] == 0
    assert helper["order"] == 1
    others = [t for t in tasks if t is not helper]
    assert all(len(t["failures"]) == 1 for t in others)


@pytest.mark.parametrize("test_id", sorted(SHOP_FAILURES))
def test_selector_reruns_exactly_that_test(shop: DetectRun, tmp_path: Path, test_id: str) -> None:
    failure = _by_test_id(shop.doc)[test_id]
    selector = failure["selector"]
    assert selector is not None, failure
    report = tmp_path / "selector.xml"
    done = subprocess.run(
        f"{selector} --reporters=jest-junit",
        shell=True,
        cwd=Path(shop.doc["root"]) / failure["cwd"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**shop.env, **JEST_JUNIT_ENV, "JEST_JUNIT_OUTPUT_FILE": str(report)},
        timeout=TIMEOUT,
        check=False,
    )
    assert report.is_file(), f"{selector!r} wrote no report:\n{done.stdout}\n{done.stderr}"
    # The test still fails when re-run alone.
    assert done.returncode == 1, f"{selector!r}:\n{done.stdout}\n{done.stderr}"
    cases = _testcases(report)
    ran = [case for case in cases if _ran(case)]
    if failure["stage"] == "collection":
        # The suite error is re-run by its file alone; jest-junit writes it twice (the
        # readable message, then the error object), and nothing else ran.
        assert selector == f"npx jest {failure['file']}"
        assert {_identity(case) for case in cases} == {(failure["file"], failure["test_name"])}
        assert {case.get("classname") for case in cases} == {"Test suite failed to run"}
        assert len(list(ET.parse(report).getroot().iter("testsuite"))) == 1
        return
    assert [_identity(case) for case in ran] == [(failure["file"], failure["test_name"])], selector
    assert ran[0].find("failure") is not None
    # Every other test of the file was filtered out by -t, and no other file ran.
    assert {case.get("file") for case in cases} == {failure["file"]}


# ---------------------------------------------------------------- flaky and order-dependent


def test_flaky_and_order_dependent_tests_are_set_apart(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    files = {
        "src/basket.js": BASKET_JS,
        "tests/flaky.test.js": FLAKY_TEST_JS.replace("__COUNTER__", json.dumps(str(counter))),
        "tests/order.test.js": ORDER_TEST_JS,
        "tests/real.test.js": REAL_TEST_JS,
    }
    project = make_jest_project(tmp_path / "flaky", files, NPM_CACHE)

    run = _detect(project, tmp_path / "home", "--flaky-reruns", "2")

    assert _schema_errors(run.doc) == []
    # The suite run and exactly two re-runs alone: fail, pass, fail.
    assert counter.read_text(encoding="utf-8") == "3"
    flaky = {entry["failure"]["test_id"]: entry for entry in run.doc["flaky"]}
    assert set(flaky) == {FLAKY_ID, ORDER_ID}
    assert (flaky[FLAKY_ID]["kind"], flaky[FLAKY_ID]["reruns"], flaky[FLAKY_ID]["passes"]) == (
        "flaky",
        2,
        1,
    )
    assert (flaky[ORDER_ID]["kind"], flaky[ORDER_ID]["reruns"], flaky[ORDER_ID]["passes"]) == (
        "order_dependent",
        2,
        2,
    )
    # Only the test that fails every time is left for a task.
    assert set(_by_test_id(run.doc)) == {REAL_ID}
    assert run.doc["summary"] == {
        "failures": 1,
        "tasks": 1,
        "flaky": 1,
        "order_dependent": 1,
        "green": False,
    }
    assert run.returncode == 1, run.stderr


# ---------------------------------------------------------------- green


def test_green_project_exits_0(tmp_path: Path) -> None:
    project = make_jest_project(
        tmp_path / "green",
        {"src/price.js": PRICE_JS, "tests/money.test.js": GREEN_TEST_JS},
        NPM_CACHE,
    )

    run = _detect(project, tmp_path / "home")

    assert run.returncode == 0, run.stderr
    assert _schema_errors(run.doc) == []
    assert run.doc["summary"]["green"] is True
    assert run.doc["summary"]["failures"] == 0
    assert run.doc["tasks"] == []
    assert run.doc["flaky"] == []
    [suite] = run.doc["suites"]
    assert suite["exit_code"] == 0
    assert suite["tests"] == 2


# ---------------------------------------------------------------- no jest-junit


def _jest_project_without_jest_junit(root: Path) -> Path:
    # jest is named by the test script, but node_modules holds nothing: agentloop must
    # refuse before running anything, since jest would write no report it can read.
    root.mkdir(parents=True)
    manifest = {"name": "no-junit", "private": True, "scripts": {"test": "jest --ci"}}
    (root / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (root / "node_modules").mkdir()
    (root / "sum.test.js").write_text(
        "test('adds', () => { expect(1 + 1).toBe(2); });\n", encoding="utf-8"
    )
    return root


def test_jest_without_jest_junit_is_one_clear_error(tmp_path: Path) -> None:
    project = _jest_project_without_jest_junit(tmp_path / "no-junit")

    done, _ = _run_cli(project, tmp_path / "home", as_json=False)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "jest-junit" in errors[0]
    assert any(line.startswith("hint:") for line in lines), done.stderr


def test_jest_without_jest_junit_is_a_json_error_with_json(tmp_path: Path) -> None:
    project = _jest_project_without_jest_junit(tmp_path / "no-junit")

    done, _ = _run_cli(project, tmp_path / "home")

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    error = json.loads(done.stdout)["error"]
    assert "jest-junit" in error["message"]
    assert error["hint"]
    assert error["exit_code"] == 2
