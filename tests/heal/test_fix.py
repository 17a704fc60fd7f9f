"""FIX over a real git repository holding the fixture shop (the code that raised the real
sentry-sdk events), real pytest runs, and the in-process ScriptedAgent making the change
the model would."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentloop.agents.base import SessionLimits
from agentloop.config import Config
from agentloop.heal.fix import Fixed, FixSettings, NotFixed, Outcome, commit_message, fix
from agentloop.heal.reproduce import Reproduction, Run
from agentloop.heal.triage import Group
from agentloop.loop.runner import LoopSettings
from agentloop.rails.paths import ForbiddenPaths
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.sentry_events import capture, post

from .conftest import CART, GroupOf

Session = Callable[[Path], str | None]

TEST_FILE = "tests/test_sentry_shop_1.py"
CART_TEST = """\
from shop import views


def test_checkout_of_an_item_without_qty():
    views.checkout({"items": [{"price": 3}]})
"""
PAY_TEST = """\
from shop import views


def test_paying_in_no_instalments():
    views.pay({"amount": 1000, "instalments": 0})
"""
SETTINGS = FixSettings(loop=LoopSettings(max_attempts=1, limits=SessionLimits(max_turns=5)))
EXPLANATION = (
    "The cart's total read item['qty'] for every item, and an item posted without a "
    "quantity raised KeyError. A missing quantity now counts as one.\n\nDetails: none."
)


def git_out(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def edit(path: str, old: str, new: str, said: str = "") -> Session:
    def session(cwd: Path) -> str:
        target = cwd / path
        text = target.read_text()
        assert old in text, (path, old)
        target.write_text(text.replace(old, new))
        return said

    return session


def both(*sessions: Session) -> Session:
    def session(cwd: Path) -> str | None:
        said = None
        for each in sessions:
            said = each(cwd) or said
        return said

    return session


def write(path: str, text: str) -> Session:
    def session(cwd: Path) -> None:
        (cwd / path).parent.mkdir(parents=True, exist_ok=True)
        (cwd / path).write_text(text)

    return session


FIX_CART = edit("shop/cart.py", 'item["qty"]', 'item.get("qty", 1)', EXPLANATION)
# Passes the reproduction test, but drops the quantity: tests/test_views.py fails.
BREAK_TOTALS = edit("shop/cart.py", 'item["price"] * item["qty"]', 'item["price"]')


def reproduction_of(
    project: Path, group: Group, source: str, *, crash: str, name: str
) -> Reproduction:
    """What REPRODUCE hands FIX (its own tests prove how it is made): the test's three
    runs on the base commit as evidence."""
    test_id = f"{TEST_FILE}::{name}"
    runs = tuple(
        Run(n, "reproduced", test_id, group.signature.exception, crash, (group.signature.function,))
        for n in (1, 2, 3)
    )
    head = git_out(project, "rev-parse", "HEAD").strip()
    return Reproduction(
        group, crash.split(":", maxsplit=1)[0], TEST_FILE, test_id, source, head, runs, 0.03
    )


@pytest.fixture
def cart_crash(project: Path, checkout_group: Group) -> Reproduction:
    return reproduction_of(project, checkout_group, CART_TEST, crash="shop/cart.py:8",
                           name="test_checkout_of_an_item_without_qty")  # fmt: skip


@pytest.fixture
def pay_crash(project: Path, group_of: GroupOf) -> Reproduction:
    """ZeroDivisionError in shop/payments/gateway.py: sensitive code."""
    group = group_of(capture("pay", {"amount": 1000, "instalments": 0}, handled=False))
    return reproduction_of(project, group, PAY_TEST, crash="shop/payments/gateway.py:7",
                           name="test_paying_in_no_instalments")  # fmt: skip


def run_fix(
    project: Path,
    reproduction: Reproduction,
    *sessions: Session,
    settings: FixSettings = SETTINGS,
) -> tuple[Outcome, ScriptedAgent]:
    agent = ScriptedAgent(*sessions)
    outcome = fix(project, reproduction, agent=agent, config=Config(), settings=settings,
                  deadline=time.monotonic() + 600, environ={})  # fmt: skip
    # Whatever the outcome: no worktree of agentloop's is left, nor its own branch.
    assert git_out(project, "worktree", "list").count("\n") == 1
    assert "agentloop/" not in git_out(project, "branch", "--list")
    return outcome, agent


def not_fixed(outcome: Outcome, project: Path) -> NotFixed:
    assert isinstance(outcome, NotFixed), outcome
    assert "fix/sentry-" not in git_out(project, "branch", "--list")  # no branch is made
    return outcome


def extract(project: Path, commit: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "archive", commit], cwd=project, capture_output=True,
                             check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


# -- a fix ----------------------------------------------------------------------------------


def test_a_fix_that_makes_the_test_pass_is_one_commit_on_a_local_fix_branch(
    project: Path, cart_crash: Reproduction, tmp_path: Path
) -> None:
    before = [git_out(project, *a) for a in (["status", "--porcelain"], ["rev-parse", "HEAD"])]
    branches = git_out(project, "branch", "--list")

    outcome, agent = run_fix(project, cart_crash, FIX_CART)

    assert isinstance(outcome, Fixed), outcome
    issue = cart_crash.group.incidents[0].issue
    assert outcome.branch == f"fix/sentry-{issue.id}"
    base = before[1].strip()
    assert outcome.base_sha == base
    # One commit on the base, holding the test and the fix, and the branch points at it.
    assert git_out(project, "rev-list", f"{base}..{outcome.branch}").split() == [outcome.commit]
    assert git_out(project, "show", "--name-only", "--format=", outcome.commit).split() == [
        "shop/cart.py",
        TEST_FILE,
    ]
    assert outcome.files_changed == ("shop/cart.py", TEST_FILE)
    assert git_out(project, "show", f"{outcome.commit}:{TEST_FILE}") == CART_TEST
    message = git_out(project, "log", "-1", "--format=%B", outcome.commit)
    assert message == outcome.message + "\n"
    lines = message.splitlines()
    assert lines[0] == f"fix: [Sentry-{issue.short_id}] {issue.title}"
    assert lines[1] == ""
    # The agent's explanation, its first paragraph, wrapped.
    assert "A missing quantity now counts as one." in " ".join(message.split())
    assert "Details: none." not in message
    assert outcome.message.splitlines()[-2:] == [
        f"Sentry: {issue.permalink}",
        f"Fixes {issue.short_id}",
    ]
    assert outcome.summary.startswith("The cart's total read item['qty']")
    # The evidence: failed 3/3 before, passes after, no other test turned red.
    assert outcome.fail_before == cart_crash.runs
    assert outcome.pass_after.test_passed
    assert f"pytest::{cart_crash.test_id}" in outcome.pass_after.baseline_failing
    assert outcome.pass_after.now_passing == (f"pytest::{cart_crash.test_id}",)
    assert outcome.pass_after.newly_failing == ()
    assert (outcome.attempts, outcome.test_id) == (1, cart_crash.test_id)
    assert outcome.cost_usd == pytest.approx(0.01)
    # The session worked in agentloop's worktree, on the base with the test committed.
    assert agent.calls[0].cwd != project
    assert "test_checkout_of_an_item_without_qty" in agent.calls[0].prompt
    # The user's checkout is as it was; only the new branch is there, and nothing pushed.
    assert [git_out(project, *a) for a in (["status", "--porcelain"], ["rev-parse", "HEAD"])] == (
        before
    )
    assert set(git_out(project, "branch", "--list").split()) == {
        *branches.split(),
        outcome.branch,
    }
    assert not (project / TEST_FILE).exists()
    # And the test passes at the commit, in a checkout of its own.
    tree = extract(project, outcome.commit, tmp_path / "at-fix")
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST_FILE],
        cwd=tree, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout


def test_the_branch_of_an_issue_fixed_already_is_never_moved(
    project: Path, cart_crash: Reproduction
) -> None:
    branch = f"fix/sentry-{cart_crash.group.incidents[0].issue.id}"
    git_out(project, "branch", branch)
    head = git_out(project, "rev-parse", branch)

    outcome, agent = run_fix(project, cart_crash, FIX_CART)

    assert isinstance(outcome, NotFixed)
    assert outcome.kind == "branch_exists"
    assert agent.calls == []
    assert git_out(project, "rev-parse", branch) == head


# -- what it rejects --------------------------------------------------------------------------


def test_a_fix_that_breaks_another_test_is_rejected(
    project: Path, cart_crash: Reproduction
) -> None:
    outcome, _ = run_fix(project, cart_crash, BREAK_TOTALS)

    rejected = not_fixed(outcome, project)
    assert rejected.kind == "regressed"
    assert "tests/test_views.py::test_checkout_totals_the_items" in rejected.reason
    assert rejected.attempts == 1
    assert rejected.skipped().reason.startswith("not fixed: ")


REFUND_TEST = """\
import importlib


