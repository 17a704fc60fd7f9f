"""GitHub's REST API (through PyGithub) for `agentloop pr` and `agentloop stats --prs`.

A leaf: it knows GitHub and nothing of the loop. What it promises:
- It never merges a pull request and never enables auto-merge: no call here reaches a
  merge endpoint (tests/integrations/test_github_never_merges.py reads this file for one).
  A human merges.
- Every failure is one `GitHubError` line (a `ServiceError`: exit 4) with a hint naming the
  fix: 401 names the variable the token came from, 403 the permission the call needs, 404
  the repository, 422 GitHub's own validation message, a rate limit when it resets.
- Transient failures are retried here, not by PyGithub (constructed with `retry=None` and
  no throttling): 5xx answers, dropped or timed-out connections, and secondary rate limits
  (403/429 saying so, or carrying Retry-After) back off exponentially with jitter, honour
  Retry-After, at most `retries` times and never more than `max_wait_s` seconds in all.
  An exhausted primary rate limit (X-RateLimit-Remaining: 0) is not waited out (it can
  take an hour): the error says when it resets. A write retried after a 5xx may have
  happened the first time: `create_pull` then finds the PR it made; GitHub has no
  idempotency key, so a comment could appear twice.
- The token lives only inside PyGithub's `Auth.Token` and goes out only in the
  Authorization header: no message, hint or repr of this module contains it.

PyGithub is used lazily (`Github(lazy=True)`): objects built from a number or a name make
no request until a field is read, so adding a label is one POST, not a GET and a POST. A
pull request listed by GitHub lacks `merged` (only the single-PR answer has it): reading
it would fetch every PR again, so `merged` is derived from `merged_at`.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from github import Auth, Github, GithubException
from github.Commit import Commit as _GhCommit
from github.GithubObject import NotSet
from github.Issue import Issue as _GhIssue
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest as _GhPull
from github.PullRequestReview import PullRequestReview

from agentloop import __version__
from agentloop.errors import ConfigError, ServiceError
from agentloop.integrations import retrying

DEFAULT_API_URL = "https://api.github.com"
# Where the token is read from, first found wins.
TOKEN_VARIABLES = ("AGENTLOOP_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN")
# GitHub asks to wait at least a minute after a secondary rate limit that names no time.
_SECONDARY_WAIT_S = 60.0
_PR_SETTING = (
    "for the workflow's GITHUB_TOKEN also enable \"Allow GitHub Actions to create and "
    'approve pull requests" (repository or organisation Settings → Actions → General)'
)

T = TypeVar("T")


@dataclass(frozen=True)
class PullRequest:
    number: int
    html_url: str
    title: str
    body: str
    state: str  # "open" or "closed"
    draft: bool
    merged: bool
    merged_at: datetime.datetime | None
    created_at: datetime.datetime
    closed_at: datetime.datetime | None
    head_ref: str
    head_sha: str
    base_ref: str
    merge_commit_sha: str | None  # the commit the merge made on base_ref; None until merged
    labels: tuple[str, ...]
    author: str | None  # login; None for a deleted account


@dataclass(frozen=True)
class PullCommit:
    sha: str
    author_login: str | None  # None: the commit's email belongs to no GitHub user
    committer_login: str | None
    message: str
    authored_at: datetime.datetime


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    author_login: str | None


@dataclass(frozen=True)
class Comment:
    """A comment on a pull request's conversation."""

    id: int
    html_url: str
    body: str
    author: str | None
    created_at: datetime.datetime


@dataclass(frozen=True)
class Issue:
    """An issue (never a pull request: those are left out of every list here)."""

    number: int
    html_url: str
    title: str
    body: str
    state: str  # "open" or "closed"
    labels: tuple[str, ...]
    assignees: tuple[str, ...]  # logins
    author: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclass(frozen=True)
class Review:
    author: str | None
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    submitted_at: datetime.datetime | None


@dataclass(frozen=True)
class RefusedReviewer:
    """A reviewer GitHub would not request (the PR's author, a non-collaborator…)."""

    name: str
    team: bool
    reason: str


class GitHubError(ServiceError):
    """GitHub refused or failed. `detail`: GitHub's own message for the failure (for a 422,
    its validation messages), empty when there was no answer."""

    def __init__(
        self, message: str, *, hint: str | None, status: int | None, detail: str = ""
    ) -> None:
        super().__init__(message, hint=hint, status=status)
        self.detail = detail


