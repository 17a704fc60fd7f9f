"""Personal data and secrets out of Sentry events, before anything of them is shown or put
in a prompt. Event data is untrusted input: a user's email in an exception message, a
session cookie in the request, a bearer token in a breadcrumb's URL all reach Sentry as
sent. sentry-sdk filters some of it at the source (Authorization and Cookie headers, with
send_default_pii off), but not in messages, not in every SDK, not on every setting.

Pure functions over strings, mappings and the event records; nothing is looked up. What
goes: emails → [email]; IPv4 and IPv6 addresses → [ip]; tokens (Bearer/Basic credentials,
JWTs, the well-known prefixed keys of Sentry, GitHub, Slack, AWS, OpenAI/Anthropic, and
long hex or base64 runs) → [token]; the value of anything named like a secret (password,
token, secret, api_key, session, cookie, authorization, … as a key=value pair, a header or a
mapping key) → [redacted]. Over-scrubbing is the safe side: a version string that looks
like an IP address loses nothing a fix needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agentloop.integrations.sentry import (
    Breadcrumb,
    ExceptionInfo,
    Frame,
    RequestInfo,
    SentryEvent,
)

EMAIL = "[email]"
IP = "[ip]"
TOKEN = "[token]"
REDACTED = "[redacted]"

# A key is sensitive when, without its separators, it is one of these, or when one of its
# words (split at _ - . and spaces) is one of _SENSITIVE_WORDS: `github_token`, `X-Api-Key`
# and `sessionid` go; `author` and `tokens_used` stay (`tokens` is not `token`).
_SENSITIVE_NAMES = frozenset(
    [
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "token",
        "apikey",
        "xapikey",
        "authorization",
        "proxyauthorization",
        "auth",
        "cookie",
        "cookies",
        "setcookie",
        "session",
        "sessionid",
        "csrf",
        "csrftoken",
        "xsrftoken",
        "credential",
        "credentials",
        "privatekey",
        "accesskey",
        "secretkey",
        "accesstoken",
        "refreshtoken",
        "clientsecret",
        "dsn",
        "signature",
    ]
)
_SENSITIVE_WORDS = frozenset(
    [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "authorization",
        "cookie",
        "session",
        "sessionid",
        "csrf",
        "credentials",
        "dsn",
    ]
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Not inside a longer dotted run of numbers (a version 1.2.3.4.5), but a sentence's full
# stop after the address ("from 198.51.100.7.") does not save it.
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\d|\.\d)"
)
_IPV6 = re.compile(
    r"(?i)(?<![0-9a-f:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}"
    r"|(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{0,4}::(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})(?![0-9a-f:])"
)
_CREDENTIALS = re.compile(r"(?i)\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{8,}")
_HEADER_LINE = re.compile(
    r"(?im)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key)\s*:\s*[^\r\n]+"
)
_KEY_VALUE = re.compile(
    r"(?i)\b([A-Za-z0-9_\-.]*(?:pass(?:word|wd)?|secret|token|api[_\-]?key|apikey|sessionid"
    r"|session|csrf|credentials?|access[_\-]?key)[A-Za-z0-9_\-]*)"
    r"(\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*')([^\s&;,\"']+)"
)
_PREFIXED = re.compile(
    r"\b(?:sntry[us]_[A-Za-z0-9_=+/\-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16}|sk-(?:ant-)?[A-Za-z0-9_\-]{16,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"
)
# Long runs that look random: hex (git SHAs, API keys) or base64-ish, with a digit and a
# letter in them. "/" is left out on purpose: a file path is a long run of letters too.
_LONG_SECRET = re.compile(
    r"(?<![A-Za-z0-9+_\-])(?=[A-Za-z0-9+_\-]*\d)(?=[A-Za-z0-9+_\-]*[A-Za-z])"
    r"(?:[0-9a-fA-F]{32,}|[A-Za-z0-9+_\-]{40,}={0,2})(?![A-Za-z0-9+_\-])"
)


def sensitive_key(name: str) -> bool:
    lowered = name.lower()
    if re.sub(r"[^a-z0-9]", "", lowered) in _SENSITIVE_NAMES:
        return True
    return any(word in _SENSITIVE_WORDS for word in re.split(r"[_\-.\s]+", lowered))


def scrub_text(text: str) -> str:
    if not text:
        return text
    text = _HEADER_LINE.sub(lambda m: f"{m.group(1)}: {REDACTED}", text)
    text = _CREDENTIALS.sub(lambda m: f"{m.group(1)} {TOKEN}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PREFIXED.sub(TOKEN, text)
    text = _EMAIL.sub(EMAIL, text)
    text = _IPV6.sub(IP, text)
    text = _IPV4.sub(IP, text)
    return _LONG_SECRET.sub(TOKEN, text)


def scrub_data(value: Any) -> Any:
    """A JSON-like value with every string scrubbed and every sensitive key's value gone."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and sensitive_key(k) else scrub_data(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub_data(v) for v in value]
    return value


def _maybe(text: str | None) -> str | None:
    return scrub_text(text) if text is not None else None


def _frame(frame: Frame) -> Frame:
    return replace(frame, context_line=_maybe(frame.context_line))


def _exception(exc: ExceptionInfo) -> ExceptionInfo:
    return replace(exc, value=scrub_text(exc.value), frames=tuple(_frame(f) for f in exc.frames))


def _request(request: RequestInfo) -> RequestInfo:
    return RequestInfo(
        method=request.method,
        url=_maybe(request.url),
        query=_maybe(request.query),
        headers=tuple(
            (name, REDACTED if sensitive_key(name) else scrub_text(value))
            for name, value in request.headers
        ),
        data=scrub_data(request.data),
    )


def _breadcrumb(crumb: Breadcrumb) -> Breadcrumb:
    return replace(crumb, message=_maybe(crumb.message), data=scrub_data(dict(crumb.data)))


def scrub_event(event: SentryEvent) -> SentryEvent:
    """The event with its messages, exception values, breadcrumbs, request and tags
    scrubbed (ids, levels and the stack's shape kept: triage needs them)."""
    return replace(
        event,
        title=scrub_text(event.title),
        message=scrub_text(event.message),
        exceptions=tuple(_exception(e) for e in event.exceptions),
        tags=tuple((k, REDACTED if sensitive_key(k) else scrub_text(v)) for k, v in event.tags),
        request=_request(event.request) if event.request is not None else None,
        breadcrumbs=tuple(_breadcrumb(c) for c in event.breadcrumbs),
    )
