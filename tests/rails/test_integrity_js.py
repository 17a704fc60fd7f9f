"""Test integrity on JS/TS test files (jest, vitest, mocha, node:test, chai), read with
regexes over masked source: one BEFORE/AFTER pair per case and the exact violations."""

from __future__ import annotations

from textwrap import dedent

import pytest

from agentloop.rails.integrity import check_integrity

PATH = "web/src/cart.test.ts"

BASE = """
import { describe, expect, it } from "vitest";

describe("cart", () => {
  it("adds", () => {
    const result = add(1, 2);
    expect(result).toBe(3);
  });

  it("totals", async () => {
    expect(await total([1, 2])).toEqual({ sum: 3 });
  }, 5000);
});
"""


def base(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


CONSTANTS = """
const EXPECTED = 5;
const WANT: Totals = { sum: 3, items: [1, "a"] } as const;

test("adds", () => {
  expect(add(2, 3)).toBe(EXPECTED);
  assert.deepEqual(total(), WANT);
});
"""

# (id, before, after, expected (kind, test) pairs)
VIOLATIONS: list[tuple[str, str, str, list[tuple[str, str | None]]]] = [
    (
        "a module-level constant an expect compares against changed",
        CONSTANTS,
        CONSTANTS.replace("= 5", "= 6"),
        [("constant_changed", "adds")],
    ),
    (
        "an object constant changed",
        CONSTANTS,
        CONSTANTS.replace('"a"', '"b"'),
        [("constant_changed", "adds")],
    ),
    (
        "expect removed",
        BASE,
        base("    expect(result).toBe(3);\n", "    console.log(result);\n"),
        [("assertion_removed", "cart > adds")],
    ),
    (
        "toBe became toBeTruthy",
        BASE,
        base("toBe(3)", "toBeTruthy()"),
        [("assertion_loosened", "cart > adds")],
    ),
    (
        "toEqual became toBeDefined",
        BASE,
        base("toEqual({ sum: 3 })", "toBeDefined()"),
        [("assertion_loosened", "cart > totals")],
    ),
    (
        "expected value changed",
        BASE,
        base("toBe(3)", "toBe(4)"),
        [("expectation_changed", "cart > adds")],
    ),
    (
        "negated",
        BASE,
        base("expect(result).toBe(3)", "expect(result).not.toBe(4)"),
        [("assertion_loosened", "cart > adds")],
    ),
    (
        "matcher dropped",
        BASE,
        base("expect(result).toBe(3);", "expect(result);"),
        [("assertion_loosened", "cart > adds")],
    ),
    (
        "toThrow lost its message",
        "test('bad', () => {\n  expect(() => f(-1)).toThrow('negative');\n});\n",
        "test('bad', () => {\n  expect(() => f(-1)).toThrow();\n});\n",
        [("assertion_loosened", "bad")],
    ),
    (
        "toBeCloseTo with fewer digits",
        "test('mean', () => {\n  expect(mean()).toBeCloseTo(2.5, 5);\n});\n",
        "test('mean', () => {\n  expect(mean()).toBeCloseTo(2.5, 1);\n});\n",
        [("assertion_loosened", "mean")],
    ),
    (
        "inline snapshot rewritten",
        "test('view', () => {\n  expect(render()).toMatchInlineSnapshot(`<b>3</b>`);\n});\n",
        "test('view', () => {\n  expect(render()).toMatchInlineSnapshot(`<b>4</b>`);\n});\n",
        [("expectation_changed", "view")],
    ),
    (
        "expect.assertions removed",
        "test('cb', () => {\n  expect.assertions(1);\n  expect(f()).toBe(1);\n});\n",
        "test('cb', () => {\n  expect(f()).toBe(1);\n});\n",
        [("assertion_removed", "cb")],
    ),
    (
        "chai equal became ok",
        "it('adds', () => {\n  expect(add(1, 2)).to.equal(3);\n});\n",
        "it('adds', () => {\n  expect(add(1, 2)).to.be.ok;\n});\n",
        [("assertion_loosened", "adds")],
    ),
    (
        "node:assert strictEqual became ok",
        "test('adds', () => {\n  assert.strictEqual(add(1, 2), 3);\n});\n",
        "test('adds', () => {\n  assert.ok(add(1, 2));\n});\n",
        [("assertion_loosened", "adds")],
    ),
    (
        "assert(x === 3) became assert(x)",
        "test('adds', () => {\n  assert(add(1, 2) === 3);\n});\n",
        "test('adds', () => {\n  assert(add(1, 2));\n});\n",
        [("assertion_loosened", "adds")],
    ),
    (
        "it.skip",
        BASE,
        base('it("adds"', 'it.skip("adds"'),
        [("skip_added", "cart > adds")],
    ),
    (
        "xit",
        BASE,
        base('it("adds"', 'xit("adds"'),
        [("skip_added", "cart > adds")],
    ),
    (
        "test.skipIf",
        "test('adds', () => {\n  expect(add(1, 2)).toBe(3);\n});\n",
        "test.skipIf(process.env.CI)('adds', () => {\n  expect(add(1, 2)).toBe(3);\n});\n",
        [("skip_added", "adds")],
    ),
    (
        "describe.skip is one violation for the block",
        BASE,
        base('describe("cart"', 'describe.skip("cart"'),
        [("skip_added", "cart")],
    ),
    (
        "xdescribe",
        BASE,
        base('describe("cart"', 'xdescribe("cart"'),
        [("skip_added", "cart")],
    ),
    (
        "skip option",
        BASE,
        base('it("adds", () => {', 'it("adds", { skip: true }, () => {'),
        [("skip_added", "cart > adds")],
    ),
    (
        "context.skip() in the body",
        "test('adds', (context) => {\n  expect(add(1, 2)).toBe(3);\n});\n",
        "test('adds', (context) => {\n  context.skip();\n  expect(add(1, 2)).toBe(3);\n});\n",
        [("skip_added", "adds")],
    ),
    (
        "mocha this.skip()",
        "it('adds', function () {\n  expect(add(1, 2)).to.equal(3);\n});\n",
        "it('adds', function () {\n  this.skip();\n  expect(add(1, 2)).to.equal(3);\n});\n",
        [("skip_added", "adds")],
    ),
    (
        "it.todo replaces a test",
        BASE,
        base(
            'it("adds", () => {\n    const result = add(1, 2);\n    expect(result).toBe(3);\n  });',
            'it.todo("adds");',
        ),
        [("skip_added", "cart > adds"), ("assertion_loosened", "cart > adds")],
    ),
    (
        "it.only narrows the file",
        BASE,
        base('it("adds"', 'it.only("adds"'),
        [("only_added", None)],
    ),
    (
        "fit",
        BASE,
        base('it("adds"', 'fit("adds"'),
        [("only_added", None)],
    ),
    (
        "describe.only",
        BASE,
        base('describe("cart"', 'describe.only("cart"'),
        [("only_added", None)],
    ),
    (
        "retry option",
        BASE,
        base('it("adds", () => {', 'it("adds", { retry: 3 }, () => {'),
        [("retry_added", "cart > adds")],
    ),
    (
        "jest.retryTimes",
        BASE,
        "jest.retryTimes(3);\n" + BASE,
        [("retry_added", None)],
    ),
    (
        "timeout argument raised",
        BASE,
        base("}, 5000);", "}, 60_000);"),
        [("timeout_raised", "cart > totals")],
    ),
    (
        "timeout option raised on a describe",
        base('describe("cart", () => {', 'describe("cart", { timeout: 100 }, () => {'),
        base('describe("cart", () => {', 'describe("cart", { timeout: 9000 }, () => {'),
        [("timeout_raised", "cart > adds")],
    ),
    (
        "jest.setTimeout raised",
        "jest.setTimeout(5000);\n" + BASE,
        "jest.setTimeout(30000);\n" + BASE,
        [("timeout_raised", None)],
    ),
    (
        "vi.setConfig testTimeout added",
        BASE,
        "vi.setConfig({ testTimeout: 120000 });\n" + BASE,
        [("timeout_raised", None)],
    ),
    (
        "mocha this.timeout raised in a test",
        "it('slow', function () {\n  this.timeout(2000);\n  expect(run()).to.equal(0);\n});\n",
        "it('slow', function () {\n  this.timeout(20000);\n  expect(run()).to.equal(0);\n});\n",
        [("timeout_raised", "slow")],
    ),
    (
        "test deleted",
        BASE,
        base(
            '  it("adds", () => {\n    const result = add(1, 2);\n    expect(result).toBe(3);\n'
            "  });\n",
            "",
        ),
        [("test_deleted", "cart > adds")],
    ),
    (
        "test renamed",
        BASE,
        base('it("adds"', 'it("adds two numbers"'),
        [("test_deleted", "cart > adds")],
    ),
    (
        "body emptied",
        BASE,
        base("    const result = add(1, 2);\n    expect(result).toBe(3);\n", ""),
        [("assertion_loosened", "cart > adds")],
    ),
    (
        "each rows cut",
        "test.each([[1, 2], [2, 3], [3, 4]])('inc %i', (a, b) => {\n"
        "  expect(inc(a)).toBe(b);\n});\n",
        "test.each([[1, 2]])('inc %i', (a, b) => {\n  expect(inc(a)).toBe(b);\n});\n",
        [("cases_removed", "inc %i")],
    ),
    (
        "each expected value changed",
        "test.each([[1, 2], [2, 3]])('inc %i', (a, b) => {\n  expect(inc(a)).toBe(b);\n});\n",
        "test.each([[1, 2], [2, 4]])('inc %i', (a, b) => {\n  expect(inc(a)).toBe(b);\n});\n",
        [("expectation_changed", "inc %i")],
    ),
    (
        "each template table row dropped",
        "test.each`\n  a    | b\n  ${1} | ${2}\n  ${2} | ${3}\n`('inc $a', ({ a, b }) => {\n"
        "  expect(inc(a)).toBe(b);\n});\n",
        "test.each`\n  a    | b\n  ${1} | ${2}\n`('inc $a', ({ a, b }) => {\n"
        "  expect(inc(a)).toBe(b);\n});\n",
        [("cases_removed", "inc $a")],
    ),
]

FINE: list[tuple[str, str, str]] = [
    (
        "constants reformatted, and a new expect that reads one",
        CONSTANTS,
        CONSTANTS.replace('"a"', "'a'")
        .replace("= 5;", "= 5")
        .replace("[1, ", "[\n    1,\n    ")
        .replace("toBe(EXPECTED);", "toBe(EXPECTED);\n  expect(add(3, 2)).toBe(EXPECTED);"),
    ),
    (
        "prettier-style reformatting",
        "it('adds', function () { expect(add(1,2)).toEqual({a: 1, b: [1, 2]}); })\n",
        'it("adds", function () {\n  expect(\n    add(1, 2),\n  ).toEqual({\n    a: 1,\n'
        "    b: [1, 2],\n  });\n});\n",
    ),
    (
        "local variable renamed",
        BASE,
        base(
            "const result = add(1, 2);\n    expect(result)",
            "const sum = add(1, 2);\n    expect(sum)",
        ),
    ),
    (
        "arrow function became function, with a type annotation",
        BASE,
        base(
            'it("adds", () => {\n    const result = add',
            'it("adds", function () {\n    const result: number = add',
        ),
    ),
    (
        "test added",
        BASE,
        BASE + 'test("subtracts", () => {\n  expect(sub(3, 1)).toBe(2);\n});\n',
    ),
    (
        "expect added",
        BASE,
        base(
            "expect(result).toBe(3);",
            "expect(result).toBe(3);\n    expect(result).toBeGreaterThan(0);",
        ),
    ),
    (
        "stricter matcher",
        "test('ok', () => {\n  expect(ok()).toBeTruthy();\n});\n",
        "test('ok', () => {\n  expect(ok()).toBe(true);\n});\n",
    ),
    (
        "expect and .only inside strings and comments",
        "test('log', () => {\n  expect(f()).toBe(1);\n  log('expect(a).toBe(2)');\n});\n",
        "// test.only('log') while debugging\ntest('log', () => {\n  expect(f()).toBe(1);\n"
        "  log(\"it.skip('x')\");\n  /* expect(b).toBe(3) */\n});\n",
    ),
    (
        "regex literal with quotes and brackets",
        "test('re', () => {\n  expect(s()).toMatch(/it's (\\d+)\"/);\n"
        "  expect(f()).toBe(1);\n});\n",
        "test('re', () => {\n  expect(s()).toMatch(/it's (\\d+)\"/);\n  expect(f()).toBe(1);\n"
        "  expect(f()).not.toBeNull();\n});\n",
    ),
    (
        "template literal name with an expression",
        "test(`adds ${n}`, () => {\n  expect(add(n)).toBe(n + 1);\n});\n",
        "test(`adds ${n}`, () => {\n  const got = add(n);\n  expect(got).toBe(n + 1);\n});\n",
    ),
    (
        "test moved to another describe",
        "describe('a', () => {\n  test('x', () => {\n    expect(f()).toBe(1);\n  });\n});\n",
        "describe('b', () => {\n  test('x', () => {\n    expect(f()).toBe(1);\n  });\n});\n",
    ),
    (
        "timeout lowered",
        BASE,
        base("}, 5000);", "}, 1000);"),
    ),
    (
        "skip removed",
        base('it("adds"', 'it.skip("adds"'),
        BASE,
    ),
    (
        "each row added",
        "test.each([[1, 2]])('inc %i', (a, b) => {\n  expect(inc(a)).toBe(b);\n});\n",
        "test.each([\n  [1, 2],\n  [2, 3],\n])('inc %i', (a, b) => {\n"
        "  expect(inc(a)).toBe(b);\n});\n",
    ),
]


def found(before: str, after: str) -> list[tuple[str, str | None]]:
    return [
        (v.kind, v.test) for v in check_integrity({PATH: dedent(before)}, {PATH: dedent(after)})
    ]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [pytest.param(b, a, e, id=name) for name, b, a, e in VIOLATIONS],
)
def test_violation(before: str, after: str, expected: list[tuple[str, str | None]]) -> None:
    assert found(before, after) == expected


@pytest.mark.parametrize(("before", "after"), [pytest.param(b, a, id=name) for name, b, a in FINE])
def test_not_a_violation(before: str, after: str) -> None:
    assert found(before, after) == []


@pytest.mark.parametrize("suffix", [".js", ".jsx", ".mjs", ".cjs", ".tsx", ".mts"])
def test_every_js_and_ts_suffix_is_read(suffix: str) -> None:
    path = f"src/cart.test{suffix}"
    violations = check_integrity({path: BASE}, {path: base("toBe(3)", "toBeTruthy()")})
    assert [v.kind for v in violations] == ["assertion_loosened"]