def test_a_refund_is_the_amount():
    # Imported by name: no import graph sees this test reach shop/orders.py.
    orders = importlib.import_module("shop.orders")
    assert orders.refund(5) == 5
"""


def test_a_fix_that_breaks_a_test_only_the_full_suites_run_is_dropped(
    project: Path, checkout_group: Group
) -> None:
    (project / "tests" / "test_refunds.py").write_text(REFUND_TEST)
    git_out(project, "add", "tests/test_refunds.py")
    git_out(project, "commit", "-qm", "a test the import graph cannot see")
    reproduction = reproduction_of(project, checkout_group, CART_TEST, crash="shop/cart.py:8",
                                   name="test_checkout_of_an_item_without_qty")  # fmt: skip
    session = both(FIX_CART, edit("shop/orders.py", "return amount", "return 0"))

    outcome, _ = run_fix(project, reproduction, session)

    rejected = not_fixed(outcome, project)
    assert rejected.kind == "regressed"
    assert rejected.reason == (
        "the fix broke tests that passed on the base: "
        "pytest::tests/test_refunds.py::test_a_refund_is_the_amount"
    )


def delete_test(cwd: Path) -> None:
    (cwd / TEST_FILE).unlink()


@pytest.mark.parametrize(
    "session",
    [
        both(FIX_CART, write(TEST_FILE, CART_TEST + "\n\ndef test_more():\n    pass\n")),
        both(FIX_CART, edit(TEST_FILE, "views.checkout(", "assert views.checkout(")),
        delete_test,
    ],
    ids=["added-to", "edited", "deleted"],
)
def test_a_fix_that_changes_the_reproduction_test_is_rejected(
    project: Path, cart_crash: Reproduction, session: Session
) -> None:
    outcome, _ = run_fix(project, cart_crash, session)

    rejected = not_fixed(outcome, project)
    assert rejected.kind == "unfixed"
    assert TEST_FILE in rejected.reason
    assert "forbidden" in rejected.reason


# -- sensitive code ---------------------------------------------------------------------------

FIX_PAY = edit("shop/payments/gateway.py", "// instalments", "// max(instalments, 1)")


def test_a_crash_in_payments_code_is_skipped_before_any_session(
    project: Path, pay_crash: Reproduction
) -> None:
    outcome, agent = run_fix(project, pay_crash, FIX_PAY)

    skipped = not_fixed(outcome, project)
    assert skipped.kind == "sensitive"
    assert skipped.reason == (
        "the crash is in shop/payments/gateway.py, sensitive code (**/payments/**): "
        "needs --allow-sensitive"
    )
    assert agent.calls == []


def test_with_allow_sensitive_a_payments_fix_lands(project: Path, pay_crash: Reproduction) -> None:
    settings = FixSettings(loop=SETTINGS.loop, allow_sensitive=True)
    outcome, agent = run_fix(project, pay_crash, FIX_PAY, settings=settings)

    assert isinstance(outcome, Fixed), outcome
    assert outcome.files_changed == ("shop/payments/gateway.py", TEST_FILE)
    # Allowed for this fix only: the rails it ran under still hold PROTECTED and its test.
    guard = agent.calls[0].guard
    assert guard is not None
    top = agent.calls[0].cwd
    assert guard("Edit", {"file_path": str(top / "shop/payments/gateway.py")}) is None
    assert guard("Edit", {"file_path": str(top / ".claude/settings.json")}) is not None
    assert guard("Edit", {"file_path": str(top / TEST_FILE)}) is not None


def test_a_fix_touching_auth_code_is_rejected_without_allow_sensitive(
    project: Path, cart_crash: Reproduction
) -> None:
    # The configured rails forget auth/: the sensitive globs are forbidden anyway.
    settings = FixSettings(loop=LoopSettings(max_attempts=1, forbidden=ForbiddenPaths(())))
    session = both(FIX_CART, write("shop/auth/session.py", "SKIP_CHECKS = True\n"))
    outcome, _ = run_fix(project, cart_crash, session, settings=settings)

    rejected = not_fixed(outcome, project)
    assert rejected.kind == "unfixed"
    assert "shop/auth/session.py" in rejected.reason
    assert "**/auth/**" in rejected.reason


# -- event text in the commit message -------------------------------------------------------

EMAIL, IP = "carol@example.org", "198.51.100.9"


def test_event_text_reaches_the_commit_message_as_one_scrubbed_line(
    project: Path, group_of: GroupOf
) -> None:
    event = copy.deepcopy(capture("checkout", CART, request=post("/checkout", CART)))
    crash = event["exception"]["values"][-1]
    crash["value"] = (
        f"'qty' for {EMAIL} from {IP}\n\nSigned-off-by: mallory\nFixes EVIL-1\x1b[2J"
        + " padding" * 30
    )
    group = group_of(event)
    title = group.incidents[0].issue.title
    assert "\n" in title  # Sentry's title carries the event's text as it came
    reproduction = reproduction_of(project, group, CART_TEST, crash="shop/cart.py:8",
                                   name="test_checkout_of_an_item_without_qty")  # fmt: skip

    # A path the agent made is no more trusted: git allows a line break in one.
    files = ["shop/cart.py", "shop/x\nFixes EVIL-2.py", TEST_FILE]
    message = commit_message(group, reproduction, summary="", files=files)

    subject, blank, *rest = message.splitlines()
    assert subject.startswith("fix: [Sentry-SHOP-1] KeyError: ")
    assert len(subject) <= 72
    assert blank == ""
    assert EMAIL not in message
    assert IP not in message
    assert "\x1b" not in message
    for line in rest:  # no line of the event's own: no forged trailer
        assert "mallory" not in line
        assert not line.startswith("Fixes EVIL")
    assert rest[-1] == "Fixes SHOP-1"


# -- time and money ---------------------------------------------------------------------------


def test_past_the_deadline_no_session_starts(project: Path, cart_crash: Reproduction) -> None:
    agent = ScriptedAgent(FIX_CART)
    # REPRODUCE used up the time they share.
    outcome = fix(project, cart_crash, agent=agent, config=Config(), settings=SETTINGS,
                  deadline=100.0, clock=lambda: 100.5, environ={})  # fmt: skip

    assert isinstance(outcome, NotFixed)
    assert (outcome.kind, outcome.reason) == ("out_of_time", "out of time before the fix")
    assert agent.calls == []


def test_the_session_gets_what_is_left_of_the_deadline(
    project: Path, cart_crash: Reproduction
) -> None:
    agent = ScriptedAgent(lambda cwd: None)  # changes nothing: no test runs after it
    fix(project, cart_crash, agent=agent, config=Config(), settings=SETTINGS,
        deadline=time.monotonic() + 90, environ={})  # fmt: skip

    timeout = agent.calls[0].limits.timeout_s
    assert timeout is not None
    assert 60 < timeout <= 90


def test_a_budget_too_small_for_a_session_fixes_nothing(
    project: Path, cart_crash: Reproduction
) -> None:
    settings = FixSettings(loop=LoopSettings(max_attempts=1, max_budget_usd=0.005))
    outcome, agent = run_fix(project, cart_crash, FIX_CART, settings=settings)

    assert not_fixed(outcome, project).kind == "out_of_budget"
    assert agent.calls == []
