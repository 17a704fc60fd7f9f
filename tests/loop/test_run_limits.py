"""`agentloop run` at its limits, end to end: the real CLI (`python -m agentloop run --json`),
the real Claude Code CLI bundled in claude-agent-sdk against the scripted model server,
real git and real pytest. Every test also checks that the user's checkout is unchanged.

The limits: `max_turns`, `max_runtime` (the run ends within 10 s of the cap), the run's
budget, an API-error result, SIGINT (exit 130, then `agentloop clean`), and the
editable-install trap of a src-layout project.

Scenarios that several tests look at run once, in a module-scoped fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentloop.agents.claude import bundled_cli
from agentloop.agents.processes import MARK_VARIABLE
from agentloop.history import History, ledger_path
from agentloop.testing.model_server import (
    CWD,
    OVERLOADED,
    Match,
    ModelServer,
    Text,
    ToolUse,
    Turn,
    offline_env,
)
from agentloop.testing.repos import (
    SRC_LAYOUT_PYPROJECT,
    agentloop_env,
    editable_install,
    git_init,
    process_alive,
    pytest_project,
    run_cli,
    write_tree,
)

from .test_run_e2e import CALC, fix, git_out, snapshot

pytestmark = pytest.mark.skipif(
    not bundled_cli().is_file(), reason="claude-agent-sdk's bundled Claude Code CLI is absent"
)

TURN_COST = 0.0044  # one scripted turn's default usage, priced by CLI 2.1.330 (tests/agents)

# These tests are about the loop's limits, not flaky detection: no single-test re-runs in
# the baseline (the default 2 cost about a second per failing test and run).
NO_RERUNS = {"agentloop.yaml": "detect:\n  flaky_reruns: 0\n"}
ONE_BUG = {**CALC, **NO_RERUNS}
# Two failures that are two tasks: different modules, different crash locations.
TWO_BUGS = {
    **ONE_BUG,
    "calc/text.py": "def shout(s):\n    return s.lower()\n",
    "tests/test_text.py": """\
        from calc import text

        def test_shout():
            assert text.shout("hi") == "HI"
        """,
}


def bash(command: str) -> ToolUse:
    return ToolUse("Bash", {"command": command, "description": "run it"})


def forever(command: str = "echo hi") -> Turn:
    """A model that never stops calling tools."""
    return Turn([bash(command)], repeat=True)


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Run:
    done: subprocess.CompletedProcess[str]
    doc: dict[str, Any]
    server: ModelServer
    wall_s: float  # the whole command, from start to exit


def cli_env(home: Path, base_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**agentloop_env(home), **offline_env(home, base_url), **(extra or {})}


def run_json(
    root: Path,
    home: Path,
    turns: Sequence[Turn],
    *args: str,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> Run:
    """`python -m agentloop run --json --repo root ARGS` against a scripted model."""
    with ModelServer(turns) as server:
        start = time.monotonic()
        done = run_cli(
            "run", "--json", "--repo", str(root), *args, cwd=root, home=home,
            extra_env={**offline_env(home, server.base_url), **(extra_env or {})},
            timeout=timeout,
        )  # fmt: skip
        wall = time.monotonic() - start
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return Run(done, doc, server, wall)


def agentloop_branches(root: Path) -> list[str]:
    listed = git_out(root, "branch", "--list", "agentloop/autofix-*", "--format=%(refname:short)")
    return listed.splitlines()


def worktrees(root: Path) -> list[str]:
    listed = git_out(root, "worktree", "list", "--porcelain").splitlines()
    return [line.split(" ", 1)[1] for line in listed if line.startswith("worktree ")]


def cached_worktrees(home: Path) -> list[Path]:
    """Whatever is left in agentloop's worktree directory (XDG_CACHE_HOME of the run)."""
    base = home / ".cache" / "agentloop" / "worktrees"
    return [run for repo in base.iterdir() for run in repo.iterdir()] if base.is_dir() else []


