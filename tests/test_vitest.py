"""`agentloop detect` on real vitest projects: discovery, JUnit parsing, categories, grouping,
selectors that re-run exactly one test, and the flaky / order-dependent split.

vitest (pinned in agentloop.testing.npm) is installed once into the repository's gitignored
`.cache/npm` and shared by every project these tests write, across sessions.
"""

from __future__ import annotations

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
from agentloop.testing.npm import make_vitest_project
from agentloop.testing.repos import agentloop_env

_MISSING_TOOLS = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]

pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(
        bool(_MISSING_TOOLS),
        reason=f"vitest tests need node and npm on PATH; missing: {', '.join(_MISSING_TOOLS)}",
    ),
]

NPM_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "npm"
TIMEOUT = 300

# ---------------------------------------------------------------- the failing project

PRICE_JS = """\
// Prices are strings such as "12.50"; anything else is a caller's bug.
export function parsePrice(input) {
  if (typeof input !== 'string') {
    throw new TypeError(`price must be a string, got ${JSON.stringify(input)}`);
  }
  return Number(input);
}

export function splitAmount(amount, parts) {
  return amount / parts;
}
"""

MONEY_TEST_JS = """\
import { describe, it, expect } from 'vitest';
import { parsePrice, splitAmount } from '../src/price.js';

describe('money', () => {
  describe('parsing', () => {
    it('parses a plain price', () => {
      expect(parsePrice('12.50')).toBe(12.5);
    });
    it('rejects a number', () => {
      expect(parsePrice(42)).toBe(42);
    });
  });
  it('splits eur 10/2', () => {
    expect(splitAmount(10, 2)).toBe(4);
  });
  it.skip('rounds to cents', () => {
    expect(parsePrice('0.005')).toBe(0.01);
  });
});
"""

CART_TEST_JS = """\
import { describe, it, expect } from 'vitest';
import { parsePrice } from '../src/price.js';

describe('cart', () => {
  describe('totals', () => {
    it('sums line prices', () => {
      const total = [parsePrice('1.50'), parsePrice(3)].reduce((a, b) => a + b, 0);
      expect(total).toBe(4.5);
    });
  });
});
"""

BROKEN_TEST_JS = """\
import { it, expect } from 'vitest';
import { discount } from '../src/discount.js';

it('applies a discount', () => {
  expect(discount(10)).toBe(9);
});
"""

SHOP_FILES = {
    "src/price.js": PRICE_JS,
    "tests/money.test.js": MONEY_TEST_JS,
    "tests/cart.test.js": CART_TEST_JS,
    "tests/broken.test.js": BROKEN_TEST_JS,
}

REJECTS_A_NUMBER = "tests/money.test.js > money > parsing > rejects a number"
SPLITS_EUR = "tests/money.test.js > money > splits eur 10/2"
SUMS_LINE_PRICES = "tests/cart.test.js > cart > totals > sums line prices"
BROKEN_FILE = "tests/broken.test.js"
SHOP_FAILURES = {REJECTS_A_NUMBER, SPLITS_EUR, SUMS_LINE_PRICES, BROKEN_FILE}

# ---------------------------------------------------------------- flaky and order-dependent

# Fails on odd-numbered runs and passes on even ones, counting runs in a file outside the
# project: the suite run is run 1 (fails), the two re-runs alone are runs 2 (passes) and
# 3 (fails), so it passed 1 of 2 re-runs.
FLAKY_TEST_JS = """\
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';

const COUNTER = __COUNTER__;

function nextRun() {
  const run = existsSync(COUNTER) ? Number(readFileSync(COUNTER, 'utf8')) + 1 : 1;
  writeFileSync(COUNTER, String(run));
  return run;
}

describe('retry', () => {
  it('passes on even runs', () => {
    expect(nextRun() % 2).toBe(0);
  });
});
"""

BASKET_JS = """\
// Module state shared by every test in a file that imports it.
export const basket = { items: [] };

export function addItem(item) {
  basket.items.push(item);
}
"""

