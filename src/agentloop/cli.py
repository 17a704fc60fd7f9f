"""Parse and dispatch only: the typer app. Each command lives in agentloop.commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.core import Context, Parameter
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from agentloop import __version__, durations, errors, output


def _unlabel(params: list[Parameter]) -> None:
    """typer 0.29 labels every option with its Python type (`<bool>` beside each flag,
    `<list[str]>`, `<float range>`): a flag shows no value at all here, an option its
    metavar (set on each below), one without a metavar its own name, an argument nothing
    beyond its name."""
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else (param.name or "value").upper()
        elif isinstance(param, TyperArgument):
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]


class _Command(TyperCommand):
    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        _unlabel(self.get_params(ctx))
        super().format_help(ctx, formatter)


class _Group(TyperGroup):
    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        _unlabel(self.get_params(ctx))
        super().format_help(ctx, formatter)


def _seconds(text: str) -> float:
    try:
        return durations.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


_DURATION = "DURATION"

app = typer.Typer(
    cls=_Group,
    name="agentloop",
    help="Let an AI coding agent fix failing tests safely and measurably.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold tokens: never print them.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        output.out.print(f"agentloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional on 3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    """agentloop: detect, fix and verify failing tests with Claude Code, under rails."""


@app.command(cls=_Command)
def detect(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="Project to inspect (default: current directory)."
        ),
    ] = Path(),
    report: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(metavar="FILE|DIR", help="Parse this report instead of running the suites."),
    ] = None,
    fmt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--format",
            metavar="pytest-json|vitest-json|junit",
            help="Format of --report: pytest-json, vitest-json or junit (default: sniffed from "
            "the file).",
        ),
    ] = None,
    flaky_reruns: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=0,
            max=20,
            metavar="N",
            help="Re-run each failing test N times without the rest of its suite "
            "(default 2; 0 to skip): flaky or not, and order-dependent.",
        ),
    ] = None,
    timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            parser=_seconds,
            metavar=_DURATION,
            help="Kill a whole suite after this long: seconds, or 90s, 20m, 1h30m (default 600).",
        ),
    ] = None,
    rerun_timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            parser=_seconds,
            metavar=_DURATION,
            help="Kill a selector run after this long (default 120 seconds); detect times "
            "its re-runs by the tests' own durations and uses this when one is unknown.",
        ),
    ] = None,
    suite: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(metavar="NAME", help="Run only this suite (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema: detect).")] = False,
) -> int:
    """Run the test suites and list their failures, grouped by root cause, in fix order."""
    from agentloop.commands.detect import detect as run_detect
    from agentloop.failures.reports import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise errors.UsageError(
            f"unknown report format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}"
        )
    return run_detect(
        repo=repo,
        report=report,
        fmt=fmt,  # checked against FORMATS above
        flaky_reruns=flaky_reruns,
        timeout=timeout,
        rerun_timeout=rerun_timeout,
        only=suite or [],
        as_json=as_json,
    )


@app.command(cls=_Command)
def run(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="Project to fix (default: current directory)."
        ),
    ] = Path(),
    in_place: Annotated[
        bool,
        typer.Option(
            "--in-place", help="Work in this checkout (must be clean) instead of a new worktree."
        ),
    ] = False,
    max_turns: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, metavar="N", help="Model turns per attempt (default 50)."),
    ] = None,
    max_attempts: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, max=20, metavar="N", help="Attempts per task (default 3)."),
    ] = None,
    max_runtime: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            parser=_seconds,
            metavar=_DURATION,
            help="The whole run: seconds, or 90s, 20m, 1h30m (default 20m).",
        ),
    ] = None,
    max_budget_usd: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(min=0.01, metavar="USD", help="Dollars for the whole run (default 10)."),
    ] = None,
    forbid: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(metavar="GLOB", help="Another forbidden path glob (repeatable)."),
    ] = None,
    task: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            metavar="N|ID",
            help="Only this task: its number in the baseline's table or its id, as "
            "`agentloop detect` shows them (repeatable).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan only: list the tasks, fix nothing.")
    ] = False,
    squash: Annotated[
        bool, typer.Option("--squash", help="One commit with a per-fix summary.")
    ] = False,
    jobs: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            max=32,
            metavar="N",
            help="Tasks fixed at the same time, each in its own worktree (default: "
            "run.jobs, else min(4, CPU count)).",
        ),
    ] = None,
    no_sandbox: Annotated[
        bool,
        typer.Option(
            "--no-sandbox",
            help="Run the agent's shell commands without the OS sandbox (bubblewrap / "
            "Seatbelt). Unsafe; the report says so.",
        ),
    ] = False,
    open_pr: Annotated[
        bool,
        typer.Option(
            "--open-pr",
            help="Then push the run's branch and open a draft PR labelled auto-fix, as "
            "`agentloop pr` does (asks first on a terminal).",
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="With --open-pr: push without asking.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema: run).")] = False,
) -> int:
    """Fix failing tests with Claude Code in an isolated worktree, under agentloop's rails."""
    from agentloop.commands.run import run as run_loop

    return run_loop(
        repo=repo,
        in_place=in_place,
        max_turns=max_turns,
        max_attempts=max_attempts,
        max_runtime=max_runtime,
        max_budget_usd=max_budget_usd,
        forbid=forbid or [],
        task_ids=task or [],
        dry_run=dry_run,
        squash=squash,
        sandboxed=not no_sandbox,
        as_json=as_json,
        jobs=jobs,
        open_pr=open_pr,
        yes=yes,
    )


