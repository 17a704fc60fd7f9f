"""Open the pull request of a finished run: push its branch, open a draft PR labelled
`auto-fix` whose body is the run's evidence, ask its reviewers. Never merge.

What happens, in order (each step can end it):
1. The run is read from its run.json (a run id, a run directory or the file; by default
   the newest under `.agentloop/runs/`). Nothing fixed: nothing to open.
2. Its branch is made from `run.bundle` when the checkout lacks it (the PR job runs in a
   fresh checkout, from the artifact the run's job uploaded), and must still be where
   the run left it: what is pushed is exactly what was verified.
3. Dedupe, from GitHub: an open `auto-fix` PR whose body carries the fingerprints of all
   the fixed tasks gets a comment with the new evidence instead of a new PR; commits on
   the base branch since the run's base whose `Agentloop-Fingerprint:` trailers cover
   them all mean nothing is opened.
4. The daily cap, counted from GitHub (PRs labelled `auto-fix` created in the last 24
   hours), not from local state: at the cap, the outcome "capped" and nothing is pushed.
5. Approval: `confirm` is shown the commits, the remote and the branch (the command asks
   on a terminal; in CI the PR review is the approval).
6. Push (the token only in git's environment, see `git.push_branch`), create the PR as a
   draft, ensure and add the label, request reviews. A failure after the push says the
   branch is on the remote and how to finish; the local branch is never touched.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from agentloop import codeowners, git
from agentloop.config import Config
from agentloop.errors import ServiceError, UsageError
from agentloop.integrations.github import (
    DEFAULT_API_URL,
    TOKEN_VARIABLES,
    Commit,
    GitHub,
    repo_from_remote_url,
    token_from_env,
)
from agentloop.rails.paths import ForbiddenPaths
from agentloop.reports import pr_body, run_doc
from agentloop.reports.pr_body import LABEL, Reviewers
from agentloop.reports.run_doc import BUNDLE_FILE, RUN_FILE, RunDoc

LABEL_COLOR = "0e8a16"
LABEL_DESCRIPTION = "Opened by agentloop: a verified fix for a human to review"
DAY = datetime.timedelta(hours=24)

Action = Literal["opened", "commented", "covered", "nothing", "capped", "dry_run"]


# ---------------------------------------------------------------- what GitHub is asked

# (owner/name, token, api_url) → the client; tests pass one with no waiting between retries.
ClientFactory = Callable[[str, str, str], GitHub]


# ---------------------------------------------------------------- options and outcome


@dataclass(frozen=True)
class PrOptions:
    repo: str | None = None  # owner/name; else github.repo, GITHUB_REPOSITORY, the remote
    api_url: str | None = None
    base: str | None = None
    remote: str = "origin"
    ready: bool = False
    reviewers: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True)
class Plan:
    """What would be pushed and opened: all `--dry-run` shows, and what is confirmed."""

    run: RunDoc
    run_file: Path
    branch: str
    tip: str
    commits: tuple[str, ...]  # "<short sha> <subject>", oldest first
    remote: str
    remote_url: str  # credentials removed
    title: str
    body: str
    reviewers: Reviewers
    draft: bool


@dataclass(frozen=True)
class PrOutcome:
    action: Action
    run_id: str
    message: str  # one line for the person
    hint: str | None = None  # what to do about it ("capped")
    branch: str | None = None
    pushed: bool = False
    url: str | None = None
    number: int | None = None
    base: str | None = None
    repo: str | None = None
    title: str | None = None
    body: str | None = None
    covered_by: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    refused_reviewers: tuple[str, ...] = ()
    commits: tuple[str, ...] = field(default=())


Confirm = Callable[[Plan, str], bool]  # (plan, what will be done) → go ahead?


# ---------------------------------------------------------------- the run


def find_run(root: Path, given: str | None) -> Path:
    """The run.json `given` names: a run id, a run directory or a run.json path; by
    default the newest run under `.agentloop/runs/` (run ids sort by time)."""
    runs = root / ".agentloop" / "runs"
    if given:
        path = Path(given)
        candidates = [path, path / RUN_FILE, runs / given / RUN_FILE]
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise UsageError(
            f"no run {given!r}: neither a run.json, a run directory nor a run id under {runs}",
            hint="pass a run id from `ls .agentloop/runs`, a run directory or its run.json",
        )
    found = sorted(p for p in runs.glob(f"*/{RUN_FILE}") if p.is_file())
    if not found:
        raise UsageError(
            f"no run under {runs} has a {RUN_FILE}",
            hint="run `agentloop run` first, or pass the run directory an earlier job uploaded",
        )
    return max(found, key=lambda p: (p.parent.name, p.stat().st_mtime)).resolve()


def _ensure_branch(root: Path, run: RunDoc, folder: Path, config: Config) -> str:
    """The run's branch in this checkout (made from the bundle when missing), checked to
    be where the run left it and to change no forbidden path; its tip."""
    assert run.branch is not None  # and one of agentloop's own (run_doc.load checks)
    expected = run.commits[-1] if run.commits else None
    tip = git.rev_parse(root, f"refs/heads/{run.branch}")
    if tip is None:
        bundle = folder / BUNDLE_FILE
        if not bundle.is_file():
            raise UsageError(
                f"run {run.run_id}: branch {run.branch} is not in this checkout and "
                f"{bundle} is missing",
                hint="upload the whole run directory (run.json and run.bundle) from the job "
                "that ran agentloop, or run `agentloop pr` where the run was made",
            )
        tip = git.branch_from_bundle(root, bundle, run.branch, run.branch)
    if expected is not None and tip != expected:
        raise UsageError(
            f"branch {run.branch} is at {tip[:12]}, not at {expected[:12]} where run "
            f"{run.run_id} left it: agentloop pushes only what it verified",
            hint=f"put it back (git branch -f {run.branch} {expected}) or push it yourself",
        )
    if not git.is_ancestor(root, run.base_sha, tip):
        raise UsageError(
            f"branch {run.branch} does not build on the run's base {run.base_sha[:12]}",
            hint="pass the run.json written beside the branch's bundle",
        )
    # Checked again here, in the process that holds the write token, not only in the one
    # that ran the agent: the artifact a PR job takes comes from a job an agent worked in.
    forbidden = ForbiddenPaths.with_protected(config.rails.forbidden_paths)
    touched = {path: forbidden.match(path) for path in git.changed_between(root, run.base_sha, tip)}
    refused = sorted(f"{path} ({rule})" for path, rule in touched.items() if rule)
    if refused:
        raise UsageError(
            f"branch {run.branch} changes forbidden paths: {', '.join(refused[:5])}"
            + (f" and {len(refused) - 5} more" if len(refused) > 5 else ""),
            hint="nothing was pushed; review the branch yourself (git diff "
            f"{run.base_sha[:12]} {run.branch}) before pushing it by hand",
        )
    return tip


# ---------------------------------------------------------------- where and who


_SLUG = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def repository(root: Path, options: PrOptions, config: Config, environ: Mapping[str, str]) -> str:
    for value in (options.repo, config.github.repo, environ.get("GITHUB_REPOSITORY")):
        if value:
            if not _SLUG.fullmatch(value):
                raise UsageError(f"{value!r} is not owner/name", hint="e.g. --repo octo/shop")
            return value
    found = repo_from_remote_url(git.remote_url(root, options.remote))
    if found is None:
        raise UsageError(
            f"cannot tell the GitHub repository from remote {options.remote!r}",
            hint="pass --repo owner/name or set github.repo",
        )
    return found


def api_url(options: PrOptions, config: Config, environ: Mapping[str, str]) -> str:
    return (
        options.api_url or config.github.api_url or environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    ).rstrip("/")


def _reviewers(root: Path, run: RunDoc, options: PrOptions, config: Config, repo: str) -> Reviewers:
    paths = [p for t in run.fixed for p in t.files]
    return reviewers_for(root, run.base_sha, paths, config, repo, named=options.reviewers)


def reviewers_for(
    root: Path, base_sha: str, paths: Sequence[str], config: Config, repo: str,
    *, named: Sequence[str] = (),
) -> Reviewers:  # fmt: skip
    """Who reviews a change of `paths` made on `base_sha`: github.reviewers and `named`
    when any, else the owners of those paths in the base's CODEOWNERS (shared with the
    heal step's PRs, so both ask the same people)."""
    named = (*config.github.reviewers, *named)
    if named:
        users = tuple(dict.fromkeys(n.lstrip("@") for n in named if not n.startswith("team:")))
        teams = tuple(
            dict.fromkeys(n.removeprefix("team:") for n in named if n.startswith("team:"))
        )
        return Reviewers(users, teams, "config")
    for location in codeowners.LOCATIONS:
        # GitHub reads CODEOWNERS from the PR's base; the run's base is what we have.
        text = git.show_file(root, base_sha, location)
        if text is not None:
            rules = codeowners.parse(text)
            owners = codeowners.reviewers(rules, paths, org=repo.split("/", maxsplit=1)[0])
            return Reviewers(owners.users, owners.teams, "CODEOWNERS")
    return Reviewers()


