"""A webhook receiver on 127.0.0.1 for tests: records every POST and answers with the
statuses it was told to, in order (then 200), as a Slack incoming webhook or any JSON
webhook would.

    with WebhookSink() as sink:
        sink.answer(500)                              # the first POST fails
        sink.answer(429, {"Retry-After": "7"})        # the second is rate limited
        ...POST to sink.url("/services/T0/B0/secret")
        assert [r.path for r in sink.requests] == [...]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from agentloop.testing.loopback import Serving, root_url


@dataclass(frozen=True)
class Posted:
    path: str
    headers: Mapping[str, str]  # names lower case
    json: Any  # None when the body was not JSON
    status: int  # what the sink answered


class WebhookSink:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: list[tuple[int, Mapping[str, str]]] = []
        self._requests: list[Posted] = []
        self._serving: Serving[ThreadingHTTPServer] | None = None

    def __enter__(self) -> WebhookSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    document = json.loads(body)
                except ValueError:
                    document = None
                with sink._lock:
                    status, headers = sink._answers.pop(0) if sink._answers else (200, {})
                    sink._requests.append(
                        Posted(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            document,
                            status,
                        )
                    )
                data = b"ok" if status < 300 else b"error"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._serving = Serving(httpd)
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

    def url(self, path: str) -> str:
        return root_url(self._serving, "WebhookSink") + path

    def answer(self, status: int, headers: Mapping[str, str] | None = None, times: int = 1) -> None:
        """Answer the next `times` POSTs (after those already queued) with `status`."""
        with self._lock:
            self._answers.extend([(status, dict(headers or {}))] * times)

    @property
    def requests(self) -> list[Posted]:
        with self._lock:
            return list(self._requests)
