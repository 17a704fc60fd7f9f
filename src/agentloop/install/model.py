"""What `agentloop init` did, file by file (rendered by agentloop.output)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from agentloop import errors

Action = Literal["created", "updated", "unchanged", "merged", "removed", "restored", "kept"]
ACTIONS: tuple[str, ...] = get_args(Action)


@dataclass(frozen=True)
class FileResult:
    path: str  # relative to the project root
    action: Action
    detail: str = ""


@dataclass(frozen=True)
class InitReport:
    root: Path
    uninstall: bool
    results: tuple[FileResult, ...]
    notes: tuple[str, ...] = ()
    # Whether anything at all was written (the install record included).
    wrote: bool = False
    # What will not work as installed (the hooks cannot run agentloop).
    warnings: tuple[str, ...] = ()

    @property
    def kept(self) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.action == "kept")

    @property
    def exit_code(self) -> int:
        # An uninstall that had to keep something (a file the user changed) did not
        # finish: say so in the exit code. Nothing was lost either way.
        return errors.FAILURES_FOUND if self.uninstall and self.kept else errors.OK