# `starts empty` fails only after `adds an item` has mutated the shared basket; alone
# (`-t` skips the other test) it passes every time.
ORDER_TEST_JS = """\
import { describe, it, expect } from 'vitest';
import { basket, addItem } from '../src/basket.js';

describe('basket', () => {
  it('adds an item', () => {
    addItem('apple');
    expect(basket.items).toEqual(['apple']);
  });
  it('starts empty', () => {
    expect(basket.items).toEqual([]);
  });
});
"""

REAL_TEST_JS = """\
import { it, expect } from 'vitest';

it('always fails', () => {
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
FLAKY_ID = "tests/flaky.test.js > retry > passes on even runs"
ORDER_ID = "tests/order.test.js > basket > starts empty"
REAL_ID = "tests/real.test.js > always fails"

GREEN_TEST_JS = """\
import { describe, it, expect } from 'vitest';
import { parsePrice } from '../src/price.js';

describe('money', () => {
  it('parses a plain price', () => {
    expect(parsePrice('12.50')).toBe(12.5);
  });
  it.skip('rounds to cents', () => {
    expect(parsePrice('0.005')).toBe(0.01);
  });
});
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> DetectRun:
    base = tmp_path_factory.mktemp("vitest-shop")
    project = make_vitest_project(base / "shop", SHOP_FILES, NPM_CACHE)
    return detect(project, base / "home", "--flaky-reruns", "0", extra_env=NPM_RUNNER_ENV)


# ---------------------------------------------------------------- the failing project


def test_failing_project_exits_1_with_schema_valid_json(shop: DetectRun) -> None:
    assert shop.returncode == 1, shop.stderr
    assert schema_errors(shop.doc) == []
    assert shop.doc["root"] == str(shop.project.resolve())
    assert shop.doc["summary"]["green"] is False
    assert shop.doc["flaky"] == []
    [suite] = shop.doc["suites"]
    assert suite["name"] == "vitest"
    # The JSON reporter keeps whole stacks; JUnit beside it names a describe's failing hook.
    assert suite["format"] == "vitest-json"
    assert suite["command"].startswith("npx --no-install vitest run ")
    assert "--reporter=json" in suite["command"]
    assert "--reporter=junit" in suite["command"]
    assert suite["not_run"] is None
    assert suite["exit_code"] == 1
    # 4 in money (1 skipped), 1 in cart, and the load error's synthetic testcase.
    assert suite["tests"] == 6


def test_failing_project_reports_exactly_the_failing_tests(shop: DetectRun) -> None:
    found = failures(shop.doc)
    assert {f["test_id"] for f in found} == SHOP_FAILURES
    assert len(found) == len(SHOP_FAILURES)
    assert shop.doc["summary"]["failures"] == len(SHOP_FAILURES)
    assert all(f["runner"] == "vitest" and f["suite"] == "vitest" for f in found)
    assert all(f["cwd"] == "." for f in found)
    # Neither the passing nor the skipped test is a failure.
    names = {f["test_name"] for f in found}
    assert "money > parsing > parses a plain price" not in names
    assert "money > rounds to cents" not in names


