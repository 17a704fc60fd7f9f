"""benchmarks/parallel_build_bench.py: its repository and manifest make a build whose
streams' tests fail until each stream is written, its script writes each of them, and
`agentloop parallel-build` builds all four from them, the dependents at once, into a commit
the benchmark scores green. The in-process agent stands for the CLI here; the benchmark
itself runs the real one."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from agentloop.commands.parallel_build import parallel_build
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.model_server import ToolUse

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("parallel_build_bench")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _failing(repo: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf"],
        cwd=repo,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return {line.split()[1].split("/")[0] for line in done.stdout.splitlines()
            if line.startswith("FAILED ")}  # fmt: skip


def _scripted_edit(bench: ModuleType, stream_id: str) -> Callable[[Path], None]:
    """What the scripted model's Edit does to `stream_id`'s module, in process."""
    (edit,) = (
        block
        for turn in bench.script(0)
        if turn.match.prompt == bench.key(stream_id)
        for block in turn.blocks
        if isinstance(block, ToolUse) and block.name == "Edit"
    )

    def session(cwd: Path) -> None:
        path = Path(edit.input["file_path"].replace(bench.CWD, str(cwd)))
        text = path.read_text()
        assert edit.input["old_string"] in text
        path.write_text(text.replace(edit.input["old_string"], edit.input["new_string"]))

    return session


def test_the_build_runs_the_dependents_at_once_and_its_row_reads_the_json(
    bench: ModuleType, tmp_path: Path, git_identity: None, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = bench.generate(tmp_path / "repo")
    # Every stream has work to do: its folder's test fails until it is written.
    assert _failing(repo) == {s.folder for s in bench.STREAMS}
    agent = ScriptedAgent(
        by_prompt={bench.key(s.id): [_scripted_edit(bench, s.id)] for s in bench.STREAMS},
        delay_s=0.2,
    )

    code = parallel_build(repo=repo, request=None, manifest=repo / "build.yaml",
                          plan_only=False, jobs=4, as_json=True, agent=agent)  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0, out
    row = bench.outcome("jobs4", json.loads(out), wall=9.0, requests=16, repo=repo,
                        scratch=tmp_path / "result")  # fmt: skip
    assert (row.built, row.streams, row.green) == (4, 4, True)
    contracts = row.stream_s["contracts"]
    others = [row.stream_s[s.id] for s in bench.STREAMS if s.id != "contracts"]
    # The three dependents start once the contracts are merged, and overlap.
    assert all(start >= contracts[1] for start, _ in others)
    assert max(start for start, _ in others) < min(end for _, end in others)
    assert row.stream_sum_s > row.build_s - contracts[1]
    assert "--jobs 4" in bench.table([row], 0.2)


def test_the_ideal_ratio_is_the_contracts_then_the_slowest_dependent(bench: ModuleType) -> None:
    times = {"contracts": (0.0, 2.0), "api": (2.0, 6.0), "invoices": (6.0, 8.0), "web": (8, 11)}
    # (2 + max(4, 2, 3)) / (2 + 4 + 2 + 3)
    assert bench.ideal_ratio(times) == pytest.approx(6 / 11)