def rescued(root: Path) -> list[Path]:
    """Patches of uncommitted work the workspace saved when it removed a dirty worktree."""
    folder = root / ".git" / "agentloop" / "rescued"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def assert_no_leftovers(root: Path, home: Path) -> None:
    assert worktrees(root) == [str(root)]
    assert cached_worktrees(home) == []
    assert agentloop_branches(root) == []


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def live_processes(home: Path, *, marked_only: bool = False) -> list[int]:
    """Live processes started with HOME=home (agentloop, the Claude Code CLI, what its Bash
    tool ran, the test runs), or with `marked_only` just the agent sessions' (they carry
    agentloop's session mark, agents/processes.py). Zombies count as dead."""
    home_entry = f"HOME={home}".encode()
    mark = f"{MARK_VARIABLE}=".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        environ = _environ(int(entry.name))
        if home_entry not in environ:
            continue
        if marked_only and not any(e.startswith(mark) for e in environ):
            continue
        if process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def with_token(token: str) -> list[int]:
    """Live processes whose command line carries `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until_gone(pids: Sequence[int], timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if process_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if process_alive(p)]
    return alive


def slow_after_a_partial_edit(token: str) -> list[Turn]:
    """A model that edits calc/ops.py (wrongly), starts a background job carrying `token`
    (the Bash tool runs it in a session of its own), then takes a minute to answer."""
    ops = f"{CWD}/calc/ops.py"
    background = f"python3 -c 'import time; time.sleep(300)' {token} >/dev/null 2>&1 &"
    return [
        Turn([ToolUse("Read", {"file_path": ops})], match=Match(assistant_turns=0)),
        Turn(
            [
                ToolUse("Edit", {"file_path": ops, "old_string": "a - b", "new_string": "a * b"}),
                bash(background),
            ],
            match=Match(assistant_turns=1),
        ),
        Turn([Text("still thinking")], match=Match(assistant_turns=2), delay_s=60),
    ]


# ---------------------------------------------------------------- max_turns


def test_a_model_that_never_stops_calling_tools_hits_max_turns(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", ONE_BUG))
    before = snapshot(root)
    run = run_json(root, tmp_path / "home", [forever()], "--max-turns", "3", "--max-attempts", "1")

    assert run.done.returncode == 1, run.done.stderr
    assert snapshot(root) == before
    (task,) = run.doc["tasks"]
    assert task["outcome"] == "unfixed", task
    (attempt,) = task["attempts"]
    assert attempt["outcome"] == "max_turns"
    assert attempt["agent_outcome"] == "max_turns"
    # (The CLI's own num_turns says 4 here: it counts the turn it refused to start.)
    assert attempt["cost_usd"] == pytest.approx(3 * TURN_COST)
    assert run.doc["stopped_by"] is None
    assert run.doc["branch"] is None
    assert run.doc["commits"] == []
    # Three model turns, each running the tool; then the CLI stopped asking.
    assert len(run.server.messages_requests()) == 3
    assert [r.content for r in run.server.tool_results()] == ["hi", "hi"]
    assert_no_leftovers(root, tmp_path / "home")


# ---------------------------------------------------------------- max_runtime

RUNTIME_CAP_S = 8


@pytest.fixture(scope="module")
def runtime_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of a slow model (60 s per answer) under `--max-runtime 8`, shared by the
    tests below. The loop's clock starts after the baseline (runner.AutofixLoop is made
    after detect), so the whole command may also take the baseline's time: `agentloop
    detect` on the same project measures exactly that part (start-up, discovery, the
    suite) and is the allowance."""
    tmp = tmp_path_factory.mktemp("runtime")
    home = tmp / "home"
    root = git_init(pytest_project(tmp / "repo", TWO_BUGS))
    (root / "notes.txt").write_text("my notes\n")
    before = snapshot(root)
    # On a clone, so that nothing detect writes (it works in place) lands in the checkout.
    probe = tmp / "probe"
    subprocess.run(["git", "clone", "-q", str(root), str(probe)], check=True)
    start = time.monotonic()
    detect = run_cli("detect", "--json", "--repo", str(probe), cwd=probe, home=home, timeout=120)
    baseline_s = time.monotonic() - start
    assert detect.returncode == 1, detect.stderr
    token = f"leftover-{uuid.uuid4().hex}"
    run = run_json(
        root,
        home,
        slow_after_a_partial_edit(token),
        "--max-runtime",
        str(RUNTIME_CAP_S),
        # One job: the second task is the one the cap keeps from starting.
        "--jobs",
        "1",
        timeout=RUNTIME_CAP_S + 120,
    )
    return {
        "run": run,
        "root": root,
        "home": home,
        "before": before,
        "baseline_s": baseline_s,
        "token": token,
        # Right after the command returned: nothing the session started may outlive it.
        "sessions": live_processes(home, marked_only=True),
        "background": with_token(token),
    }


