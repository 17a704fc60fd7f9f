"""`agentloop heal`: production errors Sentry reported become pull requests for a human.

Modes (one at a time):
- `--dry-run`: read the unresolved Sentry issues of the last 24 hours and show the triage
  (heal/triage.py); read-only.
- the run (no mode flag): fetch → TRIAGE → when the rate breaker trips, no session at all:
  the alert issue and its notifications (PUBLISH), exit 5. Otherwise REPRODUCE then FIX
  (heal/reproduce.py, heal/fix.py) for the selected P0/P1 root causes, under one deadline
  shared by all of them (`sentry.runtime`) and the run's budget (`run.max_budget_usd`);
  then the run directory `.agentloop/runs/<id>/` with heal.json (heal/record.py) and
  heal.bundle (the fix/sentry-* branches); then PUBLISH unless --no-publish.
- `--publish RUN_DIR`: PUBLISH a run directory in a checkout of the same repository, even
  a fresh one (a second CI job with the uploaded artifact and a GitHub token, no model key
  and no Sentry token): the branches come from heal.bundle.
- `--escalate`: only the due escalations of open alerts (for a schedule).

PUBLISH is every write to GitHub and the channels: a PR per fix (heal/pr.py, which checks
the fix again where the write token is), the incident report issue, the breaker's alert,
the notifications and due escalations (heal/report.py deliver). It needs --yes: without
it nothing is pushed or sent, and the exact command that publishes is printed.

Exit codes: 0 done (nothing to fix included, and every run stopped before publishing);
1 a selected root cause was not fixed; 2 usage or configuration; 4 a service failed
(GitHub, a channel); 5 the breaker tripped, or the daily PR cap stopped a PR.

The agent's sessions never get the Sentry or GitHub token or a webhook address
(agents/secrets.py blanks them; the reproduction test runs without them too).

The table and the --json documents (schemas/heal.schema.json for --dry-run,
heal-escalate.schema.json for --escalate, heal-run.schema.json otherwise: heal.json plus
what PUBLISH did) are built here and print through `agentloop.output`.
Text from Sentry is scrubbed (heal/scrub.py) and prints as plain text, never as markup.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from agentloop import __version__, errors, git, output
from agentloop.agents import sandbox
from agentloop.agents.base import Agent, SessionLimits
from agentloop.config import Config, SentryConfig, load_config
from agentloop.errors import ConfigError, ServiceError, UsageError
from agentloop.heal import pr as heal_pr
from agentloop.heal import record, report
from agentloop.heal.fix import Fixed, FixSettings, NotFixed, sensitive_match
from agentloop.heal.fix import fix as fix_step
from agentloop.heal.inbox import INBOX, Inbox
from agentloop.heal.notify import Escalated, Escalation, Notifier, Sent, channels
from agentloop.heal.record import BUNDLE_FILE, Evidence, GroupResult, HealRun
from agentloop.heal.reproduce import (
    NotReproduced,
    ReproduceSettings,
    Reproduction,
    locate,
    reproduce,
)
from agentloop.heal.scrub import scrub_text
from agentloop.heal.triage import Group, Signature, Skipped, Triage, triage
from agentloop.history import History, ledger_path
from agentloop.integrations.github import TOKEN_VARIABLES as GITHUB_TOKEN_VARIABLES
from agentloop.integrations.github import GitHub, token_from_env
from agentloop.integrations.sentry import TOKEN_VARIABLES, Sentry, token_variable
from agentloop.loop.runner import LoopSettings
from agentloop.pull_request import ClientFactory, PrOptions, api_url, repository
from agentloop.rails.paths import ForbiddenPaths
from agentloop.workspace import new_run_id

HEAL_SCHEMA_ID = "https://agentloop.dev/schemas/heal-1.json"
ESCALATE_SCHEMA_ID = "https://agentloop.dev/schemas/heal-escalate-1.json"
Now = Callable[[], datetime.datetime]


@dataclasses.dataclass(frozen=True)
class Services:
    """What the command talks to; tests pass loopback fakes and an in-process agent."""

    sentry: Sentry | None = None
    agent: Agent | None = None
    github: ClientFactory | None = None
    notifier: Notifier | None = None
    now: Now = lambda: datetime.datetime.now(datetime.timezone.utc)
    clock: Callable[[], float] = time.monotonic


def heal(
    *,
    repo: Path,
    dry_run: bool,
    as_json: bool,
    allow_sensitive: bool = False,
    max_fixes: int | None = None,
    no_publish: bool = False,
    yes: bool = False,
    publish: Path | None = None,
    escalate: bool = False,
    environ: Mapping[str, str] | None = None,
    sentry: Sentry | None = None,
    services: Services | None = None,
) -> int:
    services = services or Services(sentry=sentry)
    if sentry is not None:
        services = dataclasses.replace(services, sentry=sentry)
    env = os.environ if environ is None else environ
    _check_flags(
        dry_run=dry_run,
        allow_sensitive=allow_sensitive,
        max_fixes=max_fixes,
        no_publish=no_publish,
        yes=yes,
        publish=publish,
        escalate=escalate,
    )
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    if yes and not dry_run and token_from_env(env) is None:
        # Before any session is paid for: publishing would fail at its first write.
        raise UsageError(
            "--yes publishes to GitHub, and there is no GitHub token in the environment",
            hint=f"set one of {', '.join(GITHUB_TOKEN_VARIABLES)} (in GitHub Actions: "
            "GITHUB_TOKEN with contents, pull-requests and issues write), or use --no-publish",
        )
    if publish is not None:
        return _publish_dir(repo, publish, yes=yes, as_json=as_json, env=env, services=services)
    if escalate:
        return _escalate(repo, yes=yes, as_json=as_json, env=env, services=services)
    overrides = {"sentry": {"max_fixes": max_fixes}} if max_fixes is not None else None
    config, _ = load_config(repo.resolve(), overrides=overrides, environ=env)
    settings = config.sentry
    if settings.organization is None:
        raise ConfigError(
            "sentry.organization is not set: agentloop heal does not know which Sentry "
            "organization to read",
            hint="set `sentry: {organization: <slug>, projects: [<slug>]}` in agentloop.yaml "
            "(or AGENTLOOP_SENTRY__ORGANIZATION)",
        )
    top = None if dry_run else _toplevel(repo)
    client = services.sentry
    if client is None:
        if token_variable(env) is None:
            raise ConfigError(
                "agentloop heal needs a Sentry token to read the issues",
                hint=f"set {TOKEN_VARIABLES[1]} (or {TOKEN_VARIABLES[0]}) to a token with the "
                "event:read, project:read and org:read scopes",
            )
        client = Sentry.from_env(settings.organization, env, base_url=settings.base_url)
    with output.progress(enabled=not as_json) as progress:
        progress(f"reading the unresolved Sentry issues of {settings.organization}")
        incidents = client.incidents(settings.projects)
    result = triage(
        incidents,
        rules=settings.severity_rules,
        exclude_paths=settings.exclude_paths,
        max_errors_per_hour=settings.max_errors_per_hour,
        max_fixes=settings.max_fixes,
    )
    if top is None:
        if as_json:
            output.print_json(heal_doc(result, settings, issues=len(incidents)))
        else:
            print_triage(result, settings, issues=len(incidents))
        return errors.OK
    if not as_json:
        print_triage(result, settings, issues=len(incidents), verdict=False)
    run = _run(
        top,
        repo.resolve(),
        result,
        config,
        issues=len(incidents),
        allow_sensitive=allow_sensitive,
        as_json=as_json,
        env=env,
        services=services,
    )
    folder = top / ".agentloop" / "runs" / run.run_id
    if no_publish:
        return _finish(run, folder, None, as_json=as_json, no_publish=True)
    published = _publish(
        top, folder, run, config, yes=yes, as_json=as_json, env=env, services=services
    )
    return _finish(run, folder, published, as_json=as_json)


def _check_flags(
    *,
    dry_run: bool,
    allow_sensitive: bool,
    max_fixes: int | None,
    no_publish: bool,
    yes: bool,
    publish: Path | None,
    escalate: bool,
) -> None:
    modes = [
        name
        for name, on in (
            ("--dry-run", dry_run),
            ("--publish", publish is not None),
            ("--escalate", escalate),
        )
        if on
    ]
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} together", hint="give one of them")
    run_only = [
        name
        for name, on in (
            ("--allow-sensitive", allow_sensitive),
            ("--max-fixes", max_fixes is not None),
            ("--no-publish", no_publish),
        )
        if on
    ]
    if modes and modes[0] != "--dry-run" and run_only:
        raise UsageError(
            f"{', '.join(run_only)} with {modes[0]}: they choose what a run fixes",
            hint=f"drop {', '.join(run_only)}",
        )
    if dry_run and (allow_sensitive or no_publish or yes):
        raise UsageError(
            "--dry-run changes nothing: it takes no --allow-sensitive, --no-publish or --yes",
            hint="drop them, or drop --dry-run",
        )
    if no_publish and yes:
        raise UsageError(
            "--yes approves publishing, and --no-publish publishes nothing",
            hint="drop one (publish later with `agentloop heal --publish RUN_DIR --yes`)",
        )
    if max_fixes is not None and max_fixes < 0:
        raise UsageError(f"--max-fixes {max_fixes}: not a count", hint="give 0 or more")


def _toplevel(repo: Path) -> Path:
    top = git.find_toplevel(repo.resolve())
    if top is None:
        raise UsageError(
            f"{repo} is not a git repository: agentloop heal commits fixes on branches",
            hint="run it in the checkout of the project Sentry reports on "
            "(or use --dry-run to only see the triage)",
        )
    return top


# ---------------------------------------------------------------- the run


def _run(
    top: Path,
    root: Path,
    result: Triage,
    config: Config,
    *,
    issues: int,
    allow_sensitive: bool,
    as_json: bool,
    env: Mapping[str, str],
    services: Services,
) -> HealRun:
    """REPRODUCE then FIX the selected root causes, under one deadline, and write the run
    directory. No session at all when the breaker tripped or nothing was selected."""
    clock = services.clock
    started = clock()
    created = services.now()
    run_id = _run_id(top, created)
    git.ignore_locally(top, ".agentloop/")
    base_sha = git.head_sha(top)
    base_ref = git.current_branch(top)
    results: list[GroupResult] = []
    if result.selected:
        agent = services.agent
        if agent is None:
            sandbox.require()
            from agentloop.agents.claude import ClaudeCodeAgent

            agent = ClaudeCodeAgent(cli_path=config.agent.cli_path, model=config.agent.model)
        deadline = started + config.sentry.runtime
        say = _Say(not as_json)
        with output.progress(enabled=not as_json) as progress:
            limits = SessionLimits(
                max_turns=config.agent.max_turns,
                max_budget_usd=config.agent.budget_per_attempt_usd,
                allowed_tools=config.agent.allowed_tools,
            )
            for number, group in enumerate(result.selected, start=1):
                say.group(number, len(result.selected), group)
            # Sensitive code without --allow-sensitive: FIX would refuse it, so no
            # reproduction session is paid for either.
            sensitive = {} if allow_sensitive else _sensitive(top, result.selected, config)
            chosen = [g for g in result.selected if g.signature not in sensitive]
            reproduced = (
                ()
                if not chosen
                else reproduce(
                    root,
                    chosen,
                    agent=agent,
                    config=config,
                    deadline=deadline,
                    settings=ReproduceSettings(
                        limits=limits,
                        forbidden=ForbiddenPaths.with_protected(config.rails.forbidden_paths),
                        secrets=config.rails.secret_paths,
                        network=config.sandbox.network,
                    ),
                    environ=env,
                    clock=clock,
                    progress=progress,
                )
            )
            by_signature = {o.group.signature: o for o in reproduced}
            spent = sum(o.cost_usd for o in reproduced)
            for number, group in enumerate(result.selected, start=1):
                if group.signature in sensitive:
                    reason = sensitive[group.signature]
                    say.skipped(number, reason)
                    results.append(GroupResult(group, "not_fixed", reason, "sensitive"))
                    continue
                outcome = by_signature[group.signature]
                say.reproduced(number, outcome)
                if isinstance(outcome, NotReproduced):
                    results.append(_not_reproduced(outcome))
                    continue
                left = config.run.max_budget_usd - spent
                if left <= 0:
                    done: Fixed | NotFixed = NotFixed(
                        outcome.group,
                        outcome,
                        "out_of_budget",
                        f"the run's budget (run.max_budget_usd ${config.run.max_budget_usd:.2f}) "
                        "was spent before this fix",
                    )
                else:
                    done = fix_step(
                        root,
                        outcome,
                        agent=agent,
                        config=config,
                        deadline=deadline,
                        settings=_fix_settings(config, allow_sensitive, left, limits),
                        environ=env,
                        clock=clock,
                        progress=progress,
                    )
                spent += done.cost_usd
                say.fixed(number, done)
                results.append(_fixed(top, outcome, done, base_ref, allow_sensitive))
    fixes = [r.fix for r in results if r.fix is not None]
    folder = top / ".agentloop" / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    if fixes:
        git.create_bundle_of(top, folder / BUNDLE_FILE, [f.branch for f in fixes], base_sha)
    run = HealRun(
        run_id=run_id,
        created=created,
        organization=config.sentry.organization,
        projects=config.sentry.projects,
        issues=issues,
        base_sha=base_sha,
        base_ref=base_ref,
        allow_sensitive=allow_sensitive,
        triage=result,
        results=tuple(results),
        bundle=BUNDLE_FILE if fixes else None,
        cost_usd=sum(r.cost_usd for r in results),
        duration_s=clock() - started,
    )
    record.write(folder, run)
    return run


def _sensitive(top: Path, groups: Sequence[Group], config: Config) -> dict[Signature, str]:
    """The groups whose crash frame is in sensitive code (heal.fix's globs), with FIX's
    reason; a frame in no file of the repository is left to REPRODUCE to say so."""
    settings = FixSettings(sensitive=config.sentry.sensitive_paths)
    listed = git.listed_paths(top)
    found: dict[Signature, str] = {}
    for group in groups:
        path = locate(group.crash_frame, listed)
        pattern = sensitive_match(path, settings) if path is not None else None
        if path is not None and pattern is not None:
            found[group.signature] = (
                f"the crash is in {path}, sensitive code ({pattern}): needs --allow-sensitive"
            )
    return found


def _run_id(top: Path, now: datetime.datetime) -> str:
    """The time, and a suffix when a run of the same second has its directory already."""
    base = new_run_id(now)
    runs = top / ".agentloop" / "runs"
    run_id, n = base, 1
    while (runs / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _fix_settings(
    config: Config, allow_sensitive: bool, budget: float, limits: SessionLimits
) -> FixSettings:
    return FixSettings(
        loop=LoopSettings(
            max_attempts=config.run.max_attempts,
            # Cut to the shared deadline by FIX itself.
            max_runtime_s=config.sentry.runtime,
            max_budget_usd=budget,
            budget_per_attempt_usd=min(config.agent.budget_per_attempt_usd, budget),
            limits=dataclasses.replace(limits, max_budget_usd=None),
            forbidden=ForbiddenPaths(config.rails.forbidden_paths),
            rerun_timeout=config.detect.rerun_timeout,
            checks=config.run.checks,
        ),
        secrets=config.rails.secret_paths,
        network=config.sandbox.network,
        sensitive=config.sentry.sensitive_paths,
        allow_sensitive=allow_sensitive,
        suite_timeout=config.detect.suite_timeout,
    )


def _not_reproduced(outcome: NotReproduced) -> GroupResult:
    evidence = Evidence(outcome.test_file, None, outcome.runs) if outcome.runs else None
    return GroupResult(
        outcome.group,
        "not_reproduced",
        outcome.reason,
        outcome.kind,
        evidence,
        None,
        outcome.cost_usd,
    )


def _fixed(
    top: Path, r: Reproduction, done: Fixed | NotFixed, base_ref: str | None, sensitive: bool
) -> GroupResult:
    evidence = Evidence(r.test_file, r.test_id, r.runs)
    cost = r.cost_usd + done.cost_usd
    if isinstance(done, NotFixed):
        return GroupResult(r.group, "not_fixed", done.reason, done.kind, evidence, None, cost)
    after = done.pass_after
    sentry_fix = heal_pr.SentryFix(
        issues=tuple(heal_pr.SentryRef.of(i.issue) for i in r.group.incidents),
        severity=r.group.severity,
        signature=str(r.group.signature),
        branch=done.branch,
        commit=done.commit,
        base_sha=done.base_sha,
        base_ref=base_ref,
        files=done.files_changed,
        diff_stat=git.diff_stat(top, done.base_sha, done.commit),
        test_file=done.test_file,
        test_id=done.test_id,
        fail_before=done.fail_before,
        test_passed=after.test_passed,
        suites=heal_pr.Suites(after.tests, after.baseline_failing, after.final_failing),
        cause=done.summary,
        attempts=done.attempts,
        cost_usd=done.cost_usd,
        duration_s=done.duration_s,
        sensitive_allowed=sensitive,
    )
    return GroupResult(r.group, "fixed", "", "", evidence, sentry_fix, cost)


class _Say:
    """One line per group and step, on stdout, for a person (silent under --json)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _print(self, text: str) -> None:
        if self.enabled:
            output.out.print(text)

    def group(self, number: int, total: int, group: Group) -> None:
        self._print(
            f"[bold]{number}/{total}[/] {group.severity} {escape(scrub_text(str(group.signature)))}"
            f" ({escape(', '.join(group.short_ids))})"
        )

    def reproduced(self, number: int, outcome: Reproduction | NotReproduced) -> None:
        if isinstance(outcome, Reproduction):
            self._print(
                f"  {number}. reproduce: [green]reproduced[/] by {escape(outcome.test_id)} "
                f"({len(outcome.runs)} of {len(outcome.runs)} runs)"
            )
        else:
            self._print(f"  {number}. reproduce: [yellow]skipped[/]: {escape(outcome.reason)}")

    def skipped(self, number: int, reason: str) -> None:
        self._print(f"  {number}. [yellow]skipped[/]: {escape(reason)}")

    def fixed(self, number: int, done: Fixed | NotFixed) -> None:
        if isinstance(done, Fixed):
            self._print(
                f"  {number}. fix: [green]fixed[/] on {escape(done.branch)} at {done.commit[:12]}"
                f" ({', '.join(escape(f) for f in done.files_changed)})"
            )
        else:
            self._print(f"  {number}. fix: [yellow]not fixed[/]: {escape(done.reason)}")


# ---------------------------------------------------------------- publish


@dataclasses.dataclass(frozen=True)
class Published:
    """What PUBLISH did, or (approved False) what it would do."""

    approved: bool
    prs: tuple[heal_pr.HealPrOutcome, ...] = ()
    planned: tuple[str, ...] = ()  # without --yes: one line per thing it would write
    delivered: report.Delivered | None = None
    problems: tuple[str, ...] = ()
    command: str | None = None

    @property
    def capped(self) -> bool:
        return any(p.action == "capped" for p in self.prs)


def _publish_dir(
    repo: Path,
    given: Path,
    *,
    yes: bool,
    as_json: bool,
    env: Mapping[str, str],
    services: Services,
) -> int:
    top = _toplevel(repo)
    path = record.find(given)
    run = record.load(path)
    config, _ = load_config(repo.resolve(), environ=env)
    published = _publish(
        top, path.parent, run, config, yes=yes, as_json=as_json, env=env, services=services
    )
    return _finish(run, path.parent, published, as_json=as_json)


def _publish_command(folder: Path) -> str:
    shown = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)
    return f"agentloop heal --publish {shown} --yes"