def made_today(gh: GitHub, now: datetime.datetime | None = None) -> int:
    """The auto-fix PRs opened in the last 24 hours, counted on GitHub, not from local
    state: runs in separate jobs (and `agentloop heal`'s PRs) share the daily cap."""
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return gh.count_created_since(LABEL, moment - DAY)


def ci_link(environ: Mapping[str, str]) -> str | None:
    """The GitHub Actions run this process is part of, if any."""
    server, repo, run = (
        environ.get("GITHUB_SERVER_URL"),
        environ.get("GITHUB_REPOSITORY"),
        environ.get("GITHUB_RUN_ID"),
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").lower() in ("1", "true", "yes") or (
        environ.get("GITHUB_ACTIONS") == "true"
    )


# ---------------------------------------------------------------- the flow


def plan(
    root: Path, run_ref: str | None, options: PrOptions, config: Config,
    environ: Mapping[str, str],
) -> Plan | PrOutcome:  # fmt: skip
    """The plan for the run `run_ref` names, or the outcome when there is nothing to do.
    Touches nothing but the local run branch, made from the bundle when missing (not
    with `dry_run`)."""
    run_file = find_run(root, run_ref)
    run = run_doc.load(run_file)
    if run.dry_run:
        raise UsageError(
            f"run {run.run_id} was a dry run: it fixed nothing",
            hint="run `agentloop run` without --dry-run, then `agentloop pr`",
        )
    if not run.fixed:
        return PrOutcome("nothing", run.run_id, f"run {run.run_id} fixed nothing: nothing to open")
    if run.branch is None:
        raise UsageError(
            f"{run_file} says {len(run.fixed)} task(s) were fixed but names no branch",
            hint="pass the run.json `agentloop run` wrote, unedited",
        )
    repo = repository(root, options, config, environ)
    if options.dry_run and git.rev_parse(root, f"refs/heads/{run.branch}") is None:
        # Touch nothing: the commits are read from the bundle's list, not fetched.
        tip = run.commits[-1] if run.commits else ""
        commits = tuple(f"{sha[:12]} (in {BUNDLE_FILE})" for sha in run.commits)
        subjects: dict[str, str] = {}
    else:
        tip = _ensure_branch(root, run, run_file.parent, config)
        commits = tuple(git.log_oneline(root, run.base_sha, tip))
        subjects = {t.commit: git.subject(root, t.commit) for t in run.fixed if t.commit}
    reviewers = _reviewers(root, run, options, config, repo)
    url = git.remote_url(root, options.remote)
    return Plan(
        run=run,
        run_file=run_file,
        branch=run.branch,
        tip=tip,
        commits=commits,
        remote=options.remote,
        remote_url=git.redact_url(url),
        title=pr_body.title(run, subjects=subjects),
        body=pr_body.body(run, reviewers=reviewers),
        reviewers=reviewers,
        draft=config.github.draft and not options.ready,
    )


