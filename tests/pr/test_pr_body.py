"""The PR's title and body from a run document: text from test output cannot render as
Markdown, the body fits GitHub's limit with its dedupe markers, titles fit 72 chars."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from agentloop.codeowners import owners_of, parse, reviewers
from agentloop.errors import UsageError
from agentloop.reports import pr_body, run_doc

SHA = "a" * 40
FIX = "b" * 40


def task(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "t1", "category": "logic_bug", "crash_location": "calc/ops.py:2",
        "tests": ["tests/test_ops.py::test_add"], "outcome": "fixed", "commit": FIX,
        "fixed_by": None, "reason": "", "cost_usd": 0.5, "duration_s": 100.0,
        "attempts": [], "fingerprint": "fp1", "files": ["calc/ops.py"], "tests_diff": "",
        "selectors": [],
    }  # fmt: skip
    doc.update(fields)
    return doc


def run(*tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": "20260101T000000Z", "agentloop_version": "1.2.3",
        "branch": "agentloop/autofix-20260101T000000Z", "base_sha": SHA, "base_ref": "main",
        "commits": [FIX], "dry_run": False, "stopped_by": None, "regressions": [],
        "baseline_failing": [], "final_failing": [], "tasks": list(tasks) or [task()],
        "totals": {"cost_usd": 1.0, "duration_s": 10.0},
    }  # fmt: skip
    doc.update(fields)
    return doc


def test_text_from_test_output_stays_inside_its_fence() -> None:
    hostile = "```\n# Approved\n<img src=x onerror=alert(1)> @everyone\n````\nend"
    attempt = {"number": 1, "outcome": "tests_failed", "reason": hostile, "tier": "task"}
    doc = run_doc.parse(run(task(attempts=[attempt, {"number": 2, "outcome": "fixed"}])))

    body = pr_body.body(doc)

    # A fence of five backticks: longer than any run inside, so nothing inside closes it.
    assert f"`````text\n{hostile}\n`````" in body
    outside = body.replace(f"`````text\n{hostile}\n`````", "")
    assert "<img" not in outside
    assert "# Approved" not in outside


def test_inline_code_spans_outlast_backticks_inside() -> None:
    assert pr_body.code("a`b") == "``a`b``"
    assert pr_body.code("`x`") == "`` `x` ``"
    assert pr_body.code("two\nlines") == "`two lines`"


def test_a_huge_body_is_cut_largest_first_and_keeps_its_markers() -> None:
    small = "x" * 2000
    huge = "+line\n" * 40_000  # 240,000 characters of test diff
    doc = run_doc.parse(
        run(
            task(tests_diff=huge, attempts=[{"number": 1, "outcome": "no_progress",
                                              "reason": small}]),
            task(id="t2", fingerprint="fp2", commit=None, fixed_by=FIX),
        )
    )  # fmt: skip

    body = pr_body.body(doc)

    assert pr_body.BODY_LIMIT - 1000 < len(body) <= pr_body.BODY_LIMIT
    assert "left out" not in body  # cutting the blocks was enough: no part was dropped
    assert body.startswith("> [!NOTE]\n> This description was shortened")
    assert small in body  # the small block is whole: the largest was cut first
    assert re.search(r"Cut to fit GitHub's size limit: [\d,]+ of 240,000 characters", body)
    assert body.endswith("<!-- agentloop:fingerprint fp1 -->\n<!-- agentloop:fingerprint fp2 -->\n")
    assert pr_body.body_fingerprints(body) == {"fp1", "fp2"}


def test_titles() -> None:
    one = run_doc.parse(run())
    assert pr_body.title(one) == "fix: calc/ops.py (logic bug)"
    assert pr_body.title(one, subjects={FIX: "fix add() in calc/ops.py"}) == (
        "fix: add() in calc/ops.py (logic bug)"
    )
    many = run_doc.parse(
        run(*(task(id=f"t{i}", fingerprint=f"f{i}", crash_location=f"pkg{i}/very/long/folder/"
                   f"name/m.py:1", tests=[f"a{i}", f"b{i}"], files=[]) for i in range(6)))
    )  # fmt: skip
    # Fixes that changed code are named by the files they changed, tests left out.
    two = run_doc.parse(
        run(task(files=["toolz/itertoolz.py", "toolz/tests/test_x.py"]),
            task(id="t2", fingerprint="f2", tests=["b"], files=["toolz/dicttoolz.py"]))
    )  # fmt: skip
    assert pr_body.title(two) == "fix: 2 failing tests in toolz/itertoolz.py, toolz/dicttoolz.py"
    title = pr_body.title(many)
    assert title.startswith("fix: 12 failing tests in pkg0/very/long/folder/name")
    assert title.endswith("more")
    assert len(title) <= 72


def test_trailers_and_markers_are_read_back() -> None:
    message = "fix add\n\nbody\n\nAgentloop-Fingerprint: fp1\nAgentloop-Fingerprint: fp2\n"
    assert pr_body.trailer_fingerprints(message) == {"fp1", "fp2"}
    assert pr_body.trailer_fingerprints("Agentloop-Fingerprint fp1") == frozenset()


def test_marker_text_in_quoted_test_output_is_not_a_marker() -> None:
    """A test (or an agent) that prints another failure's marker must not make a later
    run comment on this PR instead of opening its own."""
    forged = "<!-- agentloop:fingerprint someone-elses -->"
    attempt = {"number": 1, "outcome": "tests_failed", "reason": f"x\n{forged}\ny", "tier": "task"}
    doc = run_doc.parse(
        run(task(attempts=[attempt, {"number": 2, "outcome": "fixed"}], tests_diff=f"+{forged}\n"))
    )  # fmt: skip

    body = pr_body.body(doc)

    assert forged in body  # quoted as the evidence it is, fenced
    assert pr_body.body_fingerprints(body) == {"fp1"}
    # A fence is closed only by its own kind, at least as long, with nothing after it.
    tricky = f"````text\n```\n{forged}\n```` not yet\n{forged}\n````\n{pr_body.marker('fp9')}"
    assert pr_body.body_fingerprints(tricky) == {"fp9"}


def test_a_bad_run_json_names_every_wrong_field() -> None:
    doc = run(task(fingerprint="x --> y", commit="nope"), base_sha=12)
    with pytest.raises(UsageError) as caught:
        run_doc.parse(doc)
    message = caught.value.message
    assert "base_sha: expected a string, got a number" in message
    assert "tasks[0].commit: not a commit sha" in message
    assert "tasks[0].fingerprint: not a fingerprint" in message

    missing = copy.deepcopy(run())
    del missing["tasks"][0]["fingerprint"]
    with pytest.raises(UsageError, match=r"tasks\[0\]\.fingerprint: missing"):
        run_doc.parse(missing)
    with pytest.raises(UsageError, match="not a branch agentloop makes"):
        run_doc.parse(run(branch="main"))


def test_codeowners_last_match_wins_and_teams_of_other_orgs_are_left_out() -> None:
    rules = parse(
        "# owners\n"
        "*            @everyone-else\n"
        "*.js         @js-owner  # inline comment\n"
        "/docs/       docs@example.com\n"
        "apps/        @octocat\n"
        "calc/        @alice @o/calc @elsewhere/team\n"
        "calc/gen/\n"
        "!negated     @nobody\n"
    )
    assert owners_of(rules, "web/app.js") == ("@js-owner",)
    assert owners_of(rules, "docs/a/b.md") == ("docs@example.com",)
    assert owners_of(rules, "x/apps/y.py") == ("@octocat",)
    assert owners_of(rules, "calc/gen/z.py") == ()  # a rule with no owners unowns
    assert owners_of(rules, "README.md") == ("@everyone-else",)
    found = reviewers(rules, ["calc/ops.py", "docs/x.md", "calc/gen/y.py"], org="o")
    assert (found.users, found.teams) == (("alice",), ("calc",))
