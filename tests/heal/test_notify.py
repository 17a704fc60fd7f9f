"""Notifications and escalation against loopback receivers: a webhook sink on 127.0.0.1
for Slack and the generic channel, the fake GitHub for the alert issue, a real ledger."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agentloop.config import Config, load_config
from agentloop.errors import ConfigError
from agentloop.heal.inbox import Inbox
from agentloop.heal.notify import (
    ALERT_LABEL,
    ALERT_MARKER,
    Channel,
    Escalation,
    Message,
    Notifier,
    Sent,
    channels,
    tier_marker,
)
from agentloop.history import History
from agentloop.integrations.github import GitHub
from agentloop.integrations.webhooks import Acknowledgement
from agentloop.testing.fake_github import FakeGitHub
from agentloop.testing.repos import write_tree
from agentloop.testing.webhook_sink import WebhookSink

SECRET_PATH = "/services/T0AGENT/B0LOOP/s3cr3tW3bh00kT0k3n"
T0 = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)
ALERT = Message(kind="alert", title="Sentry error rate 101/h over 100", text="nothing fixed")


def schema(name: str) -> dict[str, Any]:
    return dict(json.loads(resources.files("agentloop.schemas").joinpath(name).read_text()))


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def notifier(sleeps: list[float]) -> Notifier:
    return Notifier(sleep=sleeps.append, now=lambda: T0)


def slack(sink: WebhookSink, name: str = "oncall") -> Channel:
    return Channel(name, "slack", "AGENTLOOP_SLACK_WEBHOOK", sink.url(f"{SECRET_PATH}/{name}"))


def hook(sink: WebhookSink, name: str = "pager") -> Channel:
    return Channel(name, "webhook", "AGENTLOOP_PAGER_WEBHOOK", sink.url(f"{SECRET_PATH}/{name}"))


# ---------------------------------------------------------------- delivery


def test_slack_is_retried_after_a_500_and_gets_text_with_the_link(
    sink: WebhookSink, notifier: Notifier, sleeps: list[float]
) -> None:
    sink.answer(500)
    message = Message(
        kind="report",
        title="agentloop incident report",
        text="Title from an event: <!channel> & <@U123> @here",
        link="https://github.com/o/r/issues/3",
    )
    [sent] = notifier.send(message, [slack(sink)])

    assert (sent.ok, sent.attempts, sent.error) == (True, 2, "")
    assert len(sleeps) == 1
    assert 0.5 <= sleeps[0] <= 1.0  # backoff with jitter
    posted = sink.requests[-1].json
    assert posted == {
        "text": "<https://github.com/o/r/issues/3|agentloop incident report>\n"
        "Title from an event: &lt;!channel&gt; &amp; &lt;@U123&gt; @here"
    }


def test_a_429_waits_as_long_as_retry_after_and_the_document_has_its_schema(
    sink: WebhookSink, notifier: Notifier, sleeps: list[float]
) -> None:
    sink.answer(429, {"Retry-After": "7"})
    message = Message(
        kind="alert",
        title="Sentry error rate 101/h over 100",
        text="nothing was fixed",
        link="https://github.com/o/r/issues/9",
        facts={"errors_last_hour": 101, "max_errors_per_hour": 100},
        issues=({"short_id": "SHOP-1", "title": "KeyError", "events_last_hour": 90,
                 "permalink": "https://sentry.io/issues/1/"},),
    )  # fmt: skip
    [sent] = notifier.send(message, [hook(sink)])

    assert (sent.ok, sent.attempts, sleeps) == (True, 2, [7.0])
    document = sink.requests[-1].json
    jsonschema.validate(document, schema("notify.schema.json"))
    assert (document["kind"], document["facts"]["errors_last_hour"]) == ("alert", 101)


def test_a_channel_that_keeps_failing_is_reported_not_raised_and_never_shows_its_address(
    sink: WebhookSink,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = Notifier(retries=3, sleep=sleeps.append, now=lambda: T0)
    sink.answer(503, times=4)
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}{SECRET_PATH}/gone"
    down = Channel("down", "webhook", "AGENTLOOP_DOWN_WEBHOOK", closed)
    gone = Channel("gone", "slack", "AGENTLOOP_GONE_WEBHOOK", sink.url(f"{SECRET_PATH}/404"))
    unset = channels(
        load_config_with(
            tmp_path, "notify: {channels: [{name: x, type: slack, url_env: AGENTLOOP_X_WEBHOOK}]}"
        ).notify,
        {},
    )[0][0]

    failing, refused, unset_sent = notifier.send(ALERT, [slack(sink), down, unset])
    sink.answer(404)
    [missing] = notifier.send(ALERT, [gone])

    assert (failing.ok, failing.attempts, failing.status) == (False, 4, 503)
    assert failing.error == (
        "oncall (slack, $AGENTLOOP_SLACK_WEBHOOK): the receiver failed (503) after 4 tries"
    )
    assert (refused.ok, refused.attempts) == (False, 4)
    assert "unreachable (ConnectionError)" in refused.error
    assert unset_sent == Sent(
        "x", ok=False, attempts=0, error="x (slack, $AGENTLOOP_X_WEBHOOK): not configured: "
        "$AGENTLOOP_X_WEBHOOK is not set",
    )  # fmt: skip
    assert (missing.attempts, missing.status) == (1, 404)  # not transient: no retry
    assert len(sleeps) == 6  # 3 each for the two transient failures, bounded
    printed = capsys.readouterr()
    seen = "\n".join(
        [caplog.text, printed.out, printed.err, repr(down), repr(gone)]
        + [s.error for s in (failing, refused, unset_sent, missing)]
    )
    assert "/services/" not in seen
    assert "s3cr3t" not in seen
    assert '"POST *** HTTP/1.1" 503' in caplog.text  # urllib3's debug line ran, masked


def test_the_retries_stop_at_the_wait_budget(sink: WebhookSink, sleeps: list[float]) -> None:
    notifier = Notifier(retries=10, max_wait_s=5, sleep=sleeps.append, now=lambda: T0)
    sink.answer(429, {"Retry-After": "4"}, times=3)
    [sent] = notifier.send(ALERT, [slack(sink)])
    assert (sent.ok, sent.attempts, sleeps) == (False, 2, [4.0])
    assert "rate limited (429) after 2 tries" in sent.error


# ---------------------------------------------------------------- configuration


def load_config_with(where: Path, text: str) -> Config:
    return load_config(write_tree(where, {"agentloop.yaml": text}), environ={})[0]


def test_tiers_come_from_the_config_and_addresses_from_the_environment(tmp_path: Path) -> None:
    config = load_config_with(
        tmp_path,
        "notify:\n"
        "  channels:\n"
        "    - {name: oncall, type: slack, url_env: AGENTLOOP_SLACK_WEBHOOK}\n"
        "    - {name: pager, type: webhook, url_env: AGENTLOOP_PAGER_WEBHOOK}\n"
        "  escalation: [[oncall], [pager, oncall]]\n"
        "  escalate_after: 15\n",
    )
    tiers = channels(config.notify, {"AGENTLOOP_SLACK_WEBHOOK": "https://hooks.example/x"})
    assert [[c.name for c in tier] for tier in tiers] == [["oncall"], ["pager", "oncall"]]
    assert tiers[0][0].url == "https://hooks.example/x"
    assert tiers[1][0].url is None
    assert config.notify.escalate_after == 15
    with pytest.raises(
        ConfigError, match=r"escalation names channels not in notify\.channels: pgr"
    ):
        load_config_with(
            tmp_path,
            "notify: {channels: [{name: pager, type: webhook, url_env: P_WEBHOOK}], "
            "escalation: [[pgr]]}",
        )
    with pytest.raises(ConfigError, match="url"):
        load_config_with(tmp_path, "notify: {channels: [{name: s, type: slack, url: 'https://x'}]}")
    # The address is a credential: a variable an agent session would see is refused.
    with pytest.raises(ConfigError, match="OPS_URL is not named like a secret"):
        load_config_with(tmp_path, "notify: {channels: [{name: s, type: slack, url_env: OPS_URL}]}")


# ---------------------------------------------------------------- escalation


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, GitHub]]:
    with FakeGitHub() as fake:
        fake.add_repo("o/r")
        yield fake, GitHub("o/r", "ghs_FAKEtoken0123456789abcdef", api_url=fake.api_url)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[History]:
    with History.open(tmp_path / "history.db") as history:
        yield history


def escalation(
    sink: WebhookSink,
    notifier: Notifier,
    ledger: History,
    client: GitHub | None,
    inbox: Inbox | None = None,
) -> Escalation:
    return Escalation(
        repo="o/r",
        history=ledger,
        tiers=[[slack(sink, "team")], [hook(sink, "pager")], [slack(sink, "lead")]],
        escalate_after_min=30,
        notifier=notifier,
        github=client,
        inbox=inbox,
    )


def posted_to(sink: WebhookSink) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in sink.requests]


def test_an_unacknowledged_alert_goes_to_tier_2_once_and_an_assigned_one_no_further(
    sink: WebhookSink,
    notifier: Notifier,
    ledger: History,
    github: tuple[FakeGitHub, GitHub],
) -> None:
    fake, client = github
    number = fake.open_issue("agentloop: Sentry error rate", labels=["agentloop-alert", "sentry"])
    steps = escalation(sink, notifier, ledger, client)
    issue = client.issue(number)

    assert [s.channel for s in steps.alert(issue, ALERT, now=T0)] == ["team"]
    assert steps.alert(issue, ALERT, now=T0 + datetime.timedelta(minutes=5)) == ()  # a rerun
    [early] = steps.escalate(T0 + datetime.timedelta(minutes=29))
    assert early.tiers == ()
    [due] = steps.escalate(T0 + datetime.timedelta(minutes=31))
    [again] = steps.escalate(T0 + datetime.timedelta(minutes=45))

    assert (due.tiers, [s.channel for s in due.sent]) == ((2,), ["pager"])
    assert again.tiers == ()
    assert posted_to(sink) == ["team", "pager"]
    document = sink.requests[-1].json
    assert (document["kind"], document["tier"], document["link"]) == (
        "escalation",
        2,
        issue.html_url,
    )

    fake.assign_issue(number, "octocat")
    [acked] = steps.escalate(T0 + datetime.timedelta(minutes=61))
    assert (acked.acknowledged, acked.tiers) == ("assigned to octocat", ())
    assert steps.escalate(T0 + datetime.timedelta(hours=5)) == ()
    assert posted_to(sink) == ["team", "pager"]


def test_tiers_exhausted_send_nothing_more_and_a_human_label_acknowledges(
    sink: WebhookSink,
    notifier: Notifier,
    ledger: History,
    github: tuple[FakeGitHub, GitHub],
) -> None:
    fake, client = github
    first = fake.open_issue("alert one", labels=["agentloop-alert"])
    second = fake.open_issue("alert two", labels=["agentloop-alert"])
    steps = escalation(sink, notifier, ledger, client)
    steps.alert(client.issue(first), ALERT, now=T0)

    [late] = steps.escalate(T0 + datetime.timedelta(hours=3))  # both further tiers are due
    [later] = steps.escalate(T0 + datetime.timedelta(hours=9))
    assert (late.tiers, later.tiers) == ((2, 3), ())
    assert posted_to(sink) == ["team", "pager", "lead"]

    steps.alert(client.issue(second), ALERT, now=T0)
    fake.label_issue(second, "investigating")
    acked = {e.number: e.acknowledged for e in steps.escalate(T0 + datetime.timedelta(hours=10))}
    assert acked == {first: "", second: "labelled investigating"}
    assert posted_to(sink) == ["team", "pager", "lead", "team"]


def test_the_serve_inbox_acknowledges_when_github_cannot_be_read(
    sink: WebhookSink,
    notifier: Notifier,
    ledger: History,
    github: tuple[FakeGitHub, GitHub],
    tmp_path: Path,
) -> None:
    fake, client = github
    number = fake.open_issue("alert", labels=["agentloop-alert"])
    inbox = Inbox(tmp_path / "serve.db")
    steps = escalation(sink, notifier, ledger, client, inbox)
    steps.alert(client.issue(number), ALERT, now=T0)
    fake.fail("GET", rf"/repos/o/r/issues/{number}", 404, times=None)

    [unread] = steps.escalate(T0 + datetime.timedelta(minutes=31))
    assert unread.tiers == (2,)  # GitHub unreadable: escalate rather than stay silent
    assert "could not read the alert issue" in unread.note
    inbox.accept(
        "github",
        "d-1",
        "sha",
        Acknowledgement("o/r", number, "assigned", "octocat", "octocat"),
        target="github",
    )
    [acked] = steps.escalate(T0 + datetime.timedelta(minutes=61))
    assert acked.acknowledged == "acknowledged on GitHub (serve inbox)"
    assert posted_to(sink) == ["team", "pager"]
    inbox.close()


def test_each_tier_goes_out_once_across_ci_jobs_that_start_without_the_ledger(
    sink: WebhookSink, notifier: Notifier, github: tuple[FakeGitHub, GitHub], tmp_path: Path
) -> None:
    """In GitHub Actions each job starts with an empty ledger: the publish job that opened
    the alert and the escalate jobs after it share nothing but the alert issue, whose
    comments say which tiers went out."""
    fake, client = github
    opened = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    number = fake.open_issue(
        "agentloop: Sentry error rate 101/h over 100",
        body=f"{ALERT_MARKER}\n# alert",
        labels=[ALERT_LABEL, "sentry"],
        created_at=opened,
    )
    issue = client.issue(number)

    ledgers = contextlib.ExitStack()

    def job(name: str) -> tuple[Escalation, History]:
        history = ledgers.enter_context(History.open(tmp_path / f"{name}.db"))
        return escalation(sink, notifier, history, client), history

    publish, _ = job("publish")
    assert [s.channel for s in publish.alert(issue, ALERT, now=opened)] == ["team"]
    again, _ = job("publish-again")  # the breaker still tripped six hours later
    assert again.alert(issue, ALERT, now=opened + datetime.timedelta(hours=6)) == ()

    early, _ = job("escalate-1")
    [waiting] = early.escalate(opened + datetime.timedelta(minutes=20))
    assert (waiting.number, waiting.tiers) == (number, ())
    due, _ = job("escalate-2")
    [sent] = due.escalate(opened + datetime.timedelta(minutes=31))
    assert sent.tiers == (2,)
    later, _ = job("escalate-3")
    [nothing] = later.escalate(opened + datetime.timedelta(minutes=45))
    assert nothing.tiers == ()

    ledgers.close()
    assert posted_to(sink) == ["team", "pager"]
    marks = [c["body"] for c in fake.issue_comments(number)]
    assert [tier_marker(1) in m for m in marks] == [True, False]
    assert tier_marker(2) in marks[1]


def test_only_agentloops_alerts_and_its_own_marks_count(
    sink: WebhookSink, notifier: Notifier, ledger: History, github: tuple[FakeGitHub, GitHub]
) -> None:
    """A human's issue with the alert label pages nobody; a human's comment carrying a tier's
    marker does not stop that tier (anyone who may comment could write one)."""
    fake, client = github
    opened = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    fake.open_issue("help", body="please look", labels=[ALERT_LABEL], author="octocat")
    number = fake.open_issue(
        "agentloop: alert", body=f"{ALERT_MARKER}\n# alert", labels=[ALERT_LABEL],
        created_at=opened,
    )  # fmt: skip
    fake.comment_as(number, f"no need {tier_marker(2)}", login="mallory")

    [one] = escalation(sink, notifier, ledger, client).escalate(
        opened + datetime.timedelta(minutes=31)
    )

    assert (one.number, one.tiers) == (number, (2,))
    assert posted_to(sink) == ["pager"]
