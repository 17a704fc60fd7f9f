"""`agentloop run`'s options end to end: --dry-run, --task, --squash, --in-place, a fix that
closes another task (and one that cannot reach a third), and GITHUB_STEP_SUMMARY. Real
Claude Code CLI, scripted model, real git, real pytest; the user's checkout must come out of
every run as it went in, except where the option says otherwise."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agentloop.testing.model_server import ModelServer, Turn, offline_env
from agentloop.testing.repos import git_init, pytest_project, run_cli

from .test_run_e2e import fix, git_out, run_agentloop, schema_errors, snapshot

# ------------------------------------------------------------------ fixtures and helpers

FAST = {"agentloop.yaml": "detect:\n  flaky_reruns: 0\n"}

ADD_TEST = "tests/test_ops.py::test_add"
SHOUT_TEST = "tests/test_text.py::test_shout"

# Two independent bugs in two packages: two tasks, each fixed by its own edit.
TWO = {
    **FAST,
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "tests/test_ops.py": """\
        from calc import ops

        def test_add():
            assert ops.add(2, 3) == 5
        """,
    "text/__init__.py": "",
    "text/shout.py": "def shout(s):\n    return s.lower() + '!'\n",
    "tests/test_text.py": """\
        from text.shout import shout

        def test_shout():
            assert shout("hi") == "HI!"
        """,
}
FIX_ADD = ("calc/ops.py", "a - b", "a + b")
FIX_SHOUT = ("text/shout.py", "s.lower()", "s.upper()")


def fix_task(test_id: str, path: str, old: str, new: str) -> list[Turn]:
    """`fix`, but only in the session whose prompt names `test_id`: a scenario for several
    tasks whose turns cannot be taken by the wrong session."""
    return [
        dataclasses.replace(turn, match=dataclasses.replace(turn.match, prompt=test_id))
        for turn in fix(path, old, new)
    ]


BOTH_FIXES = [*fix_task(ADD_TEST, *FIX_ADD), *fix_task(SHOUT_TEST, *FIX_SHOUT)]


def green(files: dict[str, str]) -> dict[str, str]:
    return {
        **files,
        "calc/ops.py": files["calc/ops.py"].replace("a - b", "a + b"),
        "text/shout.py": files["text/shout.py"].replace("s.lower()", "s.upper()"),
    }


def leftovers(root: Path) -> dict[str, Any]:
    """agentloop's branches and the worktrees besides the user's own checkout."""
    return {
        "branches": git_out(root, "branch", "--list", "agentloop/*").split(),
        "worktrees": git_out(root, "worktree", "list", "--porcelain").count("worktree ") - 1,
    }


NOTHING_LEFT = {"branches": [], "worktrees": 0}


def run_plain(
    root: Path, home: Path, *args: str, turns: Sequence[Turn] = ()
) -> tuple[subprocess.CompletedProcess[str], ModelServer]:
    """`agentloop run ARGS` without --json, as a user types it, against the scripted model."""
    with ModelServer(turns) as server:
        done = run_cli(
            "run", "--repo", str(root), *args, cwd=root, home=home,
            extra_env=offline_env(home, server.base_url),
        )  # fmt: skip
    return done, server


def assert_one_error(done: subprocess.CompletedProcess[str], *needles: str) -> tuple[str, str]:
    """Exit 2, one `error:` line and one `hint:` line on stderr, no traceback; returns them."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    hints = [line for line in lines if line.startswith("hint:")]
    assert (len(errors), len(hints)) == (1, 1), done.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0], hints[0]


def detected_ids(root: Path, home: Path) -> dict[str, str]:
    """Task ids from `agentloop detect --json`, keyed by the task's first test."""
    done = run_cli("detect", "--json", cwd=root, home=home)
    assert done.returncode == 1, done.stderr
    return {t["failures"][0]["test_id"]: t["id"] for t in json.loads(done.stdout)["tasks"]}


# ------------------------------------------------------------------ 1. --dry-run


