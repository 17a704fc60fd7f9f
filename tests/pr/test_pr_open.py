"""`agentloop pr` (agentloop.pull_request.open_pr) against the fake GitHub API and a local
bare `origin`, from a real run's run.json and run.bundle."""

from __future__ import annotations

import datetime
import json
import re
import subprocess

import pytest

from agentloop.config import load_config
from agentloop.errors import ServiceError, UsageError
from agentloop.pull_request import Plan, PrOptions, PrOutcome, open_pr
from agentloop.testing.repos import run_git

from .conftest import TOKEN, World

ENV = {"GITHUB_TOKEN": TOKEN}


def yes(_plan: Plan, _what: str) -> bool:
    return True


def open_it(world: World, **options: object) -> PrOutcome:
    config, _ = load_config(world.root)
    settings = PrOptions(repo="o/r", api_url=world.fake.api_url, **options)  # type: ignore[arg-type]
    return open_pr(
        world.root, world.run_dir, settings,
        config=config, confirm=yes, client=world.client, environ=ENV,
    )  # fmt: skip


def posts(world: World, path: str) -> list[object]:
    return [r.json for r in world.fake.requests_to("POST", path)]


def assert_never_merged(world: World) -> None:
    for request in world.fake.requests:
        assert not re.search(r"merge|graphql", request.path, re.IGNORECASE), request.path
        assert request.method not in ("PUT", "PATCH"), request.path
        assert "auto_merge" not in repr(request.json)


def test_a_draft_pr_with_label_codeowners_and_the_evidence(world: World) -> None:
    run = world.run
    (fixed, unfixed) = sorted(run["tasks"], key=lambda t: t["outcome"] != "fixed")
    outcome = open_it(world)

    assert outcome.action == "opened"
    assert outcome.pushed
    # What was verified is what was pushed.
    assert world.remote_sha(run["branch"]) == run["commits"][-1] == fixed["commit"]
    pull = world.fake.pull(outcome.number)
    assert pull["draft"] is True
    assert pull["base"]["ref"] == "main"
    assert pull["head"]["ref"] == run["branch"]
    assert pull["title"] == "fix: ops.add() and test_ops.test_add_zero() (logic bug)"
    # The label did not exist: it was created, then added.
    assert [label["name"] for label in pull["labels"]] == ["auto-fix"]
    assert posts(world, r"/repos/o/r/labels")[0]["name"] == "auto-fix"  # type: ignore[index]
    # CODEOWNERS of the touched files (calc/ops.py, tests/test_ops.py), minus the author
    # agentloop-bot and the team of another organisation.
    assert [u["login"] for u in pull["requested_reviewers"]] == ["alice", "fallback"]
    assert [t["slug"] for t in pull["requested_teams"]] == ["calc-team"]
    assert outcome.reviewers == ("alice", "fallback", "team:calc-team")

    body = pull["body"]
    assert f"**Base:** `{run['base_sha']}` (`main`)" in body
    assert f"**Fix commit:** `{fixed['commit']}`" in body
    [selector] = fixed["selectors"]
    assert selector["test"] == "tests/test_ops.py::test_add"
    assert f"tests/test_ops.py::test_add\n    $ {selector['selector']}\n" in body
    assert "Red on base: **2**. Red after the fixes: **1**." in body
    assert "No regressions" in body
    assert "Red before, not blamed on this PR (1)" in body
    assert "```text\npytest::tests/test_mul.py::test_mul\n```" in body
    assert "**Attempts:** 2 (1 rejected, below) · **cost** $0.02" in body
    assert "**Files touched:** `calc/ops.py`, `tests/test_ops.py`" in body
    # The test the fix added, said plainly, with the diff.
    assert "**Tests changed: YES.**" in body
    assert "```diff\ndiff --git a/tests/test_ops.py b/tests/test_ops.py" in body
    assert "+def test_add_zero():" in body
    # The rejected attempt, and why, in a fenced block.
    assert "**Attempt 1:** `tests_failed`, caught by the task's own tests" in body
    assert "```text\nthe task's tests still failed: E       assert 6 == 5\n```" in body
    assert f"Task `{unfixed['id']}`: logic bug at `tests/test_mul.py:5`, `unfixed`" in body
    assert body.endswith(f"<!-- agentloop:fingerprint {fixed['fingerprint']} -->\n")
    assert f"Opened by agentloop {run['agentloop_version']}, run {run['run_id']}. " in body
    assert "Never merged by agentloop: review and merge it yourself." in body
    assert_never_merged(world)


