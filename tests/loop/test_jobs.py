"""The loop engine with jobs in parallel, driven by the in-process scripted agent: real git
worktrees, real pytest runs, no model and no CLI, so the outcome, conflict, cap and budget
logic runs in seconds. (The real CLI runs `agentloop run --jobs` in test_run_jobs_e2e.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentloop import detection, suites
from agentloop.agents import sandbox
from agentloop.config import load_config
from agentloop.failures.model import Task
from agentloop.history import History
from agentloop.loop.model import RunReport
from agentloop.loop.runner import LoopSettings, autofix
from agentloop.rails.paths import DEFAULT_FORBIDDEN, ForbiddenPaths
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.repos import git_init, pytest_project, repo_state
from agentloop.workspace import Workspace

OPS = {
    "calc/__init__.py": "",
    "calc/add.py": "def add(a, b):\n    return a - b\n",
    "calc/mul.py": "def mul(a, b):\n    return a + b\n",
    "calc/sub.py": "def sub(a, b):\n    return a + b\n",
    "calc/neg.py": "def neg(a):\n    return a\n",
    "calc/labels.py": 'LABEL = "calc"\n',
    "tests/test_add.py": "from calc.add import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    "tests/test_mul.py": "from calc.mul import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
    "tests/test_sub.py": "from calc.sub import sub\n\ndef test_sub():\n    assert sub(5, 3) == 2\n",
    "tests/test_neg.py": "from calc.neg import neg\n\ndef test_neg():\n    assert neg(4) == -4\n",
}


def edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def session(cwd: Path) -> None:
        file = cwd / path
        file.write_text(file.read_text().replace(old, new))

    return session


def both(*sessions: Callable[[Path], None]) -> Callable[[Path], None]:
    def session(cwd: Path) -> None:
        for s in sessions:
            s(cwd)

    return session


FIX_ADD = edit("calc/add.py", "a - b", "a + b")
FIX_MUL = edit("calc/mul.py", "a + b", "a * b")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def run(
    root: Path,
    agent: ScriptedAgent,
    *,
    only: tuple[str, ...] = ("test_add", "test_mul"),
    history: History | None = None,
    **settings: object,
) -> tuple[RunReport, str, str]:
    """The run as `agentloop run` wires it, on the tasks whose tests are `only`: its
    report, the run's branch, and the tip's `git ls-tree`-style content of calc/."""
    with Workspace.open(root) as ws:
        config, _ = load_config(ws.root)
        found = suites.discover(ws.root, config)
        baseline = detection.detect(
            ws.root, found, git=True, reruns=0, rerun_timeout=60, progress=lambda _m: None
        )
        tasks: list[Task] = [
            t for t in baseline.tasks if any(name in t.failures[0].test_id for name in only)
        ]
        failing = {(f.suite, f.test_id) for t in baseline.tasks for f in t.failures}
        forbidden = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN, root=str(ws.path))
        report = autofix(
            ws,
            tasks,
            agent=agent,
            settings=LoopSettings(forbidden=forbidden, rerun_timeout=60, **settings),  # type: ignore[arg-type]
            found=found,
            failing=failing,
            history=history,
            policy=lambda top: sandbox.Policy(
                write=(top,), deny_write=(), deny_read=(), sandboxed=True
            ),
        )
        tip = (
            git(ws.path, "show", f"{ws.branch}:calc/add.py")
            + git(ws.path, "show", f"{ws.branch}:calc/mul.py")
            + git(ws.path, "show", f"{ws.branch}:calc/labels.py")
        )
        branch = ws.branch
    return report, branch, tip


@pytest.fixture
def root(tmp_path: Path, git_identity: None) -> Path:
    return git_init(pytest_project(tmp_path / "repo", OPS))


def worktrees(root: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git(root, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def branches(root: Path) -> list[str]:
    return git(root, "branch", "--format=%(refname:short)").split()


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_two_independent_tasks_are_fixed_at_once_and_both_land(root: Path) -> None:
    agent = ScriptedAgent(by_prompt={"test_add": [FIX_ADD], "test_mul": [FIX_MUL]}, delay_s=1.5)
    report, branch, tip = run(root, agent, jobs=2)
    assert [t.outcome for t in report.tasks] == ["fixed", "fixed"], report
    first, second = agent.calls
    # At the same time, each in a worktree of its own.
    assert overlap((first.started, first.ended), (second.started, second.ended))
    assert first.cwd != second.cwd
    # The attempts' own record shows it too (what --json prints).
    (a,), (b,) = (t.attempts for t in report.tasks)
    assert {a.job, b.job} == {1, 2}
    assert overlap(
        (a.started_s, a.started_s + a.duration_s), (b.started_s, b.started_s + b.duration_s)
    )
    # Both fixes are on the run's branch, one commit each.
    assert "a + b" in tip
    assert "a * b" in tip
    assert len(report.commits) == 2
    # Nothing is left behind but the run's branch with the fixes.
    assert worktrees(root) == [str(root)]
    assert branches(root) == [branch, "main"]


def test_a_fix_that_conflicts_with_one_landed_meanwhile_is_retried_on_top_of_it(
    root: Path,
) -> None:
    # Both first attempts also rename the label, differently: whichever lands second
    # conflicts with the first; its retry fixes only its own module.
    agent = ScriptedAgent(
        by_prompt={
            "test_add": [both(FIX_ADD, edit("calc/labels.py", '"calc"', '"add"')), FIX_ADD],
            "test_mul": [both(FIX_MUL, edit("calc/labels.py", '"calc"', '"mul"')), FIX_MUL],
        },
        delay_s=1.0,
    )
    report, _, tip = run(root, agent, jobs=2)
    assert [t.outcome for t in report.tasks] == ["fixed", "fixed"], report
    outcomes = sorted([a.outcome for a in t.attempts] for t in report.tasks)
    assert outcomes == [["conflict", "fixed"], ["fixed"]]
    retried = next(t for t in report.tasks if len(t.attempts) == 2)
    assert "calc/labels.py" in retried.attempts[0].reason
    # The retry was told why, and started from the code with the other fix.
    retry_prompt = agent.prompts[-1]
    assert "conflicts" in retry_prompt
    assert "a + b" in tip
    assert "a * b" in tip
    winner = next(t for t in report.tasks if len(t.attempts) == 1)
    label = "add" if "test_add" in winner.task.failures[0].test_id else "mul"
    assert f'LABEL = "{label}"' in tip


def test_parallel_sessions_never_reserve_more_than_the_budget(root: Path) -> None:
    # Sessions that spend their whole limit and fix nothing: only the cap stops them.
    agent = ScriptedAgent(cost_usd=1.0, delay_s=0.3)
    report, _, _ = run(
        root,
        agent,
        only=("test_add", "test_mul", "test_sub", "test_neg"),
        jobs=4,
        max_attempts=5,
        max_budget_usd=0.05,
        budget_per_attempt_usd=0.02,
    )
    limits = [c.limits.max_budget_usd or 0 for c in agent.calls]
    assert sum(limits) <= 0.05 + 1e-9, limits
    assert report.cost_usd <= 0.05 + 1e-9
    assert report.stopped_by == "max_budget"
    # They did run side by side while the money lasted.
    spans = [(c.started, c.ended) for c in agent.calls]
    assert any(overlap(x, y) for i, x in enumerate(spans) for y in spans[i + 1 :])


def test_a_task_fixed_as_a_side_effect_is_closed_without_a_session(
    tmp_path: Path, git_identity: None
) -> None:
    root = git_init(
        pytest_project(
            tmp_path / "repo",
            {
                "calc/__init__.py": "",
                "calc/core.py": "def double(x):\n    return x + x + 1\n",
                "calc/report.py": "from calc import core\n\n"
                "def total(xs):\n    return sum(core.double(x) for x in xs)\n",
                "calc/add.py": OPS["calc/add.py"],
                "calc/mul.py": OPS["calc/mul.py"],
                "calc/labels.py": OPS["calc/labels.py"],
                "tests/test_core.py": "from calc.core import double\n\n"
                "def test_double():\n    assert double(2) == 4\n",
                "tests/test_report.py": "from calc.report import total\n\n"
                "def test_total():\n    assert total([1, 2]) == 6\n",
            },
        )
    )
    agent = ScriptedAgent(
        by_prompt={"test_double": [edit("calc/core.py", "x + x + 1", "x + x")]}, delay_s=0.2
    )
    report, _, _ = run(root, agent, only=("test_double", "test_total"), jobs=2)
    by_test = {t.task.failures[0].test_id.split("::")[-1]: t for t in report.tasks}
    assert by_test["test_double"].outcome == "fixed"
    closed = by_test["test_total"]
    assert closed.outcome == "fixed"
    assert closed.attempts == ()
    assert closed.fixed_by == by_test["test_double"].commit
    assert len(agent.calls) == 1


def test_the_runtime_cap_stops_every_job_and_leaves_nothing_behind(root: Path) -> None:
    before = repo_state(root)
    agent = ScriptedAgent(by_prompt={"test_add": [FIX_ADD], "test_mul": [FIX_MUL]}, delay_s=30)
    started = time.monotonic()
    report, _, _ = run(root, agent, jobs=2, max_runtime_s=4)
    assert time.monotonic() - started < 30
    assert report.stopped_by == "max_runtime"
    assert [t.outcome for t in report.tasks] == ["unfixed", "unfixed"]
    assert all(a.outcome == "timeout" for t in report.tasks for a in t.attempts)
    assert len(agent.calls) == 2  # both were in flight together; no new one started
    assert worktrees(root) == [str(root)]
    assert branches(root) == ["main"]
    assert repo_state(root) == before
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""


def test_ctrl_c_during_parallel_work_stops_every_job_and_leaves_nothing_behind(
    root: Path,
) -> None:
    before = repo_state(root)

    def interrupt(cwd: Path) -> None:
        FIX_ADD(cwd)
        # A real ^C: a signal to the process, delivered to whichever thread.
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(5)

    agent = ScriptedAgent(by_prompt={"test_add": [interrupt]})
    slow = ScriptedAgent(by_prompt={"test_mul": [FIX_MUL]}, delay_s=60)

    class Both(ScriptedAgent):
        def run(self, prompt: str, **kw: object):  # type: ignore[no-untyped-def,override]
            return (agent if "test_add" in prompt else slow).run(prompt, **kw)  # type: ignore[arg-type]

        def cancel(self) -> None:
            agent.cancel()
            slow.cancel()

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(root, Both(), jobs=2)
    assert time.monotonic() - started < 30
    assert worktrees(root) == [str(root)]
    assert branches(root) == ["main"]
    assert repo_state(root) == before
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""


# ---------------------------------------------------------------- the tiers of verification

TIERS = {
    "calc/__init__.py": "",
    "calc/core.py": "def double(x):\n    return x + x + 1\n\n\ndef triple(x):\n    return x * 3\n",
    "calc/limits.txt": "10\n",
    "calc/add.py": OPS["calc/add.py"],
    "calc/mul.py": OPS["calc/mul.py"],
    "calc/labels.py": OPS["calc/labels.py"],
    "tests/test_core.py": "from calc.core import double\n\n"
    "def test_double():\n    assert double(2) == 4\n",
    # Imports what the bad fix changes: tier 2 runs it.
    "tests/test_user.py": "from calc.core import triple\n\n"
    "def test_triple():\n    assert triple(2) == 6\n",
    # Reads a data file, imports nothing: only the full suites at the end see it.
    "tests/test_limits.py": "from pathlib import Path\n\n"
    "def test_limit():\n"
    "    assert Path(__file__).parent.parent.joinpath('calc/limits.txt').read_text() == '10\\n'\n",
}


def test_each_tier_catches_what_the_cheaper_ones_cannot(tmp_path: Path, git_identity: None) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TIERS))
    fix_double = edit("calc/core.py", "x + x + 1", "x + x")
    agent = ScriptedAgent(
        by_prompt={
            "test_double": [
                # 1: the task's tests still fail (tier 1).
                edit("calc/core.py", "x + x + 1", "x + x + 2"),
                # 2: they pass, but a test importing calc.core breaks (tier 2).
                both(fix_double, edit("calc/core.py", "x * 3", "x * 4")),
                # 3: passes both, but breaks a test no import leads to (tier 3).
                both(fix_double, edit("calc/limits.txt", "10", "11")),
            ]
        }
    )
    report, _, _ = run(root, agent, only=("test_double",), jobs=1)
    (task,) = report.tasks
    assert [(a.outcome, a.tier) for a in task.attempts] == [
        ("tests_failed", "task"),
        ("regressed", "importers"),
        ("fixed", ""),
    ]
    assert "tests/test_user.py::test_triple" in task.attempts[1].reason
    # The full suites caught the last one: its fix was dropped.
    assert task.outcome == "regressed"
    assert report.regressions == ("pytest::tests/test_limits.py::test_limit",)
    assert report.caught == {"task": 1, "importers": 1, "full": 1}
    assert report.commits == ()


def test_the_same_fix_made_by_two_jobs_at_once_lands_once(root: Path) -> None:
    # Two tasks with one cause the import graph cannot see: each job makes the whole fix.
    whole = both(FIX_ADD, FIX_MUL)
    agent = ScriptedAgent(by_prompt={"test_add": [whole], "test_mul": [whole]}, delay_s=1.0)
    report, _, tip = run(root, agent, jobs=2)
    first, second = sorted(report.tasks, key=lambda t: t.commit is None)
    assert first.outcome == second.outcome == "fixed"
    assert first.commit is not None
    # The second has no commit of its own: the first holds its change.
    assert second.commit is None
    assert second.fixed_by == first.commit
    assert report.commits == (first.commit,)
    assert "a + b" in tip
    assert "a * b" in tip


def test_a_task_tried_before_the_fix_that_fixed_it_is_reported_fixed_by_it(
    tmp_path: Path, git_identity: None
) -> None:
    root = git_init(
        pytest_project(
            tmp_path / "repo",
            {
                **TIERS,
                "calc/core.py": "def double(x):\n    return x + x + 1\n\n\n"
                "def quad(x):\n    return double(double(x))\n",
                "tests/test_user.py": "from calc.core import quad\n\n"
                "def test_quad():\n    assert quad(1) == 4\n",
            },
        )
    )
    # Whichever task comes first misses; the second fixes their shared cause.
    agent = ScriptedAgent(
        edit("calc/core.py", "x + x + 1", "x + x + 2"), edit("calc/core.py", "x + x + 1", "x + x")
    )
    report, _, _ = run(root, agent, only=("test_double", "test_quad"), jobs=1, max_attempts=1)
    first, second = report.tasks
    assert second.outcome == "fixed"
    assert second.commit is not None
    assert first.outcome == "fixed"
    assert first.fixed_by == second.commit
    assert first.reason.startswith("its tests pass with the run's other fixes (unfixed before")
    assert len(agent.calls) == 2


def test_a_job_that_moves_the_runs_branch_is_put_back(root: Path, tmp_path: Path) -> None:
    """Outside the sandbox an agent in a job's worktree can run git plumbing on the
    run's branch, which its attempt's own check does not watch: the loop does."""

    def hostile(cwd: Path) -> None:
        FIX_ADD(cwd)
        run_branch = git(cwd, "branch", "--show-current").strip().rsplit(".job", 1)[0]
        index = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "evil-index")}
        blob = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=cwd, input="pwned\n",
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        for args in (
            ["read-tree", "HEAD"],
            ["update-index", "--add", "--cacheinfo", f"100644,{blob},evil.txt"],
        ):
            subprocess.run(["git", *args], cwd=cwd, env=index, check=True)
        tree = subprocess.run(
            ["git", "write-tree"], cwd=cwd, env=index, capture_output=True, text=True, check=True
        ).stdout.strip()
        evil = git(cwd, "commit-tree", tree, "-p", "HEAD", "-m", "evil").strip()
        git(cwd, "update-ref", f"refs/heads/{run_branch}", evil)

    agent = ScriptedAgent(by_prompt={"test_add": [hostile], "test_mul": [FIX_MUL]}, delay_s=0.5)
    with Workspace.open(root) as ws:
        config, _ = load_config(ws.root)
        found = suites.discover(ws.root, config)
        baseline = detection.detect(
            ws.root, found, git=True, reruns=0, rerun_timeout=60, progress=lambda _m: None
        )
        tasks = [
            t
            for t in baseline.tasks
            if "test_add" in t.failures[0].test_id or "test_mul" in t.failures[0].test_id
        ]
        report = autofix(
            ws,
            tasks,
            agent=agent,
            settings=LoopSettings(
                forbidden=ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN, root=str(ws.path)),
                rerun_timeout=60,
                jobs=2,
            ),
            found=found,
            failing={(f.suite, f.test_id) for t in baseline.tasks for f in t.failures},
            policy=lambda top: sandbox.Policy(
                write=(top,), deny_write=(), deny_read=(), sandboxed=False
            ),
        )
        files = git(ws.path, "ls-tree", "-r", "--name-only", ws.branch).split()
        log = git(ws.path, "log", "--format=%s", ws.branch)
    assert "evil.txt" not in files
    assert "evil" not in log.splitlines()
    assert report.fixed == 2


def test_a_job_cannot_rig_the_tests_agentloop_runs_in_the_runs_worktree(root: Path) -> None:
    """Outside the sandbox, an agent in a job's worktree can write into the run's own
    worktree, where the final verification runs: a conftest there that collects nothing
    would make every task look fixed."""

    def plant(cwd: Path) -> None:
        time.sleep(4)  # after the other job's fix has landed there
        run_worktree = cwd.parent / cwd.name.rsplit(".job", 1)[0]
        (run_worktree / "tests" / "conftest.py").write_text(
            "def pytest_collection_modifyitems(items):\n    items.clear()\n"
        )

    agent = ScriptedAgent(by_prompt={"test_add": [FIX_ADD], "test_mul": [plant]}, delay_s=0.3)
    report, _, _ = run(root, agent, jobs=2, max_attempts=1)
    by_test = {t.task.failures[0].test_id.split("::")[-1]: t for t in report.tasks}
    assert by_test["test_add"].outcome == "fixed"
    # Its session changed nothing of its own; its test still fails in the final
    # verification, which ran without the planted conftest.
    assert by_test["test_mul"].outcome == "unfixed", by_test["test_mul"]


def test_a_fix_that_undoes_another_landed_beside_it_is_dropped(
    tmp_path: Path, git_identity: None
) -> None:
    """Two fixes landed side by side each pass their own checks, but together one task's
    tests fail again: those tests failed in the baseline too, so only knowing which
    tasks are fixed tells the final verification that this is a regression."""
    root = git_init(
        pytest_project(
            tmp_path / "repo",
            {**OPS, "calc/add.py": "OFFSET = 0\n\n\ndef add(a, b):\n    return a - b + OFFSET\n"},
        )
    )

    def later_and_breaks_add(cwd: Path) -> None:
        time.sleep(2)  # lands after the add fix
        FIX_MUL(cwd)
        edit("calc/add.py", "OFFSET = 0", "OFFSET = 1")(cwd)

    agent = ScriptedAgent(
        by_prompt={"test_add": [FIX_ADD], "test_mul": [later_and_breaks_add]}, delay_s=0.2
    )
    report, _, tip = run(root, agent, jobs=2, max_attempts=1)
    by_test = {t.task.failures[0].test_id.split("::")[-1]: t for t in report.tasks}
    assert by_test["test_add"].outcome == "fixed"
    assert by_test["test_mul"].outcome == "regressed"
    assert report.regressions == ("pytest::tests/test_add.py::test_add",)
    assert "OFFSET = 0" in tip
    assert "a + b" in tip


def test_an_order_dependent_task_found_beside_the_first_fixes_joins_the_run(
    tmp_path: Path, git_identity: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agentloop run` does not wait for the baseline's order check (the suite's order
    up to a test that passed its re-runs) before its first session: the check runs in a
    checkout of its own, and the order-dependent task it finds is fixed in the same run."""
    from agentloop.commands.run import run as run_command

    root = git_init(
        pytest_project(
            tmp_path / "repo",
            {
                **OPS,
                "calc/state.py": "SEEN = []\n",
                "tests/test_a_pollute.py": "from calc import state\n\n"
                "def test_pollute():\n    state.SEEN.append(1)\n",
                "tests/test_b_victim.py": "from calc import state\n\n"
                "def test_victim():\n    assert state.SEEN == []\n",
            },
        )
    )
    agent = ScriptedAgent(
        by_prompt={
            "test_add": [FIX_ADD],
            # The polluter cleans up after itself.
            "test_victim": [
                edit(
                    "tests/test_a_pollute.py",
                    "    state.SEEN.append(1)\n",
                    "    state.SEEN.append(1)\n    state.SEEN.clear()\n",
                )
            ],
        }
    )
    code = run_command(
        repo=root, in_place=False, max_turns=None, max_attempts=1, max_runtime=None,
        max_budget_usd=None, forbid=[], task_ids=[], dry_run=False, squash=False,
        as_json=True, sandboxed=False, agent=agent, jobs=1,
    )  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    by_test = {t["tests"][0].split("::")[-1]: t for t in doc["tasks"]}
    assert set(by_test) >= {"test_add", "test_mul", "test_victim"}, doc["tasks"]
    # The baseline's tasks came first; the order-dependent one joined after.
    assert list(by_test)[-1] == "test_victim"
    assert any("test_add" in c.prompt for c in agent.calls[:-1])
    victim = by_test["test_victim"]
    assert "test_pollute" in agent.calls[-1].prompt  # the task names its polluter
    assert victim["outcome"] == "fixed", victim
    assert by_test["test_add"]["outcome"] == "fixed"
    assert code == 1  # test_mul, test_sub and test_neg had no session that fixed them