def test_a_slow_model_hits_max_runtime_and_the_run_ends_within_10s_of_the_cap(
    runtime_run: dict[str, Any],
) -> None:
    run: Run = runtime_run["run"]
    root: Path = runtime_run["root"]
    assert run.done.returncode == 1, run.done.stderr
    assert snapshot(root) == runtime_run["before"]
    assert run.doc["stopped_by"] == "max_runtime"
    # The loop's own clock (from the end of the baseline to the report): at the cap, and
    # within 10 s of it.
    assert RUNTIME_CAP_S <= run.doc["totals"]["duration_s"] < RUNTIME_CAP_S + 10
    # The whole command: the cap, 10 s, and the baseline measured by `agentloop detect`.
    assert run.wall_s < RUNTIME_CAP_S + 10 + runtime_run["baseline_s"], (
        run.wall_s,
        runtime_run["baseline_s"],
    )
    # The session did make its partial change before the cap...
    edited = [r for r in run.server.tool_results() if "updated successfully" in r.content]
    assert len(edited) == 1, run.server.tool_results()
    # ...and it was discarded by the loop: no commit, no branch, no worktree, and nothing
    # dirty was left for the workspace to rescue.
    assert run.doc["commits"] == []
    assert run.doc["branch"] is None
    assert rescued(root) == []
    assert_no_leftovers(root, runtime_run["home"])
    # The task after the cap was never started.
    assert len(run.server.prompts()) == 1
    assert run.doc["tasks"][1]["outcome"] == "skipped"
    assert run.doc["tasks"][1]["attempts"] == []
    # No process of the session (the CLI, its background job) outlived the run.
    assert runtime_run["sessions"] == []
    assert runtime_run["background"] == []
    assert live_processes(runtime_run["home"]) == []


def test_the_task_in_hand_at_max_runtime_is_unfixed_with_its_timed_out_attempt(
    runtime_run: dict[str, Any],
) -> None:
    first = runtime_run["run"].doc["tasks"][0]
    assert first["outcome"] == "unfixed", first
    assert first["reason"] == "max_runtime reached"
    (attempt,) = first["attempts"]
    assert attempt["outcome"] == "timeout"
    assert attempt["agent_outcome"] == "timeout"
    assert attempt["changed"] == ["calc/ops.py"]


# ---------------------------------------------------------------- the run's budget

BUDGET_USD = 0.01


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two failing tasks, `--max-budget-usd 0.01`, and a model that never stops. Each turn
    costs $0.0044, so the first session's own budget ($0.01, what is left of the run's)
    ends it after its third turn ($0.0132 >= $0.01): the run's budget is then spent before
    the first task's second attempt, deterministically."""
    tmp = tmp_path_factory.mktemp("budget")
    root = git_init(pytest_project(tmp / "repo", TWO_BUGS))
    (root / "notes.txt").write_text("my notes\n")
    before = snapshot(root)
    # One job: which task the budget lets start is then the first (test_jobs.py has the
    # budget across parallel jobs).
    run = run_json(
        root, tmp / "home", [forever()], "--max-budget-usd", str(BUDGET_USD), "--max-turns", "10",
        "--jobs", "1",
    )  # fmt: skip
    return {"run": run, "root": root, "home": tmp / "home", "before": before}


