"""`agentloop detect` on real jest projects: discovery, jest-junit parsing, categories,
grouping, selectors that re-run exactly one test, the flaky / order-dependent split, and
the error for a jest project without jest-junit.

jest and jest-junit (pinned in agentloop.testing.npm) are installed once into the
repository's gitignored `.cache/npm` and shared by every project these tests write, across
sessions.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path

import pytest

from agentloop.testing.detect import (
    NPM_RUNNER_ENV,
    DetectRun,
    by_test_id,
    check_flaky_split,
    detect,
    failures,
    junit_cases,
    ran,
    run_selector,
    schema_errors,
)
from agentloop.testing.npm import make_jest_project
from agentloop.testing.repos import agentloop_env, run_cli

_MISSING_TOOLS = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]

pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(
        bool(_MISSING_TOOLS),
        reason=f"jest tests need node and npm on PATH; missing: {', '.join(_MISSING_TOOLS)}",
    ),
]

NPM_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "npm"
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

# check_flaky_split writes these, with __COUNTER__ replaced by its run counter's path.
FLAKY_FILES = {
    "src/basket.js": BASKET_JS,
    "tests/flaky.test.js": FLAKY_TEST_JS,
    "tests/order.test.js": ORDER_TEST_JS,
    "tests/real.test.js": REAL_TEST_JS,
}
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


def _identity(case: ET.Element) -> tuple[str | None, str]:
    # Without a describe block jest-junit starts the name with a space.
    return case.get("file"), case.get("name", "").strip()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> DetectRun:
    base = tmp_path_factory.mktemp("jest-shop")
    project = make_jest_project(base / "shop", SHOP_FILES, NPM_CACHE)
    return detect(project, base / "home", "--flaky-reruns", "0", extra_env=NPM_RUNNER_ENV)


# ---------------------------------------------------------------- the failing project


def test_failing_project_exits_1_with_schema_valid_json(shop: DetectRun) -> None:
    assert shop.returncode == 1, shop.stderr
    assert "Traceback" not in shop.stderr
    assert schema_errors(shop.doc) == []
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
    found = failures(shop.doc)
    assert {f["test_id"] for f in found} == SHOP_FAILURES
    assert len(found) == len(SHOP_FAILURES)
    assert shop.doc["summary"]["failures"] == len(SHOP_FAILURES)
    assert all(f["runner"] == "jest" and f["suite"] == "jest" for f in found)
    assert all(f["cwd"] == "." for f in found)
    # Neither the passing nor the skipped test is a failure.
    names = {f["test_name"] for f in found}
    assert "money parsing parses a plain price" not in names
    assert "money rounds to cents" not in names


def test_failing_project_categories_and_stages(shop: DetectRun) -> None:
    by_id = by_test_id(shop.doc)
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
    failure = by_test_id(shop.doc)[test_id]
    selector = failure["selector"]
    assert selector is not None, failure
    report = tmp_path / "selector.xml"
    done = run_selector(
        f"{selector} --reporters=jest-junit",
        cwd=Path(shop.doc["root"]) / failure["cwd"],
        env={**shop.env, **JEST_JUNIT_ENV, "JEST_JUNIT_OUTPUT_FILE": str(report)},
        timeout=TIMEOUT,
    )
    assert report.is_file(), f"{selector!r} wrote no report:\n{done.stdout}\n{done.stderr}"
    # The test still fails when re-run alone.
    assert done.returncode == 1, f"{selector!r}:\n{done.stdout}\n{done.stderr}"
    cases = junit_cases(report)
    ran_cases = [case for case in cases if ran(case)]
    if failure["stage"] == "collection":
        # The suite error is re-run by its file alone; jest-junit writes it twice (the
        # readable message, then the error object), and nothing else ran.
        assert selector == f"npx jest {failure['file']}"
        assert {_identity(case) for case in cases} == {(failure["file"], failure["test_name"])}
        assert {case.get("classname") for case in cases} == {"Test suite failed to run"}
        assert len(list(ET.parse(report).getroot().iter("testsuite"))) == 1
        return
    assert [_identity(case) for case in ran_cases] == [(failure["file"], failure["test_name"])], (
        selector
    )
    assert ran_cases[0].find("failure") is not None
    # Every other test of the file was filtered out by -t, and no other file ran.
    assert {case.get("file") for case in cases} == {failure["file"]}


# ---------------------------------------------------------------- flaky and order-dependent


def test_flaky_tests_are_set_apart_and_order_dependent_ones_are_tasks(tmp_path: Path) -> None:
    check_flaky_split(
        tmp_path,
        partial(make_jest_project, cache_dir=NPM_CACHE),
        FLAKY_FILES,
        flaky_id=FLAKY_ID,
        order_id=ORDER_ID,
        real_id=REAL_ID,
        extra_env=NPM_RUNNER_ENV,
    )


# ---------------------------------------------------------------- green


def test_green_project_exits_0(tmp_path: Path) -> None:
    project = make_jest_project(
        tmp_path / "green",
        {"src/price.js": PRICE_JS, "tests/money.test.js": GREEN_TEST_JS},
        NPM_CACHE,
    )

    run = detect(project, tmp_path / "home", extra_env=NPM_RUNNER_ENV)

    assert run.returncode == 0, run.stderr
    assert schema_errors(run.doc) == []
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

    done = run_cli("detect", cwd=project, home=tmp_path / "home", extra_env=NPM_RUNNER_ENV)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "jest-junit" in errors[0]
    assert any(line.startswith("hint:") for line in lines), done.stderr


def test_jest_without_jest_junit_is_a_json_error_with_json(tmp_path: Path) -> None:
    project = _jest_project_without_jest_junit(tmp_path / "no-junit")

    done = run_cli(
        "detect", "--json", cwd=project, home=tmp_path / "home", extra_env=NPM_RUNNER_ENV
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    error = json.loads(done.stdout)["error"]
    assert "jest-junit" in error["message"]
    assert error["hint"]
    assert error["exit_code"] == 2


# ---------------------------------------------------------------- jest-junit's defaults

HELPER_JS = """\
module.exports = { check(value) { if (!value) throw new Error('helper refused'); } };
"""

HELPER_TEST_JS = """\
const { check } = require('./helpers/check');