def _publish(
    top: Path,
    folder: Path,
    run: HealRun,
    config: Config,
    *,
    yes: bool,
    as_json: bool,
    env: Mapping[str, str],
    services: Services,
) -> Published:
    fixes = run.fixes
    if not yes:
        planned = [f"push {f.branch} and open the PR {heal_pr.title(f)!r}" for f in fixes]
        # Only what would happen: no tiers configured, nobody is notified.
        configured = config.notify.tiers
        notify = " and notify the first tier" if configured else ""
        if run.triage.breaker_tripped:
            planned.append(f"open (or update) the alert issue{notify}")
        planned.append(f"open (or update) the incident report issue{notify}")
        if len(configured) > 1:
            planned.append("send the escalations that are due")
        return Published(False, planned=tuple(planned), command=_publish_command(folder))
    # The report and the ledger go under .agentloop/, in a fresh checkout too.
    git.ignore_locally(top, ".agentloop/")
    for f in fixes:
        if git.rev_parse(top, f"refs/heads/{f.branch}") is None:
            bundle = folder / BUNDLE_FILE
            if not bundle.is_file():
                raise UsageError(
                    f"branch {f.branch} is not in this checkout and {bundle} is missing",
                    hint="upload the whole run directory (heal.json and heal.bundle)",
                )
            try:
                git.branch_from_bundle(top, bundle, f.branch, f.branch)
            except git.GitError as exc:
                raise UsageError(exc.message, hint=exc.hint) from None
    options = PrOptions()
    factory = services.github or _client
    prs: list[heal_pr.HealPrOutcome] = []
    problems: list[str] = []
    with output.progress(enabled=not as_json) as progress:
        for f in fixes:
            progress(f"PR for {f.branch}")
            try:
                outcome = heal_pr.open_fix_pr(
                    top, f, options, config=config, client=factory, environ=env, now=services.now()
                )
            except ServiceError as exc:
                problems.append(f"the PR of {f.branch}: {exc.message}")
                continue
            prs.append(outcome)
            if not as_json:
                output.out.print(f"  PR: {escape(outcome.message)}")
        repo_name = repository(top, options, config, env)
        token = token_from_env(env)
        gh = factory(repo_name, token, api_url(options, config, env)) if token else None
        if gh is None:
            problems.append("no GitHub token: the report and the alert were not published")
        notifier = services.notifier or Notifier()
        tiers = channels(config.notify, env)
        progress("the incident report")
        with History.open(ledger_path(top)) as history, _inbox(top) as inbox:
            escalation = Escalation(
                repo=repo_name,
                history=history,
                tiers=tiers,
                escalate_after_min=config.notify.escalate_after,
                notifier=notifier,
                github=gh,
                inbox=inbox,
            )
            delivered = report.deliver(
                root=top,
                run_id=run.run_id,
                triage=run.triage,
                outcomes=_report_outcomes(run, prs),
                now=services.now(),
                github=gh,
                escalation=escalation,
                notifier=notifier,
                tiers=tiers,
                organization=run.organization,
                tracking_issue=config.sentry.tracking_issue,
            )
    return Published(True, tuple(prs), (), delivered, (*problems, *delivered.problems))


