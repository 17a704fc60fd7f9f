"""What humans did with agentloop's pull requests, read back from GitHub.

Every pull request labelled `auto-fix` (open or not) becomes a `PullOutcome`: merged,
closed without merging, or still open; whether a human pushed commits to it before the
merge; how long it waited; whether a commit on its base branch (or the default branch)
reverted it later. The ledger records these and `agentloop stats` sets them beside the
fix rate.

What this cannot see, on purpose or by necessity:
- a human who amended one of agentloop's commits and kept its message (the trailer is
  what says "agentloop's"): that counts as agentloop's work;
- a merge of the base branch into the pull request ("Update branch") is no change to the
  fix and does not count as a human's change, even if its author resolved a conflict;
- after a rebase merge the commits on the base branch have new SHAs: a revert of one of
  them is found only when it is the merge commit GitHub reports.

The GitHub client is passed in (`PullSource`, which agentloop.integrations.github's
`GitHub` satisfies); nothing here knows HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Literal, Protocol

from agentloop.history import PullOutcome, PullState

LABEL = "auto-fix"

# A run id as the workspace makes or accepts them (workspace._RUN_ID).
_ID = r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
FINGERPRINT_MARKER = re.compile(r"<!--\s*agentloop:fingerprint\s+(\S+?)\s*-->")
# The body's footer and a fix commit's last line both say "agentloop run <id>"; the run
# id may be in backticks. Only lines that name agentloop count: "run" alone is too common.
_RUN_MENTION = re.compile(rf"\bagentloop\b.*?\brun:?\s+`?({_ID})`?", re.IGNORECASE)
# The id's last repetition is lazy: a parallel job's `.job<n>` suffix is not part of it.
_RUN_BRANCH = re.compile(rf"agentloop/autofix-({_ID}?)(?:\.job\d+)?")
# What marks one of agentloop's own commits: the fingerprint trailer of a fix commit, or
# the line every commit agentloop makes ends with.
_TRAILER = re.compile(r"^Agentloop-Fingerprint:[ \t]*\S", re.MULTILINE)
_MADE_BY = "Made by agentloop run"
# `git revert` writes the full SHA; people abbreviate when they write it by hand.
_REVERTS = re.compile(r"This reverts commit ([0-9a-fA-F]{7,40})")
UNLINKED = "(unlinked)"
"""Stands for the author of a commit whose e-mail GitHub links to no account."""


class PullLike(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def html_url(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def merged(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def merged_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def head_ref(self) -> str: ...
    @property
    def base_ref(self) -> str: ...
    @property
    def merge_commit_sha(self) -> str | None: ...


class PullCommitLike(Protocol):
    @property
    def sha(self) -> str: ...
    @property
    def author_login(self) -> str | None: ...
    @property
    def message(self) -> str: ...


class CommitLike(Protocol):
    @property
    def sha(self) -> str: ...
    @property
    def message(self) -> str: ...


class PullSource(Protocol):
    def pulls(
        self, *, state: Literal["all"], label: str
    ) -> Sequence[PullLike]: ...  # fmt: skip
    def pull_commits(self, number: int) -> Sequence[PullCommitLike]: ...
    def commits(self, branch: str, *, since: datetime | None) -> Sequence[CommitLike]: ...
    def default_branch(self) -> str: ...
    def branch_sha(self, name: str) -> str | None: ...


# ---------------------------------------------------------------- pieces


def links(body: str | None, head_ref: str) -> tuple[tuple[str, ...], str | None]:
    """The fingerprints a pull request's body marks, and the run it came from: its body's
    footer, else its branch name (`agentloop/autofix-<run id>`)."""
    text = body or ""
    fingerprints = tuple(dict.fromkeys(FINGERPRINT_MARKER.findall(text)))
    run_id = None
    # The footer is the last mention: a body may quote an earlier run elsewhere.
    for line in reversed(text.splitlines()):
        mention = _RUN_MENTION.search(line)
        if mention:
            run_id = mention[1]
            break
    if run_id is None:
        branch = _RUN_BRANCH.fullmatch(head_ref)
        run_id = branch[1] if branch else None
    return fingerprints, run_id


def is_agentloops(message: str) -> bool:
    return bool(_TRAILER.search(message)) or _MADE_BY in message


def is_bot(login: str | None) -> bool:
    # GitHub Apps commit as `<app>[bot]`; a user account cannot have brackets in its name.
    return login is not None and login.endswith("[bot]")


def _updates_from_base(message: str, base_ref: str) -> bool:
    """GitHub's "Update branch" button and `git merge origin/main` bring the base in."""
    first = message.partition("\n")[0]
    base = re.escape(base_ref)
    return bool(
        re.fullmatch(
            rf"Merge (?:branch '{base}'|remote-tracking branch '[^']*/{base}')( .*)?", first
        )
    )


def human_commits(commits: Sequence[PullCommitLike], *, base_ref: str) -> list[PullCommitLike]:
    """Commits of a pull request that neither agentloop nor a bot made."""
    return [
        c
        for c in commits
        if not is_agentloops(c.message)
        and not is_bot(c.author_login)
        and not _updates_from_base(c.message, base_ref)
    ]


