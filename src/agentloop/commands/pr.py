"""`agentloop pr [RUN]`: push a run's branch and open a draft pull request labelled
`auto-fix` with the run's evidence (agentloop.pull_request does the work).

Exit codes: 0 opened, commented, covered by a commit on the base branch, or nothing to
open (the run fixed nothing), and every --dry-run; 2 a bad run, a missing bundle, no
token, or no approval (not a terminal, not CI, no --yes); 4 GitHub or the push refused
or failed; 5 the daily cap of auto-fix PRs (nothing pushed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agentloop import errors, git, output
from agentloop.config import load_config
from agentloop.errors import LimitReached, UsageError
from agentloop.pull_request import Confirm, Plan, PrOptions, in_ci, open_pr


def approval(yes: bool) -> Confirm:
    """Who approves the push: `--yes`; else the person at the terminal, asked after seeing
    what will be pushed; else, in CI, the PR's review. Anything else is refused."""
    interactive = sys.stdin.isatty()

    def confirm(plan: Plan, what: str) -> bool:
        if yes:
            return True
        if interactive:
            output.print_pr_plan(plan)
            return output.ask(f"{what}?")
        if in_ci(os.environ):
            return True  # in CI the PR's review is the approval
        raise UsageError(
            f"not a terminal, and not CI: agentloop pr will not {what} without approval",
            hint="add --yes to approve (or run it in a terminal to be asked)",
        )

    return confirm


def pr(
    *,
    repo: Path,
    run: str | None,
    options: PrOptions,
    yes: bool,
    as_json: bool,
) -> int:
    root = git.find_toplevel(repo.resolve()) if repo.exists() else None
    if root is None:
        raise UsageError(
            f"{repo} is not inside a git repository",
            hint="run agentloop pr in the checkout of the repository (or pass -C PATH)",
        )
    config, _ = load_config(root)
    outcome = open_pr(root, run, options, config=config, confirm=approval(yes))
    if as_json:
        output.print_json(output.pr_doc(outcome))
    elif outcome.action != "capped":
        output.print_pr(outcome)
    if outcome.action == "capped":
        if not as_json:
            raise LimitReached(outcome.message, hint=outcome.hint)
        return errors.LIMITED
    return errors.OK
