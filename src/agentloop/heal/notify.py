"""Notifications of `agentloop heal`: the breaker's alert and the incident report's summary
to the configured channels (a Slack incoming webhook, a generic JSON webhook), and the
escalation of an alert nobody acknowledges.

Webhook addresses are secrets (a Slack incoming webhook's URL is its only credential).
They are read from the environment variable each channel names (`notify.channels[].url_env`),
never from the configuration file, and go out only as the request's address: a channel's
repr, every error and every result name the channel and its variable, never the address;
urllib3's debug log, which prints the request's path, has it masked (`_Redact`).

Delivery: a POST of JSON, retried on 429 (waiting as long as Retry-After says), 5xx and
dropped, refused or timed-out connections, with exponential backoff and jitter, at most
`retries` times and never more than `max_wait_s` seconds in all. A channel that still fails,
or whose variable is unset, is a `Sent` with `ok=False` and a one-line reason: a
notification never aborts the run that sends it.

Escalation (`Escalation`): an alert issue is recorded in the run ledger (history.py,
tables `alerts` and `alert_tiers`) when it is first notified. Tier t (0 the first) is due
t × `escalate_after` minutes after the alert was opened; `escalate(now)` sends every due
tier not sent yet, each at most once: a tier is claimed in the ledger (one INSERT, unique
per alert and tier) before its channels are posted, so two runs calling `escalate` at the
same time cannot both send it, and a crash between the claim and the POST loses that
tier's notification rather than sending it twice. An alert stops escalating once it is
acknowledged: its issue assigned to someone, carrying a label agentloop did not put there,
or closed (read from GitHub), or an acknowledgement the serve inbox recorded from GitHub's
`issues` webhook. When GitHub cannot be read, the inbox still counts and the escalation
goes on: waking one person too many is the side to err on.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import requests

from agentloop import __version__
from agentloop.config import ChannelKind, NotifyConfig
from agentloop.history import AlertRecord, History
from agentloop.integrations import retrying
from agentloop.integrations.github import Comment, GitHubError, Issue

NOTIFY_SCHEMA_ID = "https://agentloop.dev/schemas/notify-1.json"
MessageKind = Literal["alert", "report", "escalation"]
# Labels agentloop itself puts on an alert issue: any other label is a human's.
OWN_LABELS = frozenset({"agentloop-alert", "sentry"})


@dataclass(frozen=True)
class Channel:
    name: str
    kind: ChannelKind
    url_env: str
    url: str | None = field(default=None, repr=False)  # None: the variable is unset

    def describe(self) -> str:
        return f"{self.name} ({self.kind}, ${self.url_env})"


@dataclass(frozen=True)
class Message:
    """What a channel is told. `text` is plain lines, every outsider's word in it
    already scrubbed; `facts` and `issues` go into the generic document only."""

    kind: MessageKind
    title: str
    text: str
    link: str | None = None
    tier: int = 1  # 1: the first tier
    facts: Mapping[str, int | str] = field(default_factory=dict)
    issues: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Sent:
    """One channel's delivery: `error` is one line naming the channel, empty when ok."""

    channel: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


def channels(config: NotifyConfig, environ: Mapping[str, str]) -> tuple[tuple[Channel, ...], ...]:
    """The escalation tiers as channels with their addresses from `environ`."""

    def resolve(kind: ChannelKind, name: str, url_env: str) -> Channel:
        url = environ.get(url_env, "").strip() or None
        return Channel(name=name, kind=kind, url_env=url_env, url=url)

    return tuple(tuple(resolve(c.type, c.name, c.url_env) for c in tier) for tier in config.tiers)


# ---------------------------------------------------------------- payloads


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn: `<!channel>`, `<@U123>` and `<url|text>` are the only active forms,
    # all behind `<`; escaping & < > leaves an outsider's text inert.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: Message) -> dict[str, Any]:
    title = _slack_escape(message.title)
    head = f"<{message.link}|{title}>" if message.link else f"*{title}*"
    return {"text": f"{head}\n{_slack_escape(message.text)}".rstrip()}


