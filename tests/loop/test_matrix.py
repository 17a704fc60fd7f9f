"""Scale-out on a matrix, end to end: `agentloop plan --matrix` splits the tasks, each job
runs `agentloop run --task` in a clone of its own and uploads its run directory, and
`agentloop merge-results` applies them in a third clone, verifies once and leaves one
branch (and a run directory for `agentloop pr`). Real CLI, scripted model, real git and
pytest. The merge's own rules (conflict, regression, the same fix twice) are tested on
hand-made commits below."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agentloop import git, suites
from agentloop.config import load_config
from agentloop.loop.merge import Piece, apply_pieces, merge_runs
from agentloop.testing.fake_github import FakeGitHub
from agentloop.testing.repos import git_init, pytest_project, run_cli

from .test_run_e2e import git_out, run_agentloop, schema_errors
from .test_run_options import ADD_TEST, FIX_ADD, FIX_SHOUT, SHOUT_TEST, TWO, fix_task


def clone(source: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(source), str(dest)], check=True)
    return dest


TOKEN = "ghs_MatrixToken0123456789abcdefABCDEF"


def test_plan_run_task_merge_results_yields_one_verified_branch_and_one_pr(
    tmp_path: Path,
) -> None:
    project = git_init(pytest_project(tmp_path / "project", TWO))
    # GitHub's copy: every job clones it, and the PR job pushes to it.
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(project), str(origin)], check=True)
    home = tmp_path / "home"
    planned = run_cli("plan", "--matrix", cwd=clone(origin, tmp_path / "plan-job"), home=home)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.count("\n") == 1  # one line, for $GITHUB_OUTPUT
    matrix = json.loads(planned.stdout)
    entries = matrix["include"]
    assert len(entries) == 2, matrix  # calc and text share no file: two jobs
    by_test = {}
    uploaded = []
    turns = {ADD_TEST: fix_task(ADD_TEST, *FIX_ADD), SHOUT_TEST: fix_task(SHOUT_TEST, *FIX_SHOUT)}
    for number, entry in enumerate(entries):
        job = clone(origin, tmp_path / f"job{number}")
        done, doc, _ = run_agentloop(job, home, [*turns[ADD_TEST], *turns[SHOUT_TEST]],
                                     "--task", entry["task"])  # fmt: skip
        assert done.returncode == 0, done.stderr
        ((task,),) = [doc["tasks"]]
        by_test[task["tests"][0]] = task
        uploaded.append(job / ".agentloop" / "runs" / doc["run_id"])
    assert set(by_test) == {ADD_TEST, SHOUT_TEST}
    final = clone(origin, tmp_path / "merge")
    merged = run_cli("merge-results", "--json", *map(str, uploaded), cwd=final, home=home)
    assert merged.returncode == 0, merged.stderr
    doc = json.loads(merged.stdout)
    assert schema_errors(doc) == []
    assert (doc["totals"]["fixed"], doc["totals"]["tasks"]) == (2, 2)
    assert doc["final_failing"] == []
    assert doc["regressions"] == []
    branch = doc["branch"]
    assert branch.startswith("agentloop/merge-")
    assert git_out(final, "rev-list", "--count", f"main..{branch}").strip() == "2"
    assert "a + b" in git_out(final, "show", f"{branch}:calc/ops.py")
    assert "s.upper()" in git_out(final, "show", f"{branch}:text/shout.py")
    # Each commit keeps its run's message, trailer included.
    for task in doc["tasks"]:
        assert f"Agentloop-Fingerprint: {task['fingerprint']}" in git_out(
            final, "log", "-1", "--format=%B", task["commit"]
        )
    # The merged branch is verified: the suite is green on it.
    check = subprocess.run(
        ["git", "-C", str(final), "worktree", "add", "-q", str(tmp_path / "check"), branch],
        check=True,
    )
    assert check.returncode == 0
    green = run_cli("detect", "--json", cwd=tmp_path / "check", home=home)
    assert green.returncode == 0, green.stdout
    # ...and leaves a run directory `agentloop pr` can take to another job.
    folder = final / ".agentloop" / "runs" / doc["run_id"]
    assert json.loads((folder / "run.json").read_text()) == doc
    assert (folder / "run.bundle").is_file()
    # The user's checkout is as it was.
    assert git_out(final, "status", "--porcelain").strip() == ""
    assert git_out(final, "branch", "--show-current").strip() == "main"
    # The PR job: a fresh clone, the merged run directory as its artifact, one PR.
    pr_job = clone(origin, tmp_path / "pr-job")
    artifact = tmp_path / "artifact"
    shutil.copytree(folder, artifact)
    with FakeGitHub() as github:
        github.add_repo("o/r", origin=origin)
        opened = run_cli("pr", str(artifact), "--json", cwd=pr_job, home=home, extra_env={
            "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "o/r", "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": github.api_url,
        })  # fmt: skip
        assert opened.returncode == 0, opened.stderr
        outcome = json.loads(opened.stdout)
        assert outcome["action"] == "opened"
        assert len(github.requests_to("POST", r"^/repos/o/r/pulls$")) == 1
        pull = github.pull(outcome["number"])
    assert pull["draft"] is True
    assert pull["head"]["ref"] == branch
    for task in doc["tasks"]:
        assert f"<!-- agentloop:fingerprint {task['fingerprint']} -->" in pull["body"]
    pushed = subprocess.run(
        ["git", "-C", str(origin), "rev-parse", f"refs/heads/{branch}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert pushed == git_out(final, "rev-parse", branch).strip()


def test_merge_results_refuses_runs_from_different_commits(tmp_path: Path) -> None:
    root = git_init(pytest_project(tmp_path / "repo", TWO))
    dirs = []
    for n, base in enumerate(["a" * 40, "b" * 40]):
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        doc: dict[str, Any] = {
            "$schema": "https://agentloop.dev/schemas/run-1.json",
            "base_sha": base,
            "commits": [],
            "tasks": [],
        }
        (folder / "run.json").write_text(json.dumps(doc))
        dirs.append(str(folder))
    done = run_cli("merge-results", *dirs, cwd=root, home=tmp_path / "home")
    assert done.returncode == 2, done.stderr
    assert "different commits" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ the merge's rules

CODE = {
    "agentloop.yaml": "detect:\n  flaky_reruns: 0\n",
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n",
    "tests/test_ops.py": """\
        from calc import ops

        def test_add():
            assert ops.add(2, 3) == 5

        def test_mul():
            assert ops.mul(2, 3) == 6

        def test_untouched():
            assert ops.mul(0, 0) == 0
        """,
}
ADD = ("pytest", "tests/test_ops.py::test_add")
MUL = ("pytest", "tests/test_ops.py::test_mul")


def commit_change(root: Path, base: str, path: str, old: str, new: str) -> str:
    """A commit on `base` changing `old` to `new` in `path` (objects only)."""
    work = root.parent / f"wt-{abs(hash((path, old, new)))}"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "-q", "--detach", str(work), base],
                   check=True)  # fmt: skip
    file = work / path
    file.write_text(file.read_text().replace(old, new))
    message = f"change {path}\n\nAgentloop-Fingerprint: x"
    subprocess.run(["git", "-C", str(work), "commit", "-qam", message], check=True)
    sha = git.head_sha(work)
    subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(work)], check=True)
    return sha


@pytest.fixture
def repo(tmp_path: Path, git_identity: None) -> tuple[Path, str]:
    root = git_init(pytest_project(tmp_path / "repo", CODE))
    return root, git.head_sha(root)


def merge(root: Path, base: str, pieces: list[Piece]) -> Any:
    subprocess.run(["git", "-C", str(root), "switch", "-q", "-c", "agentloop/merge-t"], check=True)
    config, _ = load_config(root)
    return merge_runs(
        root, root, "agentloop/merge-t", base, pieces,
        found=suites.discover(root, config),
        baseline_failing={ADD, MUL},
        env=git.clean_env(),
    )  # fmt: skip


def test_a_run_that_conflicts_with_an_earlier_one_is_left_out_whole(
    repo: tuple[Path, str],
) -> None:
    root, base = repo
    first = commit_change(root, base, "calc/ops.py", "a - b", "a + b")
    second = commit_change(root, base, "calc/ops.py", "a - b", "b + a + 0")
    pieces = [Piece(0, first, "one", frozenset({ADD})), Piece(1, second, "two", frozenset({ADD}))]
    tip, applied, conflicts, _ = apply_pieces(root, base, pieces)
    assert list(applied) == [0]
    assert list(conflicts) == [1]
    assert "calc/ops.py" in conflicts[1]
    assert git.message(root, tip) == "one\n"


def test_a_run_behind_a_regression_is_dropped_and_the_rest_verified(
    repo: tuple[Path, str],
) -> None:
    root, base = repo
    fix_add = commit_change(root, base, "calc/ops.py", "a - b", "a + b")
    # "Fixes" mul(2, 3), and breaks mul(0, 0), which test_untouched checks.
    bad_mul = commit_change(
        root, base, "calc/ops.py", "return a + b\n", "return a * b if a != b else 1\n"
    )
    merged = merge(root, base, [
        Piece(0, fix_add, "fix add", frozenset({ADD})),
        Piece(1, bad_mul, "fix mul", frozenset({MUL})),
    ])  # fmt: skip
    # Both apply cleanly; with both, test_untouched breaks: a regression.
    assert merged.regressions == ("pytest::tests/test_ops.py::test_untouched",)
    assert list(merged.dropped) == [1]
    assert merged.dropped[1].startswith("regressed")
    assert [i for i, _ in merged.applied] == [0]
    assert merged.final_failing == frozenset({MUL})
    # The branch's checkout follows: add's fix, not mul's.
    assert (root / "calc" / "ops.py").read_text() == CODE["calc/ops.py"].replace("a - b", "a + b")
    assert git.head_sha(root) == merged.tip


def test_the_same_fix_from_two_runs_lands_once(repo: tuple[Path, str]) -> None:
    root, base = repo
    one = commit_change(root, base, "calc/ops.py", "a - b", "a + b")
    subprocess.run(["git", "-C", str(root), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    two = commit_change(root, git.head_sha(root), "calc/ops.py", "a - b", "a + b")
    pieces = [Piece(0, one, "one", frozenset({ADD})), Piece(1, two, "two", frozenset({ADD}))]
    tip, applied, conflicts, contained = apply_pieces(root, base, pieces)
    assert list(applied) == [0]
    assert not conflicts
    assert contained == {1: tip}


def test_tasks_that_reach_the_same_code_share_one_job(tmp_path: Path) -> None:
    """add's and mul's bugs are two tasks, both in calc/ops.py: separate jobs would edit the
    same file, so the plan gives them one job, and `run --task` takes the pair."""
    root = git_init(pytest_project(tmp_path / "repo", CODE))
    done = run_cli("plan", "--json", cwd=root, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    ((group,),) = [doc["groups"]]
    assert len(group["task"].split(",")) == 2
    assert "calc/ops.py" in group["files"]
    assert doc["matrix"] == {"include": [{"task": group["task"], "title": group["title"]}]}
    dry = run_cli("run", "--dry-run", "--json", "--task", group["task"], cwd=root,
                  home=tmp_path / "home")  # fmt: skip
    assert sorted(t["fingerprint"] for t in json.loads(dry.stdout)["tasks"]) == sorted(
        group["task"].split(",")
    )
