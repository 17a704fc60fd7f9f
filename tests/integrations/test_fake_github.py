"""The fake GitHub itself: what tests elsewhere rely on it to answer like GitHub."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from agentloop.integrations.github import GitHub, GitHubError, Review
from agentloop.testing.fake_github import FakeGitHub

from .conftest import TOKEN, Checkout


def _fetch(url: str, *, method: str = "GET", body: Any = None) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", "token t")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def test_pages_carry_a_link_header_like_github(fake: FakeGitHub) -> None:
    for i in range(5):
        fake.open_pull(f"b{i}")
    base = f"{fake.api_url}/repos/o/r/pulls"

    status, headers, first = _fetch(f"{base}?state=all&per_page=2")
    _, last_headers, last = _fetch(f"{base}?state=all&per_page=2&page=3")

    assert status == 200
    assert [p["number"] for p in first] == [5, 4]
    assert headers["Link"] == (
        f'<{base}?state=all&per_page=2&page=2>; rel="next", '
        f'<{base}?state=all&per_page=2&page=3>; rel="last"'
    )
    assert [p["number"] for p in last] == [1]
    assert 'rel="next"' not in last_headers["Link"]
    assert f'<{base}?state=all&per_page=2&page=2>; rel="prev"' in last_headers["Link"]
    # A list item lacks `merged`, as on GitHub; the single pull request has it.
    assert "merged" not in first[0]
    assert _fetch(f"{base}/5")[2]["merged"] is False


def test_every_answer_carries_rate_limit_headers(fake: FakeGitHub) -> None:
    fake.fail("GET", r"/repos/o/r/pulls", 502)
    answers = [
        _fetch(f"{fake.api_url}/repos/o/r"),
        _fetch(f"{fake.api_url}/repos/o/r/pulls"),
        _fetch(f"{fake.api_url}/repos/o/nothing"),
    ]

    assert [status for status, _, _ in answers] == [200, 502, 404]
    remaining = [int(headers["X-RateLimit-Remaining"]) for _, headers, _ in answers]
    assert remaining == [4999, 4998, 4997]
    for _, headers, _ in answers:
        assert headers["X-RateLimit-Limit"] == "5000"
        assert headers["X-RateLimit-Resource"] == "core"
        assert int(headers["X-RateLimit-Reset"]) > 0
        assert int(headers["X-RateLimit-Used"]) >= 1


def test_pull_creation_is_validated_like_github(checkout: Checkout, fake: FakeGitHub) -> None:
    url = f"{fake.api_url}/repos/o/r/pulls"
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    pull = {"head": "agentloop/fix-1", "base": "main", "title": "t", "draft": True}

    missing = _fetch(url, method="POST", body={**pull, "head": "agentloop/nothing"})
    created = _fetch(url, method="POST", body=pull)
    again = _fetch(url, method="POST", body=pull)
    empty = _fetch(url, method="POST", body={**pull, "head": "main", "base": "main"})

    assert missing[0] == 422
    assert missing[2]["errors"] == [{"resource": "PullRequest", "code": "invalid", "field": "head"}]
    assert created[0] == 201
    assert created[2]["draft"] is True
    assert created[2]["url"] == f"{url}/1"  # API addresses keep the /api/v3 prefix
    assert again[0] == 422
    assert (
        again[2]["errors"][0]["message"] == "A pull request already exists for o:agentloop/fix-1."
    )
    assert empty[0] == 422
    assert fake.requests_to("POST", r"/repos/o/r/pulls")[1].json == pull


def test_requests_outside_the_api_prefix_are_404_and_recorded(fake: FakeGitHub) -> None:
    status, _, _ = _fetch(f"{fake.url}/repos/o/r")
    assert status == 404
    assert fake.requests[-1].path == "/repos/o/r"
    assert fake.requests_to("GET", r"/repos/o/r") == [fake.requests[-1]]


def test_failures_are_used_up_in_order(fake: FakeGitHub) -> None:
    fake.fail("GET", r"/repos/o/r", 500, times=2)
    fake.fail("*", r"/repos/o/.*", 404, {"message": "gone"})

    statuses = [_fetch(f"{fake.api_url}/repos/o/r")[0] for _ in range(4)]

    assert statuses == [500, 500, 404, 200]


def test_reviews_comments_and_a_single_pull_read_back(
    checkout: Checkout, fake: FakeGitHub, sleeps: list[float]
) -> None:
    client = GitHub("o/r", TOKEN, api_url=fake.api_url, per_page=2, sleep=sleeps.append)
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    pr = client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")
    urls = [client.comment(pr.number, f"note {i}") for i in range(3)]
    fake.review_pull(pr.number, by="alice", state="CHANGES_REQUESTED")
    fake.review_pull(pr.number, by="bob", state="APPROVED")
    fake.merge_pull(pr.number, by="bob")

    comments = client.comments(pr.number)
    reviews = client.reviews(pr.number)
    merged = client.pull(pr.number)

    assert [(c.body, c.html_url, c.author) for c in comments] == [
        (f"note {i}", urls[i], "agentloop-bot") for i in range(3)
    ]
    assert [(r.author, r.state) for r in reviews] == [
        ("alice", "CHANGES_REQUESTED"),
        ("bob", "APPROVED"),
    ]
    assert isinstance(reviews[0], Review)
    assert merged.merged
    assert merged.state == "closed"
    assert merged.merge_commit_sha == client.branch_sha("main")


def test_a_helper_refuses_what_github_would_not_allow(fake: FakeGitHub) -> None:
    number = fake.open_pull("agentloop/fix-1")
    fake.close_pull(number)
    with pytest.raises(ValueError, match="is closed"):
        fake.merge_pull(number)


def test_a_bug_in_the_fake_fails_the_test_even_behind_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: FakeGitHub, repo: object) -> object:
        raise KeyError("bug")

    monkeypatch.setattr(FakeGitHub, "_repo_json", broken)
    fake = FakeGitHub().__enter__()
    fake.add_repo("o/r")
    client = GitHub("o/r", TOKEN, api_url=fake.api_url, retries=1, sleep=lambda s: None)
    with pytest.raises(GitHubError):
        client.default_branch()
    with pytest.raises(AssertionError, match="the fake GitHub failed"):
        fake.__exit__(None, None, None)