@app.command(cls=_Command)
def pr(
    run_ref: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(
            metavar="RUN",
            help="A run id, a run directory or its run.json (default: the newest run under "
            ".agentloop/runs/).",
        ),
    ] = None,
    repo: Annotated[
        Path,
        typer.Option("-C", metavar="PATH", help="The checkout (default: current directory)."),
    ] = Path(),
    github_repo: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--repo",
            metavar="OWNER/NAME",
            help="The GitHub repository (default: github.repo, else $GITHUB_REPOSITORY, else "
            "the remote's URL).",
        ),
    ] = None,
    api_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="URL",
            help="GitHub's REST API (default: github.api_url, else $GITHUB_API_URL, else "
            "https://api.github.com).",
        ),
    ] = None,
    base: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="BRANCH",
            help="Branch to merge into (default: the branch the run started from, if the "
            "remote has it, else the repository's default branch).",
        ),
    ] = None,
    remote: Annotated[
        str, typer.Option(metavar="NAME", help="The git remote to push to.")
    ] = "origin",
    ready: Annotated[
        bool, typer.Option("--ready", help="Open it ready for review instead of as a draft.")
    ] = False,
    reviewer: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            metavar="LOGIN|team:SLUG",
            help="Ask for a review (repeatable; default: github.reviewers, else CODEOWNERS).",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Push without asking (CI never asks).")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the title, the body and what would be pushed; touch nothing."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema: pr).")] = False,
) -> int:
    """Push a run's branch and open a draft pull request labelled auto-fix with the run's
    evidence. Never merges. Exit 4 when GitHub refuses, 5 at the daily cap."""
    from agentloop.commands.pr import pr as run_pr
    from agentloop.pull_request import PrOptions

    return run_pr(
        repo=repo,
        run=run_ref,
        options=PrOptions(
            repo=github_repo,
            api_url=api_url,
            base=base,
            remote=remote,
            ready=ready,
            reviewers=tuple(reviewer or ()),
            dry_run=dry_run,
        ),
        yes=yes,
        as_json=as_json,
    )


@app.command(cls=_Command)
def check(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="Project to check (default: current directory)."
        ),
    ] = Path(),
    base: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            metavar="REF",
            help="Compare the working state with this commit (default: HEAD; inside an "
            "/autofix session, HEAD when the session started).",
        ),
    ] = None,
    forbid: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(metavar="GLOB", help="Another forbidden path glob (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema: check).")] = False,
) -> int:
    """Check the change since --base (committed, staged, unstaged, untracked) against the
    rails: forbidden paths and test integrity. Exit 1 when it breaks them."""
    from agentloop.commands.check import check as run_check

    return run_check(repo=repo, base=base, forbid=forbid or [], as_json=as_json)


