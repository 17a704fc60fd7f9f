"""The PR step of `agentloop heal`: a verified fix of a Sentry root cause becomes one pull
request for a human to review, on branch `fix/sentry-<issue id>`. Never merged, approved or
set to auto-merge by agentloop.

What happens, in order (each step can end it):
1. The fix is checked here, where the write token is held, not only where the agent
   worked: its branch is `fix/sentry-<one of its issue ids>`, stands at the fix's commit
   and builds on its base; the test failed as production did in every recorded run on
   the base, passed after the fix, and no test of the full suites broke; it changes no
   forbidden path (the configured ones unless the fix ran with --allow-sensitive, the
   always-protected ones in any case); the Sentry values printed outside code (short ids
   in `Fixes` lines, permalinks) look as Sentry makes them.
2. Dedupe, from GitHub: an open PR whose head is `fix/sentry-<id>` for one of the fix's
   issues, or whose body carries the hidden `agentloop:sentry-issues` marker naming one
   (a renamed branch still dedupes), gets a comment with the new evidence instead; when
   the same evidence is there already (its digest marker in the body or a comment),
   nothing is done. Nothing is pushed in either case: the open PR may carry a reviewer's
   commits. A merged or closed PR does not block a new one.
3. The daily cap of auto-fix PRs, shared with `agentloop pr` (pull_request.made_today):
   at the cap, "capped" and nothing is pushed.
4. Push (the token only in git's environment, see `git.push_branch`; a closed PR's stale
   head on the same branch is replaced, with a lease on exactly that tip), open the PR
   (a draft unless github.draft is off or `ready`), ensure and add the labels `auto-fix`
   and `sentry`, ask the reviewers `agentloop pr` would (config, else CODEOWNERS).

Text from Sentry (titles, culprits) and from the agent (the cause) is untrusted: the title
is scrubbed (heal.scrub), one line, capped, its `@` made inert; in the body all of it is a
code span or a fenced block (reports.pr_body), so none of it renders as Markdown, HTML, a
link or a mention.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentloop import __version__, git
from agentloop.config import Config, Severity
from agentloop.errors import ServiceError, UsageError
from agentloop.heal.reproduce import Run
from agentloop.heal.scrub import scrub_text
from agentloop.integrations.github import GitHub, PullRequest
from agentloop.integrations.sentry import SentryIssue
from agentloop.pull_request import (
    LABEL_COLOR,
    LABEL_DESCRIPTION,
    ClientFactory,
    PrOptions,
    connect,
    made_today,
    repository,
    reviewers_for,
)
from agentloop.rails.paths import ForbiddenPaths
from agentloop.reports import pr_body
from agentloop.reports.pr_body import LABEL, Doc, Reviewers, code

BRANCH_PREFIX = "fix/sentry-"
SENTRY_LABEL = "sentry"
SENTRY_LABEL_COLOR = "362d59"  # Sentry's purple
SENTRY_LABEL_DESCRIPTION = "Fixes an error Sentry reported in production"
# Where a cut block's whole text is (the incident report the heal run writes).
SOURCE = "the heal run's report under .agentloop/runs/"

_ISSUES_MARKER = re.compile(r"<!-- agentloop:sentry-issues ([A-Za-z0-9 ]+) -->")
_EVIDENCE_MARKER = re.compile(r"<!-- agentloop:sentry-evidence ([0-9a-f]{64}) -->")
# As Sentry makes them: numeric ids, PROJECT-SLUG-N short ids (printed outside code in
# `Fixes` lines and link text, so nothing else may pass), http(s) permalinks.
_ISSUE_ID = re.compile(r"[A-Za-z0-9]{1,40}")
_SHORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_PERMALINK = re.compile(r"https?://[^\s()<>\[\]`\"']+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")

Action = Literal["opened", "commented", "skipped", "capped"]


# ---------------------------------------------------------------- what the step takes


@dataclass(frozen=True)
class SentryRef:
    """One Sentry issue the fix resolves. `title` and `culprit` are Sentry's words from
    production events: untrusted."""

    issue_id: str
    short_id: str
    title: str
    culprit: str
    permalink: str
    events_24h: int

    @classmethod
    def of(cls, issue: SentryIssue) -> SentryRef:
        return cls(
            issue.id, issue.short_id, issue.title, issue.culprit, issue.permalink, issue.last_day
        )


@dataclass(frozen=True)
class Suites:
    """The full suites against the base: what failed on the base and what fails with the
    fix (test ids), and how many tests ran with it."""

    tests: int
    failing_before: tuple[str, ...]
    failing_after: tuple[str, ...]

    @property
    def new_failures(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.failing_after) - set(self.failing_before)))

    @property
    def now_green(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.failing_before) - set(self.failing_after)))


@dataclass(frozen=True)
class SentryFix:
    """A verified fix of one root cause (a triage group): what the PR shows. FIX's record
    maps onto it; every field is evidence agentloop measured, except `cause`, the agent's
    summary (untrusted, shown fenced)."""

    issues: tuple[SentryRef, ...]  # the group's, most frequent first: the first is the title
    severity: Severity
    signature: str  # "KeyError in shop.cart:total"
    branch: str  # local, fix/sentry-<issue id>, one commit on base_sha
    commit: str
    base_sha: str
    base_ref: str | None  # the branch base_sha was taken from; the PR's base when on GitHub
    files: tuple[str, ...]  # changed by the commit, test included
    diff_stat: str  # `git diff --stat base commit`
    test_file: str
    test_id: str  # pytest's node id
    fail_before: tuple[Run, ...]  # the reproduction's runs on base_sha
    test_passed: bool  # the test, at `commit`
    suites: Suites
    cause: str
    attempts: int = 1
    cost_usd: float = 0.0
    duration_s: float = 0.0
    sensitive_allowed: bool = False  # FIX ran with --allow-sensitive

    @property
    def issue_ids(self) -> tuple[str, ...]:
        return tuple(i.issue_id for i in self.issues)

    @property
    def reproduced(self) -> int:
        return sum(r.verdict == "reproduced" for r in self.fail_before)


@dataclass(frozen=True)
class HealPrOutcome:
    action: Action
    message: str  # one line for the person
    branch: str
    url: str | None = None  # the PR ("opened"), the comment ("commented"), the PR ("skipped")
    number: int | None = None
    reason: str | None = None  # why "skipped" or "capped"
    pushed: bool = False
    repo: str | None = None
    base: str | None = None
    title: str | None = None
    body: str | None = None
    reviewers: tuple[str, ...] = ()
    refused_reviewers: tuple[str, ...] = ()


# ---------------------------------------------------------------- title and body


def branch_for(issue_id: str) -> str:
    return f"{BRANCH_PREFIX}{issue_id}"


def one_line(text: str, width: int) -> str:
    """Untrusted text for a title: scrubbed, one line, at most `width` characters, no
    `@` that could read as a mention (a fullwidth one reads the same and pings nobody)."""
    text = scrub_text(_CONTROL.sub(" ", text or ""))
    return pr_body.short(text.replace("@", "\uff20"), width)


def title(fix: SentryFix) -> str:
    """`fix: [Sentry-<shortId>] <title>`, at most pr_body.TITLE_MAX characters."""
    first = fix.issues[0]
    head = f"fix: [Sentry-{first.short_id}] "
    return head + one_line(first.title, max(pr_body.TITLE_MAX - len(head), 20))


def evidence_digest(fix: SentryFix) -> str:
    """What makes two runs' evidence the same: the measurements, not the agent's words,
    the commit's sha (a new run commits anew) or the cost."""
    facts = {
        "issues": sorted(fix.issue_ids),
        "base": fix.base_sha,
        "files": sorted(fix.files),
        "stat": fix.diff_stat.strip(),
        "test": [fix.test_file, fix.test_id],
        "before": [[r.verdict, r.exception, r.crash] for r in fix.fail_before],
        "after": [fix.test_passed, fix.suites.tests, sorted(fix.suites.failing_before),
                  sorted(fix.suites.failing_after)],
    }  # fmt: skip
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def issues_marker(ids: Sequence[str]) -> str:
    return f"<!-- agentloop:sentry-issues {' '.join(ids)} -->"


