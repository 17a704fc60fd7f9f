"""A fake GitHub REST API on 127.0.0.1, for tests (ours and users').

It answers the handful of endpoints agentloop calls the way api.github.com does: the same
JSON shapes, 422 validation errors, pagination with a `Link` header, rate-limit headers on
every answer. It lives under the path prefix `/api/v3` (GitHub Enterprise's), so PyGithub
is pointed at it with `base_url=fake.api_url`; every API address in an answer carries the
prefix, because PyGithub keeps only the path of the URLs it is given back and would
otherwise 404 on its lazy follow-up calls.

Branches and commits are real: each repository is a bare git repository (the `origin` a
test pushes to, or one the fake makes), read with git on every request, so a `git push` is
visible to the API at once. Pull requests, labels, comments and reviews live in memory.

    with FakeGitHub() as fake:
        fake.add_repo("o/r", origin=bare_repo)   # then `git push` a branch to bare_repo
        client = integrations.github.GitHub("o/r", "token", api_url=fake.api_url)
        client.create_pull(head="agentloop/fix", base="main", title="fix: …", body="…")
        assert [r.path for r in fake.requests_to("POST", ".*")] == ["/repos/o/r/pulls"]

Users and their commits: a commit's author is the GitHub user `login` when its email is
`login@users.noreply.github.com` (optionally `12345+login@…`), as on GitHub; any other email
has no GitHub user (`"author": null`). `fail()` and `disconnect()` inject errors; the
`merge_pull`, `close_pull`, `add_pull_commit`, `review_pull`, `push_commit` and
`revert_commit` helpers play the humans.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from agentloop import git, proc
from agentloop.testing.loopback import Serving, root_url

API_PREFIX = "/api/v3"
RATE_LIMIT = 5000
DOCS = "https://docs.github.com/rest"
_NOREPLY = re.compile(r"^(?:\d+\+)?(?P<login>[^@]+)@users\.noreply\.github\.com$", re.IGNORECASE)

Json = Any
_Params = Mapping[str, str]


@dataclass(frozen=True)
class Request:
    """One request as the fake received it. `path` is the API path without the `/api/v3`
    prefix (a request outside the prefix keeps its whole path); header names are lower
    case; `json` is the decoded body (None when there was none)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Json


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int  # 0: drop the connection without an answer
    body: Json
    headers: Mapping[str, str]
    times: int | None
    after: bool = False


@dataclass
class _Pull:
    number: int
    title: str
    body: str | None
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    author: str
    draft: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime
    state: str = "open"
    closed_at: datetime.datetime | None = None
    merged_at: datetime.datetime | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    reviews: list[Json] = field(default_factory=list)
    comments: list[Json] = field(default_factory=list)


@dataclass
class _Issue:
    """An issue (not a pull request); numbers are shared with pull requests, as on GitHub."""

    number: int
    title: str
    body: str | None
    author: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    state: str = "open"
    closed_at: datetime.datetime | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    comments: list[Json] = field(default_factory=list)


@dataclass
class _Repo:
    full_name: str
    default_branch: str
    origin: Path
    collaborators: frozenset[str] | None
    pulls: dict[int, _Pull] = field(default_factory=dict)
    issues: dict[int, _Issue] = field(default_factory=dict)
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]