@pytest.mark.parametrize(("state", "code"), [("red", 1), ("green", 0)])
def test_dry_run_lists_the_tasks_and_asks_the_model_nothing(
    tmp_path: Path, state: str, code: int
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO if state == "red" else green(TWO)))
    before = snapshot(root)
    done, doc, server = run_agentloop(root, tmp_path / "home", BOTH_FIXES, "--dry-run")
    assert done.returncode == code, done.stderr
    assert schema_errors(doc) == []
    assert doc["dry_run"] is True
    assert server.requests == []
    tests = sorted(test for task in doc["tasks"] for test in task["tests"])
    assert tests == ([ADD_TEST, SHOUT_TEST] if state == "red" else [])
    for task in doc["tasks"]:
        assert (task["outcome"], task["reason"], task["attempts"]) == ("skipped", "dry run", [])
        assert (task["commit"], task["fixed_by"]) == (None, None)
    assert (doc["commits"], doc["branch"]) == ([], None)
    assert doc["totals"]["fixed"] == 0
    assert leftovers(root) == NOTHING_LEFT
    assert snapshot(root) == before


# ------------------------------------------------------------------ 2. --task


def test_task_tries_only_the_task_asked_for(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    home = tmp_path / "home"
    ids = detected_ids(root, home)
    assert set(ids) == {ADD_TEST, SHOUT_TEST}
    before = snapshot(root)
    # The model could fix both; only the shout task may be given to it.
    done, doc, server = run_agentloop(root, home, BOTH_FIXES, "--task", ids[SHOUT_TEST])
    assert schema_errors(doc) == []
    assert snapshot(root) == before
    (task,) = doc["tasks"]
    assert (task["id"], task["tests"], task["outcome"]) == (ids[SHOUT_TEST], [SHOUT_TEST], "fixed")
    (prompt,) = server.prompts()
    assert SHOUT_TEST in prompt
    assert ADD_TEST not in prompt
    # Every task asked for is fixed.
    assert done.returncode == 0, done.stderr
    branch = doc["branch"]
    assert doc["commits"] == [git_out(root, "rev-parse", branch).strip()]
    assert "s.upper()" in git_out(root, "show", f"{branch}:text/shout.py")
    assert git_out(root, "show", f"{branch}:calc/ops.py") == TWO["calc/ops.py"]


def test_an_unknown_task_id_is_a_usage_error(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    before = snapshot(root)
    done, server = run_plain(root, tmp_path / "home", "--task", "0123abcdef99", turns=BOTH_FIXES)
    _, hint = assert_one_error(done, "0123abcdef99")
    assert "agentloop detect" in hint, hint
    assert server.requests == []
    assert leftovers(root) == NOTHING_LEFT
    assert snapshot(root) == before


# ------------------------------------------------------------------ 3. --squash


@pytest.fixture(scope="module")
def squashed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One --squash run whose two tasks are both fixed, shared by the tests below."""
    base = tmp_path_factory.mktemp("squash")
    root = git_init(pytest_project(base / "repo", TWO))
    before = snapshot(root)
    done, doc, server = run_agentloop(root, base / "home", BOTH_FIXES, "--squash")
    assert done.returncode == 0, done.stderr
    assert snapshot(root) == before
    assert len(server.prompts()) == 2
    return root, doc


def test_squash_leaves_one_commit_listing_every_fix(
    squashed: tuple[Path, dict[str, Any]],
) -> None:
    root, doc = squashed
    assert schema_errors(doc) == []
    assert [t["outcome"] for t in doc["tasks"]] == ["fixed", "fixed"]
    branch = doc["branch"]
    assert branch.startswith("agentloop/autofix-")
    (sha,) = git_out(root, "rev-list", f"main..{branch}").split()
    assert doc["commits"] == [sha] == [git_out(root, "rev-parse", branch).strip()]
    message = git_out(root, "log", "-1", "--format=%B", sha)
    # Each fix as its own commit's subject said it: what was changed, where.
    assert "- fix add() in calc/ops.py (1 test)" in message, message
    assert "- fix shout() in text/shout.py (1 test)" in message, message
    assert "a + b" in git_out(root, "show", f"{branch}:calc/ops.py")
    assert "s.upper()" in git_out(root, "show", f"{branch}:text/shout.py")


def test_squash_points_each_task_at_the_squashed_commit(
    squashed: tuple[Path, dict[str, Any]],
) -> None:
    _, doc = squashed
    assert [t["commit"] for t in doc["tasks"]] == doc["commits"] * 2


# ------------------------------------------------------------------ 4. one fix, two tasks

# A's bug raises in calc/stats.py (level 0, so A goes first). safe_mean swallows it, so B
# fails at its own assert, elsewhere (a task of its own), and the same edit cures both.
# C is in a package that never imports calc; its test logs each time it runs.
SHARED = {
    **FAST,
    "calc/__init__.py": "",
    "calc/stats.py": """\
        def mean(values):
            return sum(values) / len(value)


        def safe_mean(values):
            try:
                return mean(values)
            except Exception:
                return None
        """,
    "tests/test_mean.py": """\
        from calc.stats import mean

        def test_mean():
            assert mean([1, 3]) == 2
        """,
    "tests/test_safe.py": """\
        from calc.stats import safe_mean

        def test_safe_mean():
            assert safe_mean([2, 4]) == 3
        """,
    "text/__init__.py": "",
    "text/base.py": "def normal(s):\n    return s.strip()\n",
    "text/shout.py": """\
        from text.base import normal

        def shout(s):
            return normal(s).lower() + "!"
        """,
    "tests/test_text.py": """\
        import os

        from text.shout import shout

        def test_shout():
            with open(os.environ["SHOUT_RUNS"], "a") as log:
                log.write("ran\\n")
            assert shout(" hi ") == "HI!"
        """,
}
MEAN_TEST = "tests/test_mean.py::test_mean"
SAFE_TEST = "tests/test_safe.py::test_safe_mean"
SHOUT_RUNS_TEST = "tests/test_text.py::test_shout"


def test_a_fix_closes_the_tasks_it_reaches_and_re_runs_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "shout-runs.log"
    monkeypatch.setenv("SHOUT_RUNS", str(runs))
    root = git_init(pytest_project(tmp_path / "repo", SHARED))
    before = snapshot(root)
    turns = [
        *fix_task(MEAN_TEST, "calc/stats.py", "len(value)", "len(values)"),
        *fix_task(SAFE_TEST, "calc/stats.py", "except Exception", "except ZeroDivisionError"),
        *fix_task(SHOUT_RUNS_TEST, "text/shout.py", ".lower()", ".upper()"),
    ]
    done, doc, server = run_agentloop(root, tmp_path / "home", turns)
    assert done.returncode == 0, done.stderr
    assert schema_errors(doc) == []
    assert snapshot(root) == before
    a, b, c = doc["tasks"]  # in the order they were taken
    assert [t["tests"] for t in (a, b, c)] == [[MEAN_TEST], [SAFE_TEST], [SHOUT_RUNS_TEST]]
    # A: fixed by its own session, in one commit.
    assert (a["outcome"], len(a["attempts"]), a["fixed_by"]) == ("fixed", 1, None)
    # B: closed by A's commit when its test passed on a re-run, with no session of its own.
    assert b["outcome"] == "fixed", b
    assert (b["fixed_by"], b["commit"], b["attempts"]) == (a["commit"], None, [])
    # C: A's change cannot reach it, so it got its own session...
    assert (c["outcome"], len(c["attempts"])) == ("fixed", 1)
    # (A and C, which share no import, may have run at once, in either order.)
    prompts = server.prompts()
    assert sorted(
        [t for t in (MEAN_TEST, SAFE_TEST, SHOUT_RUNS_TEST) if t in p] for p in prompts
    ) == [[MEAN_TEST], [SHOUT_RUNS_TEST]]
    # ... and its test was not re-run after A's fix: it ran in the baseline, after its own
    # attempt (one process for its task's tests and the tests importing its change, its
    # own file) and in the final verification, nothing more.
    assert runs.read_text() == "ran\n" * 3
    assert sorted(doc["commits"]) == sorted([a["commit"], c["commit"]])
    landed = git_out(root, "rev-list", "--reverse", f"main..{doc['branch']}").split()
    assert landed == doc["commits"]


# ------------------------------------------------------------------ 5. --in-place


def test_in_place_commits_on_a_new_branch_and_restores_the_users_branch(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", green(TWO)))
    # The user is on a branch of their own, where one test fails.
    (root / "calc" / "ops.py").write_text(TWO["calc/ops.py"])
    git_out(root, "switch", "-q", "-c", "feature")
    git_out(root, "-c", "user.name=u", "-c", "user.email=u@x.invalid", "commit", "-qam", "break")
    before = snapshot(root)
    done, doc, server = run_agentloop(root, tmp_path / "home", BOTH_FIXES, "--in-place")
    assert done.returncode == 0, done.stderr
    assert schema_errors(doc) == []
    # The user's branch is checked out again, its HEAD, index and files as they were. The
    # task's tests ran in this checkout, so pytest's own (self-ignoring) cache may appear.
    after = snapshot(root)
    after["files"] = {k: v for k, v in after["files"].items() if ".pytest_cache" not in k}
    assert after == before
    (task,) = doc["tasks"]
    assert task["outcome"] == "fixed", task
    assert len(server.prompts()) == 1
    branch = doc["branch"]
    assert branch.startswith("agentloop/autofix-")
    (sha,) = git_out(root, "rev-list", f"feature..{branch}").split()
    assert doc["commits"] == [sha]
    assert git_out(root, "rev-parse", f"{branch}^").strip() == before["head"].strip()
    assert "a + b" in git_out(root, "show", f"{branch}:calc/ops.py")
    assert git_out(root, "branch", "--list", "agentloop/*").split() == [branch]


def test_in_place_refuses_a_dirty_checkout(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    (root / "text" / "shout.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    before = snapshot(root)
    done, server = run_plain(root, tmp_path / "home", "--in-place", turns=BOTH_FIXES)
    error, hint = assert_one_error(done, "--in-place", "text/shout.py")
    assert "uncommitted" in error, error
    assert "stash" in hint or "commit" in hint, hint
    assert server.requests == []
    assert leftovers(root) == NOTHING_LEFT
    assert snapshot(root) == before


# ------------------------------------------------------------------ 6. GITHUB_STEP_SUMMARY


def test_the_markdown_report_is_appended_to_the_github_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("## an earlier step\n")
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    before = snapshot(root)
    turns = fix_task(ADD_TEST, *FIX_ADD)  # the shout task stays unfixed
    done, doc, _ = run_agentloop(
        root, tmp_path / "home", turns, "--max-attempts", "1",
        extra_env={"GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert schema_errors(doc) == []
    assert snapshot(root) == before
    assert (doc["totals"]["tasks"], doc["totals"]["fixed"]) == (2, 1)
    text = summary.read_text()
    assert text.startswith("## an earlier step\n"), text
    added = text.removeprefix("## an earlier step\n")
    assert "**1/2 fixed**" in added
    assert "| file | tests | category | attempts | outcome | approach | cost | time |" in added
    report = root / ".agentloop" / "runs" / doc["run_id"] / "report.md"
    assert added == report.read_text()


# ------------------------------------------------------------------ 7. what a run leaves


def test_a_run_leaves_its_json_and_a_bundle_another_clone_can_fetch(
    squashed: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """`agentloop pr` may run in another job, from an uploaded run directory: run.json is
    the --json document, and run.bundle carries the branch to a clone that has the base."""
    root, doc = squashed
    folder = root / ".agentloop" / "runs" / doc["run_id"]
    assert json.loads((folder / "run.json").read_text()) == doc
    assert doc["base_ref"] == "main"
    assert doc["baseline_failing"] == sorted(f"pytest::{t}" for t in (ADD_TEST, SHOUT_TEST))
    assert doc["final_failing"] == []
    for task in doc["tasks"]:
        assert re.fullmatch(r"[0-9a-f]{12}", task["fingerprint"])
        assert [s["test"] for s in task["selectors"]] == task["tests"]
        assert task["tests_diff"] == ""
    assert [t["files"] for t in doc["tasks"]] == [["calc/ops.py"], ["text/shout.py"]]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-local", str(root), str(clone)], check=True)
    subprocess.run(
        ["git", "-C", str(clone), "fetch", "-q", str(folder / "run.bundle"),
         f"refs/heads/{doc['branch']}:refs/heads/fetched"],
        check=True,
    )  # fmt: skip
    assert git_out(clone, "rev-parse", "fetched").strip() == doc["commits"][0]
    # The squashed commit names every failure it fixes, as git trailers.
    message = git_out(root, "log", "-1", "--format=%B", doc["commits"][0])
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(parsed.splitlines()) == sorted(
        f"Agentloop-Fingerprint: {t['fingerprint']}" for t in doc["tasks"]
    )
