"""The GitHub client against the fake API, with a real bare repository as `origin`."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from agentloop.integrations import github
from agentloop.integrations.github import GitHub, GitHubError, RefusedReviewer
from agentloop.testing.fake_github import FakeGitHub

from .conftest import TOKEN, Checkout

DAY = datetime.timedelta(days=1)
NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.timezone.utc)


def test_a_push_to_origin_is_what_the_api_reports(checkout: Checkout, client: GitHub) -> None:
    assert client.default_branch() == "main"
    sha = checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})

    assert client.branch_sha("agentloop/fix-1") == sha
    assert client.branch_sha("agentloop/never-pushed") is None


def test_a_draft_pull_request_with_label_reviewers_and_comment(
    checkout: Checkout, fake: FakeGitHub, client: GitHub
) -> None:
    head_sha = checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    client.ensure_label("auto-fix", color="#0e8a16", description="Opened by agentloop")

    pr = client.create_pull(
        head="agentloop/fix-1", base="main", title="fix: value", body="evidence"
    )
    client.add_labels(pr.number, ["auto-fix"])
    refused = client.request_reviewers(pr.number, ["alice"], ["backend"])
    url = client.comment(pr.number, "Root cause: VALUE")

    assert (pr.draft, pr.state, pr.merged, pr.head_sha, pr.base_ref) == (
        True,
        "open",
        False,
        head_sha,
        "main",
    )
    assert refused == ()
    assert url.startswith(f"{fake.url}/o/r/pull/{pr.number}#issuecomment-")
    document = fake.pull(pr.number)
    assert [label["name"] for label in document["labels"]] == ["auto-fix"]
    assert [u["login"] for u in document["requested_reviewers"]] == ["alice"]
    assert document["draft"] is True
    assert fake.requests_to("POST", r"/repos/o/r/labels")[0].json == {
        "name": "auto-fix",
        "color": "0e8a16",
        "description": "Opened by agentloop",
    }
    # A label and a comment are one POST each: no GET of the pull request first.
    assert not fake.requests_to("GET", rf"/repos/o/r/(pulls|issues)/{pr.number}")
    [listed] = client.pulls(label="auto-fix")
    assert listed == pr.__class__(**{**pr.__dict__, "labels": ("auto-fix",)})


def test_the_label_is_created_only_when_missing_and_a_race_is_fine(
    fake: FakeGitHub, client: GitHub
) -> None:
    fake.add_label("auto-fix", color="ff0000")
    client.ensure_label("auto-fix", color="0e8a16", description="")
    assert not fake.requests_to("POST", r"/repos/o/r/labels")

    # Someone else creates it between our look and our create: GitHub says already_exists.
    fake.fail("GET", r"/repos/o/r/labels/auto-fix", 404)
    client.ensure_label("auto-fix", color="0e8a16", description="")
    assert len(fake.requests_to("POST", r"/repos/o/r/labels")) == 1


def test_a_reviewer_github_refuses_does_not_fail_the_others(
    checkout: Checkout, fake: FakeGitHub, client: GitHub
) -> None:
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    pr = client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")

    # The PR's author (the token's own account) cannot be asked to review it.
    refused = client.request_reviewers(pr.number, ["agentloop-bot", "alice"], ["backend"])

    assert refused == (
        RefusedReviewer(
            "agentloop-bot",
            team=False,
            reason="Review cannot be requested from pull request author.",
        ),
    )
    document = fake.pull(pr.number)
    assert [u["login"] for u in document["requested_reviewers"]] == ["alice"]
    assert [t["slug"] for t in document["requested_teams"]] == ["backend"]


def test_pulls_reads_every_page(fake: FakeGitHub, sleeps: list[float]) -> None:
    for i in range(5):
        fake.open_pull(f"agentloop/fix-{i}", labels=["auto-fix"] if i % 2 == 0 else [])
    client = GitHub("o/r", TOKEN, api_url=fake.api_url, per_page=2, sleep=sleeps.append)

    pulls = client.pulls(state="all")

    assert [p.number for p in pulls] == [5, 4, 3, 2, 1]
    assert [p.number for p in client.pulls(state="all", label="auto-fix")] == [5, 3, 1]
    pages = [r.query.get("page", "1") for r in fake.requests_to("GET", r"/repos/o/r/pulls")]
    assert pages == ["1", "2", "3", "1", "2", "3"]


def test_pulls_filters_by_state_and_head(fake: FakeGitHub, client: GitHub) -> None:
    first = fake.open_pull("agentloop/fix-a")
    second = fake.open_pull("agentloop/fix-b")
    fake.close_pull(first)

    assert [p.number for p in client.pulls()] == [second]
    assert [p.number for p in client.pulls(state="closed")] == [first]
    assert [p.number for p in client.pulls(state="all", head="agentloop/fix-a")] == [first]
    assert fake.requests_to("GET", r"/repos/o/r/pulls")[-1].query["head"] == "o:agentloop/fix-a"


def test_count_created_since_stops_paging_at_the_first_older_pull(fake: FakeGitHub) -> None:
    for age in range(10, 0, -1):  # one PR a day, the newest a day old
        fake.open_pull(
            f"b{age}", labels=["auto-fix"] if age != 2 else [], created_at=NOW - age * DAY
        )
    client = GitHub("o/r", TOKEN, api_url=fake.api_url, per_page=2)

    # Created in the last 3.5 days: ages 1, 2, 3; age 2 lacks the label.
    assert client.count_created_since("auto-fix", NOW - 3.5 * DAY) == 2
    pages = [r.query.get("page", "1") for r in fake.requests_to("GET", r"/repos/o/r/pulls")]
    assert pages == ["1", "2"], "paging must stop once the pulls are older than `since`"
    assert fake.requests_to("GET", r"/repos/o/r/pulls")[0].query["sort"] == "created"
    assert client.count_created_since("auto-fix", NOW) == 0


def test_pull_commits_show_who_pushed_what(
    checkout: Checkout, fake: FakeGitHub, client: GitHub
) -> None:
    sha = checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    pr = client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")
    human = fake.add_pull_commit(pr.number, author_login="alice", message="Tweak the fix")

    commits = client.pull_commits(pr.number)

    assert [(c.sha, c.author_login, c.message) for c in commits] == [
        (sha, None, "work on agentloop/fix-1"),  # tests@agentloop.invalid is no GitHub user
        (human, "alice", "Tweak the fix"),
    ]
    assert commits[1].authored_at.tzinfo is not None


def test_merged_closed_and_reverted_pulls_read_back(
    checkout: Checkout, fake: FakeGitHub, client: GitHub
) -> None:
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    checkout.push_branch("agentloop/fix-2", {"other.py": "X = 1\n"})
    merged = client.create_pull(head="agentloop/fix-1", base="main", title="fix: one", body="")
    closed = client.create_pull(head="agentloop/fix-2", base="main", title="fix: two", body="")
    merge_sha = fake.merge_pull(merged.number, by="bob", at=NOW)
    fake.close_pull(closed.number, at=NOW)
    revert_sha = fake.revert_commit(merge_sha, author_login="carol", at=NOW + DAY)

    by_number = {p.number: p for p in client.pulls(state="closed")}

    assert by_number[merged.number].merged
    assert by_number[merged.number].merged_at == NOW
    assert by_number[merged.number].merge_commit_sha == merge_sha
    assert not by_number[closed.number].merged
    assert by_number[closed.number].merge_commit_sha is None
    assert by_number[closed.number].closed_at == NOW
    # Listing never fetched a pull request one by one to learn `merged`.
    assert not fake.requests_to("GET", r"/repos/o/r/pulls/\d+")
    [newest, *_] = client.commits("main", since=NOW + DAY / 2)
    assert newest.sha == revert_sha
    assert newest.author_login == "carol"
    assert (
        newest.message
        == f'Revert "fix: one (#{merged.number})"\n\nThis reverts commit {merge_sha}.'
    )
    assert [c.sha for c in client.commits("main", since=NOW + DAY / 2)] == [revert_sha]
    assert [c.sha for c in client.compare_commits(merge_sha, "main")] == [revert_sha]
    # The revert is a real one: origin's main holds the original file again.
    assert "VALUE = 1" in _show(checkout.origin, "main:app.py")


def test_commits_reads_every_page(checkout: Checkout, fake: FakeGitHub) -> None:
    shas = [fake.push_commit("main", f"commit {i}", at=NOW + i * DAY) for i in range(5)]
    client = GitHub("o/r", TOKEN, api_url=fake.api_url, per_page=2)

    assert [c.sha for c in client.commits("main")][:5] == shas[::-1]
    assert len(client.commits("main")) == 6  # and the clone's first commit
    assert [c.sha for c in client.compare_commits(f"{shas[0]}", "main")] == shas[1:]


def test_the_token_goes_only_into_the_authorization_header(
    checkout: Checkout, fake: FakeGitHub, client: GitHub
) -> None:
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    pr = client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")
    client.comment(pr.number, "hello")
    client.pulls(state="all")

    for request in fake.requests:
        assert request.headers["authorization"] == f"token {TOKEN}"
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert TOKEN not in repr((request.path, request.query, others, request.json))
    assert TOKEN not in repr(client)
    assert TOKEN not in str(client)


def test_the_client_never_merges(checkout: Checkout, fake: FakeGitHub, client: GitHub) -> None:
    """A whole flow, merge helpers of the fake included: no request reaches a merge or
    auto-merge endpoint (REST or GraphQL)."""
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    client.ensure_label("auto-fix", color="0e8a16", description="")
    pr = client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")
    client.add_labels(pr.number, ["auto-fix"])
    client.request_reviewers(pr.number, ["alice"], [])
    client.comment(pr.number, "evidence")
    client.pull_commits(pr.number)
    client.count_created_since("auto-fix", NOW - DAY)
    client.commits("main")

    for request in fake.requests:
        assert not re.search(r"merge|graphql", request.path, re.IGNORECASE), request.path
        assert request.method != "PUT"
        assert "auto_merge" not in repr(request.json)


def test_the_module_has_no_merge_call() -> None:
    source = Path(github.__file__).read_text(encoding="utf-8")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    # The docstring promises it; the code below it must keep the promise.
    code = code.split('"""', 2)[2]
    for forbidden in (
        r"\.merge\(",
        r"\bmerge_pull\b",
        r"/merge\b",
        r"auto_?merge",
        r"enablePullRequestAutoMerge",
        r"graphql",
        r"\bPUT\b",
    ):
        assert not re.search(forbidden, code, re.IGNORECASE), forbidden