def connect(
    repo: str,
    options: PrOptions,
    config: Config,
    environ: Mapping[str, str],
    client: ClientFactory | None = None,
) -> tuple[GitHub, str]:
    """The client that opens pull requests (agentloop pr's and heal's) and the token it
    holds (the push needs it too), from the environment: a usage error saying which
    variables when there is none."""
    token = token_from_env(environ)
    if token is None:
        raise UsageError(
            "no GitHub token in the environment",
            hint=f"set one of {', '.join(TOKEN_VARIABLES)} (in GitHub Actions: "
            "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }} with contents and pull-requests write)",
        )
    return (client or _default_client)(repo, token, api_url(options, config, environ)), token


def open_pr(
    root: Path,
    run_ref: str | Path | None,
    options: PrOptions,
    *,
    config: Config,
    confirm: Confirm,
    client: ClientFactory | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime.datetime | None = None,
) -> PrOutcome:
    """Open (or comment on) the pull request of a run; see the module's docstring.
    `agentloop run --open-pr` calls it with the run directory it just wrote."""
    environ = os.environ if environ is None else environ
    made = plan(root, None if run_ref is None else str(run_ref), options, config, environ)
    if isinstance(made, PrOutcome):
        return made
    p = made
    run = p.run
    repo = repository(root, options, config, environ)
    if options.dry_run:
        return PrOutcome(
            "dry_run", run.run_id, f"dry run: would push {p.branch} to {p.remote} and open "
            f"{'a draft' if p.draft else 'a'} PR in {repo}; nothing was pushed or opened",
            branch=p.branch, repo=repo, title=p.title, body=p.body, commits=p.commits,
            reviewers=_names(p.reviewers), base=options.base or run.base_ref,
        )  # fmt: skip
    gh, token = connect(repo, options, config, environ, client)
    base = options.base
    if base is None:
        base = run.base_ref if run.base_ref and gh.branch_sha(run.base_ref) else None
        base = base or gh.default_branch()
    fingerprints = set(run.fingerprints)

    for pull in gh.pulls(state="open", label=LABEL):
        if fingerprints <= pr_body.body_fingerprints(pull.body or ""):
            if not confirm(p, f"comment on PR #{pull.number} ({pull.html_url})"):
                raise UsageError("not confirmed: nothing was commented", hint="run it again")
            text = pr_body.comment(run, number=pull.number, link=ci_link(environ))
            url = gh.comment(pull.number, text)
            return PrOutcome(
                "commented", run.run_id,
                f"PR #{pull.number} already covers these failures: commented there ({url})",
                branch=p.branch, url=url or pull.html_url, number=pull.number, base=base,
                repo=repo, title=p.title,
            )  # fmt: skip

    covered: dict[str, str] = {}
    for commit in _commits_since(gh, root, run.base_sha, base):
        for fp in pr_body.trailer_fingerprints(commit.message) & fingerprints:
            covered.setdefault(fp, commit.sha)
    if fingerprints <= covered.keys():
        shas = tuple(dict.fromkeys(covered.values()))
        return PrOutcome(
            "covered", run.run_id,
            f"nothing opened: {base} already fixes these failures since {run.base_sha[:12]} "
            f"(commit {', '.join(s[:12] for s in shas)} carries their Agentloop-Fingerprint)",
            branch=p.branch, base=base, repo=repo, covered_by=shas, title=p.title,
        )  # fmt: skip

    owner = repo.split("/")[0]
    earlier = list(gh.pulls(state="open", head=f"{owner}:{p.branch}"))
    if not earlier:
        cap = config.github.daily_pr_cap
        today = made_today(gh, now)
        if today >= cap:
            return PrOutcome(
                "capped", run.run_id,
                f"daily cap reached: {today} auto-fix PR(s) opened in {repo} in the last "
                f"24 hours (github.daily_pr_cap is {cap}); nothing was pushed",
                hint="review and close or merge those first, wait, or raise github.daily_pr_cap",
                branch=p.branch, base=base, repo=repo, title=p.title,
            )  # fmt: skip
    what = f"push {len(p.commits)} commit(s) to {p.branch} on {p.remote} and " + (
        f"update PR #{earlier[0].number}" if earlier else f"open a PR into {base} of {repo}"
    )
    if not confirm(p, what):
        raise UsageError("not confirmed: nothing was pushed", hint="run it again to push")
    try:
        pushed = git.push_branch(root, p.remote, p.branch, p.branch, token=token)
    except git.GitError as exc:
        raise ServiceError(
            f"git push of {p.branch} to {p.remote} ({p.remote_url}) failed: "
            + (exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc.message),
            hint="the token needs contents: write on the repository (in Actions: permissions: "
            f"contents: write); the branch {p.branch} is kept here",
        ) from None
    try:
        pull = earlier[0] if earlier else gh.create_pull(
            head=p.branch, base=base, title=p.title, body=p.body, draft=p.draft
        )  # fmt: skip
        gh.ensure_label(LABEL, color=LABEL_COLOR, description=LABEL_DESCRIPTION)
        gh.add_labels(pull.number, [LABEL])
        users = tuple(u for u in p.reviewers.users if u.lower() != (pull.author or "").lower())
        refused = gh.request_reviewers(pull.number, users, p.reviewers.teams)
    except ServiceError as exc:
        compare = _compare_url(repo, options, config, environ, base, p.branch)
        raise ServiceError(
            f"{exc.message} (after the push: {p.branch} is on {p.remote})",
            hint=f"open the PR by hand at {compare}, or run `agentloop pr {run.run_id}` again: "
            "it finishes what is missing; " + (exc.hint or ""),
            status=exc.status,
        ) from exc
    kind = "draft PR" if p.draft else "PR"
    return PrOutcome(
        "opened", run.run_id,
        f"{'opened' if not earlier else 'finished'} {kind} #{pull.number}: {pull.html_url}",
        branch=p.branch, pushed=pushed, url=pull.html_url, number=pull.number, base=base,
        repo=repo, title=p.title, reviewers=(*users, *(f"team:{t}" for t in p.reviewers.teams)),
        refused_reviewers=tuple(f"{r.name}: {r.reason}" for r in refused), commits=p.commits,
    )  # fmt: skip


def _names(reviewers: Reviewers) -> tuple[str, ...]:
    return (*reviewers.users, *(f"team:{t}" for t in reviewers.teams))


def _commits_since(gh: GitHub, root: Path, base_sha: str, base: str) -> Sequence[Commit]:
    """Commits on `base` that the run's base does not have."""
    try:
        return gh.compare_commits(base_sha, base)
    except ServiceError as exc:
        if exc.status in (404, 422):
            # GitHub does not know the run's base (made from commits never pushed): then
            # no commit on `base` can have been made after it there.
            return ()
        raise


def _compare_url(
    repo: str, options: PrOptions, config: Config, environ: Mapping[str, str], base: str,
    branch: str,
) -> str:  # fmt: skip
    api = api_url(options, config, environ)
    web = "https://github.com" if api == DEFAULT_API_URL else re.sub(r"/api/v3$", "", api)
    return f"{web}/{repo}/compare/{quote(base)}...{quote(branch)}?expand=1"


def _default_client(repo: str, token: str, api_url: str) -> GitHub:
    return GitHub(repo, token, api_url=api_url)