@contextmanager
def _inbox(top: Path) -> Iterator[Inbox | None]:
    """`agentloop serve`'s inbox, when it runs here: the acknowledgements GitHub's `issues`
    webhooks recorded (heal never creates it)."""
    path = top / INBOX
    if not path.is_file():
        yield None
        return
    inbox = Inbox(path)
    try:
        yield inbox
    finally:
        inbox.close()


def _client(repo: str, token: str, api: str) -> GitHub:
    return GitHub(repo, token, api_url=api)


def _report_outcomes(run: HealRun, prs: Sequence[heal_pr.HealPrOutcome]) -> list[report.Outcome]:
    by_branch = {p.branch: p for p in prs}
    found: list[report.Outcome] = []
    for r in run.results:
        test = r.evidence.test_id or r.evidence.test_file if r.evidence else None
        if r.fix is None:
            kind: report.OutcomeKind = (
                "not_reproduced"
                if r.status == "not_reproduced"
                else "skipped"
                if r.kind == "sensitive"
                else "not_fixed"
            )
            found.append(report.Outcome(r.group, kind, reason=r.reason))
            continue
        pr = by_branch.get(r.fix.branch)
        if pr is None:
            found.append(
                report.Outcome(
                    r.group,
                    "not_fixed",
                    test_added=test,
                    reason="fixed, but its pull request failed",
                )
            )
        elif pr.action == "opened":
            found.append(report.Outcome(r.group, "fixed", pr.url, test))
        elif pr.action == "capped":
            found.append(report.Outcome(r.group, "capped", None, test, pr.reason or ""))
        elif pr.action == "skipped" and pr.number is not None:
            # Its open PR already carries this evidence: nothing was sent to it.
            found.append(report.Outcome(r.group, "already_open", pr.url, test, pr.reason or ""))
        else:
            # The PR's address is in the outcome; the reason stays free of it (the report
            # scrubs reasons, which would mangle a GitHub Enterprise reached by IP).
            found.append(
                report.Outcome(
                    r.group, "commented", pr.url, test, "the new evidence went to its open PR"
                )
            )
    return found


