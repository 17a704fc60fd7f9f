"""The one subprocess wrapper: every process agentloop starts goes through `run`.

Each process gets its own session (process group) so that a timeout or Ctrl-C kills the
whole tree — a hanging test's children included — and never leaves orphans behind.
Output is decoded leniently: test output is not guaranteed to be UTF-8.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# After SIGTERM, how long a process group gets to exit before SIGKILL.
_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Completed:
    command: str
    returncode: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 15) -> str:
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()
        return "\n".join(text.splitlines()[-lines:])


class CommandNotFound(Exception):
    def __init__(self, program: str) -> None:
        super().__init__(program)
        self.program = program


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=_GRACE_SECONDS)
            # The leader is gone, but members of its group may still live: kill them too.
            if sig == signal.SIGTERM:
                continue
        except subprocess.TimeoutExpired:
            continue


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def run(
    command: str | Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run `command` (a shell string, or an argv list) and return what it did.

    Never raises on a non-zero exit or a timeout: callers decide what those mean.
    Raises CommandNotFound when an argv program does not exist.
    """
    shell = isinstance(command, str)
    shown = command if isinstance(command, str) else " ".join(command)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command] if isinstance(command, str) else list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if shell:
            raise
        raise CommandNotFound(str(command[0])) from exc
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        # A grandchild that left the group could still hold the pipes open: bound the wait.
        try:
            out, err = proc.communicate(timeout=_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = b"", b""
    except BaseException:
        _kill_group(proc)
        raise
    return Completed(
        command=shown,
        returncode=proc.returncode if proc.returncode is not None else -signal.SIGKILL,
        stdout=_decode(out),
        stderr=_decode(err),
        duration=time.monotonic() - start,
        timed_out=timed_out,
    )


# Runs the command with its output in files and then writes its exit status, atomically,
# to a third: the one sign that it finished, written by this shell whether or not whoever
# started it is still alive to wait.
_DETACHED = (
    'out=$1 err=$2 status=$3; shift 3; "$@" >"$out" 2>"$err"; '
    'echo $? >"$status.tmp" && mv "$status.tmp" "$status"'
)


def spawn_detached(
    command: Sequence[str],
    *,
    cwd: Path,
    stdout: Path,
    stderr: Path,
    status: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start `command` in a session of its own and return at once with its pid; its output
    goes to `stdout` and `stderr`, its exit status to `status` when it ends. For work that
    must outlive the request that started it (a build started from agentloop's MCP server,
    which Claude Code may stop at any time): nothing here waits for it or kills it, except
    a thread that reaps it so it leaves no zombie while the caller lives."""
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", _DETACHED, "sh", str(stdout), str(stderr), str(status),
             *command],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    except FileNotFoundError as exc:  # pragma: no cover - /bin/sh is always there
        raise CommandNotFound("/bin/sh") from exc
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid


def alive(pid: int) -> bool:
    """Whether a process with this pid still runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:  # no /proc (macOS): kill(0) is all we know
        return True
