"""Retries and the one-line errors of the GitHub client. Nothing here really sleeps: the
client's `sleep` is a list that records what it was asked to wait."""

from __future__ import annotations

import logging
import time

import pytest

from agentloop.errors import SERVICE, ConfigError
from agentloop.integrations.github import GitHub, GitHubError
from agentloop.testing.fake_github import FakeGitHub

from .conftest import TOKEN, Checkout

PULLS = r"/repos/o/r/pulls"


def _only_line(error: GitHubError) -> None:
    assert "\n" not in error.message
    assert error.hint is not None
    assert "\n" not in error.hint
    assert error.exit_code == SERVICE


def test_a_server_error_twice_then_ok_is_retried_with_growing_backoff(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    fake.open_pull("agentloop/fix-1")
    fake.fail("GET", PULLS, 500, times=1)
    fake.fail("GET", PULLS, 502, times=1)

    assert [p.number for p in client.pulls()] == [1]

    assert len(fake.requests_to("GET", PULLS)) == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0  # backoff_s * 2**0, jittered down to half
    assert 1.0 <= sleeps[1] <= 2.0


def test_a_dropped_connection_is_retried(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    fake.disconnect("GET", r"/repos/o/r")
    assert client.default_branch() == "main"
    assert len(sleeps) == 1


def test_a_secondary_rate_limit_waits_as_long_as_retry_after_says(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    fake.fail(
        "GET",
        PULLS,
        403,
        {"message": "You have exceeded a secondary rate limit."},
        headers={"Retry-After": "7"},
    )
    fake.fail("GET", PULLS, 429, headers={"Retry-After": "3"})

    assert client.pulls() == []
    assert sleeps == [7.0, 3.0]


def test_a_secondary_rate_limit_without_retry_after_waits_a_minute(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    fake.fail("GET", PULLS, 403, {"message": "You have exceeded a secondary rate limit."})
    assert client.pulls() == []
    assert sleeps == [60.0]


def test_a_wait_longer_than_max_wait_is_not_slept(fake: FakeGitHub, sleeps: list[float]) -> None:
    client = GitHub("o/r", TOKEN, api_url=fake.api_url, sleep=sleeps.append, max_wait_s=30)
    fake.fail("POST", r"/repos/o/r/issues/\d+/comments", 429, headers={"Retry-After": "120"})
    fake.open_pull("agentloop/fix-1")

    with pytest.raises(GitHubError) as caught:
        client.comment(1, "hi")

    assert sleeps == []
    assert caught.value.status == 429
    assert caught.value.message.startswith(
        "GitHub's secondary rate limit stopped the attempt to comment on pull request #1 in o/r"
    )
    _only_line(caught.value)


def test_retries_stop_after_retries_and_within_max_wait(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    fake.fail("GET", r"/repos/o/r", 503, times=None)

    with pytest.raises(GitHubError) as caught:
        client.default_branch()

    assert len(fake.requests_to("GET", r"/repos/o/r")) == 5  # retries=4
    assert len(sleeps) == 4
    assert sum(sleeps) <= 60
    assert caught.value.message == (
        "GitHub failed to read the repository in o/r (503: Service Unavailable) after 5 tries"
    )
    _only_line(caught.value)


def test_an_exhausted_rate_limit_says_when_it_resets_and_does_not_wait(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    reset = int(time.time()) + 37 * 60 + 10
    fake.fail(
        "GET",
        PULLS,
        403,
        {"message": "API rate limit exceeded for installation ID 1."},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )

    with pytest.raises(GitHubError) as caught:
        client.pulls()

    assert sleeps == []
    at = time.strftime("%H:%M", time.gmtime(reset))
    assert caught.value.message == (
        "GitHub's API rate limit for this token is used up (5000 requests an hour) trying to "
        f"list pull requests in o/r; it resets at {at} UTC (in 37 min)"
    )
    _only_line(caught.value)


def test_401_names_the_variable_the_token_came_from(fake: FakeGitHub, client: GitHub) -> None:
    fake.fail("*", r".*", 401, times=None)
    with pytest.raises(GitHubError) as caught:
        client.default_branch()
    assert caught.value.message == (
        "GitHub rejected the token from GITHUB_TOKEN (401: Bad credentials) trying to read the "
        "repository in o/r"
    )
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("GITHUB_TOKEN is missing, expired or wrong")
    _only_line(caught.value)


def test_403_names_the_permission_and_the_actions_setting(
    checkout: Checkout, fake: FakeGitHub, client: GitHub
) -> None:
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    fake.fail("POST", PULLS, 403, times=None)

    with pytest.raises(GitHubError) as caught:
        client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")

    assert caught.value.message == (
        "GitHub refused to open a pull request in o/r (403: Resource not accessible by integration)"
    )
    assert caught.value.hint is not None
    assert "`pull-requests: write`" in caught.value.hint
    assert "Allow GitHub Actions to create and approve pull requests" in caught.value.hint
    _only_line(caught.value)
    assert len(fake.requests_to("POST", PULLS)) == 1, "a refusal is not retried"


def test_404_says_the_repository_is_missing_or_invisible(
    fake: FakeGitHub, sleeps: list[float]
) -> None:
    client = GitHub("o/missing", TOKEN, api_url=fake.api_url, sleep=sleeps.append)
    with pytest.raises(GitHubError) as caught:
        client.branch_sha("main")
    assert caught.value.status == 404
    assert caught.value.message == (
        "GitHub could not read branch main in o/missing (404): the repository o/missing is not "
        "found or not visible to this token"
    )
    _only_line(caught.value)
    assert sleeps == []


def test_a_blank_token_is_a_configuration_error(fake: FakeGitHub) -> None:
    with pytest.raises(ConfigError):
        GitHub("o/r", "  ", api_url=fake.api_url)
    with pytest.raises(ConfigError) as caught:
        GitHub.from_env("o/r", {"GITHUB_TOKEN": ""}, api_url=fake.api_url)
    assert "AGENTLOOP_GITHUB_TOKEN" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (401, None, {}),
        (403, None, {}),
        (403, {"message": f"token {TOKEN} lacks scope"}, {}),
        (404, None, {}),
        (422, {"message": "Validation Failed", "errors": [{"message": TOKEN}]}, {}),
        (403, None, {"X-RateLimit-Remaining": "0"}),
        (429, None, {"Retry-After": "600"}),
        (500, {"message": f"boom {TOKEN}"}, {}),
    ],
)
def test_no_error_path_shows_the_token(
    fake: FakeGitHub,
    status: int,
    body: object,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = GitHub.from_env("o/r", {"GH_TOKEN": TOKEN}, api_url=fake.api_url, sleep=lambda s: None)
    fake.fail("*", r".*", status, body, headers, times=None)

    with pytest.raises(GitHubError) as caught:
        client.pulls()

    error = caught.value
    shown = [error.message, error.hint or "", error.detail, str(error), repr(error), repr(client)]
    shown += [record.getMessage() for record in caplog.records]
    assert caplog.records, "the requests were logged at DEBUG"
    assert all(TOKEN not in text for text in shown)
    if status == 401:
        assert "GH_TOKEN" in error.message


def test_an_unreachable_github_shows_no_token(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    fake.disconnect("*", r".*", times=None)
    with pytest.raises(GitHubError) as caught:
        client.comment(1, "hi")
    assert caught.value.message.startswith("could not reach GitHub at 127.0.0.1:")
    assert caught.value.message.endswith(
        "to comment on pull request #1 in o/r (ConnectionError) after 5 tries"
    )
    assert len(sleeps) == 4
    assert TOKEN not in f"{caught.value.message} {caught.value.hint} {caught.value!r}"


def test_a_429_with_the_quota_used_up_is_the_hourly_limit(
    fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    fake.fail("GET", PULLS, 429, headers={"X-RateLimit-Remaining": "0"})
    with pytest.raises(GitHubError, match="rate limit for this token is used up"):
        client.pulls()
    assert sleeps == []


def test_token_and_repository_from_the_environment_and_the_remote() -> None:
    from agentloop.integrations.github import repo_from_remote_url, token_from_env

    assert token_from_env({"GH_TOKEN": "c", "GITHUB_TOKEN": "b"}) == "b"
    assert token_from_env({"AGENTLOOP_GITHUB_TOKEN": "a", "GITHUB_TOKEN": "b"}) == "a"
    assert token_from_env({"AGENTLOOP_GITHUB_TOKEN": " ", "GH_TOKEN": "c\n"}) == "c"
    assert token_from_env({}) is None
    for url in (
        "https://github.com/o/r.git",
        "https://github.com/o/r",
        "https://x-access-token:secret@github.com/o/r.git/",
        "http://ghe.example.com/o/r",
        "ssh://git@github.com/o/r.git",
        "ssh://git@ghe.example.com:2222/o/r",
        "git@github.com:o/r.git",
        "git@ghe.example.com:o/r",
        "github.com:o/r.git",
    ):
        assert repo_from_remote_url(url) == "o/r", url
    for url in ("/tmp/origin.git", "file:///tmp/o/r.git", "../o/r", "https://gitlab.com/g/s/r"):
        assert repo_from_remote_url(url) is None, url


def test_a_pull_request_created_behind_a_lost_answer_is_found_not_doubled(
    checkout: Checkout, fake: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    checkout.push_branch("agentloop/fix-1", {"app.py": "VALUE = 2\n"})
    fake.fail("POST", PULLS, 502, after=True)

    pr = client.create_pull(head="agentloop/fix-1", base="main", title="t", body="b")

    assert len(fake.requests_to("POST", PULLS)) == 2  # the retry met "already exists"
    assert len(sleeps) == 1
    assert [p.number for p in client.pulls(state="all")] == [pr.number]
    assert pr.head_ref == "agentloop/fix-1"
