"""What humans did with the auto-fix pull requests: read back from a fake GitHub (real git
underneath), recorded in the ledger, shown beside the fix rate by `agentloop stats`."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop import errors, history, output, pulls
from agentloop.commands.stats import stats
from agentloop.history import History, PullOutcome, compute
from agentloop.reports import pr_body
from agentloop.reports.run_doc import RunDoc
from agentloop.testing.fake_github import FakeGitHub
from agentloop.testing.repos import agentloop_env, git_init, run_git, write_tree

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
    assert raw.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION == 6
    raw.close()
    with History.open(path) as h:
        after = h.ledger()
    assert (after.runs, after.tasks, after.attempts) == (before.runs, before.tasks, before.attempts)
    assert after.pulls == recorded
    assert after.pulls[0].checked_at == at("2025-02-01T00:00:00")


def test_a_ledger_of_a_real_run_gains_the_table(tmp_path: Path) -> None:
    """demo-run-v2.db: the ledger `make demo` left (a real `agentloop run` of examples/shop
    with the scripted model, schema 2): recording a pull request of its run keeps every
    row it had and links the fixes by fingerprint."""
    path = tmp_path / "history.db"
    shutil.copyfile(DATA / "demo-run-v2.db", path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
    tables = ("runs", "attempts", "tasks")
    before = {t: raw.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    fixed = [r[0] for r in raw.execute("SELECT task_id FROM tasks WHERE outcome = 'fixed'")]
    [run_id] = [r[0] for r in raw.execute("SELECT run_id FROM runs")]
    raw.close()
    with History.open(path) as h:
        [record] = h.record_pulls([outcome(9, run_id=run_id, fingerprints=tuple(fixed))])
        result = compute(h.ledger())
    assert record.categories == ("env_mismatch", "logic_bug", "stale_mock", "type_error")
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    after = {t: raw.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    raw.close()
    # Every row is kept; tasks gained a fingerprint column, empty for these older rows.
    assert {**after, "tasks": [row[:-1] for row in after["tasks"]]} == before
    assert {row[-1] for row in after["tasks"]} == {""}
    fix = dict(result.by_category)
    accepted = dict(result.pulls_by_category)
    assert (fix["logic_bug"].fixed, fix["logic_bug"].tasks) == (1, 2)
    assert (accepted["logic_bug"].accepted, accepted["collection_error"].prs) == (1, 0)


def test_a_pull_request_links_to_its_tasks_by_fingerprint_not_by_id(tmp_path: Path) -> None:
    """A task's id comes from its message and can change between runs; the fingerprint
    (its tests and their error types) is what the PR's markers name."""
    with History.open(tmp_path / "history.db") as h:
        h.start_run("20250101T000000Z", branch="agentloop/autofix-x", base_sha="a" * 40,
                    tasks_total=1)  # fmt: skip
        h.finish_task(
            history.TaskRecord(
                run_id="20250101T000000Z", task_id="1d1d1d1d1d1d", category="type_error",
                outcome="fixed", tests=1, verified=True, fingerprint="f0f0f0f0f0f0",
            )
        )  # fmt: skip
        by_fingerprint, by_id = h.record_pulls(
            [outcome(1, fingerprints=("f0f0f0f0f0f0",)), outcome(2, fingerprints=("1d1d1d1d1d1d",))]
        )
    assert by_fingerprint.categories == ("type_error",)
    assert by_id.categories == (history.UNKNOWN_CATEGORY,)


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


# ---------------------------------------------------------------- against a fake GitHub

REPO = "acme/shop"
# Looks like a real token so a leak would be recognisable anywhere.
TOKEN = "ghs_FAKEtoken0123456789abcdefABCDEF0123"
T0 = at("2025-01-20T09:00:00")
HOUR = timedelta(hours=1)
LATER_RUN = "20250120T090000Z"  # a run the ledger does not have (a CI job's, say)
COMMITS_OF_A_PULL = r"/repos/acme/shop/pulls/\d+/commits"