def test_one_runner_process_checks_both_the_tasks_tests_and_their_importers(
    tmp_path: Path, git_identity: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every pytest process of the run writes a line: the baseline, one process for the
    # attempt's tiers 1 and 2 together (the task's test file imports what changed), and
    # the final verification.
    log = tmp_path / "pytest-processes.log"
    monkeypatch.setenv("PYTEST_PROCESS_LOG", str(log))
    conftest = (
        "import os\n\n"
        "if os.environ.get('PYTEST_PROCESS_LOG'):\n"
        "    with open(os.environ['PYTEST_PROCESS_LOG'], 'a') as f:\n"
        "        f.write(f'{os.getpid()} {os.getcwd()}\\n')\n"
    )
    root = git_init(pytest_project(tmp_path / "repo", {**OPS, "conftest.py": conftest}))
    agent = ScriptedAgent(by_prompt={"test_add": [FIX_ADD]})
    report, _, _ = run(root, agent, only=("test_add",), jobs=1)
    assert report.fixed == 1
    assert len(log.read_text().splitlines()) == 3, log.read_text()


def test_a_test_file_the_fix_leaves_unimportable_is_the_tasks_own_failure(root: Path) -> None:
    # The fix renames the function its test imports: the file no longer imports, and no
    # test of it ran, so nothing says the task's tests pass.
    rename = both(FIX_ADD, edit("calc/add.py", "def add(", "def plus("))
    agent = ScriptedAgent(by_prompt={"test_add": [rename]})
    report, _, _ = run(root, agent, only=("test_add",), jobs=1, max_attempts=1)
    ((task,),) = (report.tasks,)
    (attempt,) = task.attempts
    assert (attempt.outcome, attempt.tier) == ("tests_failed", "task"), attempt