describe('checks', () => {
  test('refuses zero', () => {
    check(0);
  });
  test('accepts one', () => {
    check(1);
  });
});
"""


def test_a_default_jest_junit_report_gets_its_file_from_the_stack(tmp_path: Path) -> None:
    """jest-junit's defaults write no `file` attribute: the test file is the innermost
    frame in a test file of the project (not the helper under tests/ it called), so the
    failure gets a file and a selector that re-runs exactly that test."""
    project = make_jest_project(
        tmp_path / "defaults",
        {**SHOP_FILES, "tests/helpers/check.js": HELPER_JS, "tests/check.test.js": HELPER_TEST_JS},
        NPM_CACHE,
    )
    report = tmp_path / "junit.xml"
    env = {
        **agentloop_env(tmp_path / "home", NPM_RUNNER_ENV),
        "JEST_JUNIT_OUTPUT_FILE": str(report),
    }
    run_selector("npx --no-install jest --ci --reporters=jest-junit", cwd=project, env=env)
    assert all(case.get("file") is None for case in junit_cases(report))

    run = detect(project, tmp_path / "home", "--report", str(report), "--flaky-reruns", "0")

    assert run.returncode == 1, run.stderr
    found = by_test_id(run.doc)
    # The load error of pad.test.js is not in a default report (no suite errors).
    assert set(found) == {
        REJECTS_A_NUMBER,
        SPLITS_EUR,
        SUMS_LINE_PRICES,
        "tests/check.test.js > checks refuses zero",
    }
    refuses = found["tests/check.test.js > checks refuses zero"]
    assert (refuses["file"], refuses["line"]) == ("tests/check.test.js", 5)
    assert refuses["crash_location"] == {"file": "tests/helpers/check.js", "line": 1}
    for test_id in (REJECTS_A_NUMBER, "tests/check.test.js > checks refuses zero"):
        failure = found[test_id]
        rerun = tmp_path / "rerun.xml"
        done = run_selector(
            f"{failure['selector']} --reporters=jest-junit",
            cwd=project,
            env={**env, **JEST_JUNIT_ENV, "JEST_JUNIT_OUTPUT_FILE": str(rerun)},
        )
        assert done.returncode == 1, f"{failure['selector']!r}:\n{done.stdout}\n{done.stderr}"
        ran_cases = [_identity(case) for case in junit_cases(rerun) if ran(case)]
        assert ran_cases == [(failure["file"], failure["test_name"])], failure["selector"]