@app.command(cls=_Command)
def clean(
    repo: Annotated[
        Path,
        typer.Option("--repo", "-C", metavar="PATH", help="Repository to clean (default: here)."),
    ] = Path(),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> int:
    """Remove worktrees and branches left by killed runs; save any uncommitted work first."""
    from agentloop.commands.clean import clean as run_clean

    return run_clean(repo=repo, dry_run=dry_run, as_json=as_json)


@app.command(cls=_Command)
def init(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="Project to set up (default: current directory)."
        ),
    ] = Path(),
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Overwrite files you changed (a copy goes to .agentloop/backups/)."
        ),
    ] = False,
    uninstall: Annotated[
        bool,
        typer.Option("--uninstall", help="Remove what init installed; restore what it replaced."),
    ] = False,
    workflows: Annotated[
        bool,
        typer.Option(
            "--workflows",
            help="Also install the GitHub Actions workflows (autofix.yml, autofix-matrix.yml, "
            "auto-fix-production.yml) into .github/workflows/.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema: init).")] = False,
) -> int:
    """Install the skills (/autofix, /parallel-build, /auto-fix-production), the hooks, the
    MCP server and a CLAUDE.md block for Claude Code here."""
    from agentloop.commands.init import init as run_init

    return run_init(
        repo=repo, force=force, uninstall=uninstall, workflows=workflows, as_json=as_json
    )


@app.command(cls=_Command)
def plan(
    repo: Annotated[
        Path, typer.Option("--repo", "-C", metavar="PATH", help="Project (default: here).")
    ] = Path(),
    matrix: Annotated[
        bool,
        typer.Option(
            "--matrix",
            help="Print one line of JSON for a GitHub Actions matrix: "
            '{"include":[{"task":"ID[,ID...]","title":"..."}]}.',
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> int:
    """The failing tasks in groups that can be fixed apart, one job each."""
    from agentloop.commands.plan import plan as plan_command

    return plan_command(repo=repo, matrix=matrix, as_json=as_json)


@app.command(cls=_Command, name="merge-results")
def merge_results(
    runs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR...",
            help="Run directories (each with run.json and run.bundle), applied in this order.",
        ),
    ],
    repo: Annotated[
        Path, typer.Option("--repo", "-C", metavar="PATH", help="Repository (default: here).")
    ] = Path(),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema: run).")] = False,
) -> int:
    """Apply the runs of a matrix in order, verify the full suites once, drop what
    conflicts or regresses; leaves a run directory for `agentloop pr`."""
    from agentloop.commands.merge_results import merge_results as merge_command

    return merge_command(repo=repo, runs=runs, as_json=as_json)


@app.command(cls=_Command, name="parallel-build")
def parallel_build(
    request: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(
            metavar="[REQUEST]",
            help="The feature to build: a read-only coordinator session splits it into a "
            "manifest first.",
        ),
    ] = None,
    repo: Annotated[
        Path, typer.Option("--repo", "-C", metavar="PATH", help="Project (default: here).")
    ] = Path(),
    manifest: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE",
            help="The build's manifest (build.yaml): streams, what each owns, contracts.",
        ),
    ] = None,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan-only",
            help="Write and validate the manifest, print the plan and the command that builds "
            "it; build nothing.",
        ),
    ] = False,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            metavar="FILE",
            help="Where the manifest written from a REQUEST goes (default: "
            ".agentloop/builds/RUN/build.yaml, RUN the run id).",
        ),
    ] = None,
    jobs: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            max=32,
            metavar="N",
            help="Streams built at the same time, each in its own worktree (default: "
            "run.jobs, else min(4, CPU count)).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print JSON (schema: build, or build-plan with --plan-only)."),
    ] = False,
) -> int:
    """Build a feature as streams in parallel worktrees, each owning its files, merged
    into one commit on an agentloop/build- branch (nothing pushed). From a REQUEST, a
    coordinator session writes the manifest first (exit 1 when it writes no valid one: the
    last is kept for you to fix); or give --manifest FILE."""
    from agentloop.commands.parallel_build import parallel_build as run_build

    return run_build(
        repo=repo,
        request=request,
        manifest=manifest,
        plan_only=plan_only,
        jobs=jobs,
        as_json=as_json,
        out=out,
    )


