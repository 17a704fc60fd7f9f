"""A scripted Anthropic Messages API on 127.0.0.1: the offline model.

The real Claude Code CLI runs against it unchanged (point `ANTHROPIC_BASE_URL` at
`server.base_url`, see `offline_env`): every `POST /v1/messages` is answered by streaming
one scripted `Turn` as server-sent events, event for event the way the real API streams
(`message_start`, `content_block_start`/`_delta`/`_stop`, `message_delta` with the stop
reason and usage, `message_stop`). The usage numbers are fixed per turn, so the CLI's
`total_cost_usd` is non-zero and the same on every run.

Which turn answers a request is decided by matching the conversation the request carries:
the first unused turn whose `Match` holds wins and is used up (unless it repeats). When
nothing matches, the server answers with a short final text, so a session always ends.

    with ModelServer([Turn([ToolUse("Bash", {"command": "echo hi"})]), Turn([Text("ok")])]) as m:
        run the CLI with offline_env(home, m.base_url)
        assert "hi" in m.tool_results()[0].content

Every request is recorded (secrets dropped) for assertions.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from agentloop.testing.loopback import Serving, root_url

# Per-turn usage the CLI prices with its own table: with the default model (claude-opus-5-5
# in CLI 2.1.330) one turn of these sizes costs $0.0044.
DEFAULT_INPUT_TOKENS = 1000
DEFAULT_OUTPUT_TOKENS = 20

# Headers that may carry credentials; never recorded.
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: Mapping[str, Any]
    # None: a fresh `toolu_…` id per response, as the real API does.
    id: str | None = None


Block = Text | ToolUse


@dataclass(frozen=True)
class ApiError:
    """An HTTP error answer in the real API's shape: {"type":"error","error":{...}}."""

    status: int = 529
    type: str = "overloaded_error"
    message: str = "Overloaded"


OVERLOADED = ApiError(529, "overloaded_error", "Overloaded")
INTERNAL_ERROR = ApiError(500, "api_error", "Internal server error")


@dataclass(frozen=True)
class Match:
    """When a turn may answer. Every condition given must hold; none given matches any
    request. `prompt` is a substring of the conversation's first user text,
    `tool_result` a substring of a tool result in the latest user message, and
    `assistant_turns` the number of assistant messages the request already carries."""

    prompt: str | None = None
    tool_result: str | None = None
    assistant_turns: int | None = None

    def holds(self, conversation: Conversation) -> bool:
        if self.prompt is not None and self.prompt not in conversation.prompt:
            return False
        if self.tool_result is not None and not any(
            self.tool_result in r.content for r in conversation.latest_tool_results
        ):
            return False
        return self.assistant_turns is None or self.assistant_turns == conversation.assistant_turns


ANY = Match()


@dataclass(frozen=True)
class Turn:
    """One scripted model response. `repeat` keeps it in play after use (a model that never
    stops calling tools); `delay_s` waits before answering (a slow model); `error` answers
    with an API error instead of a message."""

    blocks: Sequence[Block] = ()
    match: Match = ANY
    delay_s: float = 0.0
    repeat: bool = False
    error: ApiError | None = None
    input_tokens: int = DEFAULT_INPUT_TOKENS
    output_tokens: int = DEFAULT_OUTPUT_TOKENS

    def __post_init__(self) -> None:
        # Accept a list for convenience, keep the record immutable.
        object.__setattr__(self, "blocks", tuple(self.blocks))


FALLBACK = Turn([Text("Nothing more is scripted; stopping here.")])


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    content: str
    is_error: bool


@dataclass(frozen=True)
class Conversation:
    """What matching looks at in a Messages request."""

    prompt: str
    assistant_turns: int
    latest_tool_results: tuple[ToolResult, ...]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Conversation:
        messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
        first_user = next((m for m in messages if m.get("role") == "user"), None)
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        return cls(
            prompt=_prompt_text(first_user) if first_user else "",
            assistant_turns=sum(1 for m in messages if m.get("role") == "assistant"),
            latest_tool_results=_tool_results(last_user) if last_user else (),
        )


def _blocks(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or () if isinstance(b, Mapping)]