def test_a_run_over_budget_stops_and_skips_the_remaining_tasks(budget_run: dict[str, Any]) -> None:
    run: Run = budget_run["run"]
    root: Path = budget_run["root"]
    assert run.done.returncode == 1, run.done.stderr
    assert snapshot(root) == budget_run["before"]
    assert len(run.doc["tasks"]) == 2
    assert run.doc["stopped_by"] == "max_budget"
    assert run.doc["totals"]["cost_usd"] == pytest.approx(3 * TURN_COST)
    assert run.doc["totals"]["cost_usd"] >= BUDGET_USD
    assert run.doc["totals"]["fixed"] == 0
    second = run.doc["tasks"][1]
    assert second["outcome"] == "skipped"
    assert second["reason"] == "max_budget reached"
    assert second["attempts"] == []
    # One session only, stopped by its budget after three turns.
    assert len(run.server.prompts()) == 1
    assert len(run.server.messages_requests()) == 3
    assert run.doc["branch"] is None
    assert_no_leftovers(root, budget_run["home"])


def test_the_task_in_hand_at_the_budget_is_unfixed_with_its_budget_attempt(
    budget_run: dict[str, Any],
) -> None:
    first = budget_run["run"].doc["tasks"][0]
    assert first["outcome"] == "unfixed", first
    assert first["reason"] == "max_budget reached"
    (attempt,) = first["attempts"]
    assert attempt["outcome"] == "budget"
    assert attempt["agent_outcome"] == "budget"
    assert attempt["cost_usd"] == pytest.approx(3 * TURN_COST)
    # The ledger agrees with the report.
    with History.open(ledger_path(budget_run["root"])) as history:
        ledger = history.ledger()
    assert [a.outcome for a in ledger.attempts] == ["budget"]
    assert {t.task_id: t.outcome for t in ledger.tasks}[first["id"]] == "unfixed"


# ---------------------------------------------------------------- API errors


