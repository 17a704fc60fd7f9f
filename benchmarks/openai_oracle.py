"""The benchmark's scripted model as an OpenAI-compatible chat-completions endpoint, for aider.

The same oracle as the Claude Code script in autofix_bench.py, in aider's `diff` edit
format and with the same delay per reply. Aider sends the test output (`/test`, then
`--auto-test` after each edit); the oracle answers about the first failing test it sees:

* its file is not in the chat yet: name the file (aider, with --yes-always, adds it and
  asks again: "I added these files to the chat");
* its file is in the chat: the SEARCH/REPLACE block that fixes it;
* a failure it has no fix for (the flaky test): a sentence, no edit;
* aider's chat summarizer (it uses the same endpoint as its weak model): a sentence.

Only 127.0.0.1; every request is counted. `aider_args`/`aider_env` keep aider offline: no
analytics, no update check, no model-price download, its histories outside the repository,
and any proxy-able request outside 127.0.0.1 sent to a closed port.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from autofix_repo import RootCause

MODEL = "openai/autofix-oracle"
# pytest's short summary, one line per failed test, in the order they ran.
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+?::\S+)", re.M)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


class Oracle:
    """Serve the oracle for `causes` on an ephemeral 127.0.0.1 port while open."""

    def __init__(self, causes: Sequence[RootCause], *, delay: float) -> None:
        self.causes = tuple(causes)
        self.delay = delay
        self.requests = 0
        # What each request ended with and what it got, for a look afterwards.
        self.exchanges: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> Oracle:
        oracle = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = oracle.answer(body.get("messages") or [])
                if oracle.delay and oracle._closing.wait(oracle.delay):
                    return
                if body.get("stream"):
                    self._stream(reply, str(body.get("model", MODEL)))
                else:
                    self._send(200, _completion(reply, str(body.get("model", MODEL))))

            def _send(self, status: int, doc: Any) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
                chunks = [{"role": "assistant", "content": reply}, {}]
                for index, delta in enumerate(chunks):
                    finish = "stop" if index == len(chunks) - 1 else None
                    event = {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }
                    self._chunk(f"data: {json.dumps(event)}\n\n".encode())
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def answer(self, messages: Sequence[Mapping[str, Any]]) -> str:
        with self._lock:
            self.requests += 1
            reply = self._reply(messages)
            latest = next(
                (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
                "",
            )
            self.exchanges.append({"asked": latest[:300], "reply": reply})
            return reply

    def _reply(self, messages: Sequence[Mapping[str, Any]]) -> str:
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        everything = "\n".join(_text(m.get("content")) for m in messages)
        latest = users[-1] if users else ""
        system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
        # aider's chat summarizer (the weak model, here the same endpoint) once the history
        # grows: it wants prose, not an edit.
        if "summarize this partial conversation" in system:
            return "We ran the tests and fixed failing programs one at a time."
        # "I added these files to the chat: X": the file asked for is there now.
        if "I added these files to the chat" in latest:
            for cause in self.causes:
                if cause.path in latest:
                    return _edit(cause)
        # The newest test output in the conversation: its first failure decides.
        outputs = [u for u in users if _FAILED.search(u)]
        if not outputs:
            return "Ok."
        for test in _FAILED.findall(outputs[-1]):
            failing = next((c for c in self.causes if test in c.tests), None)
            if failing is None:
                return (
                    f"{test} failed with a connection reset: that looks intermittent, "
                    "not a bug in this code. I would not change anything for it."
                )
            # A file in the chat is shown to the model as its path on a line of its own
            # followed by a fence.
            if re.search(rf"^{re.escape(failing.path)}\n```", everything, re.M):
                return _edit(failing)
            return f"The failure comes from {failing.path}. Please add it to the chat."
        return "Ok."


def _edit(cause: RootCause) -> str:
    return (
        f"Fixing the bug in {cause.path}:\n\n"
        f"{cause.path}\n```python\n<<<<<<< SEARCH\n{cause.buggy}\n=======\n"
        f"{cause.fixed}\n>>>>>>> REPLACE\n```\n"
    )


def _completion(reply: str, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020},
    }


def aider_args(place: Path, base_url: str, test_cmd: str) -> list[str]:
    """aider's flags for one benchmark invocation (add `--message /test`)."""
    metadata = place / "aider-models.json"
    metadata.write_text(
        json.dumps(
            {
                MODEL: {
                    "max_input_tokens": 200000,
                    "max_output_tokens": 8192,
                    "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0,
                    "litellm_provider": "openai",
                    "mode": "chat",
                }
            }
        )
    )
    return [
        "--model",
        MODEL,
        "--openai-api-base",
        base_url,
        "--openai-api-key",
        "sk-offline",
        "--model-metadata-file",
        str(metadata),
        "--no-show-model-warnings",
        "--edit-format",
        "diff",
        "--auto-test",
        "--test-cmd",
        test_cmd,
        "--yes-always",
        "--no-auto-commits",
        "--no-gitignore",
        "--no-analytics",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-pretty",
        "--no-fancy-input",
        "--no-detect-urls",
        "--input-history-file",
        str(place / "aider.input.history"),
        "--chat-history-file",
        str(place / "aider.chat.history.md"),
        "--llm-history-file",
        str(place / "aider.llm.history"),
    ]


def aider_env(home: Path, base_url: str) -> dict[str, str]:
    """Variables that keep aider on 127.0.0.1: a closed proxy port for everything else."""
    # aider refreshes LiteLLM's price list from GitHub once a day; a fresh empty cache
    # stops it (the model's metadata comes from --model-metadata-file).
    cache = home / ".aider" / "caches"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "model_prices_and_context_window.json").write_text("{}")
    dead = "http://127.0.0.1:9"
    return {
        "HOME": str(home),
        "OPENAI_API_BASE": base_url,
        "OPENAI_API_KEY": "sk-offline",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "http_proxy": dead,
        "https_proxy": dead,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