def evidence_marker(fix: SentryFix) -> str:
    return f"<!-- agentloop:sentry-evidence {evidence_digest(fix)} -->"


def marked_issues(body: str) -> frozenset[str]:
    """The Sentry issue ids the marker lines of a PR body name (outside fenced blocks:
    quoted event text cannot forge one)."""
    found = (_ISSUES_MARKER.fullmatch(line) for line in pr_body.unfenced_lines(body))
    return frozenset(i for m in found if m for i in m.group(1).split())


def marked_evidence(text: str) -> frozenset[str]:
    found = (_EVIDENCE_MARKER.fullmatch(line) for line in pr_body.unfenced_lines(text))
    return frozenset(m.group(1) for m in found if m)


def _money(value: float) -> str:
    return f"${value:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _sentry(doc: Doc, fix: SentryFix) -> None:
    doc.add("## Sentry", "")
    for ref in fix.issues:
        # The short id and the permalink were checked (_check); the rest is production's.
        doc.add(
            f"- [{ref.short_id}]({ref.permalink}): {code(scrub_text(ref.title))}, "
            f"{ref.events_24h} event(s) in the last 24 hours"
            + (f"; culprit {code(scrub_text(ref.culprit))}" if ref.culprit.strip() else "")
        )
    doc.add("")


