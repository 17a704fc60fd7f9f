"""`agentloop serve`: receive Sentry issue alerts (and GitHub issue events) as webhooks and
start the auto-fix-production workflow with a `repository_dispatch` (or, with --local,
queue a local run in the inbox). heal/receiver.py does the work; this wires the
configuration, the secrets, the GitHub client and the output, and waits for a signal.

Secrets come from the environment only (never a flag: a command line is visible to every
user of the machine): AGENTLOOP_SENTRY_WEBHOOK_SECRET (the Sentry integration's client
secret; required) and AGENTLOOP_GITHUB_WEBHOOK_SECRET (the GitHub webhook's secret;
without it /github is not served). The receiver binds 127.0.0.1 unless told otherwise:
expose it through a reverse proxy that terminates TLS.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from agentloop import errors, output
from agentloop.config import load_config
from agentloop.errors import ConfigError, UsageError
from agentloop.heal.inbox import INBOX, Inbox
from agentloop.heal.receiver import DEFAULT_MAX_BODY, Dispatcher, Receiver, Secrets, ServeEvent

SENTRY_SECRET = "AGENTLOOP_SENTRY_WEBHOOK_SECRET"
GITHUB_SECRET = "AGENTLOOP_GITHUB_WEBHOOK_SECRET"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve(
    *,
    repo: Path,
    host: str = "127.0.0.1",
    port: int = 8787,
    local: bool = False,
    github_repo: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    as_json: bool = False,
    environ: Mapping[str, str] | None = None,
    dispatcher: Dispatcher | None = None,
    stop: threading.Event | None = None,
) -> int:
    env = os.environ if environ is None else environ
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port", hint="pick one in 1-65535 (0: any)")
    if max_body < 1024:
        raise UsageError(
            f"--max-body {max_body} is too small for any webhook",
            hint=f"the default is {DEFAULT_MAX_BODY} bytes",
        )
    secrets = Secrets(
        sentry=env.get(SENTRY_SECRET, "").strip() or None,
        github=env.get(GITHUB_SECRET, "").strip() or None,
    )
    if secrets.sentry is None:
        raise ConfigError(
            f"agentloop serve needs the Sentry webhook secret in {SENTRY_SECRET}",
            hint=f"set {SENTRY_SECRET} to the client secret of your Sentry internal "
            f"integration (and {GITHUB_SECRET} to your GitHub webhook's secret to receive "
            "GitHub events); see README.md, agentloop serve",
        )
    root = repo.resolve()
    config, _ = load_config(root, environ=env)
    repository: str | None = None
    if not local:
        from agentloop.commands.stats import _github_repo
        from agentloop.integrations.github import DEFAULT_API_URL, GitHub

        repository = _github_repo(root, github_repo, config.github.repo, env)
        if dispatcher is None:
            api_url = config.github.api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL
            dispatcher = GitHub.from_env(repository, env, api_url=api_url)

    def report(event: ServeEvent) -> None:
        if not as_json:
            output.print_serve_event(
                event.kind,
                event.source,
                event.delivery_id,
                event.status,
                event.issue,
                event.detail,
            )

    inbox = Inbox(root / INBOX)
    receiver = Receiver(
        inbox,
        secrets=secrets,
        target="local" if local else "github",
        dispatcher=dispatcher,
        host=host,
        port=port,
        max_body=max_body,
        on_event=report,
    )
    stopping = stop or threading.Event()
    restore = _on_signals(stopping)
    started = time.monotonic()
    try:
        try:
            receiver.start()
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="pick another --port (or --host)",
            ) from None
        bound_host, bound_port = receiver.address
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        listening = output.serve_listening_doc(
            url=f"http://{shown}:{bound_port}",
            routes={
                "sentry": "/sentry",
                "github": "/github" if secrets.github else None,
            },
            target=receiver.target,
            repository=repository,
            inbox=inbox.path,
            recovered=receiver.recovered,
            pending=receiver.pending_at_start,
        )
        if as_json:
            output.print_json_line(listening)
        else:
            output.print_serve_listening(listening)
            if host not in _LOOPBACK:
                output.note(
                    f"listening on {host}: beyond this machine, put the receiver behind a "
                    "reverse proxy that terminates TLS"
                )
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass  # ^C is how a server in a terminal is stopped: not an error here
    finally:
        receiver.stop()
        restore()
    counts = inbox.counts()
    inbox.close()
    stopped = output.serve_stopped_doc(
        {
            "pending": counts.pending + counts.dispatching,
            "done": counts.done,
            "failed": counts.failed,
            "ignored": counts.ignored,
        },
        time.monotonic() - started,
    )
    if as_json:
        output.print_json_line(stopped)
    else:
        output.print_serve_stopped(stopped)
    return errors.OK


def _on_signals(stopping: threading.Event) -> Callable[[], object]:
    """SIGTERM (a service manager's stop) ends the receiver as ^C does. Only the main
    thread may set handlers: called from another (a test), signals are left alone."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handle(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, handle)
    return lambda: signal.signal(signal.SIGTERM, previous)
