"""A fake Sentry REST API on 127.0.0.1, for tests (ours and users').

It answers the endpoints integrations/sentry.py calls the way sentry.io does: the projects
and the unresolved issues of an organization, paged with `Link` cursors (`results="true"`
or `"false"`), and an issue's latest event, with the X-Sentry-Rate-Limit-* headers on every
answer and 401 without the right bearer token. Its events are real: `add_event` takes what
sentry-sdk produced (testing/sentry_events.capture) and serves it in the API's shape
(`api_event`), so a test reads exactly what a user's Sentry would hold.

    with FakeSentry(token=TOKEN) as fake:
        fake.add_event(capture("checkout", {...}), count=12)
        client = Sentry("acme", TOKEN, base_url=fake.url)
        client.unresolved_issues(["shop"])

`fail()` answers a request with an error status (and headers, e.g. Retry-After), and
`disconnect()` drops the connection without an answer.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from agentloop.testing.loopback import Serving, root_url

Json = Any
RATE_LIMIT = 40


@dataclass(frozen=True)
class Request:
    """One request as the fake received it: header names lower case, each query parameter
    with all its values."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]


@dataclass
class _Failure:
    pattern: re.Pattern[str]
    status: int  # 0: drop the connection
    body: Json
    headers: Mapping[str, str]
    times: int | None


@dataclass
class _Issue:
    id: str
    short_id: str
    project: str
    event: dict[str, Any]  # the latest, in the API's shape
    count: int
    hourly: list[int]
    status: str = "unresolved"
    first_seen: str = ""
    last_seen: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _camel_frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    line = frame.get("lineno")
    context: list[list[Any]] = []
    if isinstance(line, int):
        before = list(frame.get("pre_context") or ())
        after = list(frame.get("post_context") or ())
        start = line - len(before)
        context = [[start + i, text] for i, text in enumerate(before)]
        if "context_line" in frame:
            context.append([line, frame["context_line"]])
        context += [[line + 1 + i, text] for i, text in enumerate(after)]
    return {
        "filename": frame.get("filename"),
        "absPath": frame.get("abs_path"),
        "module": frame.get("module"),
        "package": frame.get("package"),
        "platform": frame.get("platform"),
        "function": frame.get("function"),
        "rawFunction": None,
        "lineNo": line,
        "colNo": frame.get("colno"),
        # The SDK leaves in_app unset for frames outside the project; Sentry stores false.
        "inApp": bool(frame.get("in_app")),
        "context": context,
        "vars": frame.get("vars") or {},
        "trust": None,
        "errors": None,
    }


def _title(exc: Mapping[str, Any]) -> str:
    value = str(exc.get("value") or "")
    return f"{exc.get('type')}: {value}" if value else str(exc.get("type"))