def _sections(doc: Doc, fix: SentryFix) -> None:
    doc.add("## Root cause", "", f"Crash site: {code(fix.signature)} ({fix.severity}).", "")
    doc.add("The cause, as the fixing session summarised it (unverified text):", "")
    doc.block(scrub_text(fix.cause.strip()) or "(no summary)")
    doc.add("", "## The fix", "")
    doc.add(
        f"- **Base:** {code(fix.base_sha)}" + (f" ({code(fix.base_ref)})" if fix.base_ref else "")
    )
    doc.add(f"- **Commit:** {code(fix.commit)} on {code(fix.branch)}")
    shown = ", ".join(code(f) for f in fix.files[: pr_body.FILES_SHOWN])
    more = len(fix.files) - pr_body.FILES_SHOWN
    doc.add(
        f"- **Files changed:** {shown or 'none recorded'}"
        + (f" and {more} more" if more > 0 else "")
    )
    doc.add(
        f"- **Attempts:** {fix.attempts} · **cost** {_money(fix.cost_usd)} · "
        f"**duration** {_duration(fix.duration_s)}", "",
    )  # fmt: skip
    if fix.diff_stat.strip():
        doc.block(fix.diff_stat.rstrip())
        doc.add("")
    doc.add("## The test added", "")
    doc.add(f"- **File:** {code(fix.test_file)}", f"- **Node id:** {code(fix.test_id)}", "")
    doc.add("## Evidence", "")
    runs = len(fix.fail_before)
    doc.add(
        f"**Fails before** (on {code(fix.base_sha[:12])}): reproduced the production error "
        f"in **{fix.reproduced} of {runs}** run(s), the same exception at the same crash frame:",
        "",
    )
    doc.block("\n".join(str(r) for r in fix.fail_before) or "(no run recorded)")
    doc.add("")
    s = fix.suites
    doc.add(
        f"**Passes after** (at {code(fix.commit[:12])}): the test "
        + ("**passes**" if fix.test_passed else "**fails**")
        + f". The full suites: **{s.tests}** test(s); red on base **{len(s.failing_before)}**, "
        f"red with the fix **{len(s.failing_after)}**, new failures "
        f"**{len(s.new_failures)}**.",
        "",
    )
    if s.now_green:
        doc.add("Red on base, green with the fix:", "")
        doc.block("\n".join(s.now_green))
        doc.add("")
    still = sorted(set(s.failing_before) & set(s.failing_after))
    if still:
        doc.add(f"Red on base and still red, not blamed on this PR ({len(still)}):", "")
        doc.block("\n".join(still))
        doc.add("")