def token_variable(environ: Mapping[str, str]) -> str | None:
    """The first of TOKEN_VARIABLES set to something non-blank."""
    return next((name for name in TOKEN_VARIABLES if environ.get(name, "").strip()), None)


def token_from_env(environ: Mapping[str, str]) -> str | None:
    name = token_variable(environ)
    return environ[name].strip() if name else None


_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>[^/].*)$")


def repo_from_remote_url(url: str) -> str | None:
    """`owner/name` from a remote URL: https://host/o/r(.git), ssh://git@host[:port]/o/r,
    git@host:o/r.git; any host (GitHub Enterprise too). None for a local path or a URL whose
    path is not exactly owner/name."""
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
            return None
        path = parts.path
    else:
        match = _SCP_LIKE.match(url)
        if match is None:
            return None
        path = match.group("path")
    path = path.strip("/")
    path = path.removesuffix(".git")
    segments = path.split("/")
    if len(segments) != 2 or not all(re.fullmatch(r"[A-Za-z0-9_.-]+", s) for s in segments):
        return None
    return "/".join(segments)


@dataclass(frozen=True)
class _Op:
    """One call, in words for its error: `what` completes "could not …", `needs` is the
    permission it takes, `thing` what else a 404 may mean is missing."""

    what: str
    needs: str
    thing: str = ""
    creates_pull: bool = False


@dataclass(frozen=True)
class _Problem:
    error: GitHubError
    transient: bool
    wait_s: float | None = None  # what GitHub asked for (Retry-After)
    secondary: bool = False