def webhook_payload(message: Message, *, now: datetime.datetime) -> dict[str, Any]:
    return {
        "$schema": NOTIFY_SCHEMA_ID,
        "agentloop_version": __version__,
        "kind": message.kind,
        "title": message.title,
        "text": message.text,
        "link": message.link,
        "tier": message.tier,
        "sent_at": now.astimezone(datetime.timezone.utc).isoformat(timespec="seconds"),
        "facts": dict(message.facts),
        "issues": [dict(i) for i in message.issues],
    }


# ---------------------------------------------------------------- delivery


class _Redact(logging.Filter):
    """Masks the webhook addresses in urllib3's log records (its debug lines print the
    request's path, which for a Slack webhook is the secret)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        with self._lock:
            self.secrets.add(secret)
            # The path alone too: urllib3 logs host and path separately.
            path = secret.split("://", 1)[-1].partition("/")[2]
            if len(path) >= 8:
                self.secrets.add("/" + path)

    def mask(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self.secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_REDACT = _Redact()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
    logging.getLogger(_name).addFilter(_REDACT)


@dataclass(frozen=True)
class _Try:
    status: int | None
    transient: bool
    problem: str
    wait_s: float | None = None


class Notifier:
    """Posts messages to channels, retrying what is transient; never raises for a channel."""

    def __init__(
        self,
        *,
        retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 30.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc),
        session: requests.Session | None = None,
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._http = session or requests.Session()

    def send(self, message: Message, to: Iterable[Channel]) -> tuple[Sent, ...]:
        return tuple(self.post(channel, message) for channel in to)

    def post(self, channel: Channel, message: Message) -> Sent:
        if channel.url is None:
            return Sent(
                channel.name,
                ok=False,
                attempts=0,
                error=f"{channel.describe()}: not configured: ${channel.url_env} is not set",
            )
        _REDACT.add(channel.url)
        payload = (
            slack_payload(message)
            if channel.kind == "slack"
            else webhook_payload(message, now=self._now())
        )
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            outcome = self._try(channel.url, payload)
            if outcome is None:
                return Sent(channel.name, ok=True, attempts=attempt, status=None)
            if not outcome.transient or attempt > self.retries:
                break
            delay = outcome.wait_s
            if delay is None:
                delay = retrying.backoff(self.backoff_s, attempt - 1)
            if waited + delay > self.max_wait_s:
                break
            self._sleep(delay)
            waited += delay
        tries = f"{attempt} tr{'y' if attempt == 1 else 'ies'}"
        error = f"{channel.describe()}: {outcome.problem} after {tries}"
        return Sent(
            channel.name,
            ok=False,
            attempts=attempt,
            status=outcome.status,
            error=_REDACT.mask(error),
        )

    def _try(self, url: str, payload: Mapping[str, Any]) -> _Try | None:
        """None when delivered; else what went wrong. The exception's text is never used:
        requests puts the address in it."""
        try:
            response = self._http.post(
                url,
                json=payload,
                timeout=self.timeout,
                headers={"User-Agent": f"agentloop/{__version__}"},
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            return _Try(None, transient=True, problem=f"unreachable ({type(exc).__name__})")
        except requests.RequestException as exc:
            return _Try(None, transient=False, problem=f"request failed ({type(exc).__name__})")
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 429:
            wait = retrying.retry_after(response.headers.get("Retry-After"), self._clock)
            return _Try(status, transient=True, problem="rate limited (429)", wait_s=wait)
        if status >= 500:
            return _Try(status, transient=True, problem=f"the receiver failed ({status})")
        hint = {
            400: "the receiver refused the payload",
            403: "the webhook refused the request (revoked?)",
            404: "no webhook at that address (deleted?)",
            410: "the webhook is gone (archived channel?)",
        }.get(status, "refused")
        return _Try(status, transient=False, problem=f"{hint} ({status})")


# ---------------------------------------------------------------- escalation


class AlertIssues(Protocol):
    """What escalation reads and writes of GitHub: the open alert issues, each as it is
    now, and their comments, where each tier sent leaves a marker."""

    def issue(self, number: int) -> Issue: ...

    def issues(
        self,
        *,
        state: Literal["open", "closed", "all"] = "open",
        labels: Sequence[str] = (),
        creator: str | None = None,
    ) -> list[Issue]: ...

    def comments(self, number: int) -> list[Comment]: ...

    def comment_issue(self, number: int, body: str) -> str: ...


# The breaker's alert issues carry this label and open with this line (heal/report.py
# opens them): an issue a human labelled is not one of agentloop's alerts.
ALERT_LABEL = "agentloop-alert"
ALERT_MARKER = "<!-- agentloop:alert -->"
# A comment on the alert issue per tier sent. The ledger is the claim on this machine;
# the comment is what a later run elsewhere sees (a CI job starts without the ledger), so
# each tier goes out once wherever escalation runs. Only comments by the alert issue's
# own author (agentloop's token) count: anyone who may comment could write the marker.
_TIER_MARK = re.compile(r"<!-- agentloop:escalation tier=(\d+) -->")


def tier_marker(tier: int) -> str:
    """The hidden marker of 1-based `tier` having been sent."""
    return f"<!-- agentloop:escalation tier={tier} -->"


class Acknowledgements(Protocol):
    """The serve inbox's record of GitHub `issues` webhooks (heal/inbox.py)."""

    def acknowledged(self, repo: str, issue_number: int) -> bool: ...