def footer(fix: SentryFix) -> str:
    """Kept whole when the body is cut: the `Fixes` lines (Sentry's GitHub integration
    resolves those issues when the PR merges) and the dedupe markers."""
    lines = [
        *(f"Fixes {ref.short_id}" for ref in fix.issues),
        "",
        "---",
        f"Opened by agentloop {__version__} from production errors Sentry reported. Human "
        "review required: agentloop never merges, approves or auto-merges it.",
        "",
        issues_marker(fix.issue_ids),
        evidence_marker(fix),
    ]
    return "\n".join(lines) + "\n"


def body(
    fix: SentryFix, *, reviewers: Reviewers | None = None, limit: int = pr_body.BODY_LIMIT
) -> str:
    doc = Doc(source=SOURCE)
    events = sum(r.events_24h for r in fix.issues)
    doc.add(
        f"agentloop fixed a **{fix.severity}** production error: {code(fix.signature)}, "
        f"{len(fix.issues)} Sentry issue(s), {events} event(s) in the last 24 hours. A test "
        "reproduces it on the base and passes with the fix; the full suites were run "
        "against the base.",
        "",
    )
    if reviewers:
        why = "CODEOWNERS" if reviewers.source == "CODEOWNERS" else "github.reviewers"
        doc.add(f"Reviews are requested from {why}.", "")
    _sentry(doc, fix)
    _sections(doc, fix)
    return pr_body.fit(doc.parts, footer(fix), limit, source=SOURCE)


def comment(fix: SentryFix, *, number: int, limit: int = pr_body.BODY_LIMIT) -> str:
    """The comment on open PR #`number` when a run fixes its issues again."""
    doc = Doc(source=SOURCE)
    ids = ", ".join(ref.short_id for ref in fix.issues)
    doc.add(
        f"agentloop saw {ids} in production again and fixed it again at "
        f"{code(fix.base_sha[:12])} (commit {code(fix.commit[:12])}, not pushed): no new "
        f"pull request was opened, #{number} already covers these issues. The new evidence:",
        "",
        "<details><summary>Evidence</summary>",
        "",
    )
    _sentry(doc, fix)
    _sections(doc, fix)
    doc.add("</details>", "")
    tail = f"Commented by agentloop {__version__}.\n\n{evidence_marker(fix)}\n"
    return pr_body.fit(doc.parts, tail, limit, source=SOURCE)


# ---------------------------------------------------------------- the step