def test_failing_project_categories_and_stages(shop: DetectRun) -> None:
    by_id = by_test_id(shop.doc)
    for test_id in (REJECTS_A_NUMBER, SUMS_LINE_PRICES):
        assert by_id[test_id]["category"] == "type_error", test_id
        assert by_id[test_id]["error_type"] == "TypeError", test_id
        assert by_id[test_id]["stage"] == "call", test_id

    splits = by_id[SPLITS_EUR]
    assert splits["category"] == "logic_bug"
    assert splits["error_type"] == "AssertionError"
    assert splits["stage"] == "call"
    assert splits["test_name"] == "money > splits eur 10/2"
    assert splits["file"] == "tests/money.test.js"
    assert splits["crash_location"] == {"file": "tests/money.test.js", "line": 14}
    # The diff (only in vitest's JUnit) under the message, the whole stack (JSON) after.
    trace = splits["stack_trace"]
    assert trace.index("AssertionError") < trace.index("- Expected") < trace.index("    at ")

    broken = by_id[BROKEN_FILE]
    assert broken["category"] in ("missing_dependency", "collection_error")
    assert broken["stage"] == "collection"
    assert broken["file"] == "tests/broken.test.js"
    assert "../src/discount.js" in broken["message"]


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
    # price.js imports no project file: the lowest level, so it is fixed first.
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
        f"{selector} --reporter=junit --outputFile.junit={report}",
        cwd=Path(shop.doc["root"]) / failure["cwd"],
        env=shop.env,
        timeout=TIMEOUT,
    )
    assert report.is_file(), f"{selector!r} wrote no report:\n{done.stdout}\n{done.stderr}"
    # The test still fails when re-run alone.
    assert done.returncode == 1, f"{selector!r}:\n{done.stdout}\n{done.stderr}"
    ran_cases = [case for case in junit_cases(report) if ran(case)]
    assert [(case.get("classname"), case.get("name")) for case in ran_cases] == [
        (failure["file"], failure["test_name"])
    ], selector
    assert ran_cases[0].find("failure") is not None
    if failure["stage"] == "collection":
        # The load error is re-run by its file alone.
        suites = {s.get("name") for s in ET.parse(report).getroot().iter("testsuite")}
        assert suites == {failure["file"]}
        assert selector == f"npx vitest run {failure['file']}"


# ---------------------------------------------------------------- flaky and order-dependent


def test_flaky_tests_are_set_apart_and_order_dependent_ones_are_tasks(tmp_path: Path) -> None:
    check_flaky_split(
        tmp_path,
        partial(make_vitest_project, cache_dir=NPM_CACHE),
        FLAKY_FILES,
        flaky_id=FLAKY_ID,
        order_id=ORDER_ID,
        real_id=REAL_ID,
        extra_env=NPM_RUNNER_ENV,
    )


# ---------------------------------------------------------------- green