def test_create_pull_validation_errors_read_like_github(checkout: Checkout, client: GitHub) -> None:
    with pytest.raises(GitHubError) as missing:
        client.create_pull(head="agentloop/never-pushed", base="main", title="t", body="b")
    assert missing.value.status == 422
    assert missing.value.message == (
        "GitHub refused to open a pull request in o/r (422: Validation Failed: head invalid)"
    )

    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")
    with pytest.raises(GitHubError) as twice:
        client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")
    assert twice.value.detail == (
        "Validation Failed: A pull request already exists for o:agentloop/fix-1."
    )


def _show(origin: Path, spec: str) -> str:
    from agentloop.testing.repos import run_git

    return run_git(origin, "show", spec)


def test_dispatch_sends_one_repository_dispatch_retries_a_5xx_and_names_a_refusal(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    payload = {"source": "sentry", "delivery": "d-1", "issue_id": "42"}
    fake.fail("POST", "/repos/o/r/dispatches", 502)
    client.dispatch("sentry-issue", payload)
    assert len(fake.requests_to("POST", "/repos/o/r/dispatches")) == 2
    assert len(sleeps) == 1  # the 502 was waited out once, then sent again
    assert fake.dispatches == [
        {"repo": "o/r", "event_type": "sentry-issue", "client_payload": payload}
    ]

    fake.fail("POST", "/repos/o/r/dispatches", 403)
    with pytest.raises(GitHubError) as refused:
        client.dispatch("sentry-issue", payload)
    assert refused.value.status == 403
    assert "sentry-issue dispatch" in refused.value.message
    assert "contents: write" in (refused.value.hint or "")
    assert len(fake.dispatches) == 1