def _check(root: Path, fix: SentryFix, config: Config) -> None:
    """Refuse (nothing pushed) a fix that is not what it says it is."""
    if not fix.issues:
        raise UsageError("the fix names no Sentry issue", hint="pass the group's issues")
    for ref in fix.issues:
        bad = (
            ("issue id", ref.issue_id, _ISSUE_ID),
            ("short id", ref.short_id, _SHORT_ID),
            ("permalink", ref.permalink, _PERMALINK),
        )
        for what, value, pattern in bad:
            if not pattern.fullmatch(value):
                raise UsageError(
                    f"Sentry {what} {value[:80]!r} does not look like Sentry's",
                    hint="nothing was pushed; the Sentry answer may have been tampered with",
                )
    allowed = {branch_for(i) for i in fix.issue_ids}
    if fix.branch not in allowed:
        raise UsageError(
            f"not a branch the heal step makes: {fix.branch!r}",
            hint=f"fixes of Sentry issues are pushed from {BRANCH_PREFIX}<issue id> only",
        )
    tip = git.rev_parse(root, f"refs/heads/{fix.branch}")
    if tip != fix.commit:
        where = f"at {tip[:12]}" if tip else "missing"
        raise UsageError(
            f"branch {fix.branch} is {where}, not at the fix's commit {fix.commit[:12]}: "
            "agentloop pushes only what it verified",
            hint=f"put it back (git branch -f {fix.branch} {fix.commit}) or push it yourself",
        )
    if not git.is_ancestor(root, fix.base_sha, tip):
        raise UsageError(
            f"branch {fix.branch} does not build on the fix's base {fix.base_sha[:12]}",
            hint="pass the fix record made with this branch",
        )
    runs = len(fix.fail_before)
    if not runs or fix.reproduced < runs or not fix.test_passed or fix.suites.new_failures:
        if not runs or fix.reproduced < runs:
            why = f"the test failed as production did in {fix.reproduced} of {runs} run(s)"
        elif not fix.test_passed:
            why = "the test does not pass"
        else:
            why = f"{len(fix.suites.new_failures)} test(s) of the full suites broke"
        raise UsageError(
            f"the fix on {fix.branch} is not verified: {why}", hint="nothing was pushed"
        )
    # An agent worked in the branch; the sensitive paths (auth, payments…) only with
    # --allow-sensitive, agentloop's own and the hooks' never.
    configured = () if fix.sensitive_allowed else config.rails.forbidden_paths
    forbidden = ForbiddenPaths.with_protected(configured)
    touched = {p: forbidden.match(p) for p in git.changed_between(root, fix.base_sha, tip)}
    refused = sorted(f"{p} ({rule})" for p, rule in touched.items() if rule)
    if refused:
        raise UsageError(
            f"branch {fix.branch} changes forbidden paths: {', '.join(refused[:5])}"
            + (f" and {len(refused) - 5} more" if len(refused) > 5 else ""),
            hint=f"nothing was pushed; review it yourself (git diff {fix.base_sha[:12]} "
            f"{fix.branch})",
        )


def _open_for(pulls: Sequence[PullRequest], fix: SentryFix) -> PullRequest | None:
    """The open PR that already fixes one of the fix's issues: by its branch, else by the
    issue marker in its body (a branch renamed by hand)."""
    ids, branches = set(fix.issue_ids), {branch_for(i) for i in fix.issue_ids}
    for pull in pulls:
        if pull.state == "open" and pull.head_ref in branches:
            return pull
    for pull in pulls:
        if pull.state == "open" and marked_issues(pull.body) & ids:
            return pull
    return None


