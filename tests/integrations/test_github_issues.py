"""The issue calls of the GitHub client (the incident report and the breaker's alert)
against the fake API: what they send, and what they read back."""

from __future__ import annotations

import pytest

from agentloop.integrations.github import GitHub, GitHubError
from agentloop.testing.fake_github import FakeGitHub


def test_an_issue_is_opened_listed_updated_and_commented(client: GitHub, fake: FakeGitHub) -> None:
    opened = client.create_issue(title="Incident", body="first", labels=["sentry", "x"])
    assert (opened.title, opened.body, opened.state, opened.labels) == (
        "Incident",
        "first",
        "open",
        ("sentry", "x"),
    )
    assert opened.html_url.endswith(f"/o/r/issues/{opened.number}")
    fake.open_pull("feature", labels=["sentry"])  # listed by GitHub, left out here
    fake.open_issue("Other", labels=["x"])
    assert [i.number for i in client.issues(labels=["sentry", "x"])] == [opened.number]

    updated = client.update_issue(opened.number, body="second")
    assert (updated.title, updated.body) == ("Incident", "second")
    url = client.comment_issue(opened.number, "a comment")
    assert url.endswith(
        f"/issues/{opened.number}#issuecomment-{fake.issue_comments(opened.number)[0]['id']}"
    )

    fake.assign_issue(opened.number, "octocat")
    fake.close_issue(opened.number)
    read = client.issue(opened.number)
    assert (read.state, read.assignees) == ("closed", ("octocat",))
    assert client.issues(labels=["sentry"]) == []
    assert [i.number for i in client.issues(state="closed")] == [opened.number]
    assert [(r.method, r.path) for r in fake.requests_to("*", r"/repos/o/r/issues.*")][:2] == [
        ("POST", "/repos/o/r/issues"),
        ("GET", "/repos/o/r/issues"),
    ]
    assert fake.requests_to("POST", "/repos/o/r/issues")[0].json == {
        "title": "Incident",
        "body": "first",
        "labels": ["sentry", "x"],
    }


def test_a_missing_issue_names_it_and_a_5xx_is_retried(
    client: GitHub, fake: FakeGitHub, sleeps: list[float]
) -> None:
    with pytest.raises(GitHubError, match="issue #99 does not exist"):
        client.issue(99)
    fake.fail("POST", "/repos/o/r/issues", 502)
    assert client.create_issue(title="t", body="b").number > 0
    assert len(sleeps) == 1