def body(run_id: str, fingerprints: Sequence[str]) -> str:
    """A body the way `agentloop pr` writes one: evidence, then its footer and markers."""
    run = RunDoc(
        run_id=run_id, agentloop_version="0.4.0", branch=f"agentloop/autofix-{run_id}",
        base_sha="1" * 40, base_ref="main", commits=(), dry_run=False, stopped_by=None,
        regressions=(), baseline_failing=None, final_failing=None, tasks=(), cost_usd=0.5,
        duration_s=300.0,
    )  # fmt: skip
    evidence = "agentloop fixed **1 of 1** failing task(s); run the tests with `pytest -x`.\n"
    return evidence + pr_body.footer(run) + "".join(f"{pr_body.marker(f)}\n" for f in fingerprints)


def fix_message(run_id: str, fingerprint: str) -> str:
    """A fix commit's message as the loop writes it (loop.message, loop.runner)."""
    return (
        f"Fix cart.total\n\nTests now passing:\n- tests/test_cart.py::test_total\n"
        f"\nMade by agentloop run {run_id}, attempt 1.\n\nAgentloop-Fingerprint: {fingerprint}\n"
    )


@dataclass
class World:
    """A project whose ledger agentloop of schema 2 wrote, and its repository on a fake
    GitHub with agentloop's pull requests in every state a human can leave them in."""

    project: Path
    fake: FakeGitHub
    reverts: dict[int, str]


def open_fix(
    fake: FakeGitHub,
    number_hint: str,
    run_id: str,
    fingerprints: Sequence[str],
    *,
    hours: float,
    base: str | None = None,
) -> int:
    branch = f"agentloop/autofix-{run_id}-{number_hint}"
    if base is not None:
        # The run started from `base`: its branch starts there too.
        run_git(fake.origin(REPO), "branch", branch, base)
    for fingerprint in fingerprints:
        fake.push_commit(branch, fix_message(run_id, fingerprint), author_login=None,
                         at=T0 + hours * HOUR, repo=REPO)  # fmt: skip
    return fake.open_pull(
        branch, title=f"fix: {number_hint}", body=body(run_id, fingerprints),
        author="github-actions[bot]", draft=True, labels=["auto-fix"],
        created_at=T0 + hours * HOUR, base=base, repo=REPO,
    )  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """By hand, with the ledger's tasks (history-v2.db):
    #1 run 1: logic_bug aaaaaaaaaaa1 + type_error bbbbbbbbbbb2; a bot's commit; merged 2 h
    #2 run 2: missing_dependency ddddddddddd4; carol's commit; merged 26 h
    #3 later run: eeeeeeeeeee5 (no task in the ledger: unknown); closed unmerged
    #4 later run: logic_bug aaaaaaaaaaa1; merged 1 h, then reverted on main
    #5 later run: type_error bbbbbbbbbbb2; open
    #6 later run: logic_bug aaaaaaaaaaa1; merged 4 h
    #7 a human's own pull request, not labelled auto-fix: not counted
    """
    project = git_init(write_tree(tmp_path / "shop", {"README.md": "shop\n"}))
    ledger = project / ".agentloop" / "history.db"
    ledger.parent.mkdir()
    shutil.copyfile(DATA / "history-v2.db", ledger)
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        first = open_fix(fake, "a", V2_RUN_1, ["aaaaaaaaaaa1", "bbbbbbbbbbb2"], hours=0)
        fake.add_pull_commit(first, author_login="dependabot[bot]", message="Bump lodash",
                             at=T0 + HOUR, repo=REPO)  # fmt: skip
        fake.merge_pull(first, by="alice", at=T0 + 2 * HOUR, repo=REPO)
        second = open_fix(fake, "b", V2_RUN_2, ["ddddddddddd4"], hours=0)
        fake.add_pull_commit(second, author_login="carol", message="Use Decimal instead",
                             at=T0 + 3 * HOUR, repo=REPO)  # fmt: skip
        fake.merge_pull(second, by="alice", at=T0 + 26 * HOUR, method="merge", repo=REPO)
        third = open_fix(fake, "c", LATER_RUN, ["eeeeeeeeeee5"], hours=1)
        fake.close_pull(third, at=T0 + 4 * HOUR, repo=REPO)
        fourth = open_fix(fake, "d", LATER_RUN, ["aaaaaaaaaaa1"], hours=2)
        merge = fake.merge_pull(fourth, by="bob", at=T0 + 3 * HOUR, repo=REPO)
        revert = fake.revert_commit(merge, author_login="bob", at=T0 + 30 * HOUR, repo=REPO)
        open_fix(fake, "e", LATER_RUN, ["bbbbbbbbbbb2"], hours=3)
        sixth = open_fix(fake, "f", LATER_RUN, ["aaaaaaaaaaa1"], hours=3)
        fake.merge_pull(sixth, by="alice", at=T0 + 7 * HOUR, repo=REPO)
        own = fake.open_pull("fix/typo", title="Fix a typo", author="carol", repo=REPO)
        fake.merge_pull(own, by="alice", repo=REPO)
        assert [first, second, third, fourth, sixth] == [1, 2, 3, 4, 6]
        yield World(project, fake, {4: revert})