# ---------------------------------------------------------------- the end


def _exit_code(run: HealRun, published: Published | None) -> int:
    if run.triage.breaker_tripped:
        return errors.LIMITED
    if published is not None and not published.approved:
        # Stopped before publishing, as asked: the run itself went as planned.
        return errors.OK
    if published is not None and published.problems:
        return errors.SERVICE
    if published is not None and published.capped:
        return errors.LIMITED
    if run.unfixed:
        return errors.FAILURES_FOUND
    return errors.OK


def _finish(
    run: HealRun,
    folder: Path,
    published: Published | None,
    *,
    as_json: bool,
    no_publish: bool = False,
) -> int:
    code = _exit_code(run, published)
    if as_json:
        output.print_json(run_doc(run, folder, published, exit_code=code))
    else:
        print_run(run, folder, published, no_publish=no_publish)
    return code


def run_doc(
    run: HealRun, folder: Path, published: Published | None, *, exit_code: int
) -> dict[str, Any]:
    doc = record.to_doc(run)
    doc["run_dir"] = str(folder)
    doc["exit_code"] = exit_code
    doc["published"] = None if published is None else _published_doc(published)
    return doc


def _sent_doc(sent: Sent) -> dict[str, Any]:
    return {"channel": sent.channel, "ok": sent.ok, "attempts": sent.attempts, "error": sent.error}