def api_event(sdk_event: Mapping[str, Any], *, issue_id: str, project_id: str) -> dict[str, Any]:
    """sentry-sdk's event as Sentry's REST API returns it (issues/{id}/events/latest/):
    `entries` of exception (camelCase frames), request and breadcrumbs; tags as key/value
    pairs."""
    values = [dict(v) for v in (sdk_event.get("exception") or {}).get("values") or ()]
    for value in values:
        frames = (value.get("stacktrace") or {}).get("frames") or ()
        value["stacktrace"] = {
            "frames": [_camel_frame(f) for f in frames],
            "framesOmitted": None,
            "registers": None,
            "hasSystemFrames": any(not f.get("in_app") for f in frames),
        }
        value.setdefault("threadId", None)
        value["rawStacktrace"] = None
    entries: list[dict[str, Any]] = []
    if values:
        entries.append({"type": "exception", "data": {"values": values, "hasSystemFrames": True}})
    request = sdk_event.get("request")
    if isinstance(request, Mapping):
        headers = request.get("headers") or {}
        entries.append(
            {
                "type": "request",
                "data": {
                    "method": request.get("method"),
                    "url": request.get("url"),
                    "query": [
                        [k, v]
                        for k, vs in parse_qs(request.get("query_string") or "").items()
                        for v in vs
                    ],
                    "fragment": None,
                    "data": request.get("data"),
                    "headers": [[k, v] for k, v in headers.items()],
                    "cookies": request.get("cookies"),
                    "env": request.get("env"),
                    "inferredContentType": headers.get("Content-Type"),
                },
            }
        )
    crumbs = (sdk_event.get("breadcrumbs") or {}).get("values") or ()
    if crumbs:
        entries.append(
            {
                "type": "breadcrumbs",
                "data": {
                    "values": [
                        {
                            "type": c.get("type", "default"),
                            "timestamp": c.get("timestamp"),
                            "level": c.get("level", "info"),
                            "category": c.get("category"),
                            "message": c.get("message"),
                            "data": c.get("data"),
                            "event_id": None,
                        }
                        for c in crumbs
                    ]
                },
            }
        )
    crash = values[-1] if values else {}
    frames = (crash.get("stacktrace") or {}).get("frames") or []
    culprit_frame = next((f for f in reversed(frames) if f["inApp"]), frames[-1] if frames else {})
    tags = dict(sdk_event.get("tags") or {})
    tags.setdefault("level", sdk_event.get("level", "error"))
    for key in ("environment", "release", "server_name"):
        if sdk_event.get(key):
            tags.setdefault(key, sdk_event[key])
    if crash.get("mechanism"):
        tags.setdefault("handled", "yes" if crash["mechanism"].get("handled") else "no")
        tags.setdefault("mechanism", crash["mechanism"].get("type"))
    return {
        "id": sdk_event["event_id"],
        "eventID": sdk_event["event_id"],
        "groupID": issue_id,
        "projectID": project_id,
        "title": _title(crash) if crash else str(sdk_event.get("message") or ""),
        "message": str(sdk_event.get("message") or ""),
        "culprit": (
            f"{culprit_frame.get('module')} in {culprit_frame.get('function')}"
            if culprit_frame
            else ""
        ),
        "platform": sdk_event.get("platform", "python"),
        "type": "error",
        "level": sdk_event.get("level", "error"),
        "dateCreated": sdk_event.get("timestamp"),
        "dateReceived": sdk_event.get("timestamp"),
        "release": {"version": sdk_event.get("release")} if sdk_event.get("release") else None,
        "tags": [{"key": k, "value": str(v)} for k, v in sorted(tags.items())],
        "user": sdk_event.get("user"),
        "contexts": sdk_event.get("contexts") or {},
        "sdk": sdk_event.get("sdk"),
        "fingerprints": [],
        "errors": [],
        "entries": entries,
        "metadata": {
            "type": crash.get("type"),
            "value": crash.get("value"),
            "filename": culprit_frame.get("filename"),
            "function": culprit_frame.get("function"),
        },
    }


