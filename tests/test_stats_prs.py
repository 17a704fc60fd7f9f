"""What humans did with the auto-fix pull requests: read back from a fake GitHub (real git
underneath), recorded in the ledger, shown beside the fix rate by `agentloop stats`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop import history, pulls
from agentloop.history import History, PullOutcome, compute

UTC = timezone.utc
DATA = Path(__file__).parent / "data" / "ledgers"
# tests/data/ledgers/history-v2.db, written by agentloop's History at schema version 2
# (before pull requests were recorded); make_ledger.py there says how.
V2_RUN_1, V2_RUN_2 = "20250106T100000Z", "20250113T100000Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---------------------------------------------------------------- reading a body, a commit


def test_links_from_the_body_and_the_branch() -> None:
    body = (
        "## Fixes\n<!-- agentloop:fingerprint aaaaaaaaaaa1 -->\n- logic bug in `cart.total`\n"
        "<!--agentloop:fingerprint   bbbbbbbbbbb2-->\n"
        "<!-- agentloop:fingerprint aaaaaaaaaaa1 -->\n"  # said twice: once is enough
        "Asked to run the tests again? run `pytest -x`.\n"
        "---\nOpened by agentloop 0.4 from run `20250106T100000Z`.\n"
    )
    assert pulls.links(body, "agentloop/autofix-20990101T000000Z") == (
        ("aaaaaaaaaaa1", "bbbbbbbbbbb2"),
        "20250106T100000Z",  # the footer wins over the branch
    )
    # No footer: the branch names the run (also a job's branch of it).
    assert pulls.links("", "agentloop/autofix-20250113T100000Z") == ((), "20250113T100000Z")
    assert pulls.links(None, "agentloop/autofix-r7.job2") == ((), "r7")
    assert pulls.links("Made by agentloop run 20250113T100000Z-2, attempt 1.", "x") == (
        (),
        "20250113T100000Z-2",
    )
    # A human's branch and a body that names no run: nothing to link.
    assert pulls.links("please run the suite", "fix/typo") == ((), None)


@dataclass(frozen=True)
class C:
    """A commit as the GitHub client gives it (the fields pulls reads)."""

    sha: str
    message: str
    author_login: str | None = None


AGENTLOOP_FIX = "Fix cart.total rounding\n\nAgentloop-Fingerprint: aaaaaaaaaaa1\n"
AGENTLOOP_SQUASH = "fix: 2 failures\n\nMade by agentloop run 20250106T100000Z, attempt 1.\n"


def test_whose_commits_are_a_humans() -> None:
    commits = [
        C("1" * 40, AGENTLOOP_FIX, "alice"),  # pushed under alice's account: still agentloop's
        C("2" * 40, AGENTLOOP_SQUASH, None),
        C("3" * 40, "Bump lodash", "dependabot[bot]"),
        C("4" * 40, "Merge branch 'main' into agentloop/autofix-x", "bob"),
        C("5" * 40, "Merge remote-tracking branch 'origin/main' into HEAD", "bob"),
        C("6" * 40, "Use Decimal instead", "carol"),
        C("7" * 40, "Merge branch 'develop' into agentloop/autofix-x", "bob"),  # not the base
        C("8" * 40, "tweak", None),  # an e-mail GitHub links to no account
    ]
    human = pulls.human_commits(commits, base_ref="main")
    assert [c.sha[0] for c in human] == ["6", "7", "8"]
    assert not pulls.is_bot("bot")  # only GitHub Apps' `[bot]` accounts are bots


def test_which_commit_reverts() -> None:
    merge, own = "a" * 40, "b" * 40
    later = [
        C("c" * 40, f"Revert something else\n\nThis reverts commit {'d' * 40}."),
        C("e" * 40, f'Revert "fix: cart"\n\nThis reverts commit {merge[:10]}.'),
        C("f" * 40, f"This reverts commit {own}."),
    ]
    assert pulls.find_revert([own, merge], later) == "e" * 40
    assert pulls.find_revert([own], later) == "f" * 40
    # The pull request's own commit reverting another of its commits is no revert of it.
    assert pulls.find_revert([own, "f" * 40], [later[2]]) is None
    assert pulls.find_revert(["0" * 40], later) is None


# ---------------------------------------------------------------- the ledger


def outcome(number: int, state: history.PullState = "merged", **given: Any) -> PullOutcome:
    created = at("2025-01-07T09:00:00")
    base = PullOutcome(
        repo="acme/shop",
        number=number,
        url=f"https://github.com/acme/shop/pull/{number}",
        title=f"fix: #{number}",
        state=state,
        created_at=created,
        merged_at=at("2025-01-07T15:00:00") if state == "merged" else None,
        closed_at=None if state == "open" else at("2025-01-07T15:00:00"),
        run_id=None,
        fingerprints=(),
        commits=(f"{number:040x}",),
        merge_commit_sha=f"{number + 1000:040x}" if state == "merged" else None,
        human_commits=0,
        human_authors=(),
        reverted_by=None,
    )
    return replace(base, **given)


def v2_ledger(tmp_path: Path) -> Path:
    path = tmp_path / "repo" / ".agentloop" / "history.db"
    path.parent.mkdir(parents=True)
    shutil.copyfile(DATA / "history-v2.db", path)
    return path


def test_a_version_2_ledger_gains_the_pull_requests(tmp_path: Path) -> None:
    path = v2_ledger(tmp_path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
    raw.close()
    with History.open(path, clock=lambda: at("2025-02-01T00:00:00")) as h:
        before = h.ledger()
        assert len(before.tasks) == 4
        assert before.pulls == ()
        recorded = h.record_pulls(
            [
                outcome(1, fingerprints=("aaaaaaaaaaa1", "bbbbbbbbbbb2")),
                outcome(2, "closed", fingerprints=("ccccccccccc3", "0123456789ab")),
                outcome(3, "open", run_id=V2_RUN_2),  # no markers: the run's fixed tasks
                outcome(4, "closed"),  # links to nothing in this ledger
            ]
        )
    assert [r.categories for r in recorded] == [
        ("logic_bug", "type_error"),
        ("logic_bug", "unknown"),  # one fix the ledger has no task of
        ("missing_dependency",),
        ("unknown",),
    ]
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION == 3
    raw.close()
    with History.open(path) as h:
        after = h.ledger()
    assert (after.runs, after.tasks, after.attempts) == (before.runs, before.tasks, before.attempts)
    assert after.pulls == recorded
    assert after.pulls[0].checked_at == at("2025-02-01T00:00:00")


def test_recording_again_updates_and_never_duplicates(tmp_path: Path) -> None:
    path = v2_ledger(tmp_path)
    clock = [at("2025-02-01T00:00:00")]
    with History.open(path, clock=lambda: clock[0]) as h:
        h.record_pulls([outcome(1, "open"), outcome(2, "open")])
        clock[0] = at("2025-02-02T00:00:00")
        merged = outcome(1, human_commits=1, human_authors=("carol",), reverted_by="f" * 40)
        h.record_pulls([merged, outcome(2, "closed"), replace(outcome(1), repo="acme/other")])
        stored = h.pulls()
        assert [r.pull for r in h.pulls(repo="acme/shop")] == [merged, outcome(2, "closed")]
    assert [(r.pull.repo, r.pull.number, r.pull.state) for r in stored] == [
        ("acme/other", 1, "merged"),
        ("acme/shop", 1, "merged"),
        ("acme/shop", 2, "closed"),
    ]
    assert {r.checked_at for r in stored} == {at("2025-02-02T00:00:00")}
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM pull_requests").fetchone()[0] == 3
    raw.close()


def test_acceptance_by_category(tmp_path: Path) -> None:
    """By hand: logic_bug has #1 (merged, human-changed, 6 h), #2 (closed), #5 (merged then
    reverted, 2 h), #6 (open); type_error has #1 only; unknown has #7 (merged, 1 h)."""
    path = v2_ledger(tmp_path)
    with History.open(path) as h:
        h.record_pulls(
            [
                outcome(1, fingerprints=("aaaaaaaaaaa1", "bbbbbbbbbbb2"), human_commits=2,
                        human_authors=("carol",)),
                outcome(2, "closed", fingerprints=("ccccccccccc3",)),
                outcome(5, fingerprints=("aaaaaaaaaaa1",), merged_at=at("2025-01-07T11:00:00"),
                        reverted_by="9" * 40),
                outcome(6, "open", fingerprints=("ccccccccccc3",)),
                outcome(7, merged_at=at("2025-01-07T10:00:00")),
            ]
        )  # fmt: skip
        result = compute(h.ledger())
    assert result.pulls_overall == history.PullMetrics(
        prs=5, open=1, merged=3, closed=1, reverted=1, accepted=2, changed_by_human=1,
        acceptance_rate=0.5, median_time_to_merge_s=7200.0,
    )  # fmt: skip
    by = dict(result.pulls_by_category)
    assert (
        [c for c, _ in result.by_category]
        == [c for c, _ in result.pulls_by_category]
        == [
            "logic_bug",
            "missing_dependency",
            "type_error",
            "unknown",
        ]
    )
    assert by["logic_bug"] == history.PullMetrics(
        prs=4, open=1, merged=2, closed=1, reverted=1, accepted=1, changed_by_human=1,
        acceptance_rate=1 / 3, median_time_to_merge_s=4 * 3600.0,
    )  # fmt: skip
    assert (by["type_error"].accepted, by["type_error"].acceptance_rate) == (1, 1.0)
    assert by["missing_dependency"].prs == 0
    assert by["missing_dependency"].acceptance_rate is None
    assert (by["unknown"].merged, by["unknown"].median_time_to_merge_s) == (1, 3600.0)
    # The fix rate of the same categories, from the same ledger.
    fix = dict(result.by_category)
    assert (fix["logic_bug"].fixed, fix["logic_bug"].tasks) == (1, 2)
    assert fix["unknown"].tasks == 0


# ---------------------------------------------------------------- agentloop stats


@pytest.fixture(scope="module")
def validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath("stats.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def valid(validator: Any, text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert problems == []
    return doc
