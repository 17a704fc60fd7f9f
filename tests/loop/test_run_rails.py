"""`agentloop run` end to end, the rails: a fix that breaks another test, a forbidden path
(with the guard hook on, and off), a fix that weakens the tests, attempts that never fix
the task, and the ledger a run leaves. Real Claude Code CLI, scripted model, real git, real
pytest; the user's checkout must come out of every run byte for byte as it went in."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentloop import detection, suites
from agentloop.agents.base import Agent, Guard, SessionLimits, SessionResult
from agentloop.agents.claude import ClaudeCodeAgent
from agentloop.agents.sandbox import Policy
from agentloop.config import load_config
from agentloop.history import History, ledger_path
from agentloop.loop.runner import AutofixLoop, LoopSettings
from agentloop.rails.paths import ForbiddenPaths
from agentloop.testing.model_server import ModelServer, offline_env
from agentloop.testing.repos import agentloop_env, git_init, pytest_project, run_cli
from agentloop.workspace import Places, Workspace

from .test_run_e2e import CALC, fix, git_out, run_agentloop, snapshot

# ------------------------------------------------------------------ helpers


def agentloop_leftovers(root: Path, run_id: str) -> dict[str, Any]:
    """What a run could leave in the user's repository besides its commits: branches,
    worktrees, and a rescued patch (written when the run's worktree was dirty at the end,
    i.e. when a rejected change was not reverted)."""
    places = Places.of(root / ".git")
    return {
        "branches": git_out(root, "branch", "--list", "agentloop/*").split(),
        "worktrees": git_out(root, "worktree", "list", "--porcelain").count("worktree "),
        "rescued": (places.rescued / f"{run_id}.patch").exists(),
    }


def earlier_attempts(prompt: str) -> str:
    """The prompt's note on earlier attempts ("" when it has none)."""
    head = "## Earlier attempts at this task"
    if head not in prompt:
        return ""
    return prompt.split(head, 1)[1].split("\n## ", 1)[0]


NOTHING_LEFT = {"branches": [], "worktrees": 1, "rescued": False}


def every_branch_has(root: Path, path: str, content: str) -> None:
    refs = git_out(root, "for-each-ref", "--format=%(refname)", "refs/heads").split()
    assert refs, "no branches at all"
    for ref in refs:
        assert git_out(root, "show", f"{ref}:{path}") == content, ref


# ------------------------------------------------------------------ 1. regressions

SHARED = {
    "calc/__init__.py": "",
    "calc/config.py": "FACTOR = 2\n",
    "calc/ops.py": """\
        from calc.config import FACTOR

        def double(x):
            return x * FACTOR

        def triple(x):
            return x * FACTOR
        """,
    "tests/test_triple.py": """\
        from calc import ops

        def test_triple():
            assert ops.triple(2) == 6
        """,
    "tests/test_double.py": """\
        from calc import ops

        def test_double():
            assert ops.double(2) == 4
        """,
}