def _prompt_text(message: Mapping[str, Any]) -> str:
    # Claude Code puts context (CLAUDE.md, the date, skills) into the first user message as
    # <system-reminder> blocks before the prompt itself; the prompt is what is left.
    texts = [b.get("text") for b in _blocks(message) if b.get("type") == "text"]
    own = [t for t in texts if isinstance(t, str) and not t.lstrip().startswith("<system-")]
    return "\n".join(own)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", "")) for b in content if isinstance(b, Mapping) and "text" in b
        )
    return ""


def _tool_results(message: Mapping[str, Any]) -> tuple[ToolResult, ...]:
    return tuple(
        ToolResult(
            tool_use_id=str(b.get("tool_use_id", "")),
            content=_content_text(b.get("content")),
            is_error=bool(b.get("is_error", False)),
        )
        for b in _blocks(message)
        if b.get("type") == "tool_result"
    )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: Any

    @property
    def is_messages(self) -> bool:
        return self.method == "POST" and self.path == "/v1/messages"

    @property
    def conversation(self) -> Conversation:
        return Conversation.of(self.body if isinstance(self.body, Mapping) else {})


@dataclass
class _Script:
    """The scenario and which of its turns are used up; guarded by the server's lock."""

    turns: tuple[Turn, ...]
    fallback: Turn
    used: set[int] = field(default_factory=set)

    def pick(self, conversation: Conversation) -> Turn:
        for index, turn in enumerate(self.turns):
            if index in self.used or not turn.match.holds(conversation):
                continue
            if not turn.repeat:
                self.used.add(index)
            return turn
        return self.fallback


# Searched in the JSON text of the request, where a newline is the two characters \\n.
_WORKING_DIRECTORY = re.compile(r"Primary working directory: ([^\s\\\\\"]+)")
CWD = "{cwd}"