def test_config_reviewers_replace_codeowners_and_ready_opens_no_draft(world: World) -> None:
    (world.root / "agentloop.yaml").write_text(
        "rails: {allow_test_edits: true}\ngithub: {reviewers: [bob, 'team:core']}\n"
    )
    outcome = open_it(world, reviewers=("@carol",), ready=True)

    pull = world.fake.pull(outcome.number)
    assert pull["draft"] is False
    assert [u["login"] for u in pull["requested_reviewers"]] == ["bob", "carol"]
    assert [t["slug"] for t in pull["requested_teams"]] == ["core"]


def test_a_second_pr_for_the_same_failure_comments_on_the_open_one(world: World) -> None:
    first = open_it(world)
    second = open_it(world)

    assert second.action == "commented"
    assert second.number == first.number
    assert len(posts(world, r"/repos/o/r/pulls")) == 1
    [comment] = posts(world, rf"/repos/o/r/issues/{first.number}/comments")
    text = comment["body"]  # type: ignore[index]
    assert f"#{first.number} already carries the same fingerprints" in text
    assert "**Tests changed: YES.**" in text
    assert second.url is not None
    assert "#issuecomment-" in second.url


def test_a_commit_on_the_base_branch_that_covers_the_failure_opens_nothing(
    world: World, tmp_path: object
) -> None:
    fingerprint = next(t["fingerprint"] for t in world.run["tasks"] if t["outcome"] == "fixed")
    # Someone fixed it on main since the run's base, with agentloop's trailer.
    run_git(world.root, "switch", "-q", "main")
    (world.root / "calc" / "ops.py").write_text("def add(a, b):\n    return b + a\n")
    run_git(world.root, "commit", "-qam", f"fix add\n\nAgentloop-Fingerprint: {fingerprint}\n")
    covering = run_git(world.root, "rev-parse", "HEAD").strip()
    run_git(world.root, "push", "-q", "origin", "main")

    outcome = open_it(world)

    assert outcome.action == "covered"
    assert outcome.covered_by == (covering,)
    assert covering[:12] in outcome.message
    assert world.remote_sha(world.run["branch"]) is None
    assert not posts(world, r"/repos/o/r/pulls")


def test_at_the_daily_cap_nothing_is_pushed(world: World) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    for hours in (1, 5, 10, 20, 23):
        world.fake.open_pull(
            f"agentloop/old-{hours}",
            labels=["auto-fix"],
            created_at=now - datetime.timedelta(hours=hours),
        )
    outcome = open_it(world)

    assert outcome.action == "capped"
    assert "5 auto-fix PR(s)" in outcome.message
    assert world.remote_sha(world.run["branch"]) is None
    assert not posts(world, r"/repos/o/r/pulls")


def test_older_prs_and_other_labels_do_not_count_against_the_cap(world: World) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    for hours in (1, 2, 3, 4):
        world.fake.open_pull(
            f"a/{hours}", labels=["auto-fix"], created_at=now - datetime.timedelta(hours=hours)
        )
    world.fake.open_pull(
        "b/old", labels=["auto-fix"], created_at=now - datetime.timedelta(hours=25)
    )
    world.fake.open_pull("b/other", labels=["bug"], created_at=now)

    assert open_it(world).action == "opened"


