"""Sentry's REST API (over requests) for `agentloop heal`: the unresolved issues of the last
24 hours and the latest event of each.

A leaf, like github.py: it knows Sentry and nothing of the loop. What it promises:
- Reads only. Nothing here resolves, assigns or comments on a Sentry issue.
- Every failure is one `SentryError` line (a `ServiceError`: exit 4) naming the endpoint and
  the status, with a hint: 401 names the token's variable, 403 the scope the call needs,
  404 the organization or project.
- Transient failures are retried here, a bounded number of times: 429 (waiting as long as
  Retry-After, else X-Sentry-Rate-Limit-Reset, says), 5xx, and dropped, reset or timed-out
  connections back off exponentially with jitter, at most `retries` times and never more
  than `max_wait_s` seconds in all. A window used up (X-Sentry-Rate-Limit-Remaining: 0) is
  waited out before the next request when its reset is near, so the 429 never comes.
- The token lives in the Authorization header of each request and nowhere else: no
  message, hint or repr of this module contains it.

Pagination: Sentry pages with a `Link` header; the `rel="next"` link is followed only while
it says `results="true"` (it is always there, with "false" on the last page).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from agentloop import __version__
from agentloop.errors import ConfigError, ServiceError
from agentloop.integrations import retrying

DEFAULT_BASE_URL = "https://sentry.io"
# Where the token is read from, first found wins (SENTRY_AUTH_TOKEN is sentry-cli's name).
TOKEN_VARIABLES = ("AGENTLOOP_SENTRY_TOKEN", "SENTRY_AUTH_TOKEN")
# How far back `heal` looks, in Sentry's words (the issue list's statsPeriod).
PERIOD = "24h"
PAGE_SIZE = 100

Json = Any


@dataclass(frozen=True)
class Frame:
    """One stack frame as Sentry's API gives it (camelCase there, snake_case here)."""

    filename: str | None
    abs_path: str | None
    function: str | None
    module: str | None
    lineno: int | None
    in_app: bool
    context_line: str | None = None


@dataclass(frozen=True)
class ExceptionInfo:
    """One exception of an event. `frames` run oldest call first, the crash frame last."""

    type: str
    value: str
    module: str | None
    handled: bool | None  # the SDK's mechanism.handled; False: it crashed the request/process
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class Breadcrumb:
    timestamp: str | None
    category: str | None
    level: str | None
    message: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestInfo:
    method: str | None
    url: str | None
    query: str | None
    headers: tuple[tuple[str, str], ...]
    data: Any  # the body as Sentry kept it: a string, a mapping or None


@dataclass(frozen=True)
class SentryEvent:
    event_id: str
    issue_id: str
    title: str
    message: str
    level: str
    platform: str | None
    date_created: datetime.datetime | None
    # As Sentry orders them: chained causes first, the exception that was raised last.
    exceptions: tuple[ExceptionInfo, ...]
    tags: tuple[tuple[str, str], ...]
    request: RequestInfo | None
    breadcrumbs: tuple[Breadcrumb, ...]

    @property
    def crash(self) -> ExceptionInfo | None:
        return self.exceptions[-1] if self.exceptions else None

    def tag(self, key: str) -> str | None:
        return next((v for k, v in self.tags if k == key), None)


@dataclass(frozen=True)
class SentryIssue:
    id: str
    short_id: str
    title: str
    culprit: str
    level: str
    status: str
    project: str  # the project's slug
    count: int  # events over the issue's life
    user_count: int
    first_seen: datetime.datetime | None
    last_seen: datetime.datetime | None
    permalink: str
    # Events per hour over the last 24 hours, oldest first (Sentry's stats["24h"]).
    hourly: tuple[int, ...]
    unhandled: bool

    @property
    def last_hour(self) -> int:
        """Events in Sentry's newest hourly bucket."""
        return self.hourly[-1] if self.hourly else 0

    @property
    def last_day(self) -> int:
        return sum(self.hourly) if self.hourly else self.count


@dataclass(frozen=True)
class Incident:
    """An issue and its latest event (None when Sentry kept none)."""

    issue: SentryIssue
    event: SentryEvent | None


class SentryError(ServiceError):
    """Sentry refused or failed; `endpoint` is the request's path."""

    def __init__(
        self, message: str, *, hint: str | None, status: int | None, endpoint: str
    ) -> None:
        super().__init__(message, hint=hint, status=status)
        self.endpoint = endpoint


def token_variable(environ: Mapping[str, str]) -> str | None:
    return next((name for name in TOKEN_VARIABLES if environ.get(name, "").strip()), None)


