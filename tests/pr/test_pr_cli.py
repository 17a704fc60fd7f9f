"""`python -m agentloop pr` as a user and a CI job run it: the wiring, the exit codes, the
--json document, the approval rule, and where the token goes (and does not)."""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import agentloop
from agentloop.testing.git_http import GitHttpServer
from agentloop.testing.repos import agentloop_env, repo_state, run_cli, run_git
from agentloop.testing.tui import Terminal

from .conftest import TOKEN, World

SCHEMA = json.loads((Path(agentloop.__file__).parent / "schemas" / "pr.schema.json").read_text())
# Neither a terminal nor CI (the suite itself may run in CI).
NOT_CI = {"CI": "", "GITHUB_ACTIONS": "", "GITHUB_TOKEN": TOKEN}


def pr(
    world: World, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "pr", "--repo", "o/r", "--api-url", world.fake.api_url, *args,
        cwd=cwd or world.root, home=world.root.parent / "home", timeout=120,
        extra_env={**NOT_CI, **(env or {})},
    )  # fmt: skip


def schema_errors(doc: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator

    return [e.message for e in Draft202012Validator(SCHEMA).iter_errors(doc)]


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith(("error:", "hint:"))]


def test_a_fresh_checkout_opens_the_pr_from_the_uploaded_run_directory(
    world: World, tmp_path: Path
) -> None:
    # The PR job: a clone without the run's branch, and the run directory as an artifact.
    fresh = tmp_path / "fresh"
    run_git(tmp_path, "clone", "-q", str(world.origin), str(fresh))
    artifact = tmp_path / "artifact"
    shutil.copytree(world.run_dir, artifact)
    branch = world.run["branch"]
    assert run_git(fresh, "branch", "--list", branch) == ""

    done = pr(world, str(artifact), "--yes", "--json", cwd=fresh)

    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert schema_errors(doc) == []
    assert doc["action"] == "opened"
    assert doc["pushed"] is True
    assert doc["branch"] == branch
    assert doc["number"] == 1
    assert doc["url"] == f"{world.fake.url}/o/r/pull/1"
    assert run_git(fresh, "rev-parse", branch).strip() == world.run["commits"][-1]
    assert world.remote_sha(branch) == world.run["commits"][-1]
    assert world.fake.pull(1)["draft"] is True


def test_without_a_terminal_ci_or_yes_it_asks_for_approval_and_pushes_nothing(
    world: World,
) -> None:
    done = pr(world)

    assert done.returncode == 2
    error, hint = error_lines(done)
    assert error.startswith("error: not a terminal, and not CI: agentloop pr will not push")
    assert "--yes" in hint
    assert world.remote_sha(world.run["branch"]) is None

    # In CI the PR's review is the approval.
    assert pr(world, env={"GITHUB_ACTIONS": "true"}).returncode == 0
    assert world.remote_sha(world.run["branch"]) == world.run["commits"][-1]


def test_the_daily_cap_exits_5_and_pushes_nothing(world: World) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    for n in range(5):
        world.fake.open_pull(
            f"agentloop/earlier-{n}",
            labels=["auto-fix"],
            created_at=now - datetime.timedelta(hours=n),
        )

    done = pr(world, "--yes")
    as_json = pr(world, "--yes", "--json")

    assert done.returncode == 5
    error, hint = error_lines(done)
    assert error.startswith("error: daily cap reached: 5 auto-fix PR(s) opened in o/r")
    assert "github.daily_pr_cap" in hint
    assert as_json.returncode == 5
    doc = json.loads(as_json.stdout)
    assert (doc["action"], doc["pushed"]) == ("capped", False)
    assert schema_errors(doc) == []
    assert world.remote_sha(world.run["branch"]) is None
    assert not world.fake.requests_to("POST", r"/repos/o/r/pulls")


def test_a_403_is_one_line_exit_4_and_the_branch_survives_on_both_sides(world: World) -> None:
    branch = world.run["branch"]
    world.fake.fail("POST", r"/repos/o/r/pulls", 403, {"message": "Resource not accessible"})

    done = pr(world, "--yes")

    assert done.returncode == 4, done.stderr
    error, hint = error_lines(done)
    assert f"(after the push: {branch} is on origin)" in error
    assert "pull-requests: write" in hint
    assert run_git(world.root, "rev-parse", branch).strip() == world.run["commits"][-1]
    assert world.remote_sha(branch) == world.run["commits"][-1]