def test_a_403_after_the_push_keeps_both_branches_and_says_how_to_finish(world: World) -> None:
    branch = world.run["branch"]
    world.fake.fail(
        "POST", r"/repos/o/r/pulls", 403, {"message": "Resource not accessible by integration"}
    )

    with pytest.raises(ServiceError) as caught:
        open_it(world)

    error = caught.value
    assert error.exit_code == 4
    assert "\n" not in error.message
    assert f"(after the push: {branch} is on origin)" in error.message
    assert f"/o/r/compare/main...{branch}" in (error.hint or "")
    assert "agentloop pr" in (error.hint or "")
    assert world.remote_sha(branch) == world.run["commits"][-1]
    assert run_git(world.root, "rev-parse", branch).strip() == world.run["commits"][-1]

    # Run again: it opens the PR, nothing pushed twice.
    again = open_it(world)
    assert (again.action, again.pushed) == ("opened", False)


def test_a_rate_limit_is_one_clear_error_and_nothing_is_pushed(world: World) -> None:
    reset = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) + 1800
    limited = {"message": "API rate limit exceeded for installation ID 1."}
    world.fake.fail(
        "GET", r"/repos/o/r/pulls", 403, limited,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, times=None,
    )  # fmt: skip

    with pytest.raises(ServiceError) as caught:
        open_it(world)

    assert caught.value.exit_code == 4
    assert "rate limit" in caught.value.message
    assert "\n" not in caught.value.message
    assert world.remote_sha(world.run["branch"]) is None
    assert run_git(world.root, "rev-parse", world.run["branch"]).strip() == world.run["commits"][-1]


def test_a_remote_branch_with_commits_not_ours_is_never_overwritten(world: World) -> None:
    branch = world.run["branch"]
    run_git(world.root, "push", "-q", "origin", f"main:refs/heads/{branch}")
    someone = subprocess.run(
        ["git", "commit-tree", "-p", "main", "-m", "theirs", "main^{tree}"],
        cwd=world.origin, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    run_git(world.origin, "update-ref", f"refs/heads/{branch}", someone)

    with pytest.raises(ServiceError) as caught:
        open_it(world)

    assert "has commits that" in caught.value.message
    assert world.remote_sha(branch) == someone
    assert not posts(world, r"/repos/o/r/pulls")


def test_a_moved_run_branch_is_not_pushed(world: World) -> None:
    branch = world.run["branch"]
    run_git(world.root, "branch", "-f", branch, world.run["base_sha"])
    with pytest.raises(UsageError, match="agentloop pushes only what it verified"):
        open_it(world)
    assert world.remote_sha(branch) is None


def test_a_branch_that_changes_a_forbidden_path_is_not_pushed(world: World) -> None:
    """The PR job holds the write token and takes its artifact from a job an agent worked
    in: it judges the branch's paths again itself, whatever the run.json says."""
    branch = world.run["branch"]
    tip = world.run["commits"][-1]
    run_git(world.root, "worktree", "add", "-q", str(world.root.parent / "sneak"), branch)
    sneak = world.root.parent / "sneak"
    (sneak / "auth").mkdir()
    (sneak / "auth" / "login.py").write_text("ALLOW_ALL = True\n")
    run_git(sneak, "add", "auth/login.py")
    run_git(sneak, "commit", "-qm", "fix: totally unrelated")
    moved = run_git(sneak, "rev-parse", "HEAD").strip()
    run_git(world.root, "worktree", "remove", "--force", str(sneak))
    # The run.json is edited to match, as a hostile job could have written it.
    doc = world.run
    doc["commits"] = [*doc["commits"][:-1], moved]
    (world.run_dir / "run.json").write_text(json.dumps(doc))
    assert tip != moved
    with pytest.raises(UsageError, match=r"changes forbidden paths: auth/login\.py"):
        open_it(world)
    assert world.remote_sha(branch) is None
    assert not posts(world, r"/repos/o/r/pulls")


def test_only_agentloops_own_branches_are_pushed(world: World) -> None:
    doc = world.run
    run_git(world.root, "branch", "-q", "release", doc["branch"])
    doc["branch"] = "release"
    (world.run_dir / "run.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="not a branch agentloop makes: 'release'"):
        open_it(world)
    assert world.remote_sha("release") is None
