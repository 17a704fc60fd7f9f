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
Other agentloop runs of the same repository are never undone: their branches and
worktrees are left out of the comparison, and the run's own branch is checked by itself.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType

from agentloop import git
from agentloop.history import AttemptOutcome
from agentloop.rails import gitstate
from agentloop.rails.change import ChangeCheck, check_change
from agentloop.rails.paths import ForbiddenPaths

# What only the user can move while the sandbox holds: their refs, the stash, and which
# branch their own checkout has (a `git switch` of theirs meanwhile is not undone).
_USERS = ("refs/heads/", "refs/tags/", "refs/notes/", "refs/stash", gitstate.STASH_LOG, "HEAD")
# Other agentloop runs may work in the same repository meanwhile.
_RUNS = (f"refs/heads/{git.BRANCH_PREFIX}",)


class Rejected(Exception):
    """An attempt's change is not accepted: the outcome, why, and the failure's
    fingerprint when the task's tests still failed (two alike end the task early)."""

    def __init__(
        self,
        outcome: AttemptOutcome,
        reason: str,
        fingerprint: str | None = None,
        *,
        tier: str = "",
    ):
        super().__init__(reason)
        self.outcome, self.reason, self.fingerprint = outcome, reason, fingerprint
        # Which tier of verification caught it ("task", "importers"), if a test run did.
        self.tier = tier


class Attempt:
    def __init__(self, top: Path, rescue_dir: Path, *, sandboxed: bool) -> None:
        self.top, self.rescue_dir, self.sandboxed = top, rescue_dir, sandboxed
        self.start = ""
        self.keep: tuple[str, ...] = ()
        self.changed: tuple[str, ...] = ()
        self.tests_changed: tuple[str, ...] = ()
        self.tests_diff = ""
        self.commit: str | None = None
        self.branch = ""
        self._admin = ""
        self._before: gitstate.GitState | None = None
        self._checked = False

    def __enter__(self) -> Attempt:
        self.start = git.head_sha(self.top)
        self.branch = git.current_branch(self.top) or ""
        self.keep = git.ignored_entries(self.top)
        self._admin = git.git_dir(self.top).name
        self._before = gitstate.GitState.capture(self.top)
        return self

    def check_git_state(self) -> None:
        """Put back what the session moved in git's state; Rejected when it moved any."""
        self._checked = True
        assert self._before is not None
        after = gitstate.GitState.capture(self.top)
        ignore = self._ignored(after)
        changes = [str(c) for c in self._before.changes(after, ignore=ignore)]
        own = f"refs/heads/{self.branch}"
        moved = after.refs.get(own)
        if moved != self._before.refs.get(own):
            changes.append(f"{own} moved {self.start[:10]} → {(moved or 'deleted')[:10]}")
            git.put_ref(self.top, own, self._before.refs.get(own), current=moved)
        if not changes:
            return
        gitstate.restore(self.top, self._before, after, self.rescue_dir, ignore=ignore)
        shown = "; ".join(changes[:5])
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
            # Put back; the attempt is over anyway.
            with contextlib.suppress(Rejected):
                self.check_git_state()
        git.restore_worktree(self.top, self.commit or self.start, self.keep)

    def _ignored(self, after: gitstate.GitState) -> tuple[str, ...]:
        """What the comparison leaves out: other runs' branches and worktrees, and under
        the sandbox what only the user can have moved."""
        assert self._before is not None
        admins = {
            label.split("/")[1]
            for label in (*self._before.files, *after.files)
            if label.startswith("worktrees/") and label.count("/") >= 2
        }
        names = sorted(admins - {self._admin})
        others = tuple(f"worktrees/{name}/" for name in names)
        # Each other worktree's own `.git` file is watched by its path: it goes when that
        # worktree is removed (a parallel build drops a stream's as it is merged).
        gitfiles = tuple(
            entry.data.decode("utf-8", "replace").strip()
            for state in (self._before, after)
            for name in names
            if (entry := state.files.get(f"worktrees/{name}/gitdir")) is not None
        )
        return (*_RUNS, *others, *gitfiles, *(_USERS if self.sandboxed else ()))

    def check_rails(
        self, candidate: git.Snapshot, *, forbidden: ForbiddenPaths, allow_test_edits: bool
    ) -> ChangeCheck:
        """The rails on what this attempt changed (`candidate`, its snapshot): forbidden
        paths (symbolic links followed) reject it at once; the test-integrity findings
        are the caller's to weigh. One place for the loop's attempts and a build's."""
        top = self.top
        tree = git.tree_links(top, candidate.tree, candidate.changed)
        rails = check_change(
            candidate.changed,
            forbidden=forbidden,
            allow_test_edits=allow_test_edits,
            before=lambda path: git.show_file(top, self.start, path),
            after=lambda path: git.show_file(top, candidate.tree, path),
            links=tree.links,
            held=tree.holds,
        )
        if rails.forbidden:
            raise Rejected(
                "rejected_forbidden_path",
                "touched forbidden paths: " + "; ".join(str(v) for v in rails.forbidden),
            )
        return rails