def test_green_project_exits_0(tmp_path: Path) -> None:
    project = make_vitest_project(
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


# ---------------------------------------------------------------- awkward names and hooks

AWKWARD_TEST_JS = """\
import { describe, it, expect, beforeAll } from "vitest";

describe("hooked", () => {
  beforeAll(() => {
    throw new Error("database did not start");
  });
  it("first", () => expect(1).toBe(1));
  it("second", () => expect(1).toBe(1));
});

describe("dup", () => {
  it("same name", () => expect(1).toBe(2));
  it("same name", () => expect(1).toBe(1));
});

describe("odd", () => {
  it("a > b", () => expect("a").toBe("b"));
  it("tab\\there", () => expect(0).toBe(1));
});
"""


def test_hooks_duplicate_names_and_separators_in_names(tmp_path: Path) -> None:
    project = make_vitest_project(
        tmp_path / "awkward", {"tests/awkward.test.js": AWKWARD_TEST_JS}, NPM_CACHE
    )
    run = detect(project, tmp_path / "home", "--flaky-reruns", "0", extra_env=NPM_RUNNER_ENV)
    assert run.returncode == 1, run.stderr
    by_name = {f["test_name"]: f for f in failures(run.doc)}
    # A repeated name is another test, not a re-run: its failure must not be dropped.
    # vitest's JSON keeps a tab in a name as it is (its JUnit turned it into a space).
    assert set(by_name) == {"hooked", "dup > same name", "odd > a > b", "odd > tab\there"}
    hook = by_name["hooked"]
    assert (hook["stage"], hook["category"]) == ("setup", "fixture_error")
    for name, expected_ran in [
        # The hook fails again, so vitest skips the block's tests and fails the block.
        ("hooked", {"hooked"}),
        ("odd > a > b", {"odd > a > b"}),
        ("odd > tab\there", {"odd > tab here"}),
    ]:
        report = tmp_path / f"{len(name)}.xml"
        run_selector(
            f"{by_name[name]['selector']} --reporter=junit --outputFile.junit={report}",
            cwd=project,
            env=run.env,
            timeout=TIMEOUT,
        )
        names = {case.get("name") for case in junit_cases(report) if ran(case)}
        assert names == expected_ran, (name, by_name[name]["selector"], names)


# ---------------------------------------------------------------- crash sites in src/

MATH_JS = """\
// Parses "1,2,3"; anything but a string is a caller's bug.
export function parse(text) { return text.trim().split(',').map(Number); }
"""

MATH_TEST_JS = """\
import { describe, it, expect } from 'vitest';
import { parse } from '../src/math.js';

describe('math', () => {
  it('parses a list', () => {
    expect(parse('1,2')).toEqual([1, 2]);
  });
  it('parses a number', () => {
    expect(parse(42)).toEqual([42]);
  });
  it('parses a padded list', () => {
    expect(parse(' 3')).toEqual([3]);
  });
});
"""

TYPE_ERROR_ID = "test/math.test.js > math > parses a number"


def test_type_error_in_src_is_located_in_src_from_the_whole_stack(tmp_path: Path) -> None:
    project = make_vitest_project(
        tmp_path / "math",
        {"src/math.js": MATH_JS, "test/math.test.js": MATH_TEST_JS},
        NPM_CACHE,
    )
    run = detect(project, tmp_path / "home", "--flaky-reruns", "0", extra_env=NPM_RUNNER_ENV)

    assert run.returncode == 1, run.stderr
    assert schema_errors(run.doc) == []
    [failure] = failures(run.doc)
    assert failure["test_id"] == TYPE_ERROR_ID
    assert (failure["error_type"], failure["message"]) == (
        "TypeError",
        "text.trim is not a function",
    )
    # Where it raised, from Node's own stack: the helper in src/, then the test's line.
    assert failure["crash_location"] == {"file": "src/math.js", "line": 2}
    assert (failure["file"], failure["line"]) == ("test/math.test.js", 9)
    assert "at parse (" in failure["stack_trace"]
    assert failure["category"] == "type_error"
    [task] = run.doc["tasks"]
    assert task["crash_location"] == {"file": "src/math.js", "line": 2}

    report = tmp_path / "selector.xml"
    done = run_selector(
        f"{failure['selector']} --reporter=junit --outputFile.junit={report}",
        cwd=project,
        env=run.env,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1, f"{failure['selector']!r}:\n{done.stdout}\n{done.stderr}"
    ran_cases = [case for case in junit_cases(report) if ran(case)]
    assert [(c.get("classname"), c.get("name")) for c in ran_cases] == [
        ("test/math.test.js", "math > parses a number")
    ]


def test_a_vitest_json_report_is_read_on_its_own(tmp_path: Path) -> None:
    """A JSON report a user hands over (--report) is recognised and read the same way; a
    describe block's failing hook, which that report does not describe, is still one setup
    failure of its file rather than nothing."""
    project = make_vitest_project(
        tmp_path / "math",
        {
            "src/math.js": MATH_JS,
            "test/math.test.js": MATH_TEST_JS,
            "test/hook.test.js": AWKWARD_TEST_JS.split('describe("dup"', maxsplit=1)[0],
        },
        NPM_CACHE,
    )
    report = tmp_path / "vitest.json"
    run_selector(
        f"npx --no-install vitest run --reporter=json --outputFile.json={report}",
        cwd=project,
        env=agentloop_env(tmp_path / "home", NPM_RUNNER_ENV),
        timeout=TIMEOUT,
    )
    run = detect(project, tmp_path / "home", "--report", str(report), "--flaky-reruns", "0")

    assert run.returncode == 1, run.stderr
    assert schema_errors(run.doc) == []
    assert run.doc["suites"][0]["format"] == "vitest-json"
    found = by_test_id(run.doc)
    assert set(found) == {TYPE_ERROR_ID, "test/hook.test.js"}
    assert found[TYPE_ERROR_ID]["crash_location"] == {"file": "src/math.js", "line": 2}
    assert found[TYPE_ERROR_ID]["selector"] == (
        "npx vitest run test/math.test.js -t '^math(?:\\s|\\s>\\s)parses\\s+a\\s+number$'"
    )
    hook = found["test/hook.test.js"]
    assert (hook["stage"], hook["category"]) == ("setup", "fixture_error")