class FakeSentry:
    """The fake API on an ephemeral 127.0.0.1 port while the context is open."""

    def __init__(
        self,
        *,
        token: str,
        organization: str = "acme",
        projects: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> None:
        self.token = token
        self.organization = organization
        self.projects = dict(projects or {"shop": "4501"})  # slug → id
        self.page_size = page_size
        self._lock = threading.RLock()
        self._issues: dict[str, _Issue] = {}
        self._failures: list[_Failure] = []
        self._requests: list[Request] = []
        self._ids = itertools.count(6000001)
        self._serving: Serving[_Server] | None = None
        # What every answer's X-Sentry-Rate-Limit-Remaining / -Reset say (reset None: a
        # second from now).
        self.rate_limit_remaining = RATE_LIMIT - 1
        self.rate_limit_reset: int | None = None
        self.errors: list[str] = []

    def __enter__(self) -> FakeSentry:
        self._serving = Serving(_Server(self), poll_interval=0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None
        if exc is None and self.errors:
            raise AssertionError("the fake Sentry failed:\n" + "\n".join(self.errors))

    @property
    def url(self) -> str:
        """The server's root: agentloop's `sentry.base_url`."""
        return root_url(self._serving, "FakeSentry")

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_regex: str) -> list[Request]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if pattern.fullmatch(r.path)]

    # -- setup -------------------------------------------------------------------------

    def add_event(
        self,
        sdk_event: Mapping[str, Any],
        *,
        project: str = "shop",
        count: int = 1,
        last_hour: int | None = None,
        hourly: Sequence[int] | None = None,
        issue_id: str | None = None,
        status: str = "unresolved",
    ) -> str:
        """Serve `sdk_event` (sentry-sdk's) as the latest event of a new issue (or of
        `issue_id`). The issue was seen `count` times in the last 24 hours: all in the
        newest hour unless `last_hour` (the newest hour's share) or `hourly` (24 counts,
        oldest first) say otherwise. Returns the issue's id."""
        if hourly is None:
            newest = count if last_hour is None else last_hour
            hourly = [0] * 22 + [count - newest, newest]
        if len(hourly) != 24:
            raise ValueError("hourly: 24 counts, oldest first")
        with self._lock:
            ident = issue_id or str(next(self._ids))
            event = api_event(sdk_event, issue_id=ident, project_id=self.projects[project])
            seen = str(
                sdk_event.get("timestamp") or _iso(datetime.datetime.now(datetime.timezone.utc))
            )
            self._issues[ident] = _Issue(
                id=ident,
                short_id=f"{project.upper()}-{len(self._issues) + 1:X}",
                project=project,
                event=event,
                count=sum(hourly),
                hourly=list(hourly),
                status=status,
                first_seen=seen,
                last_seen=seen,
            )
            return ident

    def fail(
        self,
        path_regex: str,
        status: int,
        *,
        body: Json = None,
        headers: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` GETs (None: all) whose path matches `path_regex` in full
        with `status`, `body` (default {"detail": …}) and `headers` (which override the
        rate-limit headers)."""
        document = body if body is not None else {"detail": f"fake failure {status}"}
        with self._lock:
            self._failures.append(
                _Failure(re.compile(path_regex), status, document, dict(headers or {}), times)
            )

    def disconnect(self, path_regex: str, times: int | None = 1) -> None:
        with self._lock:
            self._failures.append(_Failure(re.compile(path_regex), 0, None, {}, times))

    # -- answering -----------------------------------------------------------------------

    def _failure_for(self, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.times != 0 and failure.pattern.fullmatch(path):
                    if failure.times is not None:
                        failure.times -= 1
                    return failure
        return None

    def _rate_headers(self) -> dict[str, str]:
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        return {
            "X-Sentry-Rate-Limit-Limit": str(RATE_LIMIT),
            "X-Sentry-Rate-Limit-Remaining": str(self.rate_limit_remaining),
            "X-Sentry-Rate-Limit-Reset": str(
                self.rate_limit_reset if self.rate_limit_reset is not None else int(now) + 1
            ),
            "X-Sentry-Rate-Limit-ConcurrentLimit": "25",
            "X-Sentry-Rate-Limit-ConcurrentRemaining": "24",
        }

    def _route(self, path: str, query: Mapping[str, list[str]]) -> tuple[int, Json, str | None]:
        org = re.escape(self.organization)
        if re.fullmatch(rf"/api/0/organizations/{org}/projects/", path):
            items = [
                {"id": pid, "slug": slug, "name": slug.title(), "platform": "python"}
                for slug, pid in self.projects.items()
            ]
            return self._page(path, query, items)
        if re.fullmatch(rf"/api/0/organizations/{org}/issues/", path):
            wanted = set(query.get("project", ["-1"]))
            by_id = {pid: slug for slug, pid in self.projects.items()}
            status = "unresolved" if "is:unresolved" in query.get("query", [""])[0] else None
            with self._lock:
                issues = [
                    i
                    for i in self._issues.values()
                    if ("-1" in wanted or self.projects[i.project] in wanted)
                    and (status is None or i.status == status)
                    and sum(i.hourly) > 0
                ]
            issues.sort(key=lambda i: -i.count)
            return self._page(path, query, [self._issue_doc(i, by_id) for i in issues])
        match = re.fullmatch(rf"/api/0/organizations/{org}/issues/(\d+)/events/latest/", path)
        if match:
            with self._lock:
                issue = self._issues.get(match.group(1))
            if issue is None:
                return 404, {"detail": "The requested resource does not exist"}, None
            return 200, issue.event, None
        return 404, {"detail": "The requested resource does not exist"}, None

    def _issue_doc(self, issue: _Issue, by_id: Mapping[str, str]) -> Json:
        now = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) // 3600 * 3600
        buckets = [[now - 3600 * (23 - i), n] for i, n in enumerate(issue.hourly)]
        event = issue.event
        handled = next((t["value"] for t in event["tags"] if t["key"] == "handled"), "yes")
        return {
            "id": issue.id,
            "shortId": issue.short_id,
            "title": event["title"],
            "culprit": event["culprit"],
            "permalink": f"{self.url}/organizations/{self.organization}/issues/{issue.id}/",
            "logger": None,
            "level": event["level"],
            "status": issue.status,
            "substatus": "ongoing",
            "platform": "python",
            "project": {
                "id": self.projects[issue.project],
                "name": issue.project.title(),
                "slug": issue.project,
                "platform": "python",
            },
            "type": "error",
            "metadata": event["metadata"],
            "numComments": 0,
            "assignedTo": None,
            "isUnhandled": handled == "no",
            "count": str(issue.count),  # a string, as Sentry sends it
            "userCount": 1,
            "firstSeen": issue.first_seen,
            "lastSeen": issue.last_seen,
            "stats": {"24h": buckets},
        }

    def _page(
        self, path: str, query: Mapping[str, list[str]], items: list[Json]
    ) -> tuple[int, Json, str | None]:
        cursor = query.get("cursor", ["0:0:0"])[0]
        try:
            offset = int(cursor.split(":")[1])
        except (IndexError, ValueError):
            return 400, {"detail": f"Invalid cursor parameter: {cursor}"}, None
        limit = min(int(query.get("limit", ["100"])[0]), self.page_size)
        page = items[offset : offset + limit]
        rest = {k: v for k, v in query.items() if k != "cursor"}

        def link(rel: str, at: int, results: bool) -> str:
            cursor = f"0:{at}:{1 if rel == 'previous' else 0}"
            url = f"{self.url}{path}?{urlencode({**rest, 'cursor': [cursor]}, doseq=True)}"
            return f'<{url}>; rel="{rel}"; results="{str(results).lower()}"; cursor="{cursor}"'

        header = ", ".join(
            (
                link("previous", max(0, offset - limit), offset > 0),
                link("next", offset + limit, offset + limit < len(items)),
            )
        )
        return 200, page, header


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Buffered: the headers and the body leave in one segment (written apart, Nagle and the
    # client's delayed ACK hold the body back ~40 ms on every keep-alive request).
    wbufsize = -1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.server.owner
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        request = Request(
            method="GET",
            path=parts.path,
            query={k: tuple(v) for k, v in query.items()},
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        with fake._lock:
            fake._requests.append(request)
        try:
            failure = fake._failure_for(parts.path)
            if failure is not None and failure.status == 0:
                self.close_connection = True
                self.connection.close()
                return
            if failure is not None:
                self._answer(failure.status, failure.body, None, failure.headers)
                return
            if request.headers.get("authorization") != f"Bearer {fake.token}":
                self._answer(401, {"detail": "Invalid token"}, None, {})
                return
            status, body, link = fake._route(parts.path, query)
            self._answer(status, body, link, {})
        except Exception:
            fake.errors.append(traceback.format_exc())
            self._answer(500, {"detail": "the fake failed"}, None, {})

    def _answer(
        self, status: int, body: Json, link: str | None, headers: Mapping[str, str]
    ) -> None:
        data = json.dumps(body).encode()
        sent = {**self.server.owner._rate_headers(), **headers}
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if link is not None:
            self.send_header("Link", link)
        for key, value in sent.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: FakeSentry) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)
