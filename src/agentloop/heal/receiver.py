"""`agentloop serve`'s machinery: an HTTP receiver for Sentry and GitHub webhooks and the
dispatcher that turns a stored Sentry alert into a `repository_dispatch` (or a local job).

The receiver (stdlib `ThreadingHTTPServer`: two POST routes and no framework's worth of
routing, templating or middleware; one thread per connection is plenty for webhook
traffic, and it adds no dependency to a package users install) answers each delivery:

    POST /sentry, /github
    no or bad Content-Length → 411 / 400;  over `max_body` → 413, the body left unread
    signature missing or wrong → 401;  no usable delivery id or JSON → 400
    a replay (same delivery id, or the same signed body again) → 200 "duplicate"
    a Sentry alert → stored (committed) → 202 "accepted", the dispatcher woken
    a GitHub issue assigned/labelled → stored with the acknowledgement → 202 "recorded"
    anything else signed → stored (for replays) → 200 "ignored"

Nothing of a request reaches a log: no header (they carry signatures), no body. Secrets
are held in `Secrets`, whose repr hides them, and are never part of an answer.

The dispatcher is one background thread (GitHub asks integrations to send their writes
one at a time): it claims the oldest due delivery from the inbox (marked dispatching and
committed first), sends it, and marks it done, retrying transient failures later with
backoff. heal/inbox.py documents the crash point and the at-least-once choice there.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol

from agentloop.errors import AgentloopError, ServiceError
from agentloop.heal.inbox import Delivery, Inbox, Target
from agentloop.integrations import webhooks
from agentloop.integrations.webhooks import Acknowledgement, SentryAlert, Source

DEFAULT_MAX_BODY = 1024 * 1024  # Sentry's issue alert carries the whole event: ~10-200 KB
EVENT_TYPE = "sentry-issue"
ROUTES: Mapping[str, Source] = {"/sentry": "sentry", "/github": "github"}
_SIGNATURE_HEADER: Mapping[Source, str] = {
    "sentry": "sentry-hook-signature",
    "github": "x-hub-signature-256",
}


class Dispatcher(Protocol):
    """What sends a repository_dispatch (integrations.github.GitHub is one)."""

    def dispatch(self, event_type: str, client_payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, repr=False)
class Secrets:
    """The webhook secrets: Sentry's integration client secret, GitHub's webhook secret.
    A route whose secret is None is not served (404)."""

    sentry: str | None
    github: str | None

    def __repr__(self) -> str:
        shown = {
            k: "***" if v else None for k, v in (("sentry", self.sentry), ("github", self.github))
        }
        return f"Secrets({shown})"

    def of(self, source: Source) -> str | None:
        return self.sentry if source == "sentry" else self.github


Kind = Literal[
    "accepted",
    "recorded",
    "ignored",
    "duplicate",
    "rejected",
    "dispatched",
    "queued",
    "retrying",
    "failed",
    "recovered",
]


@dataclass(frozen=True)
class ServeEvent:
    """One line of the receiver's progress: a delivery received (with the HTTP status
    answered) or dispatched. `detail` is ours (never text from the request)."""

    kind: Kind
    source: str
    delivery_id: str | None
    status: int | None = None
    detail: str = ""
    issue: str | None = None  # the Sentry issue (short id, else id)


def client_payload(delivery: Delivery) -> dict[str, str]:
    """Ids only: the workflow validates each and passes them through env, never into an
    expression of a `run:` line. `delivery` lets it dedupe a re-sent dispatch."""
    payload = {
        "source": delivery.source,
        "delivery": delivery.delivery_id,
        "issue_id": delivery.issue_id,
    }
    if delivery.short_id:
        payload["short_id"] = delivery.short_id
    return payload


def _transient(exc: AgentloopError) -> bool:
    return isinstance(exc, ServiceError) and (
        exc.status is None or exc.status >= 500 or exc.status == 429
    )


class Receiver:
    """The receiver and its dispatcher, between `start()` and `stop()`."""

    def __init__(
        self,
        inbox: Inbox,
        *,
        secrets: Secrets,
        target: Target,
        dispatcher: Dispatcher | None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = DEFAULT_MAX_BODY,
        on_event: Callable[[ServeEvent], None] = lambda event: None,
        event_type: str = EVENT_TYPE,
        max_attempts: int = 10,
        retry_base_s: float = 5.0,
        read_timeout_s: float = 10.0,
    ) -> None:
        if target == "github" and dispatcher is None:
            raise ValueError("dispatching to GitHub needs a dispatcher")
        self.inbox = inbox
        self.secrets = secrets
        self.target: Target = target
        self.dispatcher = dispatcher
        self.max_body = max_body
        self.event_type = event_type
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self._emit = on_event
        self._host, self._port = host, port
        self._read_timeout = read_timeout_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self.recovered = 0
        self.pending_at_start = 0

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        # Before the first delivery: what a crash left mid-dispatch goes out again.
        self.recovered = self.inbox.recover()
        self.pending_at_start = self.inbox.counts().pending
        if self.recovered:
            self._emit(ServeEvent("recovered", "sentry", None, detail=str(self.recovered)))
        self._server = _Server((self._host, self._port), self, self._read_timeout)
        serving = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="serve-http",
            daemon=True,
        )
        dispatching = threading.Thread(
            target=self._dispatch_loop, name="serve-dispatch", daemon=True
        )
        self._threads = [serving, dispatching]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop answering, let a dispatch in flight finish (a dispatch cut short by the
        timeout is sent again at the next start)."""
        self._stopping.set()
        self._wake.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=timeout_s)

    # -- receiving -------------------------------------------------------------------------

    def receive(
        self, path: str, headers: Mapping[str, str], read: Callable[[int], bytes]
    ) -> tuple[int, str]:
        """Answer one POST: (status, our one-word verdict). `headers` lower-cased; `read`
        is called at most once, only with a length within the limit."""
        source = ROUTES.get(path.split("?", 1)[0])
        if source is None:
            return 404, "not found"
        secret = self.secrets.of(source)
        if not secret:
            return 404, f"no {source} secret configured"
        if "transfer-encoding" in headers:
            return 411, "length required"
        raw = headers.get("content-length")
        if raw is None:
            return 411, "length required"
        try:
            length = int(raw.strip())
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            return 400, "bad content-length"
        if length > self.max_body:
            self._emit(ServeEvent("rejected", source, None, 413, f"{length} bytes"))
            return 413, "too large"
        body = read(length)
        if len(body) != length:
            return 400, "truncated body"
        if not webhooks.verify(source, secret, body, headers.get(_SIGNATURE_HEADER[source])):
            self._emit(ServeEvent("rejected", source, None, 401, "bad or missing signature"))
            return 401, "bad signature"
        delivery = webhooks.delivery_id(source, headers)
        if delivery is None:
            return 400, "no delivery id"
        try:
            meaning = webhooks.meaning(source, headers, json.loads(body))
        except (ValueError, RecursionError) as exc:  # PayloadError, JSONDecodeError
            detail = str(exc) if isinstance(exc, webhooks.PayloadError) else "not JSON"
            self._emit(ServeEvent("rejected", source, delivery, 400, detail))
            return 400, "bad payload"
        kept = meaning if isinstance(meaning, SentryAlert | Acknowledgement) else None
        ignored = meaning.what if isinstance(meaning, webhooks.Ignored) else ""
        accepted = self.inbox.accept(
            source,
            delivery,
            hashlib.sha256(body).hexdigest(),
            kept,
            target=self.target,
            ignored=ignored,
        )
        if not accepted.new:
            self._emit(ServeEvent("duplicate", source, delivery, 200))
            return 200, "duplicate"
        if isinstance(meaning, SentryAlert):
            self._wake.set()
            issue = meaning.short_id or meaning.issue_id
            self._emit(ServeEvent("accepted", source, delivery, 202, issue=issue))
            return 202, "accepted"
        if isinstance(meaning, Acknowledgement):
            what = f"{meaning.repo}#{meaning.issue_number} {meaning.action}"
            self._emit(ServeEvent("recorded", source, delivery, 202, what))
            return 202, "recorded"
        self._emit(ServeEvent("ignored", source, delivery, 200, ignored))
        return 200, "ignored"

    def failure(self, exc: Exception) -> None:
        """A delivery that could not be stored: answered 500, so the sender retries."""
        self._emit(ServeEvent("rejected", "-", None, 500, f"internal error: {type(exc).__name__}"))

    # -- dispatching -----------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            # Cleared before the claim: a delivery stored after it sets it again.
            self._wake.clear()
            try:
                delivery = self.inbox.claim()
                if delivery is None:
                    due = self.inbox.next_due()
                    wait = 1.0 if due is None else min(max(due - time.time(), 0.0), 1.0)
                    self._wake.wait(wait)
                    continue
                self._dispatch_one(delivery)
            except Exception as exc:  # the inbox's disk: say so, keep draining
                detail = f"the inbox failed: {type(exc).__name__}"
                self._emit(ServeEvent("failed", "-", None, detail=detail))
                self._stopping.wait(1.0)

    def _dispatch_one(self, delivery: Delivery) -> None:
        issue = delivery.short_id or delivery.issue_id
        event = ServeEvent("dispatched", delivery.source, delivery.delivery_id, issue=issue)
        try:
            if delivery.target == "local":
                self.inbox.queue_local(delivery)
                self._emit(ServeEvent("queued", delivery.source, delivery.delivery_id, issue=issue))
                return
            assert self.dispatcher is not None
            self.dispatcher.dispatch(self.event_type, client_payload(delivery))
        except AgentloopError as exc:
            message = f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message
            if _transient(exc) and delivery.attempts < self.max_attempts:
                delay = min(self.retry_base_s * 2 ** (delivery.attempts - 1), 300.0)
                self.inbox.retry(delivery, message, delay)
                self._emit(
                    ServeEvent(
                        "retrying",
                        delivery.source,
                        delivery.delivery_id,
                        detail=f"in {delay:.0f}s: {message}",
                        issue=issue,
                    )
                )
            else:
                self.inbox.failed(delivery, message)
                self._emit(
                    ServeEvent(
                        "failed", delivery.source, delivery.delivery_id, detail=message, issue=issue
                    )
                )
            return
        except Exception as exc:  # a bug must not kill the thread that drains the inbox
            self.inbox.failed(delivery, f"internal error: {type(exc).__name__}")
            self._emit(
                ServeEvent(
                    "failed",
                    delivery.source,
                    delivery.delivery_id,
                    detail=f"internal error: {type(exc).__name__}",
                    issue=issue,
                )
            )
            return
        self.inbox.done(delivery)
        if delivery.recovered:
            event = ServeEvent(
                "dispatched",
                delivery.source,
                delivery.delivery_id,
                detail="sent again: a crash interrupted its first dispatch",
                issue=issue,
            )
        self._emit(event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # http.server would log request lines to stderr; the receiver reports its own.
        return

    def do_POST(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, verdict = self.server.receiver.receive(self.path, headers, self.rfile.read)
        except TimeoutError:
            status, verdict = 408, "request timeout"
        except Exception as exc:  # a bug, or the inbox's disk: not stored, so not 2xx
            self.server.receiver.failure(exc)
            status, verdict = 500, "internal error"
        # An answer before the body was read (or of a broken request) ends the connection:
        # the unread rest must not be taken for the next request.
        closing = status >= 400
        self._answer(status, verdict, closing)

    def _refuse(self) -> None:
        self._answer(405, "method not allowed", True)

    do_GET = do_PUT = do_PATCH = do_DELETE = _refuse

    def _answer(self, status: int, verdict: str, closing: bool) -> None:
        data = json.dumps({"status": verdict}).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if closing:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: Receiver, timeout_s: float) -> None:
        self.receiver = receiver
        # A sender that stalls mid-request holds a thread: the socket's timeout frees it.
        handler = type("_TimedHandler", (_Handler,), {"timeout": timeout_s})
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that hangs up or times out is routine; never print a traceback that
        # could carry a request's headers.
        return
