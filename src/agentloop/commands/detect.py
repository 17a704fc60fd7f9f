"""`agentloop detect`: the failures of the test suites as grouped, ordered tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentloop import detection, errors, git, output, suites
from agentloop import session as session_mod
from agentloop.commands._project import require_tests
from agentloop.config import load_config
from agentloop.errors import ConfigError, UsageError
from agentloop.failures.reports import Format


def _root(repo: Path) -> tuple[Path, bool]:
    """The project is the directory given (a monorepo's package is a project of its own);
    whether it lies inside a git work tree only decides what later commands may do."""
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    return repo.resolve(), git.find_toplevel(repo) is not None


def detect(
    *,
    repo: Path,
    report: Path | None,
    fmt: Format | None,
    flaky_reruns: int | None,
    timeout: float | None,
    rerun_timeout: float | None,
    only: list[str],
    as_json: bool,
) -> int:
    root, is_git = _root(repo)
    if not is_git:
        output.note(f"{root} is not a git repository; detecting anyway")
    overrides: dict[str, Any] = {}
    detect_flags = {
        "flaky_reruns": flaky_reruns,
        "suite_timeout": timeout,
        "rerun_timeout": rerun_timeout,
    }
    detect_flags = {k: v for k, v in detect_flags.items() if v is not None}
    if detect_flags:
        overrides["detect"] = detect_flags
    config, _source = load_config(root, overrides=overrides)
    settings = config.detect
    with output.progress(not as_json) as progress:
        if report is not None:
            # A report stands in for running anything: re-run only when asked to.
            result = detection.detect_report(
                root,
                report,
                fmt=fmt,
                git=is_git,
                reruns=flaky_reruns or 0,
                rerun_timeout=settings.rerun_timeout,
                progress=progress,
            )
        else:
            if fmt is not None:
                raise UsageError("--format applies only to --report", hint="drop --format")
            found = suites.discover(root, config)
            if only:
                unknown = sorted(set(only) - {s.name for s in found})
                if unknown:
                    raise ConfigError(
                        f"no suite named {', '.join(unknown)}",
                        hint=f"known suites: {', '.join(s.name for s in found)}",
                    )
                found = [s for s in found if s.name in only]
            result = detection.detect(
                root,
                found,
                git=is_git,
                reruns=settings.flaky_reruns,
                rerun_timeout=settings.rerun_timeout,
                progress=progress,
            )
    require_tests(result, report=report)
    if report is None and not only:
        _record_in_session(root, result)
    if as_json:
        output.print_json(output.detection_doc(result))
    else:
        output.print_detection(result)
    return errors.FAILURES_FOUND if result.tasks else errors.OK


def _record_in_session(root: Path, result: detection.Detection) -> None:
    """Inside an /autofix session in Claude Code (whose Bash sets CLAUDE_CODE_SESSION_ID), a
    full run of the suites is that session's latest verification: the stop gate reads it.
    A run of some suites only, or of a report, verifies nothing as a whole."""
    found = session_mod.in_environment(root)
    if found is None:
        return
    failing = [
        session_mod.FailingTask(id=task.id, tests=tuple(f.test_id for f in task.failures[:10]))
        for task in result.tasks
    ]
    session_mod.record_verification(found, failing)
