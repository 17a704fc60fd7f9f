"""`agentloop serve`: the webhook receiver run for real on 127.0.0.1 (ephemeral ports),
signed deliveries over real sockets, the inbox a real SQLite file, dispatches to the
loopback fake GitHub through the real GitHub client. Signatures are computed here with
hmac directly, from the services' documented formats, not with the module under test."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop import cli
from agentloop.heal.inbox import INBOX, Inbox
from agentloop.heal.receiver import Receiver, Secrets, ServeEvent
from agentloop.integrations.github import GitHub
from agentloop.testing.fake_github import FakeGitHub

SENTRY_SECRET = "sentry-client-secret-0123456789abcdef"
GITHUB_SECRET = "github-webhook-secret-fedcba9876543210"
TOKEN = "ghs_FAKEtoken0123456789abcdefABCDEF0123"
SRC = Path(__file__).resolve().parents[2] / "src"


# ---------------------------------------------------------------- senders


def sentry_headers(body: bytes, delivery: str, resource: str = "event_alert") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Request-ID": delivery,
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": str(int(time.time())),
        "Sentry-Hook-Signature": hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }


def github_headers(body: bytes, delivery: str, event: str = "issues") -> dict[str, str]:
    digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def alert_body(event: dict[str, Any], issue_id: str = "4242") -> bytes:
    """Sentry's issue alert (Sentry-Hook-Resource: event_alert): the triggering event, a
    real sentry-sdk one, with the issue's id and addresses, and the rule that fired."""
    return json.dumps(
        {
            "action": "triggered",
            "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
            "data": {
                "event": {
                    **event,
                    "issue_id": issue_id,
                    "issue_url": f"https://sentry.io/api/0/issues/{issue_id}/",
                    "url": f"https://sentry.io/api/0/projects/acme/shop/events/{event['event_id']}/",
                    "web_url": f"https://acme.sentry.io/issues/{issue_id}/events/x/",
                },
                "triggered_rule": "Errors in production",
            },
            "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        }
    ).encode()


def post(
    url: tuple[str, int], path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(*url, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def serve_schema() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath("serve.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


# ---------------------------------------------------------------- an in-process receiver


@dataclass
class Running:
    receiver: Receiver
    fake: FakeGitHub
    inbox: Inbox
    events: list[ServeEvent]

    @property
    def url(self) -> tuple[str, int]:
        return self.receiver.address

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.inbox.path) as db:
            return list(db.execute(sql, args))


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_repo("acme/shop")
        yield server


@pytest.fixture
def start(tmp_path: Path, fake: FakeGitHub) -> Iterator[Callable[..., Running]]:
    started: list[Receiver] = []

    def run(*, retries: int = 2, local: bool = False, **options: Any) -> Running:
        inbox = Inbox(tmp_path / INBOX)
        client = GitHub("acme/shop", TOKEN, api_url=fake.api_url, retries=retries, backoff_s=0)
        events: list[ServeEvent] = []
        receiver = Receiver(
            inbox,
            secrets=Secrets(sentry=SENTRY_SECRET, github=GITHUB_SECRET),
            target="local" if local else "github",
            dispatcher=None if local else client,
            on_event=events.append,
            **options,
        )
        receiver.start()
        started.append(receiver)
        return Running(receiver, fake, inbox, events)

    yield run
    for receiver in started:
        receiver.stop(timeout_s=5)
        receiver.inbox.close()


# ---------------------------------------------------------------- Sentry alerts


def test_a_valid_alert_is_stored_answered_202_and_dispatched_with_ids_only(
    start: Callable[..., Running], events: dict[str, dict[str, Any]]
) -> None:
    running = start()
    delivery = str(uuid.uuid4())
    body = alert_body(events["checkout"])
    status, answer = post(running.url, "/sentry", body, sentry_headers(body, delivery))
    assert (status, answer) == (202, {"status": "accepted"})
    wait_for(lambda: len(running.fake.dispatches) == 1)
    [request] = running.fake.requests_to("POST", "/repos/acme/shop/dispatches")
    assert request.headers["authorization"] == f"token {TOKEN}"
    assert request.json == {
        "event_type": "sentry-issue",
        "client_payload": {"source": "sentry", "delivery": delivery, "issue_id": "4242"},
    }
    # Nothing of the event (its message, the user's email, the request's cookie) travels.
    sent = json.dumps(request.json)
    for secret in ("alice@example.com", "abcdef0123456789", "KeyError", "qty"):
        assert secret not in sent
    wait_for(lambda: running.rows("SELECT state, attempts FROM deliveries") == [("done", 1)])


def test_a_new_issue_webhook_dispatches_its_short_id(start: Callable[..., Running]) -> None:
    running = start()
    body = json.dumps(
        {
            "action": "created",
            "data": {"issue": {"id": "1170820242", "shortId": "SHOP-2A", "title": "KeyError"}},
        }
    ).encode()
    status, _ = post(running.url, "/sentry", body, sentry_headers(body, "d-1", "issue"))
    assert status == 202
    wait_for(lambda: len(running.fake.dispatches) == 1)
    assert running.fake.dispatches[0]["client_payload"] == {
        "source": "sentry",
        "delivery": "d-1",
        "issue_id": "1170820242",
        "short_id": "SHOP-2A",
    }


def test_a_resolved_issue_is_acknowledged_and_not_dispatched(
    start: Callable[..., Running],
) -> None:
    running = start()
    body = json.dumps({"action": "resolved", "data": {"issue": {"id": "1"}}}).encode()
    status, answer = post(running.url, "/sentry", body, sentry_headers(body, "r-1", "issue"))
    assert (status, answer) == (200, {"status": "ignored"})
    time.sleep(0.2)
    assert running.fake.dispatches == []


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "0" * 64,  # well-formed, wrong
        "sha256=zz",  # GitHub's format on Sentry's route, not even hex
        hmac.new(b"another secret", b"", hashlib.sha256).hexdigest(),
    ],
    ids=["missing", "zeros", "garbage", "other-secret"],
)
def test_a_bad_or_missing_signature_is_401_and_nothing_is_stored(
    start: Callable[..., Running], events: dict[str, dict[str, Any]], signature: str | None
) -> None:
    running = start()
    body = alert_body(events["checkout"])
    headers = sentry_headers(body, "forged-1")
    del headers["Sentry-Hook-Signature"]
    if signature is not None:
        headers["Sentry-Hook-Signature"] = signature
    status, answer = post(running.url, "/sentry", body, headers)
    assert (status, answer) == (401, {"status": "bad signature"})
    # A body signed right but changed by one byte on the way fails too.
    tampered = body.replace(b"4242", b"4243")
    status, _ = post(running.url, "/sentry", tampered, sentry_headers(body, "forged-2"))
    assert status == 401
    assert running.rows("SELECT COUNT(*) FROM deliveries") == [(0,)]
    time.sleep(0.2)
    assert running.fake.requests == []
    # The secret is in no answer and no progress line.
    assert SENTRY_SECRET not in repr(running.events) + repr(running.receiver.secrets)


def test_an_oversized_body_is_413_before_it_is_read(start: Callable[..., Running]) -> None:
    running = start(max_body=64 * 1024)
    with socket.create_connection(running.url, timeout=5) as sock:
        # Announce 50 MB, send 1 KB and wait: a receiver reading the body would hang here.
        sock.sendall(
            b"POST /sentry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\nSentry-Hook-Signature: 00\r\nRequest-ID: big\r\n\r\n"
            + b"{"
            * 1024
        )
        started = time.monotonic()
        answer = sock.recv(4096).decode()
        assert time.monotonic() - started < 2
    assert answer.startswith("HTTP/1.1 413 "), answer
    assert "Connection: close" in answer
    assert [e.status for e in running.events] == [413]


@pytest.mark.parametrize(
    ("length", "status"), [(None, 411), ("-1", 400), ("ten", 400)], ids=["none", "neg", "text"]
)
def test_a_missing_or_invalid_length_is_refused(
    start: Callable[..., Running], length: str | None, status: int
) -> None:
    running = start()
    head = "POST /sentry HTTP/1.1\r\nHost: x\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    with socket.create_connection(running.url, timeout=5) as sock:
        sock.sendall((head + "\r\n").encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith(f"HTTP/1.1 {status} "), answer


def test_a_replayed_delivery_is_acknowledged_but_dispatched_once(
    start: Callable[..., Running], events: dict[str, dict[str, Any]]
) -> None:
    running = start()
    body = alert_body(events["checkout"])
    headers = sentry_headers(body, "same-id")
    assert post(running.url, "/sentry", body, headers)[0] == 202
    assert post(running.url, "/sentry", body, headers) == (200, {"status": "duplicate"})
    # The signed body again under a new id (the id is a header, it is not signed).
    assert post(running.url, "/sentry", body, sentry_headers(body, "new-id"))[0] == 200
    wait_for(lambda: len(running.fake.dispatches) == 1)
    time.sleep(0.3)
    assert len(running.fake.dispatches) == 1
    assert [e.kind for e in running.events if e.status] == ["accepted", "duplicate", "duplicate"]


def test_a_transient_github_error_is_retried_and_a_permanent_one_is_not(
    start: Callable[..., Running], events: dict[str, dict[str, Any]]
) -> None:
    running = start(retries=0, retry_base_s=0.05)
    running.fake.fail("POST", "/repos/acme/shop/dispatches", 502, times=2)
    body = alert_body(events["checkout"], "1")
    assert post(running.url, "/sentry", body, sentry_headers(body, "flaky"))[0] == 202
    wait_for(lambda: len(running.fake.dispatches) == 1)
    # GitHub has the dispatch a moment before the dispatcher marks it done.
    wait_for(lambda: running.rows("SELECT state FROM deliveries") == [("done",)])
    assert running.rows("SELECT state, attempts FROM deliveries") == [("done", 3)]
    assert [e.kind for e in running.events][-3:] == ["retrying", "retrying", "dispatched"]

    running.fake.fail("POST", "/repos/acme/shop/dispatches", 403, times=1)
    body = alert_body(events["checkout"], "2")
    assert post(running.url, "/sentry", body, sentry_headers(body, "forbidden"))[0] == 202
    wait_for(lambda: running.events[-1].kind == "failed")
    assert "contents: write" in running.events[-1].detail  # the permission it needs
    time.sleep(0.3)
    assert len(running.fake.dispatches) == 1


def test_local_queues_a_job_and_never_calls_github(
    start: Callable[..., Running], events: dict[str, dict[str, Any]]
) -> None:
    running = start(local=True)
    body = alert_body(events["checkout"])
    assert post(running.url, "/sentry", body, sentry_headers(body, "loc-1"))[0] == 202
    wait_for(
        lambda: running.rows("SELECT issue_id, state FROM local_jobs") == [("4242", "pending")]
    )
    assert running.fake.requests == []


# ---------------------------------------------------------------- GitHub events


def issue_event(action: str, **extra: Any) -> bytes:
    return json.dumps(
        {
            "action": action,
            "issue": {"number": 17, "title": "agentloop: error rate over the breaker"},
            "repository": {"full_name": "acme/shop"},
            "sender": {"login": "oncall-alice"},
            **extra,
        }
    ).encode()


def test_github_signatures_are_verified_both_ways_and_acknowledgements_kept(
    start: Callable[..., Running],
) -> None:
    running = start()
    assigned = issue_event("assigned", assignee={"login": "oncall-alice"})
    headers = github_headers(assigned, "gh-1")
    assert post(running.url, "/github", assigned, headers) == (202, {"status": "recorded"})
    labelled = issue_event("labeled", label={"name": "acknowledged"})
    assert post(running.url, "/github", labelled, github_headers(labelled, "gh-2"))[0] == 202
    # A signature without its `sha256=` prefix, with Sentry's secret, or over another body.
    bare = dict(headers, **{"X-Hub-Signature-256": headers["X-Hub-Signature-256"][7:]})
    sentry_signed = dict(
        headers,
        **{
            "X-Hub-Signature-256": "sha256="
            + hmac.new(SENTRY_SECRET.encode(), assigned, hashlib.sha256).hexdigest()
        },
    )
    other = issue_event("assigned", assignee={"login": "mallory"})
    for body, forged in ((assigned, bare), (assigned, sentry_signed), (other, headers)):
        fresh = dict(forged, **{"X-GitHub-Delivery": str(uuid.uuid4())})
        assert post(running.url, "/github", body, fresh)[0] == 401
    # Opening an issue acknowledges nothing; a ping is answered.
    opened = issue_event("opened")
    assert post(running.url, "/github", opened, github_headers(opened, "gh-3"))[0] == 200
    ping = b'{"zen": "Design for failure."}'
    assert post(running.url, "/github", ping, github_headers(ping, "gh-4", "ping"))[0] == 200
    assert running.rows(
        "SELECT repo, issue_number, action, by, detail FROM acknowledgements ORDER BY id"
    ) == [
        ("acme/shop", 17, "assigned", "oncall-alice", "oncall-alice"),
        ("acme/shop", 17, "labeled", "oncall-alice", "acknowledged"),
    ]
    time.sleep(0.2)
    assert running.fake.requests == []


# ---------------------------------------------------------------- the command


def test_no_secret_is_a_one_line_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--repo", str(tmp_path), "--local", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    serve_schema().validate(doc)
    assert doc["error"]["exit_code"] == 2
    assert "AGENTLOOP_SENTRY_WEBHOOK_SECRET" in doc["error"]["message"]
    assert "client secret" in doc["error"]["hint"]


class Process:
    """`agentloop serve --json` as a real subprocess."""

    def __init__(self, project: Path, fake: FakeGitHub) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AGENTLOOP_", "GITHUB"))},
            "PYTHONPATH": str(SRC),
            "AGENTLOOP_SENTRY_WEBHOOK_SECRET": SENTRY_SECRET,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_API_URL": fake.api_url,
        }
        command = [sys.executable, "-m", "agentloop", "serve", "--repo", str(project)]
        self.proc = subprocess.Popen(
            [*command, "--github-repo", "acme/shop", "--port", "0", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read() if self.proc.stderr else ""
        self.listening = json.loads(line)
        host_port = self.listening["url"].removeprefix("http://")
        self.url = (host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1]))


def test_killed_mid_dispatch_it_loses_nothing_and_sends_each_pending_one_once(
    tmp_path: Path, fake: FakeGitHub, events: dict[str, dict[str, Any]]
) -> None:
    # GitHub holds the first dispatch: the receiver is killed while it waits for it, with
    # two more deliveries stored and answered 202 but never attempted.
    release = fake.stall("POST", "/repos/acme/shop/dispatches")
    first = Process(tmp_path, fake)
    assert first.listening["event"] == "listening"
    assert first.listening["pending"] == 0
    ids = ["d-1", "d-2", "d-3"]
    for n, delivery in enumerate(ids):
        body = alert_body(events["checkout"], str(100 + n))
        assert post(first.url, "/sentry", body, sentry_headers(body, delivery))[0] == 202
    wait_for(lambda: len(fake.requests_to("POST", "/repos/acme/shop/dispatches")) == 1)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    release.set()  # GitHub did receive it: the dispatch happened, unbeknown to the receiver
    wait_for(lambda: len(fake.dispatches) == 1)

    second = Process(tmp_path, fake)
    assert second.listening["recovered"] == 1
    assert second.listening["pending"] == 3
    wait_for(lambda: len(fake.dispatches) == 4)
    second.proc.send_signal(signal.SIGTERM)
    out, err = second.proc.communicate(timeout=15)
    assert second.proc.returncode == 0, err
    stopped = json.loads(out.splitlines()[-1])
    assert stopped["event"] == "stopped"
    assert stopped["deliveries"] == {"pending": 0, "done": 3, "failed": 0, "ignored": 0}
    sent = [d["client_payload"]["delivery"] for d in fake.dispatches]
    # The two never attempted: exactly once. The one in flight at the kill: again, by
    # design (at-least-once), under the same delivery id so the workflow can tell.
    assert sorted(sent) == ["d-1", "d-1", "d-2", "d-3"]
    with sqlite3.connect(tmp_path / INBOX) as db:
        rows = list(db.execute("SELECT delivery_id, state, attempts, recovered FROM deliveries"))
    assert sorted(rows) == [("d-1", "done", 2, 1), ("d-2", "done", 1, 0), ("d-3", "done", 1, 0)]
    assert SENTRY_SECRET not in out + err
    assert TOKEN not in out + err
    for doc in (first.listening, second.listening, stopped):
        serve_schema().validate(doc)


# ---------------------------------------------------------------- load


def test_500_deliveries_from_20_senders_each_valid_one_dispatched_exactly_once(
    start: Callable[..., Running], events: dict[str, dict[str, Any]]
) -> None:
    running = start()
    senders, per_sender, every = 20, 25, 5  # every 5th delivery replays an earlier one
    answers: list[int] = []
    lock = threading.Lock()
    event = {k: v for k, v in events["checkout"].items() if k != "breadcrumbs"}

    resent: list[str] = []

    def exchange(
        connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]
    ) -> int:
        connection.request("POST", "/sentry", body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status

    def send(sender: int) -> None:
        connection = http.client.HTTPConnection(*running.url, timeout=10)
        sent: list[tuple[bytes, dict[str, str]]] = []
        for n in range(per_sender):
            if n % every == every - 1:
                body, headers = sent[-1]  # a redelivery: same id, same body
            else:
                delivery = f"s{sender}-{n}"
                body = alert_body(dict(event, event_id=uuid.uuid4().hex), str(sender * 100 + n))
                headers = sentry_headers(body, delivery)
                sent.append((body, headers))
            try:
                status = exchange(connection, body, headers)
            except (OSError, http.client.HTTPException):
                # On a loaded machine the receiver may drop an idle keep-alive connection
                # (its read timeout): a sender reconnects and delivers again, as Sentry
                # does; the same id makes that safe, so the answer may be `duplicate`.
                connection.close()
                connection = http.client.HTTPConnection(*running.url, timeout=10)
                status = exchange(connection, body, headers)
                with lock:
                    resent.append(headers["Request-ID"])
            with lock:
                answers.append(status)
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    received = time.monotonic() - started
    unique = senders * (per_sender - per_sender // every)
    wait_for(lambda: len(running.fake.dispatches) >= unique, timeout=30)
    dispatched = time.monotonic() - started
    time.sleep(0.3)
    assert len(answers) == senders * per_sender == 500
    assert answers.count(202) + answers.count(200) == 500
    assert unique - len(resent) <= answers.count(202) <= unique
    sent = [d["client_payload"]["delivery"] for d in running.fake.dispatches]
    assert len(sent) == len(set(sent)) == unique  # none twice, none lost
    print(
        f"\nserve load: 500 deliveries ({unique} unique) from {senders} senders: received in "
        f"{received:.2f}s ({500 / received:.0f} deliveries/s), all dispatched in "
        f"{dispatched:.2f}s ({unique / dispatched:.0f} dispatches/s)"
    )


def test_a_human_reads_one_line_per_delivery_and_the_start_and_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], events: dict[str, dict[str, Any]]
) -> None:
    from agentloop.commands.serve import serve

    stop = threading.Event()
    env = {"AGENTLOOP_SENTRY_WEBHOOK_SECRET": SENTRY_SECRET}
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            serve(repo=tmp_path, port=0, local=True, environ=env, stop=stop)
        )
    )
    thread.start()
    seen = ""

    def printed(fragment: str) -> bool:
        nonlocal seen
        seen += capsys.readouterr().err
        return fragment in seen

    try:
        wait_for(lambda: printed("inbox"))
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+), queueing local runs", seen)
        assert match, seen
        body = alert_body(events["checkout"])
        url = ("127.0.0.1", int(match[1]))
        assert post(url, "/sentry", body, sentry_headers(body, "human-1"))[0] == 202
        assert post(url, "/sentry", body, {"Request-ID": "unsigned"})[0] == 401
        wait_for(lambda: printed("queued"))
    finally:
        stop.set()
        thread.join(timeout=10)
    assert codes == [0]
    seen += capsys.readouterr().err
    lines = seen.splitlines()
    assert any(re.search(r" 202 sentry human-1 accepted issue 4242$", line) for line in lines)
    assert any(
        re.search(r" 401 sentry - rejected bad or missing signature$", line) for line in lines
    )
    assert any(re.search(r"sentry human-1 queued issue 4242$", line) for line in lines)
    assert re.search(r"stopped after \d+s \(1 done\)", seen), seen
    assert "/github" not in seen  # no GitHub secret: that route is off
    assert SENTRY_SECRET not in seen
