"""The scripted Messages API on its own, spoken to over real HTTP (no CLI needed)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agentloop.testing.model_server import (
    INTERNAL_ERROR,
    OVERLOADED,
    Match,
    ModelServer,
    Text,
    ToolUse,
    Turn,
    offline_env,
)


def _post(
    server: ModelServer,
    body: dict[str, Any],
    path: str = "/v1/messages?beta=true",
    timeout: float = 10,
) -> http.client.HTTPResponse:
    url = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    headers = {"content-type": "application/json", "x-api-key": "sk-secret", "x-app": "cli"}
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    return conn.getresponse()


def _events(response: http.client.HTTPResponse) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in response.read().decode().split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def _body(*messages: dict[str, Any], stream: bool = True) -> dict[str, Any]:
    return {"model": "claude-test", "stream": stream, "max_tokens": 100, "messages": list(messages)}


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def _tool_result(content: str) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": "toolu_1", "content": content}
    return {"role": "user", "content": [block]}


ASSISTANT = {"role": "assistant", "content": [{"type": "text", "text": "..."}]}


def test_a_turn_streams_the_events_of_the_real_api() -> None:
    turn = Turn([Text("Let me look."), ToolUse("Read", {"file_path": "a.py"})], output_tokens=7)
    with ModelServer([turn]) as server:
        response = _post(server, _body(_user("fix it")))
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        events = _events(response)

    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["model"] == "claude-test"
    assert start["id"].startswith("msg_")
    assert start["usage"]["input_tokens"] == 1000
    text = "".join(d["delta"]["text"] for n, d in events if d.get("index") == 0 and "delta" in d)
    assert text == "Let me look."
    blocks = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert blocks[1]["type"] == "tool_use"
    assert blocks[1]["name"] == "Read"
    assert blocks[1]["id"].startswith("toolu_")
    partial = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert len(partial) > 2  # streamed in pieces, opened by an empty one
    assert partial[0] == ""
    assert json.loads("".join(partial)) == {"file_path": "a.py"}
    assert [n for n, d in events].count("content_block_stop") == 2
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {"output_tokens": 7}


def test_a_text_only_turn_ends_the_turn_and_non_streaming_requests_get_json() -> None:
    with ModelServer([Turn([Text("done")]), Turn([Text("again")])]) as server:
        events = _events(_post(server, _body(_user("hi"))))
        assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
        response = _post(server, _body(_user("hi"), stream=False))
        message = json.loads(response.read())
    assert message["content"] == [{"type": "text", "text": "again"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] == 20


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [(OVERLOADED, 529, "overloaded_error"), (INTERNAL_ERROR, 500, "api_error")],
)
def test_a_scripted_api_error_has_the_real_error_shape(error: Any, status: int, kind: str) -> None:
    with ModelServer([Turn(error=error)]) as server:
        response = _post(server, _body(_user("hi")))
        assert response.status == status
        assert response.getheader("Content-Type") == "application/json"
        document = json.loads(response.read())
    assert document["type"] == "error"
    assert document["error"]["type"] == kind
    assert document["error"]["message"]


def test_turns_are_chosen_by_the_conversation_first_match_wins_and_used_once() -> None:
    turns = [
        Turn([Text("for the other task")], match=Match(prompt="other task")),
        Turn([Text("after the failing run")], match=Match(tool_result="FAILED")),
        Turn([Text("second turn")], match=Match(assistant_turns=1)),
        Turn([Text("first")]),
    ]

    def answer(server: ModelServer, *messages: dict[str, Any]) -> str:
        events = _events(_post(server, _body(*messages)))
        return "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")

    with ModelServer(turns) as server:
        assert answer(server, _user("fix task 1")) == "first"
        assert answer(server, _user("fix task 1"), ASSISTANT, _tool_result("2 FAILED")) == (
            "after the failing run"
        )
        assert answer(server, _user("fix task 1"), ASSISTANT, _tool_result("ok")) == "second turn"
        # Everything used up: the fallback ends the session.
        assert "Nothing more is scripted" in answer(server, _user("fix task 1"))
        assert answer(server, _user("now the other task")) == "for the other task"


def test_a_repeating_turn_never_runs_out() -> None:
    with ModelServer([Turn([ToolUse("Bash", {"command": "true"})], repeat=True)]) as server:
        for _ in range(5):
            events = _events(_post(server, _body(_user("go"))))
            assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_slow_turn_blocks_neither_other_requests_nor_shutdown() -> None:
    turns = [Turn([Text("slow")], match=Match(prompt="slow"), delay_s=60), Turn([Text("fast")])]
    outcome: list[BaseException | int] = []
    server = ModelServer(turns).__enter__()

    def slow() -> None:
        try:
            outcome.append(_post(server, _body(_user("slow please")), timeout=30).status)
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)
    start = time.monotonic()
    assert _post(server, _body(_user("fast please"))).status == 200
    assert time.monotonic() - start < 2
    start = time.monotonic()
    server.close()
    thread.join(timeout=5)
    assert time.monotonic() - start < 3
    assert not thread.is_alive()
    # The slow request got no answer: its connection was closed.
    assert len(outcome) == 1
    assert isinstance(outcome[0], BaseException)


def test_requests_are_recorded_without_secrets_with_helpers_for_prompts_and_tool_results() -> None:
    with ModelServer() as server:
        _post(
            server,
            _body(
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                        {"type": "text", "text": "fix test_a"},
                    ],
                }
            ),
        )
        _post(server, _body(_user("fix test_a"), ASSISTANT, _tool_result("1 passed")))
        _post(server, {"model": "m", "messages": []}, path="/v1/messages/count_tokens")
        requests = server.requests

    assert [r.path for r in requests] == ["/v1/messages"] * 2 + ["/v1/messages/count_tokens"]
    assert requests[0].query == "beta=true"
    assert all("x-api-key" not in r.headers for r in requests)
    assert requests[0].headers["x-app"] == "cli"
    assert requests[0].body["model"] == "claude-test"
    # Claude Code's context blocks are not the prompt; a request with an assistant turn
    # continues a conversation and opens none.
    assert server.prompts() == ["fix test_a"]
    [result] = server.tool_results()
    assert result.content == "1 passed"
    assert not result.is_error


def test_hello_and_count_tokens_answer_minimally() -> None:
    with ModelServer() as server:
        url = urlsplit(server.base_url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
        conn.request("HEAD", "/api/hello")
        head = conn.getresponse()
        head.read()
        assert head.status == 200
        conn.request("GET", "/api/hello")
        assert conn.getresponse().status == 200
        tokens = _post(server, {"messages": []}, path="/v1/messages/count_tokens")
        assert json.loads(tokens.read()) == {"input_tokens": 1000}
        assert _post(server, {}, path="/v1/other").status == 404


def test_offline_env_isolates_and_points_at_the_server(tmp_path: Path) -> None:
    env = offline_env(tmp_path, "http://127.0.0.1:1")
    assert env["HOME"] == str(tmp_path)
    assert env["CLAUDE_CONFIG_DIR"].startswith(str(tmp_path))
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1"
    assert env["ANTHROPIC_API_KEY"]
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"
