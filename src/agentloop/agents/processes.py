"""Find and kill every process an agent session started, wherever it went.

A process group is not enough for Claude Code: the CLI runs each Bash command in a session
of its own (setsid), so a background job the agent starts (`server &`) is in no group of
ours and outlives a group kill, reparented to init. What every descendant does keep is the
environment: the session's processes are started with a unique marker variable, and
`kill_marked` kills every process whose initial environment carries it (the approach of
Jenkins' ProcessTreeKiller). A process that rebuilt its environment from scratch
(`env -i`) escapes; nothing in an autofix session has a reason to.

Linux only (/proc); elsewhere these functions find nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MARK_VARIABLE = "AGENTLOOP_SESSION_MARK"

_PROC = Path("/proc")


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        data = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False  # gone, or not ours to read
    return needle in data.split(b"\0")


def _parent(pid: int) -> int | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may itself contain spaces or parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 else None


def marked(mark: str) -> list[int]:
    """Pids of live processes started with MARK_VARIABLE=mark (zombies have no environ)."""
    needle = f"{MARK_VARIABLE}={mark}".encode()
    me = os.getpid()
    try:
        entries = [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return []
    return [pid for pid in entries if pid != me and _environ_has(pid, needle)]


def marked_child(mark: str) -> int | None:
    """The marked process this process started itself: the agent's CLI."""
    me = os.getpid()
    return next((pid for pid in marked(mark) if _parent(pid) == me), None)


def kill_marked(mark: str, *, rounds: int = 5) -> list[int]:
    """SIGKILL every marked process; return the pids killed.

    Everything is stopped before anything is killed, so no process can fork a new one
    between the scan and the kill; a few rounds catch what was mid-fork anyway.
    """
    killed: list[int] = []
    for _ in range(rounds):
        pids = marked(mark)
        if not pids:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        killed.extend(pids)
        time.sleep(0.02)
    return list(dict.fromkeys(killed))