def test_an_api_error_result_is_a_failed_attempt_not_a_fix(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", ONE_BUG))
    before = snapshot(root)
    run = run_json(root, tmp_path / "home", [Turn(error=OVERLOADED)], "--max-attempts", "1")

    assert run.done.returncode == 1, run.done.stderr
    assert snapshot(root) == before
    (task,) = run.doc["tasks"]
    assert task["outcome"] == "unfixed", task
    (attempt,) = task["attempts"]
    assert attempt["outcome"] == "agent_error"
    assert attempt["agent_outcome"] == "api_error"
    assert "api_error" in attempt["reason"]
    assert "529" in attempt["reason"]
    assert run.doc["commits"] == []
    assert run.doc["branch"] is None
    assert len(run.server.messages_requests()) == 1  # CLAUDE_CODE_MAX_RETRIES=0
    assert_no_leftovers(root, tmp_path / "home")


def test_an_api_error_after_a_passing_edit_is_still_not_a_fix(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", ONE_BUG))
    before = snapshot(root)
    # The model reads and fixes the file, then the API fails: the result says subtype
    # "success" with is_error. The session did not finish what it was asked.
    read, edit, _ = fix("calc/ops.py", "a - b", "a + b")
    turns = [read, edit, Turn(error=OVERLOADED, match=Match(assistant_turns=2))]
    run = run_json(root, tmp_path / "home", turns, "--max-attempts", "1")

    assert snapshot(root) == before
    (task,) = run.doc["tasks"]
    (attempt,) = task["attempts"]
    assert attempt["agent_outcome"] == "api_error"
    assert attempt["outcome"] == "agent_error", attempt
    assert task["outcome"] == "unfixed"
    assert run.doc["commits"] == []
    assert agentloop_branches(root) == []
    assert run.done.returncode == 1


# ---------------------------------------------------------------- SIGINT


@pytest.fixture(scope="module", params=["pid", "group"])
def sigint_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """`agentloop run` interrupted in the middle of an attempt: the model has made a partial
    edit, started a background job, and is slow to answer. "pid" is `kill -INT` of the
    agentloop process alone (what the brief asks for; CI runners cancel jobs this way),
    "group" is ^C in a terminal: the whole foreground process group, the Claude Code CLI
    and its tools included."""
    how: str = request.param
    tmp = tmp_path_factory.mktemp(f"sigint-{how}")
    root = git_init(pytest_project(tmp / "repo", ONE_BUG))
    home = tmp / "home"
    (root / "tests" / "test_ok.py").write_text("def test_ok():\n    assert 1 == 1\n")
    (root / "notes.txt").write_text("my notes\n")
    before = snapshot(root)
    token = f"leftover-{uuid.uuid4().hex}"
    with ModelServer(slow_after_a_partial_edit(token)) as server:
        child = subprocess.Popen(
            # --no-sandbox: in the sandbox a background job dies with the command that
            # started it (bubblewrap's pid namespace); without one it outlives the command,
            # which is what agentloop's own kill of the session's processes is for.
            [
                sys.executable,
                "-m",
                "agentloop",
                "run",
                "--json",
                "--no-sandbox",
                "--repo",
                str(root),
            ],
            cwd=root,
            env=cli_env(home, server.base_url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=how == "group",
        )
        try:
            # In the attempt: the edit is made and the slow answer is in flight.
            deadline = time.monotonic() + 60
            while len(server.messages_requests()) < 3 and child.poll() is None:
                assert time.monotonic() < deadline, "the model was never asked a third time"
                time.sleep(0.05)
            assert child.poll() is None, child.communicate()
            background = with_token(token)
            sent = time.monotonic()
            if how == "group":
                os.killpg(child.pid, signal.SIGINT)
            else:
                child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=30)
            exited_after = time.monotonic() - sent
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    return {
        "how": how,
        "root": root,
        "home": home,
        "before": before,
        "token": token,
        "background": background,
        "returncode": child.returncode,
        "stdout": out,
        "stderr": err,
        "exited_after": exited_after,
    }


def test_sigint_during_an_attempt_exits_130_and_clean_removes_the_leftovers(
    sigint_run: dict[str, Any],
) -> None:
    root: Path = sigint_run["root"]
    home: Path = sigint_run["home"]
    assert sigint_run["background"], "the background job never started"
    assert sigint_run["returncode"] == 130, (sigint_run["stdout"], sigint_run["stderr"])
    # ^C in a terminal ends the run at once. `kill -INT` of agentloop alone takes 5 s more:
    # the SDK gives the (still running) CLI that long to exit after stdin closes before it
    # sends SIGTERM, and agentloop kills the session's processes only after that.
    assert sigint_run["exited_after"] < (3 if sigint_run["how"] == "group" else 10)
    assert snapshot(root) == sigint_run["before"]
    with History.open(ledger_path(root)) as history:
        (recorded,) = history.ledger().runs
    assert recorded.status == "interrupted"

    clean = run_cli("clean", "--json", "--repo", str(root), cwd=root, home=home, timeout=60)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["errors"] == []
    assert_no_leftovers(root, home)
    assert snapshot(root) == sigint_run["before"]
    # Nothing of the run is alive: not the CLI, not the background job it started.
    assert wait_until_gone(live_processes(home)) == []
    assert wait_until_gone(with_token(sigint_run["token"])) == []


def test_an_interrupted_json_run_still_prints_a_json_document(sigint_run: dict[str, Any]) -> None:
    doc = json.loads(sigint_run["stdout"])
    assert doc["error"]["exit_code"] == 130
    assert doc["error"]["message"] == "interrupted"


# ---------------------------------------------------------------- the editable-install trap

PYTEST_SRC_LAYOUT_PYPROJECT = (
    SRC_LAYOUT_PYPROJECT
    + """
[tool.pytest.ini_options]
testpaths = ["tests"]
"""
)

BUGGY_MOD = """\
def add(a, b):
    return a - b


def sub(a, b):
    return a + (-b)
"""


def editable_project(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A src-layout project installed with `pip install -e .` into a venv of its own, and
    the environment that makes that venv the active one (first on PATH, VIRTUAL_ENV).
    No network: pip and hatchling come from agentloop's environment for the install step;
    the venv sees pytest through a .pth file, as if it were installed there."""
    pytest.importorskip("hatchling", reason="the offline build backend")
    root = git_init(
        write_tree(
            tmp / "tiny",
            {
                "pyproject.toml": PYTEST_SRC_LAYOUT_PYPROJECT,
                **NO_RERUNS,
                "src/tinypkg/__init__.py": "",
                "src/tinypkg/mod.py": BUGGY_MOD,
                "tests/test_mod.py": """\
                    import tinypkg
                    from tinypkg import mod

                    def test_add():
                        print("imported", tinypkg.__file__)
                        assert mod.add(2, 3) == 5

                    def test_sub():
                        assert mod.sub(5, 3) == 2
                    """,
            },
        )
    )
    venv = tmp / "venv"
    python = editable_install(root, venv, site_packages_for=["pytest"])
    # The trap is set: the venv's python imports the checkout's copy from anywhere.
    where = subprocess.run(
        [python, "-c", "import tinypkg.mod; print(tinypkg.mod.__file__)"],
        cwd=tmp,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where == str(root / "src" / "tinypkg" / "mod.py")
    active = {
        "VIRTUAL_ENV": str(venv),
        "PATH": os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")]),
    }
    return root, active


def test_an_editable_installed_src_layout_project_is_fixed_in_its_worktree(
    tmp_path: Path,
) -> None:
    root, active = editable_project(tmp_path)
    before = snapshot(root)
    turns = fix("src/tinypkg/mod.py", "return a - b", "return a + b")
    run = run_json(root, tmp_path / "home", turns, "--max-attempts", "1", extra_env=active)

    assert run.done.returncode == 0, (run.doc, run.done.stderr)
    assert snapshot(root) == before
    (task,) = run.doc["tasks"]
    assert task["tests"] == ["tests/test_mod.py::test_add"]
    # Only possible if the selector imported the worktree's copy: the checkout still has
    # the bug, and the venv's python imports the checkout's copy by default.
    assert task["outcome"] == "fixed", task
    assert "return a - b" in (root / "src" / "tinypkg" / "mod.py").read_text()
    branch = run.doc["branch"]
    assert "return a + b" in git_out(root, "show", f"{branch}:src/tinypkg/mod.py")
    python = Path(active["VIRTUAL_ENV"]) / "bin" / "python"
    still = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_mod.py::test_add"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert still.returncode == 1, still.stdout
    assert snapshot(root) == before


def test_a_regression_in_an_editable_installed_project_is_caught(
    tmp_path: Path,
) -> None:
    root, active = editable_project(tmp_path)
    before = snapshot(root)
    # Fixes add, and breaks sub on the way: test_add passes, test_sub (green in the
    # baseline) fails, in the worktree's copy.
    old = "return a - b\n\n\ndef sub(a, b):\n    return a + (-b)"
    new = "return a + b\n\n\ndef sub(a, b):\n    return a + b"
    turns = fix("src/tinypkg/mod.py", old, new)
    run = run_json(root, tmp_path / "home", turns, "--max-attempts", "1", extra_env=active)

    assert snapshot(root) == before
    (task,) = run.doc["tasks"]
    # Its own test passed; test_sub, in a file importing the changed module, failed in the
    # worktree's copy (the checkout's editable install would have hidden it): tier 2.
    (attempt,) = task["attempts"]
    assert (attempt["outcome"], attempt["tier"]) == ("regressed", "importers"), attempt
    assert "tests/test_mod.py::test_sub" in attempt["reason"]
    assert task["outcome"] == "unfixed", task
    assert run.done.returncode == 1