class GitHub:
    """One repository on GitHub (or GitHub Enterprise at `api_url`)."""

    def __init__(
        self,
        repo: str,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 15.0,
        per_page: int = 100,
        token_source: str | None = None,
    ) -> None:
        if not token.strip():
            raise ConfigError(
                "no GitHub token",
                hint=f"set {TOKEN_VARIABLES[0]} (or {' or '.join(TOKEN_VARIABLES[1:])})",
            )
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        # Only to scrub it out of anything GitHub echoes back into a message.
        self._secret = token.strip()
        self._source = token_source
        self._gh = Github(
            auth=Auth.Token(self._secret),
            base_url=self.api_url,
            timeout=max(1, round(timeout)),
            user_agent=f"agentloop/{__version__}",
            per_page=per_page,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
        )
        self._repo = self._gh.get_repo(repo)

    @classmethod
    def from_env(cls, repo: str, environ: Mapping[str, str], **options: Any) -> GitHub:
        """The client with the token of TOKEN_VARIABLES (ConfigError when none is set)."""
        source = token_variable(environ)
        if source is None:
            raise ConfigError(
                "no GitHub token in the environment",
                hint=f"set {TOKEN_VARIABLES[0]} (or {' or '.join(TOKEN_VARIABLES[1:])}); "
                "in a workflow, pass `GITHUB_TOKEN: ${{ github.token }}` to the step",
            )
        return cls(repo, environ[source], token_source=source, **options)

    def __repr__(self) -> str:
        return f"GitHub({self.repo!r}, api_url={self.api_url!r})"

    # -- reading -------------------------------------------------------------------------

    def default_branch(self) -> str:
        op = _Op("read the repository", "metadata: read")
        return self._call(op, lambda: str(self._repo.default_branch))

    def branch_sha(self, name: str) -> str | None:
        """The commit branch `name` points at on GitHub; None when it does not exist."""
        op = _Op(f"read branch {name}", "contents: read")
        try:
            return self._call(op, lambda: str(self._repo.get_branch(name).commit.sha))
        except GitHubError as exc:
            # GitHub's words tell a missing branch from a missing repository.
            if exc.status == 404 and exc.detail == "Branch not found":
                return None
            raise

    def pulls(
        self,
        *,
        state: Literal["open", "closed", "all"] = "open",
        label: str | None = None,
        head: str | None = None,
    ) -> list[PullRequest]:
        """Every pull request in `state` ("open", "closed", "all"), all pages, newest
        first; only those labelled `label` and from branch `head` when given."""
        op = _Op("list pull requests", "pull-requests: read")
        options: dict[str, str] = {"state": state, "sort": "created", "direction": "desc"}
        if head is not None:
            options["head"] = head if ":" in head else f"{self._owner}:{head}"

        def fetch() -> list[PullRequest]:
            records = (_pull_record(pr) for pr in self._repo.get_pulls(**options))
            return [r for r in records if label is None or label in r.labels]

        return self._call(op, fetch)

    def count_created_since(self, label: str, since: datetime.datetime) -> int:
        """How many pull requests labelled `label` were opened at or after `since`, counted
        on GitHub (newest first; paging stops at the first older one)."""
        since = _utc(since)
        op = _Op("list pull requests", "pull-requests: read")

        def count() -> int:
            total = 0
            pulls = self._repo.get_pulls(state="all", sort="created", direction="desc")
            for pr in pulls:
                if _utc(pr.created_at) < since:
                    break
                total += any(lbl.name == label for lbl in pr.labels)
            return total

        return self._call(op, count)

    def pull(self, number: int) -> PullRequest:
        op = _Op(
            f"read pull request #{number}", "pull-requests: read", thing=f"pull request #{number}"
        )
        return self._call(op, lambda: _pull_record(self._repo.get_pull(number)))

    def comments(self, number: int) -> list[Comment]:
        """The conversation comments of pull request `number`, oldest first (all pages)."""
        op = _Op(
            f"list the comments of pull request #{number}",
            "pull-requests: read",
            thing=f"pull request #{number}",
        )
        issue = self._repo.get_issue(number)
        return self._call(op, lambda: [_comment(c) for c in issue.get_comments()])

    def reviews(self, number: int) -> list[Review]:
        op = _Op(
            f"list the reviews of pull request #{number}",
            "pull-requests: read",
            thing=f"pull request #{number}",
        )
        pull = self._repo.get_pull(number)
        return self._call(op, lambda: [_review(r) for r in pull.get_reviews()])

    def pull_commits(self, number: int) -> list[PullCommit]:
        op = _Op(
            f"list the commits of pull request #{number}",
            "pull-requests: read",
            thing=f"pull request #{number}",
        )
        pull = self._repo.get_pull(number)
        return self._call(op, lambda: [_pull_commit(c) for c in pull.get_commits()])

    def commits(self, branch: str, *, since: datetime.datetime | None = None) -> list[Commit]:
        """The commits reachable from `branch`, newest first (committed at or after `since`)."""
        op = _Op(f"list the commits of {branch}", "contents: read", thing=f"branch {branch}")

        def fetch() -> list[Commit]:
            found = (
                self._repo.get_commits(sha=branch, since=_utc(since))
                if since is not None
                else self._repo.get_commits(sha=branch)
            )
            return [_commit(c) for c in found]

        return self._call(op, fetch)

    def compare_commits(self, base: str, head: str) -> list[Commit]:
        """The commits on `head` that `base` lacks, oldest first."""
        op = _Op(f"compare {base}...{head}", "contents: read", thing=f"{base} or {head}")
        return self._call(op, lambda: [_commit(c) for c in self._repo.compare(base, head).commits])

    # -- writing (never a merge) ---------------------------------------------------------

    def create_pull(
        self, *, head: str, base: str, title: str, body: str, draft: bool = True
    ) -> PullRequest:
        op = _Op("open a pull request", "pull-requests: write", creates_pull=True)
        tries = 0

        def create() -> _GhPull:
            nonlocal tries
            tries += 1
            return self._repo.create_pull(base=base, head=head, title=title, body=body, draft=draft)

        try:
            return _pull_record(self._call(op, create))
        except GitHubError as exc:
            # A create that failed in transit may have happened: the retry then finds it.
            if tries > 1 and exc.status == 422 and "already exists" in exc.detail:
                existing = self.pulls(state="open", head=head)
                if existing:
                    return existing[0]
            raise

    def ensure_label(self, name: str, *, color: str, description: str) -> None:
        """Create label `name` unless the repository has it (someone creating it at the
        same moment is fine)."""
        read = _Op(f"read the label {name!r}", "issues: read")
        try:
            # The label object is lazy: reading a field fetches it.
            self._call(read, lambda: self._repo.get_label(name).color)
            return
        except GitHubError as exc:
            if exc.status != 404:
                raise
        create = _Op(f"create the label {name!r}", "issues: write (or pull-requests: write)")
        try:
            self._call(
                create, lambda: self._repo.create_label(name, color.lstrip("#"), description)
            )
        except GitHubError as exc:
            if not (exc.status == 422 and "already_exists" in exc.detail):
                raise

    def add_labels(self, number: int, names: Sequence[str]) -> None:
        if not names:
            return
        op = _Op(
            f"label pull request #{number}",
            "pull-requests: write",
            thing=f"pull request #{number}",
        )
        issue = self._repo.get_issue(number)
        self._call(op, lambda: issue.add_to_labels(*names))

    def request_reviewers(
        self, number: int, users: Sequence[str], teams: Sequence[str]
    ) -> tuple[RefusedReviewer, ...]:
        """Ask `users` and `teams` to review. GitHub refuses the whole request when one of
        them cannot review (the PR's author, a non-collaborator): then each is asked alone,
        and those refused are returned instead of failing the pull request."""
        if not users and not teams:
            return ()
        op = _Op(
            f"request reviews on pull request #{number}",
            "pull-requests: write",
            thing=f"pull request #{number}",
        )
        pull = self._repo.get_pull(number)

        def ask(people: list[str], groups: list[str]) -> None:
            self._call(op, lambda: pull.create_review_request(people, groups))

        try:
            ask(list(users), list(teams))
            return ()
        except GitHubError as exc:
            if exc.status != 422:
                raise
        refused: list[RefusedReviewer] = []
        for name, team in [*((u, False) for u in users), *((t, True) for t in teams)]:
            try:
                ask([] if team else [name], [name] if team else [])
            except GitHubError as exc:
                if exc.status != 422:
                    raise
                refused.append(RefusedReviewer(name, team, exc.detail or exc.message))
        return tuple(refused)

    def comment(self, number: int, body: str) -> str:
        """Comment on the conversation of pull request `number`; the comment's address."""
        op = _Op(
            f"comment on pull request #{number}",
            "pull-requests: write",
            thing=f"pull request #{number}",
        )
        issue = self._repo.get_issue(number)
        return self._call(op, lambda: str(issue.create_comment(body).html_url))

    # -- issues (the incident report and the breaker's alert) -----------------------------

    def issues(
        self,
        *,
        state: Literal["open", "closed", "all"] = "open",
        labels: Sequence[str] = (),
        creator: str | None = None,
    ) -> list[Issue]:
        """The issues in `state` carrying every one of `labels` (opened by `creator` when
        given), newest first, all pages; pull requests, which GitHub lists too, left out."""
        op = _Op("list issues", "issues: read")
        options: dict[str, Any] = {"state": state, "sort": "created", "direction": "desc"}
        if labels:
            options["labels"] = list(labels)
        if creator is not None:
            options["creator"] = creator

        def fetch() -> list[Issue]:
            found = self._repo.get_issues(**options)
            return [_issue(i) for i in found if i.pull_request is None]

        return self._call(op, fetch)

    def issue(self, number: int) -> Issue:
        op = _Op(f"read issue #{number}", "issues: read", thing=f"issue #{number}")
        return self._call(op, lambda: _issue(self._repo.get_issue(number)))

    def create_issue(self, *, title: str, body: str, labels: Sequence[str] = ()) -> Issue:
        """Open an issue. Not retried after a 5xx on its own say-so: the caller finds an
        issue it may have opened by its marker before opening another (GitHub has no
        idempotency key), so a retry is safe only because the callers look first."""
        op = _Op("open an issue", "issues: write")
        return self._call(
            op, lambda: _issue(self._repo.create_issue(title=title, body=body, labels=list(labels)))
        )

    def update_issue(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> Issue:
        op = _Op(f"update issue #{number}", "issues: write", thing=f"issue #{number}")
        issue = self._repo.get_issue(number)

        def edit() -> Issue:
            issue.edit(
                title=NotSet if title is None else title, body=NotSet if body is None else body
            )
            return _issue(issue)

        return self._call(op, edit)

    def comment_issue(self, number: int, body: str) -> str:
        """Comment on issue `number`; the comment's address."""
        op = _Op(f"comment on issue #{number}", "issues: write", thing=f"issue #{number}")
        issue = self._repo.get_issue(number)
        return self._call(op, lambda: str(issue.create_comment(body).html_url))

    def dispatch(self, event_type: str, client_payload: Mapping[str, Any]) -> None:
        """Send a `repository_dispatch` event: workflows `on: repository_dispatch` with
        `types: [event_type]` start, reading `github.event.client_payload`. GitHub answers
        204 and keeps no idempotency key: a dispatch retried after a 5xx whose request did
        reach GitHub starts the workflow twice (the payload should carry an id to dedupe)."""
        op = _Op(f"send the {event_type} dispatch", "contents: write")
        document = {"event_type": event_type, "client_payload": dict(client_payload)}

        def send() -> None:
            # Not Repository.create_repository_dispatch: it returns False on an error
            # status instead of raising, which would hide a 5xx from the retries and a 403
            # from its error. requestJsonAndCheck raises GithubException as every call here.
            self._repo.requester.requestJsonAndCheck(
                "POST", f"{self._repo.url}/dispatches", input=document
            )

        self._call(op, send)

    # -- the one place calls are made, retried and turned into errors ---------------------

    @property
    def _owner(self) -> str:
        return self.repo.split("/")[0]

    def _call(self, op: _Op, fn: Callable[[], T]) -> T:
        waited = 0.0
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except GithubException as exc:
                problem = self._judge(op, exc)
            except OSError as exc:  # requests' errors are OSErrors: resets, refusals, timeouts
                problem = self._unreachable(op, exc)
            if not problem.transient or attempt == self.retries:
                raise problem.error
            delay = problem.wait_s
            if delay is None:
                delay = retrying.backoff(self.backoff_s, attempt)
                if problem.secondary:
                    delay = max(delay, _SECONDARY_WAIT_S)
            if waited + delay > self.max_wait_s:
                raise problem.error
            self._sleep(delay)
            waited += delay
        raise AssertionError("unreachable: the last attempt raises")

    def _judge(self, op: _Op, exc: GithubException) -> _Problem:
        status = exc.status
        data = exc.data if isinstance(exc.data, dict) else {}
        message = _one_line(str(data.get("message") or exc.message or ""))
        headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
        where = f"{op.what} in {self.repo}"
        if status in (403, 429):
            # GitHub's order: Retry-After says how long; else Remaining 0 is the hourly
            # quota (wait for X-RateLimit-Reset); else a secondary limit of unnamed length.
            retry_after = retrying.retry_after(headers.get("retry-after"))
            lowered = message.lower()
            secondary = "secondary rate limit" in lowered or "abuse" in lowered
            exhausted = headers.get("x-ratelimit-remaining") == "0"
            if retry_after is None and exhausted:
                return _Problem(self._exhausted(where, headers, status, message), transient=False)
            if retry_after is not None or secondary or status == 429:
                return _Problem(
                    self._error(
                        f"GitHub's secondary rate limit stopped the attempt to {where} "
                        f"({status}: {message or 'too many requests'})",
                        "too many requests in a short time; run the command again in a few minutes",
                        status,
                        message,
                    ),
                    transient=True,
                    wait_s=retry_after,
                    secondary=True,
                )
        if status == 401:
            source = self._source or "the GitHub token"
            return _Problem(
                self._error(
                    f"GitHub rejected the token from {source} "
                    f"(401: {message or 'Bad credentials'}) trying to {where}",
                    f"{source} is missing, expired or wrong: set it to a valid token (the "
                    "workflow's GITHUB_TOKEN, a GitHub App installation token or a personal "
                    "access token)",
                    status,
                    message,
                ),
                transient=False,
            )
        if status == 403:
            hint = (
                f"the token needs `{op.needs}` on {self.repo} (the workflow's `permissions:`, "
                "the App's permissions, or the fine-grained token's repository permissions)"
            )
            if op.creates_pull:
                hint += f"; {_PR_SETTING}"
            return _Problem(
                self._error(
                    f"GitHub refused to {where} (403: {message or 'Forbidden'})",
                    hint,
                    status,
                    message,
                ),
                transient=False,
            )
        if status == 404:
            missing = f" or {op.thing} does not exist" if op.thing else ""
            return _Problem(
                self._error(
                    f"GitHub could not {where} (404): the repository {self.repo} is not found "
                    f"or not visible to this token{missing}",
                    "check the repository (--repo, github.repo, GITHUB_REPOSITORY or the "
                    f"origin remote) and that the token can read it (`contents: read`; a "
                    f"fine-grained token must list {self.repo}); API: {self.api_url}",
                    status,
                    message,
                ),
                transient=False,
            )
        if status == 422:
            detail = _validation(data) or message
            return _Problem(
                self._error(
                    f"GitHub refused to {where} (422: {detail})",
                    "GitHub's validation message names what to change",
                    status,
                    detail,
                ),
                transient=False,
            )
        if status >= 500:
            return _Problem(
                self._error(
                    f"GitHub failed to {where} ({status}: {message or 'server error'}) "
                    f"after {self.retries + 1} tries",
                    "GitHub may be having an outage (https://www.githubstatus.com); run the "
                    "command again later",
                    status,
                    message,
                ),
                transient=True,
            )
        return _Problem(
            self._error(
                f"GitHub answered {status} trying to {where}: {message or 'no message'}",
                "run again with --verbose to see the request",
                status,
                message,
            ),
            transient=False,
        )

    def _exhausted(
        self, where: str, headers: Mapping[str, str], status: int, message: str
    ) -> GitHubError:
        reset = retrying.seconds(headers.get("x-ratelimit-reset"))
        if reset is not None:
            at = datetime.datetime.fromtimestamp(reset, datetime.timezone.utc)
            minutes = max(0, round((reset - time.time()) / 60))
            when = f"it resets at {at:%H:%M} UTC (in {minutes} min)"
        else:
            when = "GitHub named no reset time"
        limit = headers.get("x-ratelimit-limit", "?")
        return self._error(
            f"GitHub's API rate limit for this token is used up ({limit} requests an hour) "
            f"trying to {where}; {when}",
            "wait until it resets, or run with another token (each token has a quota of its "
            "own; a GitHub App installation token has more than a workflow's GITHUB_TOKEN)",
            status,
            message,
        )

    def _unreachable(self, op: _Op, exc: OSError) -> _Problem:
        kind = type(exc).__name__
        host = urlsplit(self.api_url).netloc
        return _Problem(
            self._error(
                f"could not reach GitHub at {host} to {op.what} in {self.repo} ({kind}) after "
                f"{self.retries + 1} tries",
                "check the network and the API address (github.api_url, GITHUB_API_URL)",
                None,
                "",
            ),
            transient=True,
        )

    def _error(self, message: str, hint: str, status: int | None, detail: str) -> GitHubError:
        return GitHubError(
            self._scrub(message),
            hint=self._scrub(hint),
            status=status,
            detail=self._scrub(detail),
        )

    def _scrub(self, text: str) -> str:
        # GitHub never echoes a token, but a proxy or a misconfigured GHES might: belt and braces.
        return text.replace(self._secret, "***")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation(data: Mapping[str, Any]) -> str:
    """GitHub's 422 document as one line: its message, then each error's message (or its
    field and code, e.g. "head invalid")."""
    details: list[str] = []
    for item in data.get("errors") or ():
        if isinstance(item, dict):
            text = item.get("message") or " ".join(
                str(item[k]) for k in ("field", "code") if item.get(k)
            )
        else:
            text = str(item)
        if text:
            details.append(_one_line(str(text), 200))
    head = _one_line(str(data.get("message") or ""))
    return ": ".join(part for part in (head, "; ".join(details)) if part)


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def _maybe_utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    return _utc(moment) if moment is not None else None


def _labels(names: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(label.name) for label in names)


def _pull_record(pr: _GhPull) -> PullRequest:
    merged_at = _maybe_utc(pr.merged_at)
    return PullRequest(
        number=pr.number,
        html_url=pr.html_url,
        title=pr.title or "",
        body=pr.body or "",
        state=pr.state,
        draft=bool(pr.draft),
        merged=merged_at is not None,
        merged_at=merged_at,
        created_at=_utc(pr.created_at),
        closed_at=_maybe_utc(pr.closed_at),
        head_ref=pr.head.ref,
        head_sha=pr.head.sha,
        base_ref=pr.base.ref,
        merge_commit_sha=pr.merge_commit_sha if merged_at is not None else None,
        labels=_labels(pr.labels),
        author=pr.user.login if pr.user is not None else None,
    )


def _pull_commit(c: _GhCommit) -> PullCommit:
    return PullCommit(
        sha=c.sha,
        author_login=c.author.login if c.author is not None else None,
        committer_login=c.committer.login if c.committer is not None else None,
        message=c.commit.message,
        authored_at=_utc(c.commit.author.date),
    )


def _comment(c: IssueComment) -> Comment:
    return Comment(
        id=c.id,
        html_url=c.html_url,
        body=c.body or "",
        author=c.user.login if c.user is not None else None,
        created_at=_utc(c.created_at),
    )


def _issue(i: _GhIssue) -> Issue:
    return Issue(
        number=i.number,
        html_url=i.html_url,
        title=i.title or "",
        body=i.body or "",
        state=i.state,
        labels=_labels(i.labels),
        assignees=tuple(str(a.login) for a in i.assignees),
        author=i.user.login if i.user is not None else None,
        created_at=_utc(i.created_at),
        updated_at=_utc(i.updated_at),
    )


def _review(r: PullRequestReview) -> Review:
    return Review(
        author=r.user.login if r.user is not None else None,
        state=r.state,
        submitted_at=_maybe_utc(r.submitted_at),
    )


def _commit(c: _GhCommit) -> Commit:
    return Commit(
        sha=c.sha,
        message=c.commit.message,
        author_login=c.author.login if c.author is not None else None,
    )
