"""`agentloop init`: install agentloop's Claude Code files into a repository (the /autofix
skill, the hook scripts and their registration in .claude/settings.json, a block in
CLAUDE.md, agentloop.yaml when there is no configuration), or take them out again."""

from __future__ import annotations

from pathlib import Path

from agentloop import git, output
from agentloop.errors import UsageError
from agentloop.install import installer


def _project_root(repo: Path) -> Path:
    root = repo.resolve()
    if not root.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    # Outside a repository the files would be neither committed nor reviewable, and the
    # rails (which read diffs) could not work.
    if git.find_toplevel(root) is None:
        raise UsageError(
            f"{root} is not inside a git repository",
            hint="run `git init` there first, or pass the project with --repo",
        )
    return root


def init(*, repo: Path, force: bool, uninstall: bool, as_json: bool) -> int:
    if force and uninstall:
        raise UsageError(
            "--force cannot be combined with --uninstall",
            hint="uninstall never deletes a file you changed; run it without --force",
        )
    root = _project_root(repo)
    report = installer.uninstall(root) if uninstall else installer.install(root, force=force)
    if as_json:
        output.print_json(output.init_doc(report))
    else:
        output.print_init(report)
    return report.exit_code
