"""`agentloop parallel-build`: a feature built as streams in parallel worktrees.

Built so far: the front door. `--manifest FILE --plan-only` reads the manifest, validates
it against the repository and the rails (build/validate.py) and prints the plan: the
streams in waves that run at once, what each owns, the contracts. Writing the manifest
from a request (DECOMPOSE) and running it (EXECUTE, INTEGRATE, COMMIT) are not built yet:
asking for them is a usage error that says so, not a pretend run.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentloop import errors, output
from agentloop.build import manifest as manifest_mod
from agentloop.build import validate
from agentloop.commands._project import git_project
from agentloop.config import load_config
from agentloop.errors import ConfigError, UsageError
from agentloop.rails.paths import ForbiddenPaths

_TRY = "use --manifest build.yaml with --plan-only to check a manifest you wrote"


def parallel_build(
    *,
    repo: Path,
    request: str | None,
    manifest: Path | None,
    plan_only: bool,
    jobs: int | None,
    as_json: bool,
) -> int:
    if manifest is None:
        if request:
            raise UsageError(
                "not built yet: writing the manifest from a feature request (a coordinator "
                "session that decomposes it) is not part of agentloop yet",
                hint=_TRY,
            )
        raise UsageError(
            "give a feature request or --manifest FILE",
            hint="agentloop parallel-build --manifest build.yaml --plan-only (see `agentloop "
            "parallel-build --help`)",
        )
    if request:
        raise UsageError(
            "give a feature request or --manifest FILE, not both: the manifest holds its request",
            hint="edit `request:` in the manifest, or drop the request argument",
        )
    root, top = git_project(
        repo,
        why="parallel-build checks the streams' owned paths against the repository's files",
    )
    config, _ = load_config(root)
    try:
        forbidden = ForbiddenPaths.with_protected(config.rails.forbidden_paths, root=str(top))
    except ValueError as exc:
        raise ConfigError(str(exc), hint="fix the pattern in rails.forbidden_paths") from None
    source = str(manifest)
    plan = manifest_mod.load(manifest, source=source)
    validate.check(plan, top=top, forbidden=forbidden, source=source)
    if not plan_only:
        raise UsageError(
            f"not built yet: {source} is valid, but running a parallel build (streams in "
            "worktrees, integration, one commit) is not part of agentloop yet",
            hint=f"use --manifest {source} with --plan-only to print its plan",
        )
    width = jobs or config.run.jobs or default_jobs()
    waves = validate.waves(plan)
    if as_json:
        output.print_json(output.build_plan_doc(plan, waves, jobs=width, source=source))
    else:
        output.print_build_plan(plan, waves, jobs=width, source=source)
    return errors.OK


def default_jobs() -> int:
    """min(4, CPU count), as `agentloop run` (each stream runs a session and its tests)."""
    return max(1, min(4, os.cpu_count() or 1))
