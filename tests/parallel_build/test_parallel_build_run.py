"""`agentloop parallel-build --manifest` without --plan-only, in process with the scripted
agent: the command wires EXECUTE, INTEGRATE and COMMIT on a real repository with real
pytest. (The real-CLI run is tests/parallel_build/test_parallel_build_e2e.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from agentloop import errors
from agentloop.commands.parallel_build import parallel_build
from agentloop.history import History, ledger_path
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.repos import git_init, pytest_project

PROJECT = {
    "agentloop.yaml": "detect:\n  flaky_reruns: 0\n",
    "contracts/__init__.py": "",
    "contracts/order.py": "FIELDS = ()\n",
    "api/__init__.py": "",
    "api/orders.py": "from contracts.order import FIELDS\n\n\ndef fields():\n    return FIELDS\n",
    "tests/test_orders.py": "from api.orders import fields\n"
    "from contracts.order import FIELDS\n\n\n"
    "def test_fields():\n    assert fields() == FIELDS\n",
}
MANIFEST = """\
request: Orders carry a total
streams:
  - id: contracts
    title: The order's fields
    template: contracts
    prompt: Add total to the order's fields.
    owns: ["contracts/**"]
  - id: api
    title: The orders API
    template: api-endpoint
    prompt: Return the fields in order.
    owns: ["api/**", "tests/test_api_*.py"]
    depends_on: [contracts]
contracts:
  - name: Order
    kind: types
    path: contracts/order.py
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def write(path: str, text: str):  # type: ignore[no-untyped-def]
    def session(cwd: Path) -> None:
        (cwd / path).write_text(text)

    return session


def both(*sessions):  # type: ignore[no-untyped-def]
    def session(cwd: Path) -> None:
        for one in sessions:
            one(cwd)

    return session


def test_a_manifest_is_built_into_one_commit_and_nothing_is_left_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], git_identity: None
) -> None:
    root = git_init(pytest_project(tmp_path / "repo", PROJECT))
    (root / "build.yaml").write_text(MANIFEST)
    git(root, "add", "build.yaml")
    git(root, "commit", "-qm", "manifest")
    before = git(root, "rev-parse", "HEAD")
    agent = ScriptedAgent(
        by_prompt={
            "Your stream: contracts (": [write("contracts/order.py", 'FIELDS = ("total",)\n')],
            "Your stream: api (": [
                both(
                    write("api/total.py", "def total(prices):\n    return sum(prices)\n"),
                    write("tests/test_api_total.py", "from api.total import total\n\n\n"
                          "def test_total():\n    assert total([1, 2]) == 3\n"),
                ),
            ],
        }
    )  # fmt: skip
    code = parallel_build(
        repo=root, request=None, manifest=root / "build.yaml", plan_only=False, jobs=2,
        as_json=True, agent=agent,
    )  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(
        resources.files("agentloop.schemas").joinpath("build.schema.json").read_text()
    )
    jsonschema.validate(doc, schema)
    assert code == errors.OK, json.dumps(doc, indent=1)
    assert [(s["id"], s["outcome"], s["merge"]) for s in doc["streams"]] == [
        ("contracts", "built", "merged"),
        ("api", "built", "merged"),
    ]
    # One commit on the build branch, holding both streams; the suite passes on it.
    branch = doc["branch"]
    assert branch.startswith("agentloop/build-")
    assert git(root, "rev-list", f"{before.strip()}..{branch}").split() == [doc["commit"]]
    message = git(root, "log", "-1", "--format=%B", branch)
    assert message.startswith("feat: Orders carry a total\n")
    assert f"Agentloop-Build: {doc['run_id']}" in message
    assert git(root, "show", f"{branch}:contracts/order.py") == 'FIELDS = ("total",)\n'
    assert "def total" in git(root, "show", f"{branch}:api/total.py")
    assert doc["integration"]["new_failures"] == []
    # Nothing else is left: the user's checkout as it was, one agentloop branch, no worktree.
    assert git(root, "rev-parse", "HEAD") == before
    assert git(root, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(root, "branch", "--list", "agentloop/*", "--format=%(refname:short)").split() == [
        branch
    ]
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1
    # The build is in the ledger.
    with History.open(ledger_path(root)) as history:
        (build,) = history.ledger().builds
    assert (build.run_id, build.streams, build.merged, build.commit_sha) == (
        doc["run_id"], 2, 2, doc["commit"],
    )  # fmt: skip


def test_ctrl_c_after_a_merge_says_what_the_build_branch_keeps(
    tmp_path: Path, git_identity: None
) -> None:
    # Found on humanize: ^C while impl ran (contracts and docs merged) printed only
    # "error: interrupted", and left agentloop/build-<run> holding two unsquashed
    # "build: merge stream" commits that nothing mentioned.
    root = git_init(pytest_project(tmp_path / "repo", PROJECT))
    (root / "build.yaml").write_text(MANIFEST)
    git(root, "add", "build.yaml")
    git(root, "commit", "-qm", "manifest")
    before = git(root, "rev-parse", "HEAD")

    def interrupt(cwd: Path) -> None:
        (cwd / "api/total.py").write_text("half done\n")
        # A real ^C: a signal to the process, delivered to the main thread.
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(1)

    agent = ScriptedAgent(
        by_prompt={
            "Your stream: contracts (": [write("contracts/order.py", 'FIELDS = ("total",)\n')],
            "Your stream: api (": [interrupt],
        }
    )
    with pytest.raises(errors.Interrupted) as stopped:
        parallel_build(
            repo=root, request=None, manifest=root / "build.yaml", plan_only=False, jobs=2,
            as_json=True, agent=agent,
        )  # fmt: skip
    assert stopped.value.exit_code == errors.INTERRUPTED
    (branch,) = git(root, "branch", "--list", "agentloop/*", "--format=%(refname:short)").split()
    assert branch.startswith("agentloop/build-")
    assert stopped.value.message == (
        f"interrupted; contracts had been merged into {branch}, kept there unsquashed"
    )
    assert stopped.value.hint is not None
    assert f"git branch -D {branch}" in stopped.value.hint
    assert git(root, "show", f"{branch}:contracts/order.py") == 'FIELDS = ("total",)\n'
    assert git(root, "rev-parse", "HEAD") == before
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1