def test_a_rate_limit_is_one_line_exit_4(world: World) -> None:
    reset = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) + 600
    world.fake.fail(
        "GET", r"/repos/o/r/pulls", 403, {"message": "API rate limit exceeded"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, times=None,
    )  # fmt: skip

    done = pr(world, "--yes", "--json")

    assert done.returncode == 4
    doc = json.loads(done.stdout)
    assert "rate limit" in doc["error"]["message"]
    assert doc["error"]["exit_code"] == 4
    assert world.remote_sha(world.run["branch"]) is None
    assert run_git(world.root, "rev-parse", world.run["branch"]).strip() == world.run["commits"][-1]


def test_a_dry_run_prints_the_pr_and_touches_nothing(world: World) -> None:
    before = repo_state(world.root)

    done = pr(world, "--dry-run")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# fix: ops.add() and test_ops.test_add_zero() (logic bug)\n")
    assert "<!-- agentloop:fingerprint " in done.stdout
    assert "would push 1 commit(s)" in done.stderr
    assert repo_state(world.root) == before
    assert world.fake.requests == []


def test_a_run_that_fixed_nothing_has_nothing_to_open(world: World) -> None:
    doc = world.run
    for task in doc["tasks"]:
        task.update(outcome="unfixed", commit=None)
    doc.update(branch=None, commits=[])
    (world.run_dir / "run.json").write_text(json.dumps(doc))

    done = pr(world, "--yes")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"run {doc['run_id']} fixed nothing: nothing to open"
    assert world.fake.requests == []


def test_a_missing_bundle_in_a_fresh_checkout_is_one_clear_line(
    world: World, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh"
    run_git(tmp_path, "clone", "-q", str(world.origin), str(fresh))
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    shutil.copy(world.run_dir / "run.json", artifact / "run.json")

    done = pr(world, str(artifact / "run.json"), "--yes", cwd=fresh)

    assert done.returncode == 2
    error, hint = error_lines(done)
    assert "run.bundle is missing" in error
    assert "upload the whole run directory" in hint


def _hook_that_lists_every_process(origin: Path, out: Path) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "# Every process's command line while the push is in flight.\n"
        "for f in /proc/[0-9]*/cmdline; do\n"
        "  tr '\\0' ' ' < \"$f\" 2>/dev/null; echo\n"
        f"done > '{out}'\n"
        "cat > /dev/null\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)


def test_the_token_reaches_git_only_through_its_environment(world: World, tmp_path: Path) -> None:
    processes = tmp_path / "processes.txt"
    _hook_that_lists_every_process(world.origin, processes)
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    secrets = (TOKEN, basic, base64.b64encode(TOKEN.encode()).decode())

    # origin over smart HTTP, which lets a request through only with the token.
    with GitHttpServer(world.origin, token=TOKEN) as server:
        run_git(world.root, "remote", "set-url", "origin", server.url)
        done = pr(world, "--yes")

    assert done.returncode == 0, done.stderr
    assert world.remote_sha(world.run["branch"]) == world.run["commits"][-1]
    assert server.served > 0
    assert server.refused == 0
    # The hook saw the push in flight (so the check below can fail) …
    seen = processes.read_text()
    assert any("push" in line and world.run["branch"] in line for line in seen.splitlines()), seen
    assert "remote-http" in seen
    # … and no process had the token on its command line.
    for secret in secrets:
        assert secret not in seen
        assert secret not in done.stdout + done.stderr
    # Nothing under the checkout (.git: config, logs, FETCH_HEAD, packed refs…; the run's
    # reports) or the origin holds it.
    for folder in (world.root, world.origin):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                for secret in secrets:
                    assert secret.encode() not in data, path
    assert TOKEN not in run_git(world.root, "config", "--list", "--show-origin")


def test_on_a_terminal_it_shows_what_it_will_push_and_asks(world: World) -> None:
    argv = [sys.executable, "-m", "agentloop", "pr", "--repo", "o/r",
            "--api-url", world.fake.api_url]  # fmt: skip
    env = agentloop_env(world.root.parent / "home", NOT_CI)
    branch = world.run["branch"]
    subject = run_git(world.root, "log", "-1", "--format=%h %s", branch).strip()

    with Terminal(argv, world.root, env) as no:
        assert no.wait_for(r"open a PR into main of o/r\?"), no.screen
        shown = no.screen.replace(" ", "")
        assert f"{branch}→origin".replace(" ", "") in shown
        assert subject.replace(" ", "") in shown
        no.type("n\r")
        assert no.wait_for("not confirmed: nothing was pushed"), no.screen
    assert world.remote_sha(branch) is None

    with Terminal(argv, world.root, env) as yes:
        assert yes.wait_for(r"o/r\?"), yes.screen
        yes.type("y\r")
        assert yes.wait_for(r"opened draft PR #1"), yes.screen
    assert world.remote_sha(branch) == world.run["commits"][-1]
