"""benchmarks/autofix_bench.py: its generated repository plants exactly what it says, the
counters see every pytest process, and the serial loop it races against fixes every bug
with the real Claude Code CLI and the scripted model."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agentloop.testing.repos import agentloop_env

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_repo() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("autofix_repo")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _pytest(repo: Path, env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return {line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")}


def test_generated_suite_fails_exactly_the_planted_tests(
    bench_repo: ModuleType, tmp_path: Path
) -> None:
    config = bench_repo.Config(bugs=3, shared=3, filler=2, filler_tests=2, suite_seconds=0.3)
    repo = tmp_path / "repo"
    planted = bench_repo.generate(repo, config)
    assert len(planted.causes) == 4
    assert len(planted.causes[-1].tests) == 3  # one helper bug, three failing tests
    tools = bench_repo.tools_dir(tmp_path / "tools")
    logs = tmp_path / "logs"
    env = agentloop_env(tmp_path / "home")
    env.update(bench_repo.counting_env(tools, logs, env))

    # The flaky test fails on its first run only.
    assert _pytest(repo, env) == {*planted.failing, planted.flaky}
    assert _pytest(repo, env) == set(planted.failing)

    # Each planted fix is the whole story: with all of them the suite is green.
    for cause in planted.causes:
        path = repo / cause.path
        path.write_text(path.read_text().replace(cause.buggy, cause.fixed))
    assert _pytest(repo, env) == set()

    # One line per pytest process, outside the repository, with what it ran.
    runs = bench_repo.read_lines(logs / "pytest.jsonl")
    assert [(r["collected"], r["failed"]) for r in runs] == [
        (planted.total, len(planted.failing) + 1),
        (planted.total, len(planted.failing)),
        (planted.total, 0),
    ]
    processes = bench_repo.read_lines(logs / "cpu.jsonl")
    assert len(processes) == 3
    assert all(p["pytest"] and p["cpu"] > 0 for p in processes)
    assert not any(p.name.startswith(("sitecustomize", "autofix")) for p in repo.rglob("*"))


def test_serial_loop_fixes_every_planted_bug(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "autofix_bench.py"),
            "--only",
            "serial",
            "--bugs",
            "2",
            "--filler",
            "1",
            "--suite-seconds",
            "0.2",
            "--turn-seconds",
            "0",
            "--json",
        ],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (serial,) = json.loads(done.stdout)["results"]
    assert serial["available"], serial["note"]
    # Two bugs and the shared helper: one session of two model replies each.
    assert (serial["fixed"], serial["causes"], serial["regressions"]) == (3, 3, 0)
    assert (serial["sessions"], serial["requests"]) == (3, 6)
    # The whole suite before the first session and after each of the three edits.
    assert (serial["full_runs"], serial["targeted_runs"]) == (4, 0)
    assert serial["tool_cpu_s"] > 0


def test_aider_oracle_names_the_file_then_sends_the_fix(
    bench_repo: ModuleType, tmp_path: Path
) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        oracle_module = importlib.import_module("openai_oracle")
    finally:
        sys.path.remove(str(BENCHMARKS))
    planted = bench_repo.generate(tmp_path / "repo", bench_repo.Config(bugs=2, filler=0))
    bitcount = planted.causes[0]
    output = (
        "I ran this command:\n\npytest\n\nAnd got this output:\n\n"
        f"FAILED {planted.flaky} - ConnectionResetError\n"
        f"FAILED {bitcount.tests[0]} - assert 1 == 2\n"
    )
    oracle = oracle_module.Oracle(planted.causes, delay=0)

    def ask(*messages: tuple[str, str]) -> str:
        reply: str = oracle.answer([{"role": r, "content": c} for r, c in messages])
        return reply

    # The flaky test comes first in the output: no edit for it.
    assert "<<<<<<<" not in ask(("user", output))
    after_flaky = output.replace(f"FAILED {planted.flaky} - ConnectionResetError\n", "")
    assert ask(("user", after_flaky)) == (
        "The failure comes from quix/bitcount.py. Please add it to the chat."
    )
    added = "I added these files to the chat: quix/bitcount.py\nLet me know if there are others."
    edit = ask(("user", after_flaky), ("assistant", "…"), ("user", added))
    assert f"quix/bitcount.py\n```python\n<<<<<<< SEARCH\n{bitcount.buggy}\n=======\n" in edit
    assert f"\n{bitcount.fixed}\n>>>>>>> REPLACE\n```" in edit
    # The summarizer aider runs on the same endpoint gets prose, not an edit.
    summary = ask(
        ("system", "*Briefly* summarize this partial conversation about programming."),
        ("user", f"# USER\n{after_flaky}"),
    )
    assert "<<<<<<<" not in summary
    assert oracle.requests == 4
