"""The live progress of a run: one status line, and one line per busy job."""

from __future__ import annotations

from rich.console import Console

from agentloop.output import Progress


def render(progress: Progress) -> str:
    console = Console(record=True, width=100, color_system=None)
    console.print(progress)
    return console.export_text()


def test_one_line_per_busy_job_with_its_task_attempt_and_time() -> None:
    progress = Progress()
    progress("fixing 3 tasks")
    progress.job(2, "task 3fa1 (logic_bug) attempt 2")
    progress.job(1, "task 77c0 (type_error) attempt 1")
    lines = render(progress).splitlines()
    assert "fixing 3 tasks" in lines[0]
    assert lines[1].split() == ["job", "1", "task", "77c0", "(type_error)", "attempt", "1", "0:00"]
    assert lines[2].split() == ["job", "2", "task", "3fa1", "(logic_bug)", "attempt", "2", "0:00"]
    # An idle job's line goes; markup in a task's text is shown, not interpreted.
    progress.job(2, None)
    progress.job(1, "task [bold]x[/bold] attempt 1")
    lines = render(progress).splitlines()
    assert len(lines) == 2
    assert "[bold]x[/bold]" in lines[1]
