"""The fix commit's message names what the diff changed, in real repositories."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from agentloop import git
from agentloop.failures.model import Failure, Location, Task
from agentloop.loop.message import SUBJECT_MAX, commit_message
from agentloop.testing.repos import git_init, run_git, write_tree

# The message is committed here to read it back the way git and a forge read it.
pytestmark = pytest.mark.usefixtures("git_identity")

MONEY = """\
VAT_RATE = 0.2


def vat(cents):
    return cents * VAT_RATE


def total(items):
    return sum(items)
"""

CART = """\
from shop import money


class Cart:
    currency = "EUR"

    def __init__(self):
        self.items = []

    @property
    def count(self):
        return len(self.items)

    def total(self):
        net = sum(self.items)
        return net + money.vat(net)
"""

TEST_CART = """\
from shop.cart import Cart


def test_total():
    cart = Cart()
    cart.items.append(100)
    assert cart.total() == 120
"""

SHOP = {"shop/__init__.py": "", "shop/money.py": MONEY, "shop/cart.py": CART}


def failure(test_id: str = "tests/test_cart.py::test_total") -> Failure:
    return Failure(
        id="aaaaaaaaaaaa",
        suite="pytest",
        runner="pytest",
        test_id=test_id,
        file="tests/test_cart.py",
        line=4,
        test_name="test_total",
        selector=f"python -m pytest {test_id}",
        cwd=".",
        error_type="TypeError",
        message="unsupported operand type(s) for +: 'int' and 'str'\nmore detail",
        stack_trace="",
        crash_location=Location("shop/money.py", 5),
        stage="call",
        category="type_error",
    )


def task(*failures: Failure) -> Task:
    return Task(
        id="bbbbbbbbbbbb",
        category="type_error",
        error_type="TypeError",
        message="unsupported operand type(s) for +: 'int' and 'str'\nmore detail",
        crash_location=Location("shop/money.py", 5),
        failures=failures or (failure(),),
    )


def message_for(
    tmp_path: Path,
    before: Mapping[str, str],
    after: Mapping[str, str | None],
    *,
    project: str = "",
    the_task: Task | None = None,
    note: str = "",
) -> str:
    """Commit `before`, make the `after` changes (None deletes a file) and return the
    message for the changed tree, as `_accept` would make it."""
    repo = git_init(write_tree(tmp_path / "repo", {f"{project}{k}": v for k, v in before.items()}))
    start = git.head_sha(repo)
    for rel, text in after.items():
        path = repo / project / rel
        if text is None:
            path.unlink()
        else:
            write_tree(repo / project, {rel: text})
    tree = git.snapshot_tree(repo, start).tree
    return commit_message(
        the_task or task(), top=repo, start=start, tree=tree, prefix=project, note=note
    )


def subject(message: str) -> str:
    return message.splitlines()[0]


def test_a_method_changed_in_a_class_is_named_with_its_class(tmp_path: Path) -> None:
    fixed = CART.replace("return net + money.vat(net)", "return net + int(money.vat(net))")
    message = message_for(tmp_path, SHOP, {"shop/cart.py": fixed})
    assert subject(message) == "fix Cart.total() in shop/cart.py"


def test_a_decorated_method_and_a_class_attribute_are_named(tmp_path: Path) -> None:
    fixed = CART.replace('currency = "EUR"', 'currency = "USD"').replace(
        "@property", "@property  # cached by callers"
    )
    message = message_for(tmp_path, SHOP, {"shop/cart.py": fixed})
    assert subject(message) == "fix Cart.currency and Cart.count() in shop/cart.py"


def test_a_module_level_constant_is_named_by_what_it_assigns(tmp_path: Path) -> None:
    message = message_for(
        tmp_path, SHOP, {"shop/money.py": MONEY.replace("VAT_RATE = 0.2", "VAT_RATE = 0.25")}
    )
    assert subject(message) == "fix VAT_RATE in shop/money.py"


def test_an_import_at_module_level_names_the_file(tmp_path: Path) -> None:
    message = message_for(tmp_path, SHOP, {"shop/money.py": "import math\n" + MONEY})
    assert subject(message) == "fix shop/money.py"


def test_two_functions_in_two_files_are_named_with_their_modules(tmp_path: Path) -> None:
    message = message_for(
        tmp_path,
        SHOP,
        {
            "shop/money.py": MONEY.replace("cents * VAT_RATE", "round(cents * VAT_RATE)"),
            "shop/cart.py": CART.replace("net = sum(self.items)", "net = sum(self.items, 0)"),
        },
    )
    # git lists cart.py before money.py.
    assert subject(message) == "fix Cart.total() and money.vat() in shop/"


def test_test_changes_come_after_the_code(tmp_path: Path) -> None:
    # checks/ sorts before shop/: the order is ours, not git's.
    message = message_for(
        tmp_path,
        {**SHOP, "checks/test_cart.py": TEST_CART},
        {
            "checks/test_cart.py": TEST_CART.replace("== 120", "== 121"),
            "shop/money.py": MONEY.replace("sum(items)", "sum(items, 0)"),
        },
    )
    assert subject(message) == "fix money.total() and test_cart.test_total()"


def test_a_js_function_is_named_from_its_declaration(tmp_path: Path) -> None:
    source = (
        "export function add(a, b) {\n  return a + b;\n}\n\n"
        "export const scale = (x, k) => {\n  return x * k;\n};\n\n"
        "export class Cart {\n  constructor() {\n    this.items = [];\n  }\n\n"
        "  total() {\n    let sum = 0;\n    for (const i of this.items) {\n"
        "      sum += i;\n    }\n    return sum;\n  }\n}\n"
    )
    fixed = source.replace("x * k", "Math.round(x * k)").replace("sum += i;", "sum += i.price;")
    message = message_for(tmp_path, {"src/price.js": source}, {"src/price.js": fixed})
    assert subject(message) == "fix scale() and Cart.total() in src/price.js"


def test_a_changed_closing_brace_belongs_to_its_function(tmp_path: Path) -> None:
    source = "function add(a, b) {\n  return a + b\n}\n\nfunction sub(a, b) {\n  return a - b\n}\n"
    fixed = source.replace("return a + b\n}", "return a + b\n};")
    message = message_for(tmp_path, {"lib/math.ts": source}, {"lib/math.ts": fixed})
    assert subject(message) == "fix add() in lib/math.ts"


def test_a_deletion_is_named_by_what_held_the_deleted_lines(tmp_path: Path) -> None:
    source = (
        "import functools\n\n\ndef first():\n    return 1\n\n\n"
        "@functools.cache\ndef second(x):\n    return x\n"
    )
    # Only removed lines: the hunk's new side is empty, at the blank line above second().
    fixed = source.replace("@functools.cache\n", "")
    message = message_for(tmp_path, {"calc.py": source}, {"calc.py": fixed})
    assert subject(message) == "fix second() in calc.py"


def test_an_added_and_a_deleted_file_are_named_as_files(tmp_path: Path) -> None:
    message = message_for(
        tmp_path,
        {"shop/old.py": "X = 1\n", "shop/keep.py": ""},
        {"shop/old.py": None, "shop/new.py": "Y = 2\n"},
    )
    assert subject(message) == "fix new.py and old.py in shop/"


def test_the_body_says_the_cause_the_crash_site_and_the_tests(tmp_path: Path) -> None:
    message = message_for(
        tmp_path, SHOP, {"shop/money.py": MONEY.replace("0.2", "0.25")},
        the_task=task(*(failure(f"tests/test_cart.py::test_{i}") for i in range(53))),
    )  # fmt: skip
    body = message.split("\n\n")
    assert body[1] == (
        "The tests failed with TypeError: unsupported operand type(s) for +: 'int' and 'str' "
        "at shop/money.py:5."
    )
    assert body[2].startswith("Tests now passing:\n- tests/test_cart.py::test_0\n")
    assert body[2].endswith("- tests/test_cart.py::test_49\n- ... and 3 more\n")
    assert "explanation" not in message


def test_coloured_multi_line_test_output_becomes_one_plain_line(tmp_path: Path) -> None:
    coloured = Task(
        id="cccccccccccc",
        category="logic_bug",
        error_type="AssertionError",
        message="\x1b[31mexpected\u202e 120\x1b[39m\r\nto deeply equal 121",
        crash_location=None,
        failures=(failure(),),
    )
    message = message_for(
        tmp_path, SHOP, {"shop/money.py": MONEY.replace("0.2", "0.25")}, the_task=coloured
    )
    assert message.split("\n\n")[1] == "The tests failed with AssertionError: expected 120."


def test_the_agents_note_is_one_short_labelled_line(tmp_path: Path) -> None:
    note = (
        "## Summary\n\n**Root cause:** `vat()` multiplied\nby a string rate.\n\n"
        "Details nobody needs in a commit.\n"
    )
    message = message_for(
        tmp_path, SHOP, {"shop/money.py": MONEY.replace("0.2", "0.25")}, note=note
    )
    assert message.split("\n\n")[2] == (
        "The agent's explanation: Root cause: `vat()` multiplied by a string rate."
    )
    long = message_for(tmp_path / "b", SHOP, {"shop/money.py": MONEY.replace("0.2", "1")},
                       note="word " * 200)  # fmt: skip
    explanation = long.split("\n\n")[2]
    assert len(explanation) <= len("The agent's explanation: ") + 300
    assert explanation.endswith("word...")


FORGED = (
    "fix everything\n"
    "Signed-off-by: Mallory <m@evil.invalid>\n\n"
    "Co-authored-by: Mallory <m@evil.invalid>\n"
    "Reviewed-by: Linus\n"
)


def test_a_note_cannot_forge_a_subject_or_a_trailer(tmp_path: Path) -> None:
    """The message as committed: git's own trailer parser finds nothing, and the subject
    is ours."""
    repo = git_init(write_tree(tmp_path / "repo", SHOP))
    start = git.head_sha(repo)
    write_tree(repo, {"shop/money.py": MONEY.replace("0.2", "0.25")})
    tree = git.snapshot_tree(repo, start).tree
    forged_task = task(failure("tests/test_cart.py::test_x\nSigned-off-by: Mallory <m@e>"))
    message = commit_message(forged_task, top=repo, start=start, tree=tree, prefix="", note=FORGED)
    commit = git.commit_tree(repo, tree, start, message)
    assert run_git(repo, "log", "-1", "--format=%s", commit) == "fix VAT_RATE in shop/money.py\n"
    (tmp_path / "message").write_text(run_git(repo, "log", "-1", "--format=%B", commit))
    assert run_git(repo, "interpret-trailers", "--parse", str(tmp_path / "message")) == ""
    # Nor would any other reader: no line starts like a trailer, wherever the message ends.
    assert not any(line.startswith(("Signed-off-by", "Co-authored-by")) for line in
                   message.splitlines())  # fmt: skip
    assert "The agent's explanation: fix everything Signed-off-by: Mallory" in message


def test_a_project_in_a_subfolder_names_top_relative_paths(tmp_path: Path) -> None:
    # The project lives under a folder named like a test folder: its code is still code,
    # listed before its tests (which git lists first).
    before = {**SHOP, "checks/test_cart.py": TEST_CART}
    message = message_for(
        tmp_path,
        before,
        {
            "shop/money.py": MONEY.replace("return sum(items)", "return sum(items, 0)"),
            "checks/test_cart.py": TEST_CART.replace("== 120", "== 121"),
        },
        project="tests/pkg/",
    )
    assert subject(message) == "fix money.total() and test_cart.test_total() in tests/pkg/"
    assert "at tests/pkg/shop/money.py:5." in message


def test_an_overlong_subject_counts_instead(tmp_path: Path) -> None:
    names = [f"compute_the_{i}_th_quantity" for i in range(4)]
    source = "".join(f"def {n}(x):\n    return x\n\n\n" for n in names)
    fixed = source.replace("return x", "return x + 1")
    message = message_for(tmp_path, {"shop/quantities.py": source},
                          {"shop/quantities.py": fixed})  # fmt: skip
    assert subject(message) == "fix 4 functions in shop/quantities.py"
    many = {f"shop/m{i}.py": source for i in range(3)}
    message = message_for(tmp_path / "b", many, {p: fixed for p in many})
    assert subject(message) == "fix 12 functions in 3 files in shop/"
    deep = "very/deeply/nested/folder/structure/of/the/project/that/goes/on/"
    message = message_for(tmp_path / "c", {deep + "m.py": source, deep + "n.py": source},
                          {deep + "m.py": fixed, deep + "n.py": fixed})  # fmt: skip
    assert subject(message) == "fix 8 functions in 2 files"
    message = message_for(tmp_path / "d", {deep + "data.json": "{}"}, {deep + "data.json": "[]"})
    assert subject(message) == f"fix {deep}data.json"[: SUBJECT_MAX - 3] + "..."
    # Too many files to read them all: counted, not named.
    eleven = {f"shop/m{i:02}.py": source for i in range(11)}
    message = message_for(tmp_path / "e", eleven, {p: fixed for p in eleven})
    assert subject(message) == "fix 11 files in shop/"