def _in_working_directory(turn: Turn, body: Mapping[str, Any]) -> Turn:
    """Replace `{cwd}` in tool inputs by the session's working directory, as Claude Code
    tells the model in its environment notes: a scenario written before the run knows
    neither the worktree's path nor the temporary directory's."""
    if not any(isinstance(b, ToolUse) for b in turn.blocks):
        return turn
    match = _WORKING_DIRECTORY.search(json.dumps(body))
    if match is None:
        return turn
    cwd = match.group(1)
    blocks = [
        ToolUse(
            b.name,
            {k: v.replace(CWD, cwd) if isinstance(v, str) else v for k, v in b.input.items()},
            b.id,
        )
        if isinstance(b, ToolUse)
        else b
        for b in turn.blocks
    ]
    return dataclasses.replace(turn, blocks=tuple(blocks))


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunks(text: str, parts: int = 3) -> list[str]:
    # The real API streams text and tool input in pieces; the client must join them.
    if not text:
        return [text]
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def message_events(turn: Turn, *, model: str, message_id: str) -> Iterator[bytes]:
    """The SSE byte stream of one assistant message, as the Messages API sends it."""
    has_tool = any(isinstance(b, ToolUse) for b in turn.blocks)
    yield _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": turn.input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        },
    )
    yield _sse("ping", {"type": "ping"})
    for index, block in enumerate(turn.blocks):
        if isinstance(block, Text):
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": part} for part in _chunks(block.text)]
        else:
            tool_id = block.id or f"toolu_{uuid.uuid4().hex[:24]}"
            start = {"type": "tool_use", "id": tool_id, "name": block.name, "input": {}}
            raw = json.dumps(dict(block.input))
            # The real API opens a tool's input with an empty partial_json.
            deltas = [
                {"type": "input_json_delta", "partial_json": part} for part in ["", *_chunks(raw)]
            ]
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for delta in deltas:
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if has_tool else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": turn.output_tokens},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def message_json(turn: Turn, *, model: str, message_id: str) -> dict[str, Any]:
    """The same message as one JSON document, for a request with `stream: false`."""
    content: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, Text):
            content.append({"type": "text", "text": block.text})
        else:
            tool_id = block.id or f"toolu_{uuid.uuid4().hex[:24]}"
            content.append(
                {"type": "tool_use", "id": tool_id, "name": block.name, "input": dict(block.input)}
            )
    has_tool = any(isinstance(b, ToolUse) for b in turn.blocks)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if has_tool else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": turn.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": turn.output_tokens,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with chunked streams, like the real API; clients keep connections alive.
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests`, not stderr

    def do_HEAD(self) -> None:
        self._record(None)
        self._send_json(200, {}, head=True)

    def do_GET(self) -> None:
        self._record(None)
        if urlsplit(self.path).path == "/api/hello":
            self._send_json(200, {"message": "hello"})
        else:
            self._not_found()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        request = self._record(body)
        if request.path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": DEFAULT_INPUT_TOKENS})
        elif request.is_messages and isinstance(body, Mapping):
            self._answer(body, self.server.owner.pick(request.conversation))
        else:
            self._not_found()

    def _record(self, body: Any) -> Request:
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(
            method=self.command,
            path=url.path,
            query=url.query,
            headers={k: v for k, v in headers.items() if k not in _SECRET_HEADERS},
            body=body,
        )
        self.server.owner.record(request)
        return request

    def _answer(self, body: Mapping[str, Any], turn: Turn) -> None:
        # A slow model must not hold up other requests (one thread per connection) and must
        # give up as soon as the server shuts down.
        if turn.delay_s > 0 and self.server.owner.closing.wait(turn.delay_s):
            self.close_connection = True
            return
        if turn.error is not None:
            error = turn.error
            self._send_json(
                error.status,
                {"type": "error", "error": {"type": error.type, "message": error.message}},
            )
            return
        turn = _in_working_directory(turn, body)
        model = str(body.get("model") or "claude-offline")
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        if not body.get("stream"):
            self._send_json(200, message_json(turn, model=model, message_id=message_id))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.end_headers()
        try:
            for event in message_events(turn, model=model, message_id=message_id):
                self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, status: int, document: Any, *, head: bool = False) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.end_headers()
        if not head:
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    def _not_found(self) -> None:
        message = f"no route for {self.command} {self.path}"
        self._send_json(
            404, {"type": "error", "error": {"type": "not_found_error", "message": message}}
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ModelServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away (a killed CLI, a closed keep-alive connection) is routine
        # here, not worth the traceback socketserver would print.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ModelServer:
    """Serve `turns` on an ephemeral 127.0.0.1 port while the context is open."""

    def __init__(self, turns: Sequence[Turn] = (), *, fallback: Turn = FALLBACK) -> None:
        self._script = _Script(turns=tuple(turns), fallback=fallback)
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self.closing = threading.Event()
        self._serving: Serving[_HTTPServer] | None = None

    def __enter__(self) -> ModelServer:
        self._serving = Serving(_HTTPServer(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.closing.set()
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    @property
    def base_url(self) -> str:
        return root_url(self._serving, "ModelServer")

    # Called from handler threads.
    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def pick(self, conversation: Conversation) -> Turn:
        with self._lock:
            return self._script.pick(conversation)

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def messages_requests(self) -> list[Request]:
        return [r for r in self.requests if r.is_messages]

    def prompts(self) -> list[str]:
        """The prompt of every conversation opened: the first user text of each Messages
        request that carries no assistant turn yet (a retried request counts again)."""
        return [
            r.conversation.prompt
            for r in self.messages_requests()
            if r.conversation.assistant_turns == 0
        ]

    def tool_results(self) -> list[ToolResult]:
        """Every tool result sent to the model, in order: each request's newest ones."""
        return list(
            itertools.chain.from_iterable(
                r.conversation.latest_tool_results for r in self.messages_requests()
            )
        )


def offline_env(home: Path, base_url: str) -> dict[str, str]:
    """Variables to lay over the inherited environment so Claude Code talks only to
    `base_url`, keeps its state under `home`, and fails fast on an API error."""
    return {
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-offline-model-server",
        # Credentials and providers an inherited environment could carry would take the
        # requests elsewhere; the CLI treats an empty value as unset.
        "ANTHROPIC_AUTH_TOKEN": "",
        "CLAUDE_CODE_OAUTH_TOKEN": "",
        "CLAUDE_CODE_USE_BEDROCK": "",
        "CLAUDE_CODE_USE_VERTEX": "",
        "CLAUDE_CODE_USE_FOUNDRY": "",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
