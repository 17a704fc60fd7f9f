"""A bare repository served over git's smart HTTP on 127.0.0.1, behind a token: the
`origin` of tests that check how a token reaches `git push`.

Each request runs the real `git http-backend` (a CGI program). The server lets a request
through only with the header GitHub takes from git, `Authorization: Basic
base64(x-access-token:<token>)`; anything else gets 401, as GitHub answers, so a push
that did not carry the token fails. Fetches need it too (a private repository).

    with GitHttpServer(bare_repo, token="t0k") as server:
        url = server.url   # http://127.0.0.1:PORT/origin.git
"""

from __future__ import annotations

import base64
import shlex
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from agentloop import proc


class GitHttpServer:
    def __init__(self, bare: Path, *, token: str) -> None:
        self.bare = bare.resolve()
        self.token = token
        self.refused = 0  # requests turned away for a missing or wrong token
        self.served = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GitHttpServer:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "use GitHttpServer as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.bare.name}"

    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        parts = (header or "").split()
        return len(parts) == 2 and parts[0].lower() == "basic" and parts[1] == expected


def _dechunk(read: Any) -> bytes:
    data = b""
    while True:
        size = int(read.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            read.readline()
            return data
        data += read.read(size)
        read.readline()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        owner = self.server.owner
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _dechunk(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not owner.authorized(self.headers.get("Authorization")):
            owner.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        owner.served += 1
        parts = urlsplit(self.path)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(owner.bare.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            # receive-pack answers only an authenticated user (http.receivepack unset).
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        with tempfile.TemporaryDirectory(prefix="agentloop-git-http-") as tmp:
            given, taken = Path(tmp) / "in", Path(tmp) / "out"
            given.write_bytes(body)
            # Through files: proc.run decodes output as text, a pack is bytes.
            proc.run(
                f"git http-backend < {shlex.quote(str(given))} > {shlex.quote(str(taken))}",
                cwd=owner.bare,
                env=env,
                timeout=120,
            )
            out = taken.read_bytes()
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: GitHttpServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)