@dataclass(frozen=True)
class _Problem:
    error: SentryError
    transient: bool
    wait_s: float | None = None


class Sentry:
    """One Sentry organization at `base_url` (sentry.io or a self-hosted host)."""

    def __init__(
        self,
        organization: str,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout: float = 15.0,
        token_source: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not token.strip():
            raise ConfigError(
                "no Sentry token", hint=f"set {TOKEN_VARIABLES[1]} (or {TOKEN_VARIABLES[0]})"
            )
        self.organization = organization
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._secret = token.strip()
        self._source = token_source
        self._http = session or requests.Session()
        # A proxy in the environment must not see the token in a log line; requests sends
        # the header as given, and only here.
        self._headers = {
            "Authorization": f"Bearer {self._secret}",
            "User-Agent": f"agentloop/{__version__}",
            "Accept": "application/json",
        }
        self._reset_at: float | None = None  # a used-up window's end, from the last answer

    @classmethod
    def from_env(cls, organization: str, environ: Mapping[str, str], **options: Any) -> Sentry:
        source = token_variable(environ)
        if source is None:
            raise ConfigError(
                "no Sentry token in the environment",
                hint=f"set {TOKEN_VARIABLES[1]} (or {TOKEN_VARIABLES[0]}) to a token with "
                "the event:read, project:read and org:read scopes (an internal integration's)",
            )
        return cls(organization, environ[source], token_source=source, **options)

    def __repr__(self) -> str:
        return f"Sentry({self.organization!r}, base_url={self.base_url!r})"

    # -- reading -------------------------------------------------------------------------

    def project_ids(self, slugs: Sequence[str]) -> dict[str, str]:
        """The ids of the organization's projects named by `slugs` (the issue list filters
        by id); SentryError naming any that does not exist."""
        wanted = set(slugs)
        found: dict[str, str] = {}
        path = f"/api/0/organizations/{self.organization}/projects/"
        for item in self._pages(path, {}, "org:read"):
            if item.get("slug") in wanted:
                found[str(item["slug"])] = str(item["id"])
        missing = sorted(wanted - set(found))
        if missing:
            raise SentryError(
                f"Sentry organization {self.organization} has no project "
                f"{', '.join(missing)} (GET {path})",
                hint="check sentry.projects (project slugs, as in the project's settings URL)",
                status=None,
                endpoint=path,
            )
        return found

    def unresolved_issues(self, projects: Sequence[str] = ()) -> list[SentryIssue]:
        """The unresolved issues seen in the last 24 hours in `projects` (slugs; none: every
        project of the organization), most frequent first, every page."""
        ids = list(self.project_ids(projects).values()) if projects else ["-1"]
        path = f"/api/0/organizations/{self.organization}/issues/"
        params: dict[str, str | list[str]] = {
            "project": ids,
            "query": "is:unresolved",
            "statsPeriod": PERIOD,
            "groupStatsPeriod": PERIOD,
            "sort": "freq",
            "limit": str(PAGE_SIZE),
        }
        return [_issue(item) for item in self._pages(path, params, "event:read")]

    def latest_event(self, issue_id: str) -> SentryEvent | None:
        path = f"/api/0/organizations/{self.organization}/issues/{issue_id}/events/latest/"
        try:
            document = self._get(path, {}, "event:read")[0]
        except SentryError as exc:
            if exc.status == 404:  # the issue exists but its events have aged out
                return None
            raise
        return _event(document, issue_id)

    def incidents(self, projects: Sequence[str] = ()) -> list[Incident]:
        return [Incident(i, self.latest_event(i.id)) for i in self.unresolved_issues(projects)]

    # -- transport -----------------------------------------------------------------------

    def _pages(
        self, path: str, params: Mapping[str, str | list[str]], scope: str
    ) -> Iterator[Json]:
        query: dict[str, str | list[str]] = dict(params)
        while True:
            document, response = self._get(path, query, scope)
            if not isinstance(document, list):
                raise self._error(
                    f"Sentry answered GET {path} with {type(document).__name__}, not a list",
                    "is sentry.base_url a Sentry server?",
                    response.status_code,
                    path,
                )
            yield from document
            cursor = _next_cursor(response)
            if cursor is None:
                return
            # Only the cursor is taken from the link, never its address: a proxy or a
            # misconfigured host naming another server must not receive the token.
            query["cursor"] = cursor

    def _get(
        self, path: str, params: Mapping[str, str | list[str]], scope: str
    ) -> tuple[Json, requests.Response]:
        full = self.base_url + path
        endpoint = path
        waited = 0.0
        for attempt in range(self.retries + 1):
            waited += self._wait_for_window(waited)
            try:
                response = self._http.get(
                    full, params=params, headers=self._headers, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = _Problem(
                    self._error(
                        f"could not reach Sentry at {urlsplit(self.base_url).netloc} for GET "
                        f"{endpoint} ({type(exc).__name__}) after {self.retries + 1} tries",
                        "check the network and sentry.base_url",
                        None,
                        endpoint,
                    ),
                    transient=True,
                )
            else:
                self._note_window(response)
                if response.ok:
                    try:
                        return response.json(), response
                    except ValueError:
                        raise self._error(
                            f"Sentry answered GET {endpoint} with something that is not JSON",
                            "is sentry.base_url a Sentry server?",
                            response.status_code,
                            endpoint,
                        ) from None
                problem = self._judge(response, endpoint, scope)
            if not problem.transient or attempt == self.retries:
                raise problem.error
            delay = problem.wait_s
            if delay is None:
                delay = retrying.backoff(self.backoff_s, attempt)
            if waited + delay > self.max_wait_s:
                raise problem.error
            self._sleep(delay)
            waited += delay
        raise AssertionError("unreachable: the last attempt raises")

    def _note_window(self, response: requests.Response) -> None:
        remaining = response.headers.get("X-Sentry-Rate-Limit-Remaining")
        reset = retrying.seconds(response.headers.get("X-Sentry-Rate-Limit-Reset"))
        self._reset_at = reset if remaining == "0" and reset is not None else None

    def _wait_for_window(self, waited: float) -> float:
        """Sleep out a used-up rate-limit window when it ends within the wait budget;
        how long was slept."""
        if self._reset_at is None:
            return 0.0
        delay = self._reset_at - self._clock()
        self._reset_at = None
        if delay <= 0 or waited + delay > self.max_wait_s:
            return 0.0  # past, or too far off: ask anyway and let a 429 say so
        self._sleep(delay)
        return delay

    def _judge(self, response: requests.Response, endpoint: str, scope: str) -> _Problem:
        status = response.status_code
        detail = _detail(response)
        said = f": {detail}" if detail else ""
        where = f"GET {endpoint}"
        if status == 429:
            wait = retrying.retry_after(response.headers.get("Retry-After"), self._clock)
            if wait is None:
                reset = retrying.seconds(response.headers.get("X-Sentry-Rate-Limit-Reset"))
                wait = max(0.0, reset - self._clock()) if reset is not None else None
            return _Problem(
                self._error(
                    f"Sentry's rate limit stopped {where} (429{said})",
                    "too many requests in a short time; run the command again in a minute",
                    status,
                    endpoint,
                ),
                transient=True,
                wait_s=wait,
            )
        if status >= 500:
            return _Problem(
                self._error(
                    f"Sentry failed {where} ({status}{said}) after {self.retries + 1} tries",
                    "Sentry may be having an outage (https://status.sentry.io); run the "
                    "command again later",
                    status,
                    endpoint,
                ),
                transient=True,
            )
        if status == 401:
            source = self._source or "the Sentry token"
            hint = f"{source} is missing, expired or wrong: set it to a valid token"
        elif status == 403:
            hint = f"the token needs the `{scope}` scope in organization {self.organization}"
        elif status == 404:
            hint = (
                f"check sentry.organization ({self.organization}) and sentry.projects, "
                f"and sentry.base_url ({self.base_url})"
            )
        else:
            hint = "run again with --verbose to see the request"
        return _Problem(
            self._error(f"Sentry answered {status} to {where}{said}", hint, status, endpoint),
            transient=False,
        )

    def _error(self, message: str, hint: str, status: int | None, endpoint: str) -> SentryError:
        return SentryError(
            self._scrub(message), hint=self._scrub(hint), status=status, endpoint=endpoint
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***")


# -- parsing Sentry's documents -----------------------------------------------------------


def _next_cursor(response: requests.Response) -> str | None:
    """The cursor of the `rel="next"` link while Sentry says it has results."""
    header = response.headers.get("Link", "")
    for link in requests.utils.parse_header_links(header) if header else ():
        if link.get("rel") == "next" and link.get("results") == "true":
            cursor = link.get("cursor")
            if not cursor:
                values = parse_qs(urlsplit(link.get("url", "")).query).get("cursor")
                cursor = values[0] if values else None
            return cursor or None
    return None


def _detail(response: requests.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        document = None
    text = document.get("detail") if isinstance(document, dict) else None
    if not isinstance(text, str):
        return ""
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:199] + "…"


def _int(value: Any) -> int:
    # Sentry sends `count` as a string and `userCount` as either.
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _issue(item: Json) -> SentryIssue:
    stats = item.get("stats") or {}
    buckets = stats.get(PERIOD) if isinstance(stats, dict) else None
    hourly = tuple(_int(b[1]) for b in buckets or () if isinstance(b, list) and len(b) == 2)
    project = item.get("project") or {}
    return SentryIssue(
        id=str(item.get("id", "")),
        short_id=str(item.get("shortId", "")),
        title=str(item.get("title", "")),
        culprit=str(item.get("culprit") or ""),
        level=str(item.get("level") or "error"),
        status=str(item.get("status") or ""),
        project=str(project.get("slug", "")) if isinstance(project, dict) else "",
        count=_int(item.get("count")),
        user_count=_int(item.get("userCount")),
        first_seen=_time(item.get("firstSeen")),
        last_seen=_time(item.get("lastSeen")),
        permalink=str(item.get("permalink") or ""),
        hourly=hourly,
        unhandled=bool(item.get("isUnhandled")),
    )


def _frame(raw: Json) -> Frame:
    context = raw.get("context") or []
    line = _int(raw.get("lineNo")) or None
    source = next(
        (text for number, text in context if number == line and isinstance(text, str)), None
    )
    return Frame(
        filename=_str(raw.get("filename")),
        abs_path=_str(raw.get("absPath")),
        function=_str(raw.get("function")),
        module=_str(raw.get("module")),
        lineno=line,
        in_app=bool(raw.get("inApp")),
        context_line=source,
    )


def _exception(raw: Json) -> ExceptionInfo:
    stacktrace = raw.get("stacktrace") or {}
    mechanism = raw.get("mechanism") or {}
    handled = mechanism.get("handled") if isinstance(mechanism, dict) else None
    return ExceptionInfo(
        type=str(raw.get("type") or "Error"),
        value=str(raw.get("value") or ""),
        module=_str(raw.get("module")),
        handled=handled if isinstance(handled, bool) else None,
        frames=tuple(_frame(f) for f in stacktrace.get("frames") or () if isinstance(f, dict)),
    )


def _request(data: Json) -> RequestInfo:
    headers = data.get("headers") or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return RequestInfo(
        method=_str(data.get("method")),
        url=_str(data.get("url")),
        query=_query(data.get("query")),
        headers=tuple((str(k), str(v)) for k, v in pairs if k is not None),
        data=data.get("data"),
    )


def _query(value: Any) -> str | None:
    if isinstance(value, list):  # the API's [[name, value], …]
        return "&".join(f"{k}={v}" for k, v in value)
    return _str(value)


def _event(document: Json, issue_id: str) -> SentryEvent:
    exceptions: tuple[ExceptionInfo, ...] = ()
    request: RequestInfo | None = None
    crumbs: tuple[Breadcrumb, ...] = ()
    for entry in document.get("entries") or ():
        kind, data = entry.get("type"), entry.get("data") or {}
        if kind == "exception":
            values = data.get("values") or ([data["value"]] if data.get("value") else [])
            exceptions = tuple(_exception(v) for v in values if isinstance(v, dict))
        elif kind == "request":
            request = _request(data)
        elif kind == "breadcrumbs":
            crumbs = tuple(
                Breadcrumb(
                    timestamp=_str(c.get("timestamp")),
                    category=_str(c.get("category")),
                    level=_str(c.get("level")),
                    message=_str(c.get("message")),
                    data=_mapping(c.get("data")),
                )
                for c in data.get("values") or ()
                if isinstance(c, dict)
            )
    tags = tuple(
        (str(t.get("key")), str(t.get("value")))
        for t in document.get("tags") or ()
        if isinstance(t, dict)
    )
    return SentryEvent(
        event_id=str(document.get("eventID") or document.get("id") or ""),
        issue_id=str(document.get("groupID") or issue_id),
        title=str(document.get("title") or ""),
        message=str(document.get("message") or ""),
        level=str(document.get("level") or _tag(tags, "level") or "error"),
        platform=_str(document.get("platform")),
        date_created=_time(document.get("dateCreated")),
        exceptions=exceptions,
        tags=tags,
        request=request,
        breadcrumbs=crumbs,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _tag(tags: Sequence[tuple[str, str]], key: str) -> str | None:
    return next((v for k, v in tags if k == key), None)