def reverted_shas(message: str) -> list[str]:
    return [sha.lower() for sha in _REVERTS.findall(message)]


def find_revert(shas: Sequence[str], commits: Sequence[CommitLike]) -> str | None:
    """The first commit (in the order given) that says it reverts one of `shas` and is
    not one of them: a pull request's own commit may revert another of its commits, and
    a squash merge's message repeats that."""
    wanted = [s.lower() for s in shas if s]
    for commit in commits:
        if commit.sha.lower() in wanted:
            continue
        for named in reverted_shas(commit.message):
            if any(sha.startswith(named) for sha in wanted):
                return commit.sha
    return None


def state_of(pull: PullLike) -> PullState:
    if pull.merged or pull.merged_at is not None:
        return "merged"
    return "open" if pull.state == "open" else "closed"


# ---------------------------------------------------------------- the whole reading


def _settled(pull: PullLike, known: PullOutcome | None) -> bool:
    """Its commits cannot have changed since it was recorded: it was merged or closed
    then, and still is, at the same moment (a reopened pull request is read again)."""
    return (
        known is not None
        and known.state != "open"
        and known.state == state_of(pull)
        and known.closed_at == pull.closed_at
    )


def read_outcomes(
    source: PullSource,
    repo: str,
    *,
    known: Mapping[int, PullOutcome] | None = None,
    label: str = LABEL,
    progress: Callable[[str], None] | None = None,
) -> list[PullOutcome]:
    """Every pull request labelled `label`, with what became of it.

    `known`: outcomes recorded before (by number). A pull request merged or closed since
    then keeps its commits and their authors (they cannot change any more): one request
    for its listing instead of one more for its commits. Reverts are looked for every
    time, in one listing of each branch's commits since the earliest merge."""
    known = known or {}
    pulls = sorted(source.pulls(state="all", label=label), key=lambda p: p.number)
    outcomes: list[PullOutcome] = []
    for pull in pulls:
        fingerprints, run_id = links(pull.body, pull.head_ref)
        before = known.get(pull.number)
        if before is not None and _settled(pull, before):
            shas, humans, authors = before.commits, before.human_commits, before.human_authors
        else:
            if progress is not None:
                progress(f"reading the commits of #{pull.number}")
            commits = source.pull_commits(pull.number)
            shas = tuple(c.sha for c in commits)
            edits = human_commits(commits, base_ref=pull.base_ref)
            humans = len(edits)
            authors = tuple(dict.fromkeys(c.author_login or UNLINKED for c in edits))
        state = state_of(pull)
        outcomes.append(
            PullOutcome(
                repo=repo,
                number=pull.number,
                url=pull.html_url,
                title=pull.title,
                state=state,
                created_at=pull.created_at,
                merged_at=pull.merged_at if state == "merged" else None,
                closed_at=pull.closed_at,
                run_id=run_id,
                fingerprints=fingerprints,
                commits=shas,
                merge_commit_sha=pull.merge_commit_sha if state == "merged" else None,
                human_commits=humans,
                human_authors=authors,
                reverted_by=before.reverted_by if before is not None else None,
            )
        )
    return _with_reverts(source, outcomes, {p.number: p.base_ref for p in pulls}, progress)


def _with_reverts(
    source: PullSource,
    outcomes: list[PullOutcome],
    bases: Mapping[int, str],
    progress: Callable[[str], None] | None,
) -> list[PullOutcome]:
    """Fill in `reverted_by` of merged pull requests not known to be reverted yet: a
    commit on the branch it was merged into, or on the default branch, since the merge
    that says "This reverts commit <its merge commit or one of its commits>"."""
    pending = [o for o in outcomes if o.state == "merged" and o.reverted_by is None]
    if not pending:
        return outcomes
    branches: dict[str, list[PullOutcome]] = {}
    default = source.default_branch()
    # A release branch may be gone since (listing its commits would fail the whole
    # reading): only those that still exist are looked at, the default branch always.
    bases_left = {
        base: base == default or source.branch_sha(base) is not None
        for base in {bases[o.number] for o in pending}
    }
    for outcome in pending:
        base = bases[outcome.number]
        for branch in dict.fromkeys((base, default) if bases_left[base] else (default,)):
            branches.setdefault(branch, []).append(outcome)
    found: dict[int, str] = {}
    for branch, merged in branches.items():
        since = min(o.merged_at for o in merged if o.merged_at is not None)
        if progress is not None:
            progress(f"looking for reverts on {branch}")
        # Oldest first, so the first revert found is the one that undid the merge.
        commits = list(reversed(source.commits(branch, since=since)))
        for outcome in merged:
            if outcome.number in found:
                continue
            shas = [*outcome.commits, outcome.merge_commit_sha or ""]
            revert = find_revert(shas, commits)
            if revert is not None:
                found[outcome.number] = revert
    return [replace(o, reverted_by=found[o.number]) if o.number in found else o for o in outcomes]
