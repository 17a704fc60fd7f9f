"""`agentloop init`: install agentloop's Claude Code files into a repository (the /autofix
skill, the hook scripts and their registration in .claude/settings.json, a block in
CLAUDE.md, agentloop.yaml when there is no configuration) and, with --workflows, its GitHub
Actions workflows, or take them out again."""

from __future__ import annotations

from pathlib import Path

from agentloop import output
from agentloop.commands._project import git_project
from agentloop.errors import UsageError
from agentloop.install import installer


def init(*, repo: Path, force: bool, uninstall: bool, workflows: bool, as_json: bool) -> int:
    if force and uninstall:
        raise UsageError(
            "--force cannot be combined with --uninstall",
            hint="uninstall never deletes a file you changed; run it without --force",
        )
    if workflows and uninstall:
        raise UsageError(
            "--workflows cannot be combined with --uninstall",
            hint="uninstall removes the workflows init installed with the rest; run it "
            "without --workflows",
        )
    # Outside a repository the files would be neither committed nor reviewable, and the
    # rails (which read diffs) could not work.
    root, _ = git_project(
        repo, why="agentloop init installs files to commit", hint="run `git init` there first"
    )
    report = (
        installer.uninstall(root)
        if uninstall
        else installer.install(root, force=force, workflows=workflows)
    )
    if as_json:
        output.print_json(output.init_doc(report))
    else:
        output.print_init(report)
    return report.exit_code
