"""Load the webhook receiver of `agentloop serve` on loopback and print its throughput.

What it measures
----------------
The receiver (heal/receiver.py) with its real SQLite inbox (WAL, synchronous=FULL: each
202 waits for its commit to reach the disk) and its dispatcher sending each alert through
the real GitHub client to the loopback fake GitHub (agentloop.testing.fake_github).
`--senders` threads, each on one keep-alive connection, send `--deliveries` signed Sentry
issue alerts in all; every `--replay-every`-th is a redelivery of the sender's previous
one (same Request-ID and body), which must be answered 200 and never dispatched.

Two numbers: deliveries/s received (first request to last answer: signature, parse,
replay check, committed insert) and dispatches/s (first request until the last unique
alert reached the fake GitHub). The script exits non-zero unless every unique alert was
dispatched exactly once and no replay was dispatched.

How to run it
-------------
    .venv/bin/python benchmarks/serve_load.py                       # 2,000 from 20 senders
    .venv/bin/python benchmarks/serve_load.py --deliveries 500      # what the test does

The inbox lives in a temporary directory that is removed; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from agentloop.heal.inbox import INBOX, Inbox
from agentloop.heal.receiver import Receiver, Secrets
from agentloop.integrations.github import GitHub
from agentloop.testing.fake_github import FakeGitHub

SECRET = "bench-sentry-client-secret"


def alert(issue: int) -> bytes:
    event = {"event_id": f"{issue:032x}", "issue_id": str(issue), "title": "KeyError: 'qty'"}
    return json.dumps({"action": "triggered", "data": {"event": event}}).encode()


def headers(body: bytes, delivery: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Request-ID": delivery,
        "Sentry-Hook-Resource": "event_alert",
        "Sentry-Hook-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--replay-every", type=int, default=5)
    args = parser.parse_args()
    per_sender = args.deliveries // args.senders
    total = per_sender * args.senders
    unique = args.senders * (per_sender - per_sender // args.replay_every)

    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as fake:
        fake.add_repo("acme/shop")
        inbox = Inbox(Path(tmp) / INBOX)
        client = GitHub("acme/shop", "ghs_bench", api_url=fake.api_url, backoff_s=0)
        receiver = Receiver(
            inbox, secrets=Secrets(SECRET, None), target="github", dispatcher=client
        )
        receiver.start()
        statuses: list[int] = []
        lock = threading.Lock()

        def send(sender: int) -> None:
            connection = http.client.HTTPConnection(*receiver.address, timeout=30)
            last: tuple[bytes, dict[str, str]] | None = None
            for n in range(per_sender):
                if n % args.replay_every == args.replay_every - 1 and last is not None:
                    body, head = last
                else:
                    body = alert(sender * 1_000_000 + n)
                    head = headers(body, f"s{sender}-{n}")
                    last = body, head
                connection.request("POST", "/sentry", body=body, headers=head)
                answer = connection.getresponse()
                answer.read()
                with lock:
                    statuses.append(answer.status)
            connection.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=send, args=(s,)) for s in range(args.senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        received = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while len(fake.dispatches) < unique and time.monotonic() < deadline:
            time.sleep(0.01)
        dispatched = time.perf_counter() - started
        time.sleep(0.3)
        receiver.stop()
        inbox.close()
        sent = [d["client_payload"]["delivery"] for d in fake.dispatches]

    ok = (
        len(statuses) == total
        and statuses.count(202) == unique
        and len(sent) == len(set(sent)) == unique
    )
    print(
        f"{total} deliveries ({unique} unique, {total - unique} replays) from "
        f"{args.senders} senders"
    )
    print(f"received:   {received:.2f} s, {total / received:.0f} deliveries/s")
    print(f"dispatched: {dispatched:.2f} s, {unique / dispatched:.0f} dispatches/s")
    if not ok:
        print(
            f"FAILED: {statuses.count(202)} accepted, {len(sent)} dispatched, "
            f"{len(set(sent))} distinct (expected {unique} each)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