@app.command(cls=_Command)
def stats(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="Project whose ledger to read (default: here)."
        ),
    ] = Path(),
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(metavar="WHEN", help="Only runs since: 7d, 4w, 36h, a date or a UTC time."),
    ] = None,
    prs: Annotated[
        bool,
        typer.Option(
            "--prs",
            help="First read the auto-fix pull requests from GitHub into the ledger (needs "
            "AGENTLOOP_GITHUB_TOKEN, GITHUB_TOKEN or GH_TOKEN).",
        ),
    ] = False,
    github_repo: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--github-repo",
            metavar="OWNER/NAME",
            help="The GitHub repository for --prs (default: config github.repo, "
            "GITHUB_REPOSITORY, then the origin remote).",
        ),
    ] = None,
    builds: Annotated[
        bool,
        typer.Option(
            "--builds",
            help="Parallel builds instead: wall clock against the serial estimate (the "
            "speed-up), integration failure rate, contract accuracy.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema: stats).")] = False,
) -> int:
    """Fix success rate, attempts per fix, regression rate, time and cost per fix; with
    --prs, what humans did with the pull requests (accepted, closed, changed, reverted);
    with --builds, how parallel builds went."""
    from agentloop.commands.stats import stats as run_stats

    return run_stats(
        repo=repo, as_json=as_json, since=since, prs=prs, github_repo=github_repo, builds=builds
    )


@app.command(cls=_Command)
def heal(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="The project (default: current directory)."
        ),
    ] = Path(),
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Read Sentry and show the triage; change nothing, open nothing."
        ),
    ] = False,
    allow_sensitive: Annotated[
        bool,
        typer.Option(
            "--allow-sensitive",
            help="Also fix crashes in auth, payments, billing, data-deletion code and "
            "sentry.sensitive_paths (skipped otherwise).",
        ),
    ] = False,
    max_fixes: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-fixes",
            metavar="N",
            help="Root causes to fix at most (default: sentry.max_fixes, 5).",
        ),
    ] = None,
    no_publish: Annotated[
        bool,
        typer.Option(
            "--no-publish",
            help="Stop after the run directory (heal.json, heal.bundle): push nothing, open "
            "nothing, send nothing; publish it later with --publish.",
        ),
    ] = False,
    publish: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--publish",
            metavar="RUN_DIR",
            help="Publish a run directory (from --no-publish, e.g. another CI job's artifact): "
            "the PRs, the incident report, the notifications. Needs no model or Sentry token.",
        ),
    ] = None,
    escalate: Annotated[
        bool,
        typer.Option(
            "--escalate", help="Only send the due escalations of open alerts (for a schedule)."
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            help="Approve publishing: push the fix branches, open the PRs and issues, notify. "
            "Without it nothing is written to GitHub and the command to publish is printed.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print JSON (schema: heal with --dry-run, else heal-run)."),
    ] = False,
) -> int:
    """Turn the unresolved Sentry issues of the last 24 hours into pull requests (needs
    SENTRY_AUTH_TOKEN and sentry.organization): triage by frequency x severity, a failing
    test that reproduces each P0/P1 root cause, a fix, a PR per fix, an incident report.
    Exit 5 when the rate breaker trips (an alert issue, no session) or the daily PR cap."""
    from agentloop.commands.heal import heal as run_heal

    return run_heal(
        repo=repo,
        dry_run=dry_run,
        as_json=as_json,
        allow_sensitive=allow_sensitive,
        max_fixes=max_fixes,
        no_publish=no_publish,
        yes=yes,
        publish=publish,
        escalate=escalate,
    )


@app.command(cls=_Command)
def serve(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="The project (default: current directory)."
        ),
    ] = Path(),
    host: Annotated[
        str,
        typer.Option("--host", metavar="HOST", help="Address to listen on (default: loopback)."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="TCP port (0: any free port).")
    ] = 8787,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Queue a local run per alert in the inbox instead of dispatching to GitHub.",
        ),
    ] = False,
    github_repo: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--github-repo",
            metavar="OWNER/NAME",
            help="Where to send repository_dispatch (default: config github.repo, "
            "GITHUB_REPOSITORY, then the origin remote).",
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option(
            "--max-body", metavar="BYTES", help="Largest request body accepted (default 1 MiB)."
        ),
    ] = 1024 * 1024,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the start and stop lines as JSON (schema: serve).")
    ] = False,
) -> int:
    """Receive Sentry issue alerts (and GitHub issue events) as signed webhooks and start
    the auto-fix-production workflow with a repository_dispatch. Secrets from the
    environment: AGENTLOOP_SENTRY_WEBHOOK_SECRET, AGENTLOOP_GITHUB_WEBHOOK_SECRET."""
    from agentloop.commands.serve import serve as run_serve

    return run_serve(
        repo=repo,
        host=host,
        port=port,
        local=local,
        github_repo=github_repo,
        max_body=max_body,
        as_json=as_json,
    )