def env_for(world: World, **more: str) -> dict[str, str]:
    return {"AGENTLOOP_GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": world.fake.api_url, **more}


def stats_json(
    capsys: pytest.CaptureFixture[str], validator: Any, world: World, **options: Any
) -> dict[str, Any]:
    code = errors.guarded(
        lambda: stats(repo=world.project, as_json=True, **options),
        report=lambda message, hint, code: output.error(message, hint, as_json=True, code=code),
    )
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert TOKEN not in captured.out + captured.err
    return valid(validator, captured.out)


def metrics_of(doc: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """Per category: (fix rate, acceptance rate), side by side as --json gives them."""
    return {
        c["category"]: (c["metrics"]["fix_rate"], c["pull_requests"]["acceptance_rate"])
        for c in doc["by_category"]
    }


def test_merged_closed_human_edited_and_reverted_pull_requests(
    world: World, capsys: pytest.CaptureFixture[str], validator: Any
) -> None:
    doc = stats_json(capsys, validator, world, prs=True, github_repo=REPO, environ=env_for(world))
    assert doc["notes"] == [f"read 6 pull requests labelled auto-fix of {REPO}"]
    assert doc["pull_requests"]["overall"] == {
        "prs": 6, "open": 1, "merged": 4, "closed": 1, "reverted": 1, "accepted": 3,
        "changed_by_human": 1, "acceptance_rate": 0.6, "median_time_to_merge_s": 3 * 3600.0,
    }  # fmt: skip
    pulls_by_number = {p["number"]: p for p in doc["pull_requests"]["pulls"]}
    assert sorted(pulls_by_number) == [1, 2, 3, 4, 5, 6]
    summary = {
        n: (p["state"], p["categories"], p["human_commits"], p["human_authors"],
            p["reverted_by"], p["time_to_merge_s"], p["run_id"])
        for n, p in pulls_by_number.items()
    }  # fmt: skip
    assert summary == {
        1: ("merged", ["logic_bug", "type_error"], 0, [], None, 7200.0, V2_RUN_1),
        2: ("merged", ["missing_dependency"], 1, ["carol"], None, 93600.0, V2_RUN_2),
        3: ("closed", ["unknown"], 0, [], None, None, LATER_RUN),
        4: ("merged", ["logic_bug"], 0, [], world.reverts[4], 3600.0, LATER_RUN),
        5: ("open", ["type_error"], 0, [], None, None, LATER_RUN),
        6: ("merged", ["logic_bug"], 0, [], None, 4 * 3600.0, LATER_RUN),
    }
    assert pulls_by_number[1]["fingerprints"] == ["aaaaaaaaaaa1", "bbbbbbbbbbb2"]
    assert pulls_by_number[1]["commits"] == 3  # two fixes and the bot's
    # The acceptance rate beside the fix rate, per category: fix rates from the ledger's
    # tasks (logic_bug 1 of 2 fixed), acceptance from the pull requests.
    assert metrics_of(doc) == {
        "logic_bug": (0.5, round(2 / 3, 4)),
        "missing_dependency": (1.0, 1.0),
        "type_error": (1.0, 1.0),
        "unknown": (None, 0.0),
    }
    logic = next(c for c in doc["by_category"] if c["category"] == "logic_bug")
    assert (logic["pull_requests"]["merged"], logic["pull_requests"]["reverted"]) == (3, 1)
    # The ledger written by the older agentloop gained the table and kept its runs.
    assert [r["run_id"] for r in doc["by_run"]] == [V2_RUN_1, V2_RUN_2]
    assert TOKEN.encode() not in (world.project / ".agentloop" / "history.db").read_bytes()


def test_reading_again_updates_without_duplicates(
    world: World, capsys: pytest.CaptureFixture[str], validator: Any
) -> None:
    # The repository from the environment; then from the flag, spelled otherwise.
    environ = env_for(world, GITHUB_REPOSITORY=REPO)
    stats_json(capsys, validator, world, prs=True, environ=environ)
    asked = len(world.fake.requests_to("GET", COMMITS_OF_A_PULL))
    assert asked == 6

    doc = stats_json(capsys, validator, world, prs=True, environ=environ, github_repo="Acme/Shop")
    # Only the open pull request's commits are asked again: the others cannot change.
    again = world.fake.requests_to("GET", COMMITS_OF_A_PULL)[asked:]
    assert [r.path for r in again] == ["/repos/acme/shop/pulls/5/commits"]
    assert len(doc["pull_requests"]["pulls"]) == 6

    # Humans act in between: #5 gets a human commit and is merged, #6 is reverted.
    world.fake.add_pull_commit(5, author_login="erin", at=T0 + 40 * HOUR, repo=REPO)
    world.fake.merge_pull(5, by="alice", at=T0 + 41 * HOUR, repo=REPO)
    sixth_merge = world.fake.pull(6, repo=REPO)["merge_commit_sha"]
    revert = world.fake.revert_commit(sixth_merge, at=T0 + 42 * HOUR, repo=REPO)
    doc = stats_json(capsys, validator, world, prs=True, environ=environ)
    pulls_by_number = {p["number"]: p for p in doc["pull_requests"]["pulls"]}
    assert len(pulls_by_number) == 6
    assert (pulls_by_number[5]["state"], pulls_by_number[5]["human_authors"]) == (
        "merged",
        ["erin"],
    )
    assert pulls_by_number[6]["reverted_by"] == revert
    assert pulls_by_number[4]["reverted_by"] == world.reverts[4]
    overall = doc["pull_requests"]["overall"]
    assert (overall["merged"], overall["reverted"], overall["changed_by_human"]) == (5, 2, 2)
    assert overall["acceptance_rate"] == 0.5
    raw = sqlite3.connect(world.project / ".agentloop" / "history.db")
    assert raw.execute("SELECT count(*), count(DISTINCT number) FROM pull_requests").fetchone() == (
        6,
        6,
    )
    raw.close()

    # Without --prs: what was recorded, and no request at all.
    before = len(world.fake.requests)
    offline = stats_json(capsys, validator, world, environ={})
    assert len(world.fake.requests) == before
    assert offline["pull_requests"]["overall"] == overall
    assert offline["notes"] == []


def test_github_refusing_is_exit_4_and_records_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.fake.fail("GET", r"/repos/acme/shop/pulls", 403, times=None)
    reported: list[tuple[str, str | None, int]] = []
    code = errors.guarded(
        lambda: stats(
            repo=world.project, as_json=False, prs=True, github_repo=REPO, environ=env_for(world)
        ),
        report=lambda message, hint, code: reported.append((message, hint, code)),
    )
    assert code == errors.SERVICE == 4
    [(message, hint, _)] = reported
    assert "GitHub refused to list pull requests in acme/shop (403" in message
    assert hint is not None
    assert "pull-requests: read" in hint
    assert TOKEN not in message + hint
    with History.open(world.project / ".agentloop" / "history.db") as h:
        assert h.pulls() == ()


def test_reverts_on_the_base_branch_even_once_it_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], validator: Any
) -> None:
    """Fixes merged into a release branch: a revert there counts; once the branch is
    deleted, reading again still works (the default branch is still looked at)."""
    project = git_init(write_tree(tmp_path / "shop", {"README.md": "shop\n"}))
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        fake.push_commit("release/1.0", "Start 1.0", at=T0, repo=REPO)
        first = open_fix(fake, "a", LATER_RUN, ["aaaaaaaaaaa1"], hours=1, base="release/1.0")
        merge = fake.merge_pull(first, at=T0 + 2 * HOUR, repo=REPO)
        revert = fake.revert_commit(merge, at=T0 + 3 * HOUR, branch="release/1.0", repo=REPO)
        second = open_fix(fake, "b", LATER_RUN, ["bbbbbbbbbbb2"], hours=1, base="release/1.0")
        fake.merge_pull(second, at=T0 + 4 * HOUR, repo=REPO)
        world = World(project, fake, {first: revert})
        options: dict[str, Any] = {"prs": True, "github_repo": REPO, "environ": env_for(world)}

        doc = stats_json(capsys, validator, world, **options)
        reverted = {p["number"]: p["reverted_by"] for p in doc["pull_requests"]["pulls"]}
        assert reverted == {first: revert, second: None}

        run_git(fake.origin(REPO), "branch", "-D", "release/1.0")
        doc = stats_json(capsys, validator, world, **options)
        reverted = {p["number"]: p["reverted_by"] for p in doc["pull_requests"]["pulls"]}
        assert reverted == {first: revert, second: None}
        listed = [r.query.get("sha") for r in fake.requests_to("GET", r"/repos/acme/shop/commits")]
        assert listed == ["release/1.0", "main", "main"]


