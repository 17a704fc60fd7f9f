"""The one exception base and the one place that turns outcomes into exit codes.

Exit codes (documented in the README):
  0    ok
  1    expected failure (e.g. detect found failing tests)
  2    usage or configuration error, or unusable input (bad report, missing command, no
       test ran: zero tests is no verdict)
  3    internal error: a bug in agentloop; the traceback is written to a crash log
  4    a remote service (GitHub, Sentry) refused or failed: bad token, missing permission, not
       found, validation error, rate limit; transient errors are retried first
  5    a limit stopped the command before it acted (e.g. the daily cap of auto-fix PRs)
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import datetime
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

OK = 0
FAILURES_FOUND = 1
USAGE = 2
INTERNAL = 3
SERVICE = 4
LIMITED = 5
INTERRUPTED = 130


class AgentloopError(Exception):
    """An expected error: one line saying what is wrong, and a hint naming the fix."""

    exit_code = USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Interrupted(AgentloopError):
    """Ctrl-C, when there is more to say than "interrupted": what was kept, and where."""

    exit_code = INTERRUPTED


class UsageError(AgentloopError):
    """The command line asks for something that cannot be done."""


class ConfigError(AgentloopError):
    """agentloop.yaml / [tool.agentloop] / AGENTLOOP_* / flags are invalid."""


class ReportError(AgentloopError):
    """A test report is missing, empty, truncated or in an unknown format."""


class SuiteError(AgentloopError):
    """A test suite could not be run or produced nothing agentloop can read. `output`:
    what the runner printed, for a log that outlives the checkout it ran in."""

    def __init__(self, message: str, *, hint: str | None = None, output: str = "") -> None:
        super().__init__(message, hint=hint)
        self.output = output


class ServiceError(AgentloopError):
    """A remote API (GitHub, Sentry) refused the request or stayed unreachable after retries."""

    exit_code = SERVICE

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None):
        super().__init__(message, hint=hint)
        self.status = status


class LimitReached(AgentloopError):
    """A configured limit forbids the action (nothing was done; nothing was lost)."""

    exit_code = LIMITED


class WorkspaceError(AgentloopError):
    """The isolated checkout a run works in cannot be made, prepared or removed."""


def crash_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentloop"


def write_crash_log(exc: BaseException) -> Path | None:
    """Save the traceback of a bug; never print it with locals (they may hold tokens)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = crash_dir() / f"crash-{stamp}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        path.write_text(f"agentloop {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
    except OSError:
        return None
    return path


def guarded(
    body: Callable[[], int],
    *,
    report: Callable[[str, str | None, int], None],
) -> int:
    """Run `body`, mapping every way it can end to an exit code. `report(message, hint,
    code)` prints one error; it is the only output this function produces."""
    try:
        return body()
    except AgentloopError as exc:
        report(exc.message, exc.hint, exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        report("interrupted", None, INTERRUPTED)
        return INTERRUPTED
    except Exception as exc:
        log = write_crash_log(exc)
        where = f"the traceback is in {log}" if log else "no crash log could be written"
        report(
            f"internal error: {type(exc).__name__}: {exc}",
            f"this is a bug in agentloop; {where} — please attach it to an issue",
            INTERNAL,
        )
        return INTERNAL
