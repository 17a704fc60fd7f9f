"""An HTTP server on 127.0.0.1 served from a daemon thread: the one lifecycle the loopback
fakes share (the scripted model, GitHub, Sentry, the webhook sink), so each holds only
what it answers."""

from __future__ import annotations

import threading
from socketserver import TCPServer
from typing import Generic, TypeVar

S = TypeVar("S", bound=TCPServer)


class Serving(Generic[S]):
    """`httpd` served until `stop`; `poll_interval` is how soon `stop` is noticed."""

    def __init__(self, httpd: S, *, poll_interval: float = 0.05) -> None:
        self.httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's root, e.g. http://127.0.0.1:PORT."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def root_url(serving: Serving[S] | None, name: str) -> str:
    """`serving`'s root, or the error of using `name` outside its context."""
    if serving is None:
        raise RuntimeError(f"{name} is not running: use it as a context manager")
    return serving.url