def test_a_fix_that_breaks_a_test_importing_it_is_rejected_before_it_lands(
    tmp_path: Path,
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", SHARED))
    before = snapshot(root)
    # Makes test_triple pass by changing the constant test_double relies on; test_double
    # imports calc.ops, which imports calc.config: tier 2 runs it after the attempt.
    turns = fix("calc/config.py", "FACTOR = 2", "FACTOR = 3")
    done, doc, _ = run_agentloop(root, tmp_path / "home", turns, "--max-attempts", "1")
    assert snapshot(root) == before
    assert done.returncode == 1, done.stderr
    (task,) = doc["tasks"]
    assert task["tests"] == ["tests/test_triple.py::test_triple"]
    assert task["outcome"] == "unfixed", task
    (attempt,) = task["attempts"]
    assert (attempt["outcome"], attempt["tier"]) == ("regressed", "importers"), attempt
    assert "tests/test_double.py::test_double" in attempt["reason"]
    # It never landed, so the full suites had nothing to revert.
    assert doc["regressions"] == []
    assert doc["caught"] == {"task": 0, "importers": 1, "full": 0}
    assert doc["commits"] == []
    assert doc["branch"] is None
    assert agentloop_leftovers(root, doc["run_id"]) == NOTHING_LEFT


# The constant lives in a data file: no import leads from a test to it, so only the full
# suites at the end can see what changing it breaks.
SHARED_DATA = {
    **SHARED,
    "calc/factor.txt": "2\n",
    "calc/config.py": """\
        from pathlib import Path

        FACTOR = int(Path(__file__).with_name("factor.txt").read_text())
        """,
}


def test_a_fix_that_breaks_another_test_is_reverted_and_reported_regressed(
    tmp_path: Path,
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", SHARED_DATA))
    before = snapshot(root)
    turns = fix("calc/factor.txt", "2", "3")
    done, doc, _ = run_agentloop(root, tmp_path / "home", turns, "--max-attempts", "1")
    assert snapshot(root) == before
    assert done.returncode == 1, done.stderr
    (task,) = doc["tasks"]
    assert task["tests"] == ["tests/test_triple.py::test_triple"]
    assert task["outcome"] == "regressed", task
    assert task["reason"], task
    (regression,) = doc["regressions"]
    assert regression.endswith("tests/test_double.py::test_double"), regression
    assert doc["caught"] == {"task": 0, "importers": 0, "full": 1}
    assert doc["commits"] == []
    assert doc["branch"] is None
    assert doc["totals"]["fixed"] == 0
    with History.open(ledger_path(root)) as history:
        (record,) = history.ledger().tasks
    assert (record.outcome, record.verified) == ("regressed", True)
    # "When no fix survives, the branch and worktree are removed."
    assert agentloop_leftovers(root, doc["run_id"]) == NOTHING_LEFT


# ------------------------------------------------------------------ 2. forbidden paths

TOKEN = "def make_token(user):\n    return user[::-1]\n"
AUTH = {
    "auth/__init__.py": "",
    "auth/token.py": TOKEN,
    "tests/test_token.py": """\
        from auth.token import make_token

        def test_make_token():
            assert make_token("bob") == "token-bob"
        """,
}
EDIT_TOKEN = fix("auth/token.py", "user[::-1]", 'f"token-{user}"')


def test_the_guard_hook_denies_an_edit_of_a_forbidden_path(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", AUTH))
    before = snapshot(root)
    done, doc, server = run_agentloop(root, tmp_path / "home", EDIT_TOKEN, "--max-attempts", "1")
    assert snapshot(root) == before
    assert done.returncode == 1, done.stderr
    # The model saw its Edit refused before anything was written: by the permission rules
    # agentloop gives the session (Claude Code checks them before any hook), else by the
    # guard.
    denied = [
        r
        for r in server.tool_results()
        if "forbidden path" in r.content or "denied by your permission settings" in r.content
    ]
    assert denied, server.tool_results()
    assert all(r.is_error for r in denied)
    (task,) = doc["tasks"]
    assert task["outcome"] == "unfixed", task
    (attempt,) = task["attempts"]
    assert attempt["changed"] == []
    assert attempt["outcome"] != "fixed"
    assert (doc["commits"], doc["branch"]) == ([], None)
    every_branch_has(root, "auth/token.py", TOKEN)
    assert agentloop_leftovers(root, doc["run_id"]) == NOTHING_LEFT


def test_a_denied_forbidden_edit_is_named_in_the_report_and_the_next_prompt(
    tmp_path: Path,
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", AUTH))
    before = snapshot(root)
    done, doc, server = run_agentloop(root, tmp_path / "home", EDIT_TOKEN, "--max-attempts", "2")
    assert snapshot(root) == before
    assert done.returncode == 1, done.stderr
    (task,) = doc["tasks"]
    first = task["attempts"][0]
    assert first["agent_outcome"] == "denied", first
    # The user and the next attempt learn what was refused, not the model's "Fixed.".
    assert "auth/token.py" in first["reason"], first["reason"]
    assert "forbidden" in first["reason"], first["reason"]
    _, second = server.prompts()
    assert "auth/token.py" in earlier_attempts(second), second


class _Watching:
    """The real agent, plus a look at the forbidden file right after each session: proof
    that the edit landed on disk before agentloop's own check saw it."""

    def __init__(self, inner: Agent, path: str) -> None:
        self.inner, self.path = inner, path
        self.seen: list[str] = []

    def run(
        self,
        prompt: str,
        *,
        cwd: Path,
        limits: SessionLimits,
        env: Mapping[str, str],
        policy: Policy | None = None,
        guard: Guard | None = None,
    ) -> SessionResult:
        result = self.inner.run(prompt, cwd=cwd, limits=limits, env=env, policy=policy)
        self.seen.append((cwd / self.path).read_text())
        return result

    def cancel(self) -> None:
        self.inner.cancel()


def test_with_the_hook_off_the_diff_check_rejects_and_reverts_a_forbidden_edit(
    tmp_path: Path,
) -> None:
    """The CLI cannot switch the guard off, so the loop is wired here as commands/run.py
    wires it, with a ClaudeCodeAgent that has no guard."""
    root = git_init(pytest_project(tmp_path / "repo", AUTH))
    home = tmp_path / "home"
    before = snapshot(root)
    agent = _Watching(ClaudeCodeAgent(), "auth/token.py")
    with ModelServer(EDIT_TOKEN) as server, Workspace.open(root) as ws:
        config, _ = load_config(ws.root)
        found = suites.discover(ws.root, config)
        baseline = detection.detect(
            ws.root, found, git=True, reruns=0, rerun_timeout=60, progress=lambda _m: None
        )
        (task,) = baseline.tasks
        loop = AutofixLoop.in_workspace(
            ws,
            agent=agent,
            settings=LoopSettings(
                max_attempts=1, forbidden=ForbiddenPaths(root=str(ws.path)), rerun_timeout=60
            ),
            base_env={**agentloop_env(home), **offline_env(home, server.base_url)},
            history=None,
        )
        (report,), stopped_by = loop.fix([task])
        # Checked inside the run's worktree, before it goes away.
        after = (ws.path / "auth" / "token.py").read_text()
        status = git_out(ws.path, "status", "--porcelain", "--untracked-files=all")
        commits = ws.commits()
        branch = ws.branch
    # Without the hook the edit went through...
    assert agent.seen == ['def make_token(user):\n    return f"token-{user}"\n']
    assert not any("forbidden path" in r.content for r in server.tool_results())
    # ... and agentloop's diff check caught it, and put everything back.
    assert stopped_by is None
    assert report.outcome == "unfixed"
    (attempt,) = report.attempts
    assert attempt.outcome == "rejected_forbidden_path", attempt
    assert attempt.changed == ("auth/token.py",)
    assert "auth/token.py" in attempt.reason
    assert "forbidden path" in report.suggestion
    assert report.commit is None
    assert after == TOKEN
    assert status == ""
    assert commits == []
    assert snapshot(root) == before
    assert git_out(root, "branch", "--list", branch) == ""
    every_branch_has(root, "auth/token.py", TOKEN)


# ------------------------------------------------------------------ 3. test integrity

CALC_WITH_PYTEST = {
    **CALC,
    "tests/test_ops.py": """\
        import pytest

        from calc import ops

        def test_add():
            assert ops.add(2, 3) == 5

        def test_add_zero():
            assert ops.add(4, 0) == 4
        """,
}
WEAKENINGS = {
    "delete": (
        "def test_add():\n    assert ops.add(2, 3) == 5\n\n",
        "",
        "test deleted",
    ),
    "skip": ("def test_add():", "@pytest.mark.skip\ndef test_add():", "skip"),
    "loosen": ("assert ops.add(2, 3) == 5", "assert ops.add(2, 3)", "assert ops.add(2, 3) == 5"),
}


@pytest.mark.parametrize("how", sorted(WEAKENINGS))
def test_a_fix_that_weakens_the_failing_test_is_rejected(tmp_path: Path, how: str) -> None:
    old, new, why = WEAKENINGS[how]
    root = git_init(pytest_project(tmp_path / "repo", CALC_WITH_PYTEST))
    before = snapshot(root)
    turns = fix("tests/test_ops.py", old, new)
    done, doc, server = run_agentloop(root, tmp_path / "home", turns, "--max-attempts", "1")
    assert snapshot(root) == before
    assert done.returncode == 1, done.stderr
    # The edit itself went through (tests are not forbidden paths)...
    edits = [r for r in server.tool_results() if "tests/test_ops.py" in r.content]
    assert edits, server.tool_results()
    assert not any(r.is_error for r in edits), edits
    # ... and agentloop rejected it by reading the diff.
    (task,) = doc["tasks"]
    assert task["outcome"] == "unfixed", task
    (attempt,) = task["attempts"]
    assert attempt["outcome"] == "rejected_integrity", attempt
    assert attempt["changed"] == ["tests/test_ops.py"]
    assert why in attempt["reason"], attempt["reason"]
    assert task["suggestion"], task
    assert (doc["commits"], doc["branch"]) == ([], None)
    every_branch_has(root, "tests/test_ops.py", (root / "tests" / "test_ops.py").read_text())
    assert agentloop_leftovers(root, doc["run_id"]) == NOTHING_LEFT


# ------------------------------------------------------------------ 4. attempts


# Three wrong fixes that fail three different ways, so no two leave the same fingerprint.
WRONG_FIXES: Sequence[tuple[str, str]] = (
    ("a * b", "assert 6 == 5"),
    ("a + str(b)", "TypeError"),
    ("a / 0", "ZeroDivisionError"),
)


def test_three_failed_attempts_end_unfixed_and_each_note_reaches_the_next_prompt(
    tmp_path: Path,
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", CALC))
    before = snapshot(root)
    turns = [t for new, _ in WRONG_FIXES for t in fix("calc/ops.py", "a - b", new)]
    done, doc, server = run_agentloop(root, tmp_path / "home", turns)
    assert snapshot(root) == before
    assert done.returncode == 1, done.stderr
    (task,) = doc["tasks"]
    assert task["outcome"] == "unfixed", task
    assert [a["outcome"] for a in task["attempts"]] == ["tests_failed"] * 3, task["attempts"]
    for attempt, (_, error) in zip(task["attempts"], WRONG_FIXES, strict=True):
        assert attempt["changed"] == ["calc/ops.py"]
        assert error in attempt["reason"], attempt["reason"]
    assert task["reason"] == "3 attempts failed"
    assert task["suggestion"]
    assert (doc["commits"], doc["branch"]) == ([], None)
    assert agentloop_leftovers(root, doc["run_id"]) == NOTHING_LEFT

    first, second, third = server.prompts()
    assert earlier_attempts(first) == ""
    note = earlier_attempts(second)
    assert "Attempt 1 changed calc/ops.py" in note, second
    assert "assert 6 == 5" in note
    assert "Attempt 2" not in note
    note = earlier_attempts(third)
    for needle in (
        "Attempt 1 changed calc/ops.py",
        "assert 6 == 5",
        "Attempt 2 changed calc/ops.py",
        "TypeError",
    ):
        assert needle in note, third

    # The ledger has the run, its three attempts and how the task ended.
    with History.open(ledger_path(root)) as history:
        ledger = history.ledger()
    (run,) = ledger.runs
    assert (run.run_id, run.status) == (doc["run_id"], "completed")
    assert [(a.attempt_no, a.outcome) for a in ledger.attempts] == [
        (1, "tests_failed"),
        (2, "tests_failed"),
        (3, "tests_failed"),
    ]
    (record,) = ledger.tasks
    assert (record.task_id, record.outcome) == (task["id"], "unfixed")
    assert record.reason == "3 attempts failed"


def test_two_attempts_leaving_the_same_failure_end_the_task_early(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", CALC))
    before = snapshot(root)
    # Different edits, the same failure: add(2, 3) == 6 both times.
    turns = [*fix("calc/ops.py", "a - b", "a * b"), *fix("calc/ops.py", "a - b", "b * a")]
    done, doc, server = run_agentloop(root, tmp_path / "home", turns)
    assert snapshot(root) == before
    assert done.returncode == 1, done.stderr
    (task,) = doc["tasks"]
    assert task["outcome"] == "unfixed", task
    assert [a["outcome"] for a in task["attempts"]] == ["tests_failed", "no_progress"]
    assert "no progress" in task["reason"], task
    assert len(server.prompts()) == 2
    assert (doc["commits"], doc["branch"]) == ([], None)
    assert agentloop_leftovers(root, doc["run_id"]) == NOTHING_LEFT


# ------------------------------------------------------------------ 5. the ledger


def test_a_run_is_recorded_in_the_ledger_and_shown_by_stats(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", CALC))
    home = tmp_path / "home"
    before = snapshot(root)
    done, doc, _ = run_agentloop(root, home, fix("calc/ops.py", "a - b", "a + b"))
    assert done.returncode == 0, done.stderr
    assert snapshot(root) == before
    (task,) = doc["tasks"]
    assert task["outcome"] == "fixed"

    assert (root / ".agentloop" / "history.db").is_file()
    with History.open(ledger_path(root)) as history:
        ledger = history.ledger()
    (run,) = ledger.runs
    assert run.run_id == doc["run_id"]
    assert run.branch == doc["branch"]
    assert run.status == "completed"
    assert run.finished_at is not None
    assert (run.tasks_total, run.tasks_fixed) == (1, 1)
    (attempt,) = ledger.attempts
    assert (attempt.run_id, attempt.task_id) == (doc["run_id"], task["id"])
    assert (attempt.attempt_no, attempt.outcome) == (1, "fixed")
    assert attempt.cost_usd > 0
    (record,) = ledger.tasks
    assert (record.task_id, record.outcome, record.verified) == (task["id"], "fixed", True)

    stats = run_cli("stats", "--json", "--repo", str(root), cwd=root, home=home)
    assert stats.returncode == 0, stats.stderr
    report = json.loads(stats.stdout)
    overall = report["overall"]
    assert (overall["runs"], overall["tasks"], overall["fixed"]) == (1, 1, 1)
    assert overall["attempts"] == 1
    assert overall["fix_rate"] == 1.0
    assert overall["attempts_per_fix"] == 1.0
    (by_run,) = report["by_run"]
    assert by_run["run_id"] == doc["run_id"]
    assert by_run["status"] == "completed"
    assert [c["category"] for c in report["by_category"]] == [task["category"]]