def _escalated_doc(e: Escalated) -> dict[str, Any]:
    return {
        "issue": e.number,
        "url": e.url,
        "tiers": list(e.tiers),
        "sent": [_sent_doc(s) for s in e.sent],
        "acknowledged": e.acknowledged,
        "note": e.note,
    }


def _published_doc(p: Published) -> dict[str, Any]:
    d = p.delivered
    return {
        "approved": p.approved,
        "command": p.command,
        "planned": list(p.planned),
        "prs": [
            {
                "branch": o.branch,
                "action": o.action,
                "url": o.url,
                "number": o.number,
                "reason": o.reason,
                "title": o.title,
                "message": o.message,
            }
            for o in p.prs
        ],
        "report_issue": None
        if d is None or d.report_issue is None
        else {
            "action": d.report_issue.action,
            "number": d.report_issue.number,
            "url": d.report_issue.url,
        },
        "alert_issue": None
        if d is None or d.alert_issue is None
        else {"number": d.alert_issue.number, "url": d.alert_issue.html_url},
        "report": None if d is None else str(d.markdown),
        "sent": [] if d is None else [_sent_doc(s) for s in d.sent],
        "escalated": [] if d is None else [_escalated_doc(e) for e in d.escalated],
        "problems": list(p.problems),
    }


