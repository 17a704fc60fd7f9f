"""Claude Code's interactive terminal UI in a pseudo-terminal, for tests: what a user sees
(dialogs, permission prompts) as plain text, and keys to answer with.

Only for checking what interactive sessions do that `-p` ones do not (which dialogs
appear); everything else is tested through `claude -p`, which is far less brittle.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

# CSI and OSC sequences, charset switches, keypad modes, carriage returns.
_ANSI = re.compile(
    r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>78]|\r"
)


def trust(config_dir: Path, project: Path, api_key: str) -> None:
    """A Claude Code config in which onboarding is done, `project` is a trusted workspace
    and `api_key` (from the environment) is accepted: the dialogs a user answers once."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / ".claude.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.update(
        hasCompletedOnboarding=True,
        theme="dark",
        # Claude Code remembers an approved key by its last 20 characters.
        customApiKeyResponses={"approved": [api_key[-20:]], "rejected": []},
    )
    doc.setdefault("projects", {})[str(project)] = {"hasTrustDialogAccepted": True}
    path.write_text(json.dumps(doc))


class Terminal:
    """A program running in a 160x50 pseudo-terminal."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            os.chdir(cwd)
            os.execve(argv[0], list(argv), {**env, "TERM": "xterm-256color"})
        self.pid, self.fd = pid, fd
        self._raw = ""
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def screen(self) -> str:
        """Everything shown so far, escape sequences taken out."""
        return _ANSI.sub("", self._raw)

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # the program exited
                return
            if not data:
                return
            self._raw += data.decode("utf-8", "replace")

    def wait_for(self, pattern: str, seconds: float = 60, *, since: int = 0) -> bool:
        """Whether `pattern` (a regex, matched in the screen text after `since`, spaces
        ignored: the UI lays words out with cursor moves) shows up within `seconds`."""
        wanted = re.compile(pattern.replace(" ", ""), re.DOTALL)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.read(0.3)
            if wanted.search(self.screen[since:].replace(" ", "")):
                return True
        return False

    def answer(self, key: str, then: str, *, seconds: float = 120, tries: int = 4) -> bool:
        """Press `key` in the dialog shown now until `then` (a wait_for pattern) shows up
        after it: a dialog drawn under load may not take the first key yet."""
        for _ in range(tries):
            mark = len(self._raw)
            self.type(key)
            if self.wait_for(then, seconds / tries, since=len(_ANSI.sub("", self._raw[:mark]))):
                return True
        return False

    def type(self, text: str) -> None:
        # A dialog drawn a moment ago may not take keys yet.
        time.sleep(0.5)
        os.write(self.fd, text.encode())
        time.sleep(0.3)

    def enter(self) -> None:
        self.type("\r")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
