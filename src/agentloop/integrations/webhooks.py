"""Webhook deliveries from Sentry and GitHub: who signed them, and what they ask for.

A leaf: it knows the two services' headers and payloads and nothing of the receiver.

Signatures (both over the raw body, never over re-serialised JSON):
- Sentry (an internal integration's webhooks): `Sentry-Hook-Signature` is the hex
  HMAC-SHA256 of the body with the integration's client secret. The delivery id is the
  `Request-ID` header; `Sentry-Hook-Resource` names the payload (`event_alert` for an issue
  alert rule's action, `issue` for issue lifecycle events).
- GitHub: `X-Hub-Signature-256` is `sha256=` + the hex HMAC-SHA256 of the body with the
  webhook's secret; `X-GitHub-Delivery` is the delivery's GUID (a redelivery keeps it) and
  `X-GitHub-Event` the event's name.
Both are compared with `hmac.compare_digest`, so the time taken says nothing about how
much of a forged signature was right.

What a payload may ask for is parsed into a frozen record carrying ids only: nothing of an
event (messages, stack frames, request data) leaves this module, so nothing an outsider
wrote can reach a workflow's expression or a prompt through the receiver. The delivery id
and the header values are checked against narrow patterns for the same reason.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["sentry", "github"]

# Sentry's issue ids are numbers (as strings); short ids are PROJECT-SLUG-ID in capitals.
_ISSUE_ID = re.compile(r"^[0-9]{1,20}$")
_SHORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# A UUID or GitHub's GUID; anything else with a narrow alphabet and bounded length.
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?$")

# Sentry alert actions that mean "an issue needs fixing": an issue alert rule fired
# (event_alert/triggered), a new issue (issue/created).
SENTRY_ALERTS = {("event_alert", "triggered"), ("issue", "created")}
# GitHub `issues` actions a human takes to acknowledge an alert issue.
ACKNOWLEDGING = ("assigned", "labeled")


class PayloadError(ValueError):
    """A signed delivery whose payload is not what its headers say (answered 400)."""


def sign_sentry(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_github(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(source: Source, secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` (the header's value; None when absent) signs `body` with `secret`."""
    if not signature or not secret:
        return False
    expected = sign_sentry(secret, body) if source == "sentry" else sign_github(secret, body)
    # compare_digest on bytes: a non-ASCII header would raise on str, and must just fail.
    return hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace"))


def delivery_id(source: Source, headers: Mapping[str, str]) -> str | None:
    """The delivery's id from its header (header names lower case), None when it is
    missing or not a plain id."""
    value = headers.get("request-id" if source == "sentry" else "x-github-delivery", "")
    value = value.strip()
    return value if _DELIVERY_ID.fullmatch(value) else None


@dataclass(frozen=True)
class SentryAlert:
    """A Sentry issue that needs fixing. `short_id` is None when the payload has none (an
    issue alert carries the event, whose issue is known by id only)."""

    issue_id: str
    short_id: str | None
    resource: str
    action: str


@dataclass(frozen=True)
class Acknowledgement:
    """A human acknowledged a GitHub issue (assigned it, or labelled it): what the
    escalation step reads to stop escalating an alert issue."""

    repo: str
    issue_number: int
    action: str  # "assigned" or "labeled"
    by: str | None  # the sender's login
    detail: str | None  # the assignee's login, or the label's name


@dataclass(frozen=True)
class Ignored:
    """A valid delivery that asks for nothing (another resource, action or event)."""

    what: str


Meaning = SentryAlert | Acknowledgement | Ignored


_WORD = re.compile(r"[^A-Za-z0-9_.-]+")


def _word(value: Any) -> str:
    """A header's or field's value as a short plain word, for a progress line."""
    return _WORD.sub("", value)[:40] or "?" if isinstance(value, str) else "?"


def _text(value: Any, pattern: re.Pattern[str]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} is not an object")
    return value


def sentry_meaning(headers: Mapping[str, str], document: Any) -> Meaning:
    resource = headers.get("sentry-hook-resource", "").strip()
    payload = _object(document, "the payload")
    action = payload.get("action")
    if not isinstance(action, str) or (resource, action) not in SENTRY_ALERTS:
        return Ignored(f"sentry {_word(resource)}/{_word(action)}")
    data = _object(payload.get("data"), "data")
    if resource == "event_alert":
        event = _object(data.get("event"), "data.event")
        issue_id = _text(event.get("issue_id"), _ISSUE_ID)
        short_id = None
    else:
        issue = _object(data.get("issue"), "data.issue")
        issue_id = _text(issue.get("id"), _ISSUE_ID)
        short_id = _text(issue.get("shortId"), _SHORT_ID)
    if issue_id is None:
        raise PayloadError(f"a Sentry {resource} payload without a numeric issue id")
    return SentryAlert(issue_id=issue_id, short_id=short_id, resource=resource, action=action)


def github_meaning(headers: Mapping[str, str], document: Any) -> Meaning:
    event = headers.get("x-github-event", "").strip()
    payload = _object(document, "the payload")
    action = payload.get("action")
    if event != "issues" or action not in ACKNOWLEDGING:
        shown = f"/{_word(action)}" if isinstance(action, str) else ""
        return Ignored(f"github {_word(event)}{shown}")
    issue = _object(payload.get("issue"), "issue")
    repo = _object(payload.get("repository"), "repository").get("full_name")
    number = issue.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or not isinstance(repo, str):
        raise PayloadError("an issues event without issue.number or repository.full_name")
    sender = payload.get("sender")
    by = _text(sender.get("login"), _LOGIN) if isinstance(sender, dict) else None
    if action == "assigned":
        assignee = payload.get("assignee")
        detail = _text(assignee.get("login"), _LOGIN) if isinstance(assignee, dict) else None
    else:
        label = payload.get("label")
        name = label.get("name") if isinstance(label, dict) else None
        detail = name[:100] if isinstance(name, str) else None
    return Acknowledgement(repo=repo, issue_number=number, action=action, by=by, detail=detail)


def meaning(source: Source, headers: Mapping[str, str], document: Any) -> Meaning:
    """What a verified delivery asks for (header names lower case). PayloadError when the
    payload lacks what its kind must carry."""
    if source == "sentry":
        return sentry_meaning(headers, document)
    return github_meaning(headers, document)