def print_run(run: HealRun, folder: Path, published: Published | None, *, no_publish: bool) -> None:
    out = output.out
    fixed = len(run.fixes)
    if run.triage.breaker_tripped:
        out.print("[bold red]rate breaker tripped:[/] no session was started")
    elif run.triage.selected:
        out.print(
            f"[bold]{fixed} of {len(run.triage.selected)} root cause"
            f"{'s' if len(run.triage.selected) != 1 else ''} fixed[/] (cost "
            f"${run.cost_usd:.2f}, {run.duration_s:.0f} s)"
        )
    else:
        out.print("nothing to fix: no P0 or P1 root cause")
    out.print(f"run directory: {escape(str(folder))}")
    if published is None:
        if no_publish:
            out.print(
                "not published (--no-publish): publish it with "
                f"[bold]{escape(_publish_command(folder))}[/]"
            )
        return
    if not published.approved:
        out.print("[bold]not published:[/] publishing writes to GitHub and needs --yes. It would:")
        for line in published.planned:
            out.print(f"  - {escape(line)}")
        out.print(f"publish with: [bold]{escape(published.command or '')}[/]")
        return
    d = published.delivered
    if d is not None and d.alert_issue is not None:
        out.print(f"alert issue: {escape(d.alert_issue.html_url)}")
    if d is not None and d.report_issue is not None:
        out.print(f"incident report: {d.report_issue.action} {escape(d.report_issue.url)}")
    for problem in published.problems:
        output.note(problem)