def cli_env(home: Path, **more: str) -> dict[str, str]:
    env = agentloop_env(home, {"COLUMNS": "220", **more})
    for name in ("AGENTLOOP_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "GITHUB_REPOSITORY"):
        if name not in more:
            env.pop(name, None)
    return env


def run_agentloop(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentloop", *args], cwd=cwd, env=env, capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
    )  # fmt: skip


def row(stdout: str, first: str) -> list[str]:
    """The cells of the first table row that starts with `first` (rich draws │ between
    cells, ┃ between headers)."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").replace("┃", "│").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{stdout}")


def test_the_cli_shows_acceptance_beside_the_fix_rate(world: World, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", GITHUB_TOKEN=TOKEN, GITHUB_API_URL=world.fake.api_url)
    done = run_agentloop(world.project, env, "stats", "--prs", "--github-repo", REPO)
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert f"note: read 6 pull requests labelled auto-fix of {REPO}" in done.stderr
    header = row(done.stdout, "category")
    assert header[3:5] == ["fixed", "accepted"]
    assert row(done.stdout, "all")[3:5] == ["3/4 75%", "3/5 60%"]
    assert row(done.stdout, "logic_bug")[3:5] == ["1/2 50%", "2/3 67%"]
    assert row(done.stdout, "unknown")[3:5] == ["–", "0/1 0%"]
    assert row(done.stdout, "#2")[2:6] == ["merged", "missing_dependency", "26h 00m", "1 (carol)"]
    assert row(done.stdout, "#4")[6] == world.reverts[4][:12]
    assert "3/4 tasks fixed in 2 runs, 4 attempts, $1.00; 3/5 pull requests accepted (1 open)" in (
        done.stdout
    )

    # Later, without --prs, without a token, GitHub out of reach: the same, from the ledger.
    offline = run_agentloop(world.project, cli_env(tmp_path / "home"), "stats")
    assert offline.returncode == 0, offline.stderr
    assert row(offline.stdout, "logic_bug")[3:5] == ["1/2 50%", "2/3 67%"]


def test_no_token_is_one_line_and_exit_2(tmp_path: Path) -> None:
    project = git_init(write_tree(tmp_path / "shop", {"README.md": "shop\n"}))
    done = run_agentloop(project, cli_env(tmp_path / "home"), "stats", "--prs")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[0] == "error: agentloop stats --prs needs a GitHub token to read the pull requests"
    assert lines[1].startswith("hint: set AGENTLOOP_GITHUB_TOKEN (or GITHUB_TOKEN or GH_TOKEN)")
    assert len(lines) == 2
    assert not (project / ".agentloop").exists()
