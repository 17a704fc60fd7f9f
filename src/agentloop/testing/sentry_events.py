"""Real Sentry events, made offline: the fixture shop (testing/sentry_app) raises, sentry-sdk
captures the exception as it would in production, and a custom Transport keeps the envelope
instead of sending it. What comes back is the SDK's event exactly as it would reach Sentry's
ingest; fake_sentry.api_event turns it into the REST API's shape.

    event = capture("checkout", {"items": [{"price": 3}]}, request=post("/checkout", ...))

sentry-sdk is a test dependency (the `dev` extra): agentloop itself never reports to Sentry.
No global state is touched: each capture uses its own Client in an isolation scope, so the
SDK's excepthook and integrations are never installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from agentloop.testing.sentry_app.shop import views

APP_ROOT = Path(__file__).resolve().parent / "sentry_app"
# Never resolved: the custom transport sends nothing.
DSN = "https://public@o0.ingest.invalid/1"


class _Keep(Transport):
    """Keeps every envelope; sends nothing."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(dict(options) if options is not None else None)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


def post(
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    cookies: str | None = None,
    client_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """The request context a web framework's integration attaches to an event."""
    sent = {"Content-Type": "application/json", "Host": "shop.example.com", **(headers or {})}
    context: dict[str, Any] = {
        "method": "POST",
        "url": f"https://shop.example.com{path}",
        "query_string": "",
        "headers": sent,
        "data": dict(body),
        "env": {"REMOTE_ADDR": client_ip},
    }
    if cookies is not None:
        context["cookies"] = cookies
    return context


def capture(
    view: str,
    body: Mapping[str, Any],
    *,
    request: Mapping[str, Any] | None = None,
    handled: bool = True,
    level: str | None = None,
    tags: Mapping[str, str] | None = None,
    breadcrumbs: Sequence[Mapping[str, Any]] = (),
    user: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Call `views.<view>(body)`, which must raise, and return the event sentry-sdk made of
    it. `handled=False` marks it as a web framework's integration marks an exception that
    escaped the request (mechanism.handled false: a crash)."""
    handler = getattr(views, view)
    transport = _Keep()
    client = sentry_sdk.Client(
        dsn=DSN,
        transport=transport,
        default_integrations=False,
        project_root=str(APP_ROOT),
        release="shop@1.4.2",
        environment="production",
        server_name="web-1",
    )
    with sentry_sdk.isolation_scope() as scope:
        scope.set_client(client)
        for key, value in (tags or {}).items():
            scope.set_tag(key, value)
        for crumb in breadcrumbs:
            scope.add_breadcrumb(dict(crumb))
        if user is not None:
            scope.set_user(dict(user))
        if level is not None:
            scope.set_level(level)  # type: ignore[arg-type]
        if request is not None:
            context = dict(request)

            def add_request(event: Any, _hint: Any) -> Any:
                event["request"] = context
                return event

            scope.add_event_processor(add_request)
        try:
            handler(dict(body))
        except Exception as error:
            if handled:
                scope.capture_exception(error)
            else:
                exc_info = (type(error), error, error.__traceback__)
                event, hint = sentry_sdk.utils.event_from_exception(
                    exc_info,
                    client_options=client.options,
                    mechanism={"type": "wsgi", "handled": False},
                )
                scope.capture_event(event, hint=hint)
        else:
            raise AssertionError(f"views.{view} raised nothing for {dict(body)!r}")
    client.flush(timeout=1)
    client.close(timeout=1)
    events = [item.payload.json for env in transport.envelopes for item in env.items]
    found = [e for e in events if isinstance(e, dict) and "exception" in e]
    if len(found) != 1:
        raise AssertionError(f"sentry-sdk sent {len(found)} events, not one")
    return found[0]