# ---------------------------------------------------------------- --escalate


def _escalate(
    repo: Path, *, yes: bool, as_json: bool, env: Mapping[str, str], services: Services
) -> int:
    top = _toplevel(repo)
    config, _ = load_config(repo.resolve(), environ=env)
    options = PrOptions()
    repo_name = repository(top, options, config, env)
    token = token_from_env(env)
    factory = services.github or _client
    gh = factory(repo_name, token, api_url(options, config, env)) if token else None
    with History.open(ledger_path(top)) as history, _inbox(top) as inbox:
        alerts = history.open_alerts(repo_name)
        if not yes:
            doc = {
                "$schema": ESCALATE_SCHEMA_ID,
                "agentloop_version": __version__,
                "approved": False,
                "open_alerts": [a.number for a in alerts],
                "escalated": [],
                "command": "agentloop heal --escalate --yes",
            }
            if as_json:
                output.print_json(doc)
            else:
                output.out.print(
                    f"{len(alerts)} open alert(s); sending their due escalations needs --yes: "
                    "[bold]agentloop heal --escalate --yes[/]"
                )
            return errors.OK
        escalation = Escalation(
            repo=repo_name,
            history=history,
            tiers=channels(config.notify, env),
            escalate_after_min=config.notify.escalate_after,
            notifier=services.notifier or Notifier(),
            github=gh,
            inbox=inbox,
        )
        done = escalation.escalate(services.now())
    problems = [s.error for e in done for s in e.sent if not s.ok] + [
        e.note for e in done if e.note
    ]
    if as_json:
        output.print_json(
            {
                "$schema": ESCALATE_SCHEMA_ID,
                "agentloop_version": __version__,
                "approved": True,
                "open_alerts": [a.number for a in alerts],
                "escalated": [_escalated_doc(e) for e in done],
                "problems": problems,
                "command": None,
            }
        )
    else:
        for e in done:
            what = (
                f"acknowledged ({e.acknowledged})"
                if e.acknowledged
                else f"tier(s) {', '.join(map(str, e.tiers))} sent"
                if e.tiers
                else "nothing due"
            )
            output.out.print(f"alert #{e.number}: {escape(what)}")
        for problem in problems:
            output.note(problem)
    return errors.SERVICE if problems else errors.OK


# ---------------------------------------------------------------- --json