@dataclass(frozen=True)
class Escalated:
    """One alert's escalation step: the tiers sent now (1-based), why it stopped."""

    number: int
    url: str
    tiers: tuple[int, ...] = ()
    sent: tuple[Sent, ...] = ()
    acknowledged: str = ""  # how, when it was: "assigned to octocat", "labelled triaged"…
    note: str = ""  # e.g. GitHub could not be read


def acknowledgement(issue: Issue) -> str:
    """How a human acknowledged the alert issue, "" when nobody has."""
    if issue.assignees:
        return "assigned to " + ", ".join(issue.assignees)
    labels = [label for label in issue.labels if label not in OWN_LABELS]
    if labels:
        return "labelled " + ", ".join(labels)
    if issue.state == "closed":
        return "closed"
    return ""


class Escalation:
    """The alerts of one repository, their tiers and acknowledgements, in the ledger."""

    def __init__(
        self,
        *,
        repo: str,
        history: History,
        tiers: Sequence[Sequence[Channel]],
        escalate_after_min: int,
        notifier: Notifier,
        github: AlertIssues | None = None,
        inbox: Acknowledgements | None = None,
    ) -> None:
        self.repo = repo
        self._history = history
        self._tiers = tuple(tuple(t) for t in tiers)
        self._after = datetime.timedelta(minutes=escalate_after_min)
        self._notifier = notifier
        self._github = github
        self._inbox = inbox

    def alert(self, issue: Issue, message: Message, *, now: datetime.datetime) -> tuple[Sent, ...]:
        """Record the alert issue (once: an alert updated by a later run keeps its start)
        and send the first tier, unless an earlier run already did."""
        self._history.record_alert(
            self.repo, issue.number, url=issue.html_url, title=issue.title, opened_at=now
        )
        if not self._tiers or not self._history.claim_tier(self.repo, issue.number, 0, now):
            return ()
        if 1 in self._sent_on_github(issue):  # a run elsewhere (a CI job) sent it
            return ()
        sent = self._notifier.send(message, self._tiers[0])
        self._history.finish_tier(self.repo, issue.number, 0, _failed(sent))
        self._mark(issue.number, 1, "sent the alert to", sent)
        return sent

    def escalate(self, now: datetime.datetime) -> tuple[Escalated, ...]:
        """Send every due tier of every open alert, each at most once; acknowledged alerts
        are closed in the ledger and go no further."""
        self._learn_alerts()
        return tuple(self._one(alert, now) for alert in self._history.open_alerts(self.repo))

    def _learn_alerts(self) -> None:
        """The open alert issues on GitHub into the ledger, opened when GitHub says: a CI
        job's ledger starts empty, and an alert another run opened must still escalate."""
        if self._github is None:
            return
        try:
            found = self._github.issues(labels=[ALERT_LABEL])
        except GitHubError:
            return  # the ledger's alerts still escalate; _acknowledged notes the failure
        for issue in found:
            if issue.body.split("\n", 1)[0].strip() != ALERT_MARKER:
                continue
            self._history.record_alert(
                self.repo, issue.number, url=issue.html_url, title=issue.title,
                opened_at=issue.created_at,
            )  # fmt: skip

    def _sent_on_github(self, issue: Issue | int) -> set[int]:
        """The 1-based tiers the alert issue's comments say were sent (by its author)."""
        if self._github is None:
            return set()
        try:
            found = issue if isinstance(issue, Issue) else self._github.issue(issue)
            comments = self._github.comments(found.number)
        except GitHubError:
            return set()
        return {
            int(m.group(1))
            for c in comments
            if c.author is not None and c.author == found.author
            for m in _TIER_MARK.finditer(c.body)
        }

    def _mark(self, number: int, tier: int, what: str, sent: Sequence[Sent]) -> None:
        if self._github is None:
            return
        names = ", ".join(s.channel for s in sent) or "no channel"
        body = f"agentloop {what} tier {tier} of {len(self._tiers)}: {names}."
        # The ledger holds the claim here, and the channels were told either way.
        with contextlib.suppress(GitHubError):
            self._github.comment_issue(number, f"{body}\n\n{tier_marker(tier)}")

    def _one(self, alert: AlertRecord, now: datetime.datetime) -> Escalated:
        how, note = self._acknowledged(alert.number)
        if how:
            self._history.acknowledge_alert(self.repo, alert.number, how=how, at=now)
            return Escalated(alert.number, alert.url, acknowledged=how, note=note)
        tiers: list[int] = []
        sent: list[Sent] = []
        on_github: set[int] | None = None
        for tier in range(1, len(self._tiers)):
            if now < alert.opened_at + tier * self._after:
                break
            if not self._history.claim_tier(self.repo, alert.number, tier, now):
                continue
            if on_github is None:
                on_github = self._sent_on_github(alert.number)
            if tier + 1 in on_github:
                continue
            waiting = int((now - alert.opened_at).total_seconds() // 60)
            message = Message(
                kind="escalation",
                title=f"Not acknowledged after {waiting} min: {alert.title}",
                text=(
                    f"agentloop's alert {alert.url} has not been assigned or labelled for "
                    f"{waiting} minutes; escalating to tier {tier + 1} of {len(self._tiers)}."
                ),
                link=alert.url,
                tier=tier + 1,
                facts={"issue": alert.number, "minutes_unacknowledged": waiting},
            )
            delivered = self._notifier.send(message, self._tiers[tier])
            self._history.finish_tier(self.repo, alert.number, tier, _failed(delivered))
            self._mark(alert.number, tier + 1, "escalated to", delivered)
            tiers.append(tier + 1)
            sent.extend(delivered)
        return Escalated(alert.number, alert.url, tuple(tiers), tuple(sent), note=note)

    def _acknowledged(self, number: int) -> tuple[str, str]:
        note = ""
        if self._github is not None:
            try:
                how = acknowledgement(self._github.issue(number))
            except GitHubError as exc:
                note = f"could not read the alert issue #{number} on GitHub: {exc.message}"
            else:
                if how:
                    return how, note
        if self._inbox is not None and self._inbox.acknowledged(self.repo, number):
            return "acknowledged on GitHub (serve inbox)", note
        return "", note


def _failed(sent: Iterable[Sent]) -> str:
    return " ".join(s.channel for s in sent if not s.ok)