class _Answer(Exception):
    """Raised by a route to answer with an error document."""

    def __init__(self, status: int, message: str, errors: Sequence[Json] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.document: Json = {"message": message, "documentation_url": DOCS}
        if errors:
            self.document["errors"] = list(errors)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def login_of(email: str) -> str | None:
    """The GitHub user a commit email belongs to, as GitHub sees it (noreply addresses)."""
    match = _NOREPLY.match(email.strip())
    return match.group("login") if match else None


def email_of(login: str) -> str:
    return f"{login}@users.noreply.github.com"


class FakeGitHub:
    """The fake API on an ephemeral 127.0.0.1 port while the context is open."""

    def __init__(self, *, login: str = "agentloop-bot") -> None:
        # Who the token belongs to: the author of what is created through the API.
        self.login = login
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._failures: list[_Failure] = []
        self._stalls: list[tuple[str, re.Pattern[str], threading.Event]] = []
        self._dispatches: list[Json] = []
        self._requests: list[Request] = []
        self._numbers = itertools.count(1)
        self._ids = itertools.count(1001)
        self._used = 0
        self._tmp: Path | None = None
        self._serving: Serving[_Server] | None = None
        # Exceptions raised by the fake's own code: re-raised when the context closes, so a
        # bug here never hides behind a client that retries 500s.
        self.errors: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        self._tmp = Path(tempfile.mkdtemp(prefix="fake-github-"))
        self._serving = Serving(_Server(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._serving is not None:
            self._serving.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._serving, self._tmp = None, None
        if exc is None and self.errors:
            raise AssertionError("the fake GitHub failed:\n" + "\n".join(self.errors))

    @property
    def url(self) -> str:
        """The server's root, e.g. http://127.0.0.1:PORT (web addresses live here)."""
        return root_url(self._serving, "FakeGitHub")

    @property
    def api_url(self) -> str:
        """PyGithub's `base_url` (and agentloop's `github.api_url`)."""
        return self.url + API_PREFIX

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def dispatches(self) -> list[Json]:
        """The repository_dispatch events accepted so far: {"repo", "event_type",
        "client_payload"}, in arrival order (a copy)."""
        with self._lock:
            return list(self._dispatches)

    def requests_to(self, method: str, path_regex: str) -> list[Request]:
        """The requests whose method is `method` ("*": any) and whose API path matches
        `path_regex` in full."""
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if method in ("*", r.method) and pattern.fullmatch(r.path) is not None
        ]

    # -- setup -------------------------------------------------------------------------

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        origin: Path | None = None,
        collaborators: Sequence[str] | None = None,
    ) -> None:
        """Serve `full_name`. With `origin` (a bare git repository), branches and commits
        are read from it; without, the fake makes one holding one empty commit on
        `default_branch`. `collaborators`: the only users review may be requested from
        (None: anyone but a PR's author)."""
        if self._tmp is None:
            raise RuntimeError("add repositories inside the `with FakeGitHub()` block")
        if origin is None:
            origin = self._tmp / f"{full_name.replace('/', '__')}.git"
            _git(self._tmp, "init", "-q", "--bare", "-b", default_branch, str(origin))
            tree = _git(origin, "hash-object", "-t", "tree", "-w", "/dev/null")
            first = _commit(origin, tree, [], "Initial commit", "octocat", _now())
            _git(origin, "update-ref", f"refs/heads/{default_branch}", first)
        with self._lock:
            self._repos[full_name.lower()] = _Repo(
                full_name=full_name,
                default_branch=default_branch,
                origin=origin,
                collaborators=frozenset(collaborators) if collaborators is not None else None,
            )

    def origin(self, repo: str | None = None) -> Path:
        """The bare repository behind `repo` (push to it to move a branch)."""
        return self._repo(repo).origin

    def add_label(
        self, name: str, *, color: str = "ededed", description: str = "", repo: str | None = None
    ) -> None:
        with self._lock:
            self._repo(repo).labels[name] = (color, description)

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Json = None,
        headers: Mapping[str, str] | None = None,
        times: int | None = 1,
        *,
        after: bool = False,
    ) -> None:
        """Answer the next `times` requests (None: all of them) whose method is `method`
        ("*": any) and whose API path matches `path_regex` in full with `status`, `body`
        (default: GitHub's document for that status) and extra `headers` (which override
        the rate-limit headers, e.g. {"X-RateLimit-Remaining": "0"}). `after`: do what the
        request asks first, then answer with the failure (a gateway losing GitHub's answer:
        the pull request exists although the client saw a 502)."""
        document = body if body is not None else _default_error(status)
        pattern = re.compile(path_regex)
        with self._lock:
            self._failures.append(
                _Failure(method, pattern, status, document, headers or {}, times, after)
            )

    def disconnect(self, method: str, path_regex: str, times: int | None = 1) -> None:
        """Close the connection without answering (a reset, as a flaky network does)."""
        with self._lock:
            self._failures.append(_Failure(method, re.compile(path_regex), 0, None, {}, times))

    def stall(self, method: str, path_regex: str) -> threading.Event:
        """Hold the next request whose method is `method` and whose API path matches
        `path_regex` (recorded first, as GitHub would have it) until the returned event is
        set: a GitHub that is slow to answer, or a client killed while it waits."""
        release = threading.Event()
        with self._lock:
            self._stalls.append((method, re.compile(path_regex), release))
        return release

    # -- the humans ----------------------------------------------------------------------

    def open_pull(
        self,
        head: str,
        *,
        title: str = "A pull request",
        body: str = "",
        base: str | None = None,
        author: str | None = None,
        draft: bool = False,
        labels: Sequence[str] = (),
        created_at: datetime.datetime | None = None,
        repo: str | None = None,
    ) -> int:
        """A pull request opened by `author` (default: the token's `login`) without going
        through the API (no validation: a missing head branch stands at the base's commit).
        Returns its number."""
        with self._lock:
            target = self._repo(repo)
            base = base or target.default_branch
            base_sha = self._sha(target, base) or ""
            moment = created_at or _now()
            pull = _Pull(
                number=next(self._numbers),
                title=title,
                body=body,
                head_ref=head,
                head_sha=self._sha(target, head) or base_sha,
                base_ref=base,
                base_sha=base_sha,
                author=author or self.login,
                draft=draft,
                created_at=moment,
                updated_at=moment,
            )
            for name in labels:
                target.labels.setdefault(name, ("ededed", ""))
            pull.labels.extend(labels)
            target.pulls[pull.number] = pull
            return pull.number

    def pull(self, number: int, *, repo: str | None = None) -> Json:
        """The pull request's full JSON document, as GET /pulls/{n} answers it."""
        with self._lock:
            target = self._repo(repo)
            return self._pull_json(target, self._pull(target, number), full=True)

    def merge_pull(
        self,
        number: int,
        *,
        by: str = "octocat",
        at: datetime.datetime | None = None,
        method: str = "squash",
        repo: str | None = None,
    ) -> str:
        """A human merges the PR (method "squash" or "merge"): the base branch of the bare
        repository gets the commit. Returns the merge commit's sha."""
        with self._lock:
            target = self._repo(repo)
            pull = self._pull(target, number)
            if pull.state != "open":
                raise ValueError(f"pull request #{number} is {pull.state}")
            moment = at or _now()
            head = self._head_sha(target, pull)
            tip = self._sha(target, pull.base_ref) or pull.base_sha
            base = _git(target.origin, "merge-base", tip, head)
            tree = self._merge(target, base, tip, head)
            if method == "squash":
                message = f"{pull.title} (#{number})\n\n{pull.body or ''}".strip()
                parents = [tip]
            else:
                message = f"Merge pull request #{number} from {target.owner}/{pull.head_ref}"
                parents = [tip, head]
            sha = _commit(target.origin, tree, parents, message, by, moment)
            _git(target.origin, "update-ref", f"refs/heads/{pull.base_ref}", sha, tip)
            pull.head_sha = head
            pull.state = "closed"
            pull.merged_at = pull.closed_at = pull.updated_at = moment
            pull.merged_by = by
            pull.merge_commit_sha = sha
            return sha

    def close_pull(
        self, number: int, *, at: datetime.datetime | None = None, repo: str | None = None
    ) -> None:
        """A human closes the PR without merging it."""
        with self._lock:
            target = self._repo(repo)
            pull = self._pull(target, number)
            pull.head_sha = self._head_sha(target, pull)
            pull.state = "closed"
            pull.closed_at = pull.updated_at = at or _now()

    def add_pull_commit(
        self,
        number: int,
        *,
        author_login: str = "octocat",
        message: str = "Address review comments",
        at: datetime.datetime | None = None,
        repo: str | None = None,
    ) -> str:
        """A human pushes a commit to the PR's head branch. Returns its sha."""
        with self._lock:
            target = self._repo(repo)
            pull = self._pull(target, number)
            sha = self.push_commit(
                pull.head_ref, message, author_login=author_login, at=at, repo=target.full_name
            )
            pull.head_sha = sha
            pull.updated_at = at or _now()
            return sha

    def review_pull(
        self,
        number: int,
        *,
        by: str = "octocat",
        state: str = "APPROVED",
        body: str = "",
        at: datetime.datetime | None = None,
        repo: str | None = None,
    ) -> None:
        """A human reviews the PR (state APPROVED, CHANGES_REQUESTED or COMMENTED)."""
        with self._lock:
            target = self._repo(repo)
            pull = self._pull(target, number)
            review_id = next(self._ids)
            pull.reviews.append(
                {
                    "id": review_id,
                    "node_id": f"PRR_{review_id}",
                    "user": self._user(by),
                    "body": body,
                    "state": state,
                    "html_url": f"{self._web(target)}/pull/{number}#pullrequestreview-{review_id}",
                    "pull_request_url": f"{self._api(target)}/pulls/{number}",
                    "submitted_at": _iso(at or _now()),
                    "commit_id": self._head_sha(target, pull),
                    "author_association": "MEMBER",
                }
            )

    def push_commit(
        self,
        branch: str,
        message: str,
        *,
        author_login: str | None = "octocat",
        at: datetime.datetime | None = None,
        repo: str | None = None,
    ) -> str:
        """A commit (same tree as its parent) on `branch` of the bare repository, authored
        by `author_login` (None: an email GitHub links to no user). Creates the branch at
        the default branch when missing. Returns its sha."""
        with self._lock:
            target = self._repo(repo)
            tip = self._sha(target, branch)
            parent = tip or self._sha(target, target.default_branch)
            if parent is None:
                raise ValueError(f"{target.full_name} has no branch {target.default_branch}")
            tree = _git(target.origin, "rev-parse", f"{parent}^{{tree}}")
            sha = _commit(target.origin, tree, [parent], message, author_login, at or _now())
            _git(target.origin, "update-ref", f"refs/heads/{branch}", sha, tip or "")
            return sha

    def revert_commit(
        self,
        sha: str,
        *,
        author_login: str = "octocat",
        at: datetime.datetime | None = None,
        branch: str | None = None,
        repo: str | None = None,
    ) -> str:
        """What GitHub's (and git's) revert does: a commit on `branch` (the default branch)
        undoing `sha`, with the message `Revert "<subject>"` / `This reverts commit <sha>.`
        Returns its sha."""
        with self._lock:
            target = self._repo(repo)
            branch = branch or target.default_branch
            tip = self._sha(target, branch)
            if tip is None:
                raise ValueError(f"{target.full_name} has no branch {branch}")
            full = _git(target.origin, "rev-parse", "--verify", f"{sha}^{{commit}}")
            subject = _git(target.origin, "log", "-1", "--format=%s", full)
            tree = self._merge(target, full, tip, f"{full}^")
            message = f'Revert "{subject}"\n\nThis reverts commit {full}.'
            new = _commit(target.origin, tree, [tip], message, author_login, at or _now())
            _git(target.origin, "update-ref", f"refs/heads/{branch}", new, tip)
            return new

    def open_issue(
        self,
        title: str,
        *,
        body: str = "",
        labels: Sequence[str] = (),
        author: str | None = None,
        created_at: datetime.datetime | None = None,
        repo: str | None = None,
    ) -> int:
        """An issue opened without going through the API (by `author`, default the token's
        `login`). Returns its number."""
        with self._lock:
            target = self._repo(repo)
            moment = created_at or _now()
            issue = _Issue(
                number=next(self._numbers),
                title=title,
                body=body,
                author=author or self.login,
                created_at=moment,
                updated_at=moment,
            )
            for name in labels:
                target.labels.setdefault(name, ("ededed", ""))
            issue.labels.extend(labels)
            target.issues[issue.number] = issue
            return issue.number

    def issue(self, number: int, *, repo: str | None = None) -> Json:
        """The issue's JSON document (a pull request's too), as GET /issues/{n} answers it."""
        with self._lock:
            return self._issue_json(self._repo(repo), number)

    def issue_comments(self, number: int, *, repo: str | None = None) -> list[Json]:
        with self._lock:
            return list(self._conversation(self._repo(repo), number).comments)

    def assign_issue(self, number: int, login: str = "octocat", *, repo: str | None = None) -> None:
        """A human takes the issue."""
        with self._lock:
            issue = self._issue(self._repo(repo), number)
            if login not in issue.assignees:
                issue.assignees.append(login)
            issue.updated_at = _now()

    def label_issue(self, number: int, label: str, *, repo: str | None = None) -> None:
        """A human labels the issue (the repository gets the label if it lacks it)."""
        with self._lock:
            target = self._repo(repo)
            issue = self._issue(target, number)
            target.labels.setdefault(label, ("ededed", ""))
            if label not in issue.labels:
                issue.labels.append(label)
            issue.updated_at = _now()

    def comment_as(
        self, number: int, body: str, login: str = "octocat", *, repo: str | None = None
    ) -> None:
        """A human comments on the issue (or pull request)."""
        with self._lock:
            target = self._repo(repo)
            conversation = self._conversation(target, number)
            comment_id = next(self._ids)
            moment = _iso(_now())
            conversation.comments.append(
                {
                    "id": comment_id,
                    "html_url": f"{self._web(target)}/issues/{number}#issuecomment-{comment_id}",
                    "body": body,
                    "user": self._user(login),
                    "created_at": moment,
                    "updated_at": moment,
                }
            )

    def close_issue(self, number: int, *, repo: str | None = None) -> None:
        with self._lock:
            issue = self._issue(self._repo(repo), number)
            issue.state = "closed"
            issue.closed_at = issue.updated_at = _now()

    # -- internals -----------------------------------------------------------------------

    def _merge(self, repo: _Repo, base: str, ours: str, theirs: str) -> str:
        """The tree of a three-way merge, in a bare repository and without `merge-tree
        --write-tree` (git 2.38+): a throwaway index merges what merges trivially; a file
        both sides changed is a conflict the helpers do not resolve."""
        assert self._tmp is not None
        index = {"GIT_INDEX_FILE": str(self._tmp / f"index-{next(self._ids)}")}
        _git(repo.origin, "read-tree", "-m", "-i", "--aggressive", base, ours, theirs, env=index)
        done = _run(repo.origin, "write-tree", env=index)
        if not done.ok:
            raise ValueError(f"merging {theirs} into {ours} conflicts: {done.stderr.strip()}")
        return done.stdout.strip()

    def _repo(self, name: str | None) -> _Repo:
        with self._lock:
            if name is None:
                if len(self._repos) != 1:
                    raise ValueError("name the repository (repo=...): the fake serves several")
                return next(iter(self._repos.values()))
            try:
                return self._repos[name.lower()]
            except KeyError:
                raise ValueError(f"the fake serves no repository {name}") from None

    def _pull(self, repo: _Repo, number: int) -> _Pull:
        try:
            return repo.pulls[number]
        except KeyError:
            raise _Answer(404, "Not Found") from None

    def _issue(self, repo: _Repo, number: int) -> _Issue:
        try:
            return repo.issues[number]
        except KeyError:
            raise _Answer(404, "Not Found") from None

    def _conversation(self, repo: _Repo, number: int) -> _Issue | _Pull:
        """What /issues/{n} names: an issue, or a pull request's conversation."""
        if number in repo.issues:
            return repo.issues[number]
        return self._pull(repo, number)

    def _issue_json(self, repo: _Repo, number: int) -> Json:
        if number not in repo.issues:
            return self._pull_issue_json(repo, self._pull(repo, number))
        issue = repo.issues[number]
        api = f"{self._api(repo)}/issues/{number}"
        return {
            "id": 200_000 + number,
            "node_id": f"I_{number}",
            "url": api,
            "repository_url": self._api(repo),
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"{self._web(repo)}/issues/{number}",
            "number": number,
            "state": issue.state,
            "state_reason": "completed" if issue.state == "closed" else None,
            "title": issue.title,
            "body": issue.body,
            "user": self._user(issue.author),
            "labels": [self._label_json(repo, name) for name in issue.labels],
            "assignee": self._user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self._user(a) for a in issue.assignees],
            "milestone": None,
            "locked": False,
            "comments": len(issue.comments),
            "created_at": _iso(issue.created_at),
            "updated_at": _iso(issue.updated_at),
            "closed_at": _iso(issue.closed_at),
            "author_association": "CONTRIBUTOR",
        }

    def _sha(self, repo: _Repo, ref: str) -> str | None:
        done = _run(repo.origin, "rev-parse", "--verify", "--quiet", f"refs/heads/{ref}^{{commit}}")
        return done.stdout.strip() if done.ok else None

    def _head_sha(self, repo: _Repo, pull: _Pull) -> str:
        # An open PR follows its branch (a push updates it); a closed one keeps the head it
        # had, as GitHub does through refs/pull/N/head.
        if pull.state == "open":
            return self._sha(repo, pull.head_ref) or pull.head_sha
        return pull.head_sha

    def _pull_shas(self, repo: _Repo, pull: _Pull) -> list[str]:
        head = self._head_sha(repo, pull)
        base = _run(repo.origin, "merge-base", pull.base_sha, head).stdout.strip()
        spec = f"{base}..{head}" if base else head
        return _git(repo.origin, "rev-list", "--reverse", spec).split()

    def _api(self, repo: _Repo) -> str:
        return f"{self.api_url}/repos/{repo.full_name}"

    def _web(self, repo: _Repo) -> str:
        return f"{self.url}/{repo.full_name}"

    def _user(self, login: str | None) -> Json:
        if login is None:
            return None
        return {
            "login": login,
            "id": sum(login.encode()) + 1_000_000,
            "node_id": f"U_{login}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
            "url": f"{self.api_url}/users/{quote(login)}",
            "html_url": f"{self.url}/{quote(login)}",
        }

    def _repo_json(self, repo: _Repo) -> Json:
        owner, name = repo.full_name.split("/")
        return {
            "id": sum(repo.full_name.encode()) + 5000,
            "node_id": f"R_{repo.full_name}",
            "name": name,
            "full_name": repo.full_name,
            "owner": self._user(owner),
            "private": False,
            "fork": False,
            "archived": False,
            "default_branch": repo.default_branch,
            "url": self._api(repo),
            "html_url": self._web(repo),
            "pulls_url": f"{self._api(repo)}/pulls{{/number}}",
            "issues_url": f"{self._api(repo)}/issues{{/number}}",
            "permissions": {"admin": False, "maintain": False, "push": True, "pull": True},
        }

    def _label_json(self, repo: _Repo, name: str) -> Json:
        color, description = repo.labels.get(name, ("ededed", ""))
        return {
            "id": sum(name.encode()) + 7000,
            "node_id": f"LA_{name}",
            "url": f"{self._api(repo)}/labels/{quote(name, safe='')}",
            "name": name,
            "color": color,
            "description": description,
            "default": False,
        }

    def _commits_json(self, repo: _Repo, revs: Sequence[str]) -> list[Json]:
        if not revs:
            return []
        fields = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%T%x00%B%x1e"
        out = _git(repo.origin, "show", "-s", f"--format={fields}", *revs, strip=False)
        commits = []
        for record in out.split("\x1e")[: len(revs)]:
            sha, parents, an, ae, ad, cn, ce, cd, tree, message = record.lstrip("\n").split("\0")
            commits.append(
                {
                    "sha": sha,
                    "node_id": f"C_{sha}",
                    "url": f"{self._api(repo)}/commits/{sha}",
                    "html_url": f"{self._web(repo)}/commit/{sha}",
                    "commit": {
                        "url": f"{self._api(repo)}/git/commits/{sha}",
                        "message": message.rstrip("\n"),
                        "author": {"name": an, "email": ae, "date": _iso(_parse_time(ad))},
                        "committer": {"name": cn, "email": ce, "date": _iso(_parse_time(cd))},
                        "tree": {"sha": tree, "url": f"{self._api(repo)}/git/trees/{tree}"},
                        "comment_count": 0,
                    },
                    "author": self._user(login_of(ae)),
                    "committer": self._user(login_of(ce)),
                    "parents": [
                        {"sha": p, "url": f"{self._api(repo)}/commits/{p}"} for p in parents.split()
                    ],
                }
            )
        return commits

    def _pull_json(self, repo: _Repo, pull: _Pull, *, full: bool) -> Json:
        api, n = self._api(repo), pull.number
        head_sha = self._head_sha(repo, pull)

        def side(ref: str, sha: str) -> Json:
            return {
                "label": f"{repo.owner}:{ref}",
                "ref": ref,
                "sha": sha,
                "user": self._user(repo.owner),
                "repo": self._repo_json(repo),
            }

        document = {
            "url": f"{api}/pulls/{n}",
            "id": 100_000 + n,
            "node_id": f"PR_{n}",
            "html_url": f"{self._web(repo)}/pull/{n}",
            "diff_url": f"{self._web(repo)}/pull/{n}.diff",
            "patch_url": f"{self._web(repo)}/pull/{n}.patch",
            "issue_url": f"{api}/issues/{n}",
            "commits_url": f"{api}/pulls/{n}/commits",
            "review_comments_url": f"{api}/pulls/{n}/comments",
            "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{head_sha}",
            "number": n,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user(pull.author),
            "body": pull.body,
            "labels": [self._label_json(repo, name) for name in pull.labels],
            "milestone": None,
            "created_at": _iso(pull.created_at),
            "updated_at": _iso(pull.updated_at),
            "closed_at": _iso(pull.closed_at),
            "merged_at": _iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self._user(u) for u in pull.reviewers],
            "requested_teams": [{"name": t, "slug": t} for t in pull.teams],
            "head": side(pull.head_ref, head_sha),
            "base": side(pull.base_ref, self._sha(repo, pull.base_ref) or pull.base_sha),
            "author_association": "CONTRIBUTOR",
            "auto_merge": None,
            "draft": pull.draft,
        }
        if full:
            # Only the single-PR answer carries these (a list item lacks `merged`: read
            # `merged_at`, or PyGithub fetches every PR again to complete it).
            document.update(
                {
                    "merged": pull.merged_at is not None,
                    "mergeable": None if pull.state == "closed" else True,
                    "mergeable_state": "unknown",
                    "merged_by": self._user(pull.merged_by),
                    "comments": len(pull.comments),
                    "review_comments": 0,
                    "maintainer_can_modify": False,
                    "commits": len(self._pull_shas(repo, pull)),
                    "additions": 0,
                    "deletions": 0,
                    "changed_files": 0,
                }
            )
        return document

    # -- serving (called from handler threads) -------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        split = urlsplit(raw_path)
        path = split.path
        inside = path.startswith(API_PREFIX + "/")
        api_path = path[len(API_PREFIX) :] if inside else path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = None
        with self._lock:
            self._requests.append(Request(method, api_path, query, dict(headers), document))
            self._used += 1
            failure = self._take_failure(method, api_path)
            stall = next(
                (s for s in self._stalls if s[0] in ("*", method) and s[1].fullmatch(api_path)),
                None,
            )
            if stall is not None:
                self._stalls.remove(stall)
        if stall is not None:
            stall[2].wait(timeout=60)
        if failure is not None and not failure.after:
            return _Reply(failure.status, failure.body, dict(failure.headers))
        reply = self._serve(method, raw_path, api_path, query, document)
        if failure is not None:
            return _Reply(failure.status, failure.body, dict(failure.headers))
        return reply

    def _serve(
        self, method: str, raw_path: str, api_path: str, query: _Params, document: Json
    ) -> _Reply:
        if not raw_path.startswith(API_PREFIX + "/"):
            return _Reply(404, {"message": "Not Found", "documentation_url": DOCS})
        try:
            with self._lock:
                return self._route(method, api_path, query, document)
        except _Answer as answer:
            return _Reply(answer.status, answer.document)
        except Exception:
            self.errors.append(f"{method} {raw_path}\n{traceback.format_exc()}")
            return _Reply(500, {"message": "the fake GitHub crashed", "documentation_url": DOCS})

    def rate_headers(self) -> dict[str, str]:
        reset = int(_now().timestamp()) + 3600
        with self._lock:
            used = self._used
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(RATE_LIMIT - used, 0)),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
        }

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method not in ("*", method) or not failure.pattern.fullmatch(path):
                continue
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
            return failure
        return None

    def _route(self, method: str, path: str, query: _Params, body: Json) -> _Reply:
        for verb, pattern, handler in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            repo = self._repos.get(f"{params.pop('owner')}/{params.pop('name')}".lower())
            if repo is None:
                raise _Answer(404, "Not Found")
            if verb != method:
                continue
            return handler(self, repo, params, query, body)
        raise _Answer(404, "Not Found")

    # -- routes ----------------------------------------------------------------------------

    def _get_repo(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        return _Reply(200, self._repo_json(repo))

    def _get_branch(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        sha = self._sha(repo, p["branch"])
        if sha is None:
            raise _Answer(404, "Branch not found")
        return _Reply(
            200,
            {
                "name": p["branch"],
                "commit": self._commits_json(repo, [sha])[0],
                "protected": False,
                "_links": {
                    "self": f"{self._api(repo)}/branches/{quote(p['branch'])}",
                    "html": f"{self._web(repo)}/tree/{quote(p['branch'])}",
                },
            },
        )

    def _get_ref(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        sha = self._sha(repo, p["branch"])
        if sha is None:
            raise _Answer(404, "Not Found")
        api = self._api(repo)
        return _Reply(
            200,
            {
                "ref": f"refs/heads/{p['branch']}",
                "node_id": f"REF_{p['branch']}",
                "url": f"{api}/git/refs/heads/{quote(p['branch'])}",
                "object": {"type": "commit", "sha": sha, "url": f"{api}/git/commits/{sha}"},
            },
        )

    def _list_commits(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        ref = q.get("sha") or repo.default_branch
        args = ["rev-list"]
        if q.get("since"):
            args.append(f"--since={q['since']}")
        if q.get("until"):
            args.append(f"--until={q['until']}")
        resolved = _run(repo.origin, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if not resolved.ok:
            raise _Answer(404, f"No commit found for SHA: {ref}")
        shas = _git(repo.origin, *args, resolved.stdout.strip()).split()
        page, links = _paginate(shas, q, self.url + API_PREFIX + f"/repos/{repo.full_name}/commits")
        return _Reply(200, self._commits_json(repo, page), links)

    def _get_commit(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        resolved = _run(repo.origin, "rev-parse", "--verify", "--quiet", f"{p['sha']}^{{commit}}")
        if not resolved.ok:
            raise _Answer(422, f"No commit found for SHA: {p['sha']}")
        return _Reply(200, self._commits_json(repo, [resolved.stdout.strip()])[0])

    def _compare(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        ends = []
        for ref in (p["base"], p["head"]):
            done = _run(repo.origin, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            if not done.ok:
                raise _Answer(404, "Not Found")
            ends.append(done.stdout.strip())
        base, head = ends
        merge_base = _run(repo.origin, "merge-base", base, head).stdout.strip()
        ahead = _git(repo.origin, "rev-list", "--reverse", f"{base}..{head}").split()
        behind = _git(repo.origin, "rev-list", f"{head}..{base}").split()
        url = f"{self._api(repo)}/compare/{quote(p['base'])}...{quote(p['head'])}"
        page, links = _paginate(ahead, q, url, default=250)
        status = (
            "identical"
            if not ahead and not behind
            else "ahead"
            if not behind
            else ("behind" if not ahead else "diverged")
        )
        return _Reply(
            200,
            {
                "url": url,
                "html_url": f"{self._web(repo)}/compare/{p['base']}...{p['head']}",
                "status": status,
                "ahead_by": len(ahead),
                "behind_by": len(behind),
                "total_commits": len(ahead),
                "base_commit": self._commits_json(repo, [base])[0],
                "merge_base_commit": self._commits_json(repo, [merge_base])[0]
                if merge_base
                else None,
                "commits": self._commits_json(repo, page),
                "files": [],
            },
            links,
        )

    def _list_pulls(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        state = q.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _Answer(422, "Validation Failed", [_invalid("PullRequest", "state")])
        pulls = [pull for pull in repo.pulls.values() if state in ("all", pull.state)]
        if "head" in q:
            # GitHub's form is user:ref-name; the fake is strict about it.
            owner, _, ref = q["head"].partition(":")
            pulls = [
                x
                for x in pulls
                if ref and owner.lower() == repo.owner.lower() and x.head_ref == ref
            ]
        if "base" in q:
            pulls = [x for x in pulls if x.base_ref == q["base"]]
        sort = q.get("sort", "created")
        key: Callable[[_Pull], Any] = {
            "updated": lambda x: (x.updated_at, x.number),
        }.get(sort, lambda x: (x.created_at, x.number))
        pulls.sort(key=key, reverse=q.get("direction", "desc") == "desc")
        page, links = _paginate(pulls, q, f"{self._api(repo)}/pulls")
        return _Reply(200, [self._pull_json(repo, x, full=False) for x in page], links)

    def _create_pull(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        if not isinstance(b, dict):
            raise _Answer(400, "Problems parsing JSON")
        missing = [k for k in ("head", "base") if not b.get(k)]
        if missing:
            raise _Answer(422, "Validation Failed", [_missing("PullRequest", k) for k in missing])
        if not b.get("title") and not b.get("issue"):
            raise _Answer(422, "Validation Failed", [_missing("PullRequest", "title")])
        owner, _, head_ref = str(b["head"]).rpartition(":")
        if owner and owner.lower() != repo.owner.lower():
            raise _Answer(422, "Validation Failed", [_invalid("PullRequest", "head")])
        base_sha = self._sha(repo, str(b["base"]))
        if base_sha is None:
            raise _Answer(422, "Validation Failed", [_invalid("PullRequest", "base")])
        head_sha = self._sha(repo, head_ref)
        if head_sha is None:
            raise _Answer(422, "Validation Failed", [_invalid("PullRequest", "head")])
        for other in repo.pulls.values():
            if other.state == "open" and other.head_ref == head_ref:
                message = f"A pull request already exists for {repo.owner}:{head_ref}."
                raise _Answer(422, "Validation Failed", [_custom("PullRequest", message)])
        if not _git(repo.origin, "rev-list", f"{base_sha}..{head_sha}"):
            message = f"No commits between {b['base']} and {head_ref}"
            raise _Answer(422, "Validation Failed", [_custom("PullRequest", message)])
        moment = _now()
        pull = _Pull(
            number=next(self._numbers),
            title=str(b.get("title") or ""),
            body=b.get("body"),
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=str(b["base"]),
            base_sha=base_sha,
            author=self.login,
            draft=bool(b.get("draft", False)),
            created_at=moment,
            updated_at=moment,
        )
        repo.pulls[pull.number] = pull
        return _Reply(201, self._pull_json(repo, pull, full=True))

    def _get_pull(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._pull(repo, int(p["number"]))
        return _Reply(200, self._pull_json(repo, pull, full=True))

    def _patch_pull(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._pull(repo, int(p["number"]))
        if not isinstance(b, dict):
            raise _Answer(400, "Problems parsing JSON")
        if "title" in b:
            pull.title = str(b["title"])
        if "body" in b:
            pull.body = b["body"]
        if "base" in b:
            pull.base_ref = str(b["base"])
        if b.get("state") in ("open", "closed") and pull.merged_at is None:
            if b["state"] == "closed" and pull.state == "open":
                pull.head_sha = self._head_sha(repo, pull)
                pull.closed_at = _now()
            elif b["state"] == "open":
                pull.closed_at = None
            pull.state = b["state"]
        pull.updated_at = _now()
        return _Reply(200, self._pull_json(repo, pull, full=True))

    def _pull_commits(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._pull(repo, int(p["number"]))
        shas = self._pull_shas(repo, pull)
        page, links = _paginate(shas, q, f"{self._api(repo)}/pulls/{pull.number}/commits")
        return _Reply(200, self._commits_json(repo, page), links)

    def _pull_reviews(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._pull(repo, int(p["number"]))
        page, links = _paginate(pull.reviews, q, f"{self._api(repo)}/pulls/{pull.number}/reviews")
        return _Reply(200, page, links)

    def _request_reviewers(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._pull(repo, int(p["number"]))
        users = [str(u) for u in (b or {}).get("reviewers") or ()]
        teams = [str(t) for t in (b or {}).get("team_reviewers") or ()]
        if any(u.lower() == pull.author.lower() for u in users):
            raise _Answer(422, "Review cannot be requested from pull request author.")
        if repo.collaborators is not None and any(u not in repo.collaborators for u in users):
            raise _Answer(
                422,
                "Reviews may only be requested from collaborators. One or more of the users "
                "or teams you specified is not a collaborator of the "
                f"{repo.full_name} repository.",
            )
        pull.reviewers.extend(u for u in users if u not in pull.reviewers)
        pull.teams.extend(t for t in teams if t not in pull.teams)
        return _Reply(201, self._pull_json(repo, pull, full=True))

    def _get_reviewers(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._pull(repo, int(p["number"]))
        return _Reply(
            200,
            {
                "users": [self._user(u) for u in pull.reviewers],
                "teams": [{"name": t, "slug": t} for t in pull.teams],
            },
        )

    def _get_issue(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        return _Reply(200, self._issue_json(repo, int(p["number"])))

    def _pull_issue_json(self, repo: _Repo, pull: _Pull) -> Json:
        document = self._pull_json(repo, pull, full=False)
        api = self._api(repo)
        issue = {
            key: document[key]
            for key in ("id", "node_id", "number", "title", "user", "labels", "state", "locked",
                        "assignee", "assignees", "milestone", "created_at", "updated_at",
                        "closed_at", "body", "author_association", "draft")
        }  # fmt: skip
        issue.update(
            url=f"{api}/issues/{pull.number}",
            html_url=document["html_url"],
            comments_url=f"{api}/issues/{pull.number}/comments",
            labels_url=f"{api}/issues/{pull.number}/labels{{/name}}",
            comments=len(pull.comments),
            pull_request={"url": document["url"], "html_url": document["html_url"]},
        )
        return issue

    def _get_issue_labels(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._conversation(repo, int(p["number"]))
        return _Reply(200, [self._label_json(repo, name) for name in pull.labels])

    def _add_issue_labels(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._conversation(repo, int(p["number"]))
        names = b.get("labels") if isinstance(b, dict) else b
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Answer(422, "Invalid request.\n\nFor 'links/0/schema', nil is not an array.")
        for name in names:
            # Adding a label the repository lacks creates it, as GitHub does.
            repo.labels.setdefault(name, ("ededed", ""))
            if name not in pull.labels:
                pull.labels.append(name)
        return _Reply(200, [self._label_json(repo, name) for name in pull.labels])

    def _list_comments(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._conversation(repo, int(p["number"]))
        page, links = _paginate(
            pull.comments, q, f"{self._api(repo)}/issues/{pull.number}/comments"
        )
        return _Reply(200, page, links)

    def _add_comment(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        pull = self._conversation(repo, int(p["number"]))
        if not isinstance(b, dict) or not isinstance(b.get("body"), str) or not b["body"]:
            raise _Answer(422, "Validation Failed", [_missing("IssueComment", "body")])
        comment_id = next(self._ids)
        moment = _iso(_now())
        comment = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "url": f"{self._api(repo)}/issues/comments/{comment_id}",
            "html_url": f"{self._web(repo)}/{'issues' if isinstance(pull, _Issue) else 'pull'}"
            f"/{pull.number}#issuecomment-{comment_id}",
            "issue_url": f"{self._api(repo)}/issues/{pull.number}",
            "body": b["body"],
            "user": self._user(self.login),
            "created_at": moment,
            "updated_at": moment,
            "author_association": "CONTRIBUTOR",
        }
        pull.comments.append(comment)
        pull.updated_at = _now()
        return _Reply(201, comment)

    def _list_issues(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        # GitHub lists pull requests here too (with a `pull_request` key); `labels` is a
        # comma-separated list every item must carry.
        state = q.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _Answer(422, "Validation Failed", [_invalid("Issue", "state")])
        wanted = [name for name in q.get("labels", "").split(",") if name]
        items: list[_Issue | _Pull] = [*repo.issues.values(), *repo.pulls.values()]
        items = [
            x
            for x in items
            if state in ("all", x.state) and all(name in x.labels for name in wanted)
        ]
        if "creator" in q:
            items = [x for x in items if x.author.lower() == q["creator"].lower()]
        if "assignee" in q and q["assignee"] not in ("*", "none"):
            items = [x for x in items if isinstance(x, _Issue) and q["assignee"] in x.assignees]
        key: Callable[[_Issue | _Pull], Any] = (
            (lambda x: (x.updated_at, x.number))
            if q.get("sort") == "updated"
            else (lambda x: (x.created_at, x.number))
        )
        items.sort(key=key, reverse=q.get("direction", "desc") == "desc")
        page, links = _paginate(items, q, f"{self._api(repo)}/issues")
        return _Reply(200, [self._issue_json(repo, x.number) for x in page], links)

    def _create_issue(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        if not isinstance(b, dict):
            raise _Answer(400, "Problems parsing JSON")
        if not isinstance(b.get("title"), str) or not b["title"]:
            raise _Answer(422, "Validation Failed", [_missing("Issue", "title")])
        if len(str(b.get("body") or "")) > 65536:
            raise _Answer(
                422,
                "Validation Failed",
                [_custom("Issue", "body is too long (maximum is 65536 characters)")],
            )
        moment = _now()
        issue = _Issue(
            number=next(self._numbers),
            title=b["title"],
            body=b.get("body"),
            author=self.login,
            created_at=moment,
            updated_at=moment,
        )
        for name in b.get("labels") or ():
            repo.labels.setdefault(str(name), ("ededed", ""))
            issue.labels.append(str(name))
        issue.assignees.extend(str(a) for a in b.get("assignees") or ())
        repo.issues[issue.number] = issue
        return _Reply(201, self._issue_json(repo, issue.number))

    def _patch_issue(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        issue = self._issue(repo, int(p["number"]))
        if not isinstance(b, dict):
            raise _Answer(400, "Problems parsing JSON")
        if "title" in b:
            issue.title = str(b["title"])
        if "body" in b:
            if len(str(b["body"] or "")) > 65536:
                raise _Answer(
                    422,
                    "Validation Failed",
                    [_custom("Issue", "body is too long (maximum is 65536 characters)")],
                )
            issue.body = b["body"]
        if b.get("state") in ("open", "closed"):
            issue.closed_at = _now() if b["state"] == "closed" else None
            issue.state = b["state"]
        if isinstance(b.get("labels"), list):
            issue.labels = [str(n) for n in b["labels"]]
            for name in issue.labels:
                repo.labels.setdefault(name, ("ededed", ""))
        if isinstance(b.get("assignees"), list):
            issue.assignees = [str(a) for a in b["assignees"]]
        issue.updated_at = _now()
        return _Reply(200, self._issue_json(repo, issue.number))

    def _get_label(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        if p["label"] not in repo.labels:
            raise _Answer(404, "Not Found")
        return _Reply(200, self._label_json(repo, p["label"]))

    def _list_labels(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        page, links = _paginate(sorted(repo.labels), q, f"{self._api(repo)}/labels")
        return _Reply(200, [self._label_json(repo, name) for name in page], links)

    def _dispatch(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        # GitHub: event_type 1-100 characters; client_payload an object of at most 10
        # top-level properties; 204 without a body.
        if not isinstance(b, dict) or not isinstance(b.get("event_type"), str):
            raise _Answer(422, "Invalid request.", [_missing("RepositoryDispatch", "event_type")])
        if not 1 <= len(b["event_type"]) <= 100:
            raise _Answer(422, "Invalid request.", [_invalid("RepositoryDispatch", "event_type")])
        payload = b.get("client_payload", {})
        if not isinstance(payload, dict) or len(payload) > 10:
            raise _Answer(
                422, "Invalid request.", [_invalid("RepositoryDispatch", "client_payload")]
            )
        self._dispatches.append({"repo": repo.full_name, **b})
        return _Reply(204, None)

    def _create_label(self, repo: _Repo, p: _Params, q: _Params, b: Json) -> _Reply:
        if not isinstance(b, dict) or not b.get("name"):
            raise _Answer(422, "Validation Failed", [_missing("Label", "name")])
        name, color = str(b["name"]), str(b.get("color") or "ededed")
        if any(existing.lower() == name.lower() for existing in repo.labels):
            raise _Answer(
                422,
                "Validation Failed",
                [{"resource": "Label", "code": "already_exists", "field": "name"}],
            )
        if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise _Answer(422, "Validation Failed", [_invalid("Label", "color")])
        repo.labels[name] = (color, str(b.get("description") or ""))
        return _Reply(201, self._label_json(repo, name))


def _missing(resource: str, field_name: str) -> Json:
    return {"resource": resource, "code": "missing_field", "field": field_name}


def _invalid(resource: str, field_name: str) -> Json:
    return {"resource": resource, "code": "invalid", "field": field_name}


def _custom(resource: str, message: str) -> Json:
    return {"resource": resource, "code": "custom", "message": message}


_ERRORS = {
    400: "Problems parsing JSON",
    401: "Bad credentials",
    403: "Resource not accessible by integration",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    429: "You have exceeded a secondary rate limit. "
    "Please wait a few minutes before you try again.",
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
}


def _default_error(status: int) -> Json:
    return {"message": _ERRORS.get(status, "Error"), "documentation_url": DOCS}


def _paginate(
    items: Sequence[Any], query: Mapping[str, str], url: str, *, default: int = 30
) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` as GitHub cuts it (per_page at most 100) and its Link header."""
    try:
        per_page = min(max(int(query.get("per_page", default)), 1), max(default, 100))
        page = max(int(query.get("page", 1)), 1)
    except ValueError:
        per_page, page = default, 1
    last = max((len(items) + per_page - 1) // per_page, 1)

    def link(number: int, rel: str) -> str:
        params = {**query, "per_page": str(per_page), "page": str(number)}
        return f'<{url}?{urlencode(params)}>; rel="{rel}"'

    rels = []
    if page < last:
        rels += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        rels += [link(1, "first"), link(page - 1, "prev")]
    start = (page - 1) * per_page
    return list(items[start : start + per_page]), ({"Link": ", ".join(rels)} if rels else {})


# -- git --------------------------------------------------------------------------------------


def _run(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> proc.Completed:
    full = {**git.clean_env(), "LC_ALL": "C", **(env or {})}
    return proc.run(["git", "-c", "core.fsmonitor=false", *args], cwd=cwd, env=full, timeout=60)


def _git(cwd: Path, *args: str, strip: bool = True, env: Mapping[str, str] | None = None) -> str:
    done = _run(cwd, *args, env=env)
    if not done.ok:
        raise RuntimeError(f"`{done.command}` failed in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip() if strip else done.stdout


def _commit(
    origin: Path,
    tree: str,
    parents: Sequence[str],
    message: str,
    login: str | None,
    moment: datetime.datetime,
) -> str:
    name = login or "Somebody"
    email = email_of(login) if login else "somebody@example.invalid"
    stamp = f"{int(moment.timestamp())} +0000"
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": stamp,
    }
    args = ["commit-tree", tree, *itertools.chain.from_iterable(("-p", p) for p in parents)]
    return _git(origin, *args, "-m", message, env=env)


# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    status: int  # 0: drop the connection
    document: Json
    headers: Mapping[str, str] = field(default_factory=dict)


_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_Handler = Callable[[FakeGitHub, _Repo, dict[str, str], Mapping[str, str], Json], _Reply]
_ROUTES: list[tuple[str, re.Pattern[str], _Handler]] = [
    (verb, re.compile(_REPO + tail), handler)
    for verb, tail, handler in [
        ("GET", "", FakeGitHub._get_repo),
        ("GET", r"/branches/(?P<branch>.+)", FakeGitHub._get_branch),
        ("GET", r"/git/refs?/heads/(?P<branch>.+)", FakeGitHub._get_ref),
        ("GET", r"/commits", FakeGitHub._list_commits),
        ("GET", r"/commits/(?P<sha>[^/]+)", FakeGitHub._get_commit),
        ("GET", r"/compare/(?P<base>.+?)\.\.\.(?P<head>.+)", FakeGitHub._compare),
        ("GET", r"/pulls", FakeGitHub._list_pulls),
        ("POST", r"/pulls", FakeGitHub._create_pull),
        ("GET", r"/pulls/(?P<number>\d+)", FakeGitHub._get_pull),
        ("PATCH", r"/pulls/(?P<number>\d+)", FakeGitHub._patch_pull),
        ("GET", r"/pulls/(?P<number>\d+)/commits", FakeGitHub._pull_commits),
        ("GET", r"/pulls/(?P<number>\d+)/reviews", FakeGitHub._pull_reviews),
        ("GET", r"/pulls/(?P<number>\d+)/requested_reviewers", FakeGitHub._get_reviewers),
        ("POST", r"/pulls/(?P<number>\d+)/requested_reviewers", FakeGitHub._request_reviewers),
        ("GET", r"/issues", FakeGitHub._list_issues),
        ("POST", r"/issues", FakeGitHub._create_issue),
        ("GET", r"/issues/(?P<number>\d+)", FakeGitHub._get_issue),
        ("PATCH", r"/issues/(?P<number>\d+)", FakeGitHub._patch_issue),
        ("GET", r"/issues/(?P<number>\d+)/labels", FakeGitHub._get_issue_labels),
        ("POST", r"/issues/(?P<number>\d+)/labels", FakeGitHub._add_issue_labels),
        ("GET", r"/issues/(?P<number>\d+)/comments", FakeGitHub._list_comments),
        ("POST", r"/issues/(?P<number>\d+)/comments", FakeGitHub._add_comment),
        ("GET", r"/labels", FakeGitHub._list_labels),
        ("POST", r"/labels", FakeGitHub._create_label),
        ("POST", r"/dispatches", FakeGitHub._dispatch),
        ("GET", r"/labels/(?P<label>[^/]+)", FakeGitHub._get_label),
    ]
]


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.owner.handle(self.command, self.path, headers, body)
        if reply.status == 0:
            self.close_connection = True
            return
        data = b"" if reply.document is None else json.dumps(reply.document).encode()
        self.send_response(reply.status)
        merged = {**self.server.owner.rate_headers(), **reply.headers}
        for name, value in merged.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: FakeGitHub) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up is routine here, not worth socketserver's traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