@app.command(cls=_Command)
def config(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="The project (default: current directory)."
        ),
    ] = Path(),
    reference: Annotated[
        bool,
        typer.Option(
            "--reference", help="Print the reference of every key, its default and meaning."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> int:
    """Show the configuration in effect here (file < AGENTLOOP_* environment), or with
    --reference every key agentloop.yaml and [tool.agentloop] accept."""
    from agentloop.commands.config import config as run_config

    return run_config(repo=repo, show_reference=reference, as_json=as_json)


@app.command(cls=_Command)
def hook(
    name: Annotated[
        str,
        typer.Argument(help="guard, stop-gate, post-edit, autofix or session-end."),
    ],
) -> int:
    """Answer a Claude Code hook event on stdin (run by .claude/hooks/, not by hand)."""
    from agentloop.commands.hook import hook as run_hook

    return run_hook(name=name)


@app.command(cls=_Command)
def mcp(
    repo: Annotated[
        Path,
        typer.Option(
            "--repo", "-C", metavar="PATH", help="The project (default: current directory)."
        ),
    ] = Path(),
) -> int:
    """Serve agentloop's MCP tools (commit, check) on stdio (run by Claude Code from
    .mcp.json, not by hand)."""
    from agentloop.commands.mcp import mcp as run_mcp

    return run_mcp(repo=repo)


session_app = typer.Typer(
    cls=_Group,
    help="The state of an interactive /autofix session (used by the /autofix skill).",
    no_args_is_help=True,
)
app.add_typer(session_app, name="session")

_SessionRepo = Annotated[
    Path,
    typer.Option("--repo", "-C", metavar="PATH", help="The project (default: current directory)."),
]
_SessionId = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--id", metavar="ID", help="Claude Code session id (default: $CLAUDE_CODE_SESSION_ID)."
    ),
]
_SessionJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@session_app.command("start", cls=_Command)
def session_start(
    repo: _SessionRepo = Path(), session_id: _SessionId = None, as_json: _SessionJson = False
) -> int:
    """Start an /autofix session and print its limits from the project's configuration."""
    from agentloop.commands.session import start

    return start(repo=repo, session_id=session_id, as_json=as_json)


@session_app.command("status", cls=_Command)
def session_status(
    repo: _SessionRepo = Path(), session_id: _SessionId = None, as_json: _SessionJson = False
) -> int:
    """Attempts used per failing task and the time left."""
    from agentloop.commands.session import status

    return status(repo=repo, session_id=session_id, as_json=as_json)


@session_app.command("stop", cls=_Command)
def session_stop(
    repo: _SessionRepo = Path(), session_id: _SessionId = None, as_json: _SessionJson = False
) -> int:
    """End the session: the stop gate lets it finish."""
    from agentloop.commands.session import stop

    return stop(repo=repo, session_id=session_id, as_json=as_json)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args

    def report(message: str, hint: str | None, code: int) -> None:
        output.error(message, hint, as_json=as_json, code=code)

    def body() -> int:
        try:
            result = app(args=args, prog_name="agentloop", standalone_mode=False)
        except typer.Exit as exc:  # --version, --help
            return int(exc.exit_code or 0)
        except typer.Abort:
            raise KeyboardInterrupt from None
        except typer.TyperException as exc:  # typer's (vendored click's) usage errors
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None else "agentloop"
            raise errors.UsageError(exc.format_message(), hint=f"see `{command} --help`") from None
        code = int(result) if isinstance(result, int) else errors.OK
        if code == errors.INTERRUPTED:
            # typer catches ^C itself and returns 130 (no command returns it): report it
            # like any interruption, so --json still prints a document.
            raise KeyboardInterrupt
        return code

    return errors.guarded(body, report=report)