def _issue_doc(group_or_skip: Group | Skipped) -> list[dict[str, Any]]:
    return [
        {
            "id": i.issue.id,
            "short_id": i.issue.short_id,
            "title": scrub_text(i.issue.title),
            "permalink": i.issue.permalink,
            "events_24h": i.issue.last_day,
            "events_last_hour": i.issue.last_hour,
        }
        for i in group_or_skip.incidents
    ]


def _group_doc(group: Group) -> dict[str, Any]:
    frame = group.crash_frame
    return {
        "signature": str(group.signature),
        "exception": group.signature.exception,
        "where": group.signature.where,
        "function": group.signature.function,
        "severity": group.severity,
        "rule": group.rule,
        "score": group.score,
        "events_24h": group.events_24h,
        "events_last_hour": group.events_last_hour,
        "crash_frame": {
            "file": frame.filename or frame.abs_path,
            "line": frame.lineno,
            "function": frame.function,
        },
        "issues": _issue_doc(group),
    }


def heal_doc(result: Triage, settings: SentryConfig, *, issues: int) -> dict[str, Any]:
    return {
        "$schema": HEAL_SCHEMA_ID,
        "agentloop_version": __version__,
        "dry_run": True,
        "organization": settings.organization,
        "projects": list(settings.projects),
        "issues": issues,
        "decision": result.decision,
        "breaker": {
            "tripped": result.breaker_tripped,
            "errors_last_hour": result.errors_last_hour,
            "max_errors_per_hour": result.max_errors_per_hour,
        },
        "max_fixes": result.max_fixes,
        "selected": [_group_doc(g) for g in result.selected],
        "documented": [_group_doc(g) for g in result.documented],
        "skipped": [
            {
                "reason": s.reason,
                "signature": str(s.group.signature) if s.group else None,
                "severity": s.group.severity if s.group else None,
                "issues": _issue_doc(s),
            }
            for s in result.skipped
        ],
    }


# ---------------------------------------------------------------- the table


def _ids(item: Group | Skipped) -> str:
    return ", ".join(i.issue.short_id for i in item.incidents)


def _frame(group: Group) -> str:
    frame = group.crash_frame
    where = frame.filename or frame.abs_path or "?"
    line = f":{frame.lineno}" if frame.lineno else ""
    return f"{where}{line} in {frame.function or '?'}"


def print_triage(
    result: Triage, settings: SentryConfig, *, issues: int, verdict: bool = True
) -> None:
    out = output.out
    projects = ", ".join(settings.projects) or "every project"
    out.print(
        f"{issues} unresolved Sentry issue{'s' if issues != 1 else ''} of the last 24 hours "
        f"in {escape(str(settings.organization))} ({escape(projects)})"
    )
    if result.breaker_tripped:
        out.print(
            f"[bold red]rate breaker tripped:[/] {result.errors_last_hour} errors in the last "
            f"hour > {result.max_errors_per_hour}: fix nothing, alert a human (probably "
            "infrastructure)"
        )
    else:
        out.print(
            f"error rate: {result.errors_last_hour} in the last hour "
            f"(breaker at > {result.max_errors_per_hour})"
        )
    rows = [("fix", g) for g in result.selected] + [("document", g) for g in result.documented]
    if rows:
        table = Table(
            title="Root causes, in the order to fix them (frequency × severity)",
            title_justify="left",
        )
        table.add_column("#", justify="right", style="bold")
        table.add_column("action")
        table.add_column("sev")
        table.add_column("events 24h", justify="right")
        table.add_column("score", justify="right")
        table.add_column("issues", overflow="fold")
        table.add_column("crash frame", overflow="fold")
        table.add_column("exception", overflow="fold", ratio=1)
        for number, (action, group) in enumerate(rows, start=1):
            title = group.incidents[0].issue.title
            table.add_row(
                str(number),
                action,
                group.severity,
                str(group.events_24h),
                str(group.score),
                escape(_ids(group)),
                escape(_frame(group)),
                escape(scrub_text(title)),
            )
        out.print(table)
    if result.skipped:
        table = Table(title="Skipped", title_justify="left")
        table.add_column("issues", overflow="fold")
        table.add_column("reason", overflow="fold", ratio=1)
        for skip in result.skipped:
            table.add_row(escape(_ids(skip)), escape(skip.reason))
        out.print(table)
    if not verdict:
        return
    said = {
        "fix": f"would fix {len(result.selected)} root cause"
        + ("s" if len(result.selected) != 1 else ""),
        "alert": "would fix nothing and open an alert issue",
        "nothing": "nothing to fix",
    }[result.decision]
    out.print(f"[bold]dry run:[/] {said}; nothing was changed or opened")