def open_fix_pr(
    root: Path,
    fix: SentryFix,
    options: PrOptions,
    *,
    config: Config,
    client: ClientFactory | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime.datetime | None = None,
) -> HealPrOutcome:
    """Open the PR of `fix`, or comment on the open one; see the module's docstring."""
    environ = os.environ if environ is None else environ
    _check(root, fix, config)
    repo = repository(root, options, config, environ)
    reviewers = reviewers_for(root, fix.base_sha, fix.files, config, repo, named=options.reviewers)
    the_title, the_body = title(fix), body(fix, reviewers=reviewers)
    draft = config.github.draft and not options.ready
    if options.dry_run:
        return HealPrOutcome(
            "skipped", f"dry run: would push {fix.branch} and open a PR in {repo}",
            fix.branch, reason="dry run", repo=repo, title=the_title, body=the_body,
        )  # fmt: skip
    gh, token = connect(repo, options, config, environ, client)

    earlier = _open_for(gh.pulls(state="open"), fix)
    if earlier is not None:
        ours = earlier.head_ref in {branch_for(i) for i in fix.issue_ids}
        if ours and not {LABEL, SENTRY_LABEL} <= set(earlier.labels):
            # An earlier run stopped after opening it: labelled now, so it counts against
            # the daily cap and shows under the labels (a human's PR is left as it is).
            _label(gh, earlier.number)
        return _comment_on(gh, earlier, fix, repo)

    cap = config.github.daily_pr_cap
    made = made_today(gh, now)
    if made >= cap:
        return HealPrOutcome(
            "capped", f"daily cap reached: {made} auto-fix PR(s) opened in {repo} in the last "
            f"24 hours (github.daily_pr_cap is {cap}); nothing was pushed", fix.branch,
            reason=f"{made} of {cap} auto-fix PRs in 24 hours", repo=repo, title=the_title,
        )  # fmt: skip

    base = options.base
    if base is None:
        base = fix.base_ref if fix.base_ref and gh.branch_sha(fix.base_ref) else None
        base = base or gh.default_branch()
    # A closed (or merged) PR's head may still be on the remote: that stale tip, and only
    # it, may be replaced (GitHub keeps the closed PR's commits under refs/pull/N/head).
    closed = gh.pulls(state="closed", head=fix.branch)
    stale = closed[0].head_sha if closed else None
    try:
        pushed = git.push_branch(
            root, options.remote, fix.branch, fix.branch, token=token, replace=stale
        )
    except git.GitError as exc:
        raise ServiceError(
            f"git push of {fix.branch} to {options.remote} failed: "
            + (exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc.message),
            hint="the token needs contents: write on the repository; the branch "
            f"{fix.branch} is kept here",
        ) from None
    try:
        pull = gh.create_pull(
            head=fix.branch, base=base, title=the_title, body=the_body, draft=draft
        )
        _label(gh, pull.number)
        users = tuple(u for u in reviewers.users if u.lower() != (pull.author or "").lower())
        refused = gh.request_reviewers(pull.number, users, reviewers.teams)
    except ServiceError as exc:
        raise ServiceError(
            f"{exc.message} (after the push: {fix.branch} is on {options.remote})",
            hint="run the PR step again: it finds the open PR or opens it; " + (exc.hint or ""),
            status=exc.status,
        ) from exc
    kind = "draft PR" if draft else "PR"
    return HealPrOutcome(
        "opened", f"opened {kind} #{pull.number} for {', '.join(r.short_id for r in fix.issues)}: "
        f"{pull.html_url}", fix.branch, url=pull.html_url, number=pull.number, pushed=pushed,
        repo=repo, base=base, title=the_title, body=the_body,
        reviewers=(*users, *(f"team:{t}" for t in reviewers.teams)),
        refused_reviewers=tuple(f"{r.name}: {r.reason}" for r in refused),
    )  # fmt: skip


def _label(gh: GitHub, number: int) -> None:
    gh.ensure_label(LABEL, color=LABEL_COLOR, description=LABEL_DESCRIPTION)
    gh.ensure_label(SENTRY_LABEL, color=SENTRY_LABEL_COLOR, description=SENTRY_LABEL_DESCRIPTION)
    gh.add_labels(number, [LABEL, SENTRY_LABEL])


def _comment_on(gh: GitHub, pull: PullRequest, fix: SentryFix, repo: str) -> HealPrOutcome:
    digest = evidence_digest(fix)
    seen = marked_evidence(pull.body)
    if digest not in seen:
        seen = seen.union(*(marked_evidence(c.body) for c in gh.comments(pull.number)))
    if digest in seen:
        return HealPrOutcome(
            "skipped", f"PR #{pull.number} already carries this evidence: nothing to add "
            f"({pull.html_url})", fix.branch, url=pull.html_url, number=pull.number,
            reason=f"PR #{pull.number} already carries this evidence", repo=repo,
        )  # fmt: skip
    url = gh.comment(pull.number, comment(fix, number=pull.number))
    return HealPrOutcome(
        "commented", f"PR #{pull.number} already fixes these issues: commented the new "
        f"evidence there ({url})", fix.branch, url=url or pull.html_url, number=pull.number,
        repo=repo,
    )  # fmt: skip
