"""One attempt's hold on the run's worktree: git's state is agentloop's, not the agent's.

`Attempt` records where the attempt starts (the commit, the ignored files that exist, the
repository's git state) before the session, and on the way out leaves the worktree either
at the accepted fix's commit or exactly as it found it: every file the agent made goes,
ignored ones included, unless it existed before. The change the loop judges is the
difference between that start and the files on disk, by content (`git.snapshot_tree`):
an agent that commits, moves HEAD or sets index bits cannot hide anything from it.

Git's own state (config, hooks, `info/`, HEADs, refs, the stash) is compared with the
start after the session; what moved is put back and the attempt rejected. Under the OS
sandbox the agent's commands cannot write the git directory at all, so a moved branch,
tag or stash there is the user's own work done meanwhile: it is left alone. Without the
sandbox (`--no-sandbox`) anything may be the agent's, and everything is put back (what
was replaced is saved under `.git/agentloop/rescued/`, so nothing is lost either way).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from agentloop import git
from agentloop.history import AttemptOutcome
from agentloop.rails import gitstate

# What only the user can move while the sandbox holds (refs of the user's, the stash).
_USERS = ("refs/heads/", "refs/tags/", "refs/notes/", "refs/stash", gitstate.STASH_LOG)


class Rejected(Exception):
    """An attempt's change is not accepted: the outcome, why, and the failure's
    fingerprint when the task's tests still failed (two alike end the task early)."""

    def __init__(self, outcome: AttemptOutcome, reason: str, fingerprint: str | None = None):
        super().__init__(reason)
        self.outcome, self.reason, self.fingerprint = outcome, reason, fingerprint


class Attempt:
    def __init__(self, top: Path, rescue_dir: Path, *, sandboxed: bool) -> None:
        self.top, self.rescue_dir, self.sandboxed = top, rescue_dir, sandboxed
        self.start = ""
        self.keep: tuple[str, ...] = ()
        self.changed: tuple[str, ...] = ()
        self.tests_changed: tuple[str, ...] = ()
        self.commit: str | None = None
        self._before: gitstate.GitState | None = None
        self._checked = False

    def __enter__(self) -> Attempt:
        self.start = git.head_sha(self.top)
        self.keep = git.ignored_entries(self.top)
        self._before = gitstate.GitState.capture(self.top)
        return self

    def check_git_state(self) -> None:
        """Put back what the session moved in git's state; Rejected when it moved any."""
        self._checked = True
        assert self._before is not None
        ignore = self._ignored()
        after = gitstate.GitState.capture(self.top)
        changes = self._before.changes(after, ignore=ignore)
        if not changes:
            return
        gitstate.restore(self.top, self._before, after, self.rescue_dir, ignore=ignore)
        shown = "; ".join(str(c) for c in changes[:5])
        more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
        raise Rejected("rejected_git_state", f"changed git's state: {shown}{more} (put back)")

    def accept(self, commit: str) -> None:
        self.commit = commit

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An attempt that ended before its check (^C, the runtime cap, a crash) gets the
        # same treatment, without the verdict: nothing it moved may outlive it.
        if not self._checked and self._before is not None:
            after = gitstate.GitState.capture(self.top)
            if self._before.changes(after, ignore=self._ignored()):
                gitstate.restore(
                    self.top, self._before, after, self.rescue_dir, ignore=self._ignored()
                )
        git.restore_worktree(self.top, self.commit or self.start, self.keep)

    def _ignored(self) -> tuple[str, ...]:
        return _USERS if self.sandboxed else ()
