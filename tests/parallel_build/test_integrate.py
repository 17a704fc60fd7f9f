"""INTEGRATE and COMMIT of a parallel build, driven with hand-made stream branches: real
git worktrees and branches, real pytest in a small fixture repository, the in-process
scripted agent for the fix-up sessions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentloop import git, suites
from agentloop.build.integrate import (
    IntegrateSettings,
    Integration,
    Integrator,
    build_record,
    clean_streams,
    commit_build,
    integrate,
    merge_order,
)
from agentloop.build.model import Contract, Manifest, Stream, StreamReport
from agentloop.config import load_config
from agentloop.history import History, build_metrics, ledger_path
from agentloop.loop.runner import LoopSettings
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.repos import git_init, pytest_project, write_tree
from agentloop.workspace import Workspace

REQUEST = (
    "Add user profiles: a shared contract for the user record, a data model, a backend "
    "lookup and a frontend label"
)
BASE = {
    "app/__init__.py": "",
    "tests/__init__.py": "",
    "tests/test_base.py": "def test_base():\n    assert True\n",
}
CONTRACT = Contract("user", "types", "app/contracts.py", "the fields of a user record")
CONTRACTS_PY = 'USER_FIELDS = ("id", "name")\n'


def stream(sid: str, template: str, owns: tuple[str, ...], *deps: str) -> Stream:
    return Stream(sid, sid.title(), template, f"build {sid}", owns, deps)  # type: ignore[arg-type]


# In an order that is not the merge order: dependencies must put it right.
MANIFEST = Manifest(
    REQUEST,
    (
        stream(
            "frontend", "ui-feature", ("app/frontend.py", "tests/test_frontend.py"), "contracts"
        ),
        stream(
            "backend",
            "api-endpoint",
            ("app/backend.py", "tests/test_backend.py"),
            "contracts",
            "data-model",
        ),
        stream("data-model", "data-model", ("app/model.py", "tests/test_model.py"), "contracts"),
        stream("contracts", "contracts", ("app/contracts.py",)),
    ),
    (CONTRACT,),
)

STREAM_FILES: dict[str, dict[str, str]] = {
    "contracts": {"app/contracts.py": CONTRACTS_PY},
    "data-model": {
        "app/model.py": """\
            from app.contracts import USER_FIELDS

            def make_user(uid, name):
                return dict(zip(USER_FIELDS, (uid, name)))
            """,
        "tests/test_model.py": """\
            from app.model import make_user

            def test_make_user():
                assert make_user(1, "ada") == {"id": 1, "name": "ada"}
            """,
    },
    "backend": {
        "app/backend.py": """\
            from app.model import make_user

            def lookup(uid):
                return make_user(uid, f"user{uid}")
            """,
        "tests/test_backend.py": """\
            from app.backend import lookup

            def test_lookup():
                assert lookup(2)["name"] == "user2"
            """,
    },
    "frontend": {
        "app/frontend.py": """\
            from app.contracts import USER_FIELDS

            def label(user):
                return " ".join(str(user[f]) for f in USER_FIELDS)
            """,
        "tests/test_frontend.py": """\
            from app.frontend import label

            def test_label():
                assert label({"id": 3, "name": "bo"}) == "3 bo"
            """,
    },
}


def run_git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=git.clean_env()
    ).stdout


@pytest.fixture
def ws(tmp_path: Path, git_identity: None) -> Iterator[Workspace]:
    root = git_init(pytest_project(tmp_path / "repo", BASE))
    with Workspace.open(root, run_id="b1", branch_prefix="agentloop/build-") as ws:
        yield ws


def build(
    ws: Workspace,
    sid: str,
    files: Mapping[str, str],
    *,
    seconds: float = 10.0,
    message: str | None = None,
) -> StreamReport:
    """A stream built by hand: its worktree and branch from the integration tip, one commit."""
    branch = f"{ws.branch}.{sid}"
    path = ws.worktree(sid, commit=git.head_sha(ws.path), branch=branch)
    write_tree(path, files)
    sha = git.commit_all(path, message or f"{sid}: add {', '.join(sorted(files))}")
    return StreamReport(sid, "built", branch, sha, 0.0, seconds, attempts=1, cost_usd=0.1)


def integrator(ws: Workspace, agent: ScriptedAgent, manifest: Manifest = MANIFEST) -> Integrator:
    return Integrator(
        ws,
        manifest,
        agent=agent,
        discover=lambda root: suites.discover(root, load_config(root)[0]),
        baseline_failing=(),
        settings=IntegrateSettings(autofix=LoopSettings(rerun_timeout=60), suite_timeout=120),
    )


def shown(ws: Workspace, path: str) -> str | None:
    return git.show_file(ws.path, ws.branch, path)


def leftovers(ws: Workspace) -> tuple[list[str], list[str]]:
    """The repository's branches and worktrees besides main and the build's own."""
    branches = [
        b
        for b in run_git(ws.repo, "branch", "--format=%(refname:short)").split()
        if b not in ("main", ws.branch)
    ]
    trees = [
        wt.path.name for wt in git.list_worktrees(ws.repo) if wt.path not in (ws.repo, ws.path)
    ]
    return branches, trees


def test_merge_order_is_dependencies_first_contracts_first() -> None:
    order = [s.id for s in merge_order(MANIFEST)]
    assert order == ["contracts", "frontend", "data-model", "backend"]


def test_four_streams_become_one_commit_that_passes_the_suite(ws: Workspace) -> None:
    reports = [build(ws, sid, files) for sid, files in STREAM_FILES.items()]
    agent = ScriptedAgent()
    result = integrate(integrator(ws, agent), reports)

    assert [(m.stream, m.outcome) for m in result.streams] == [
        ("contracts", "merged"),
        ("frontend", "merged"),
        ("data-model", "merged"),
        ("backend", "merged"),
    ]
    assert result.verification is not None
    assert result.verification.new_failures == ()
    assert agent.calls == []  # nothing to fix up
    sha = commit_build(ws, result)
    clean = clean_streams(ws, reports)

    assert run_git(ws.path, "rev-list", f"{ws.base_sha}..{ws.branch}").split() == [sha]
    message = git.message(ws.path, ws.branch)
    subject, _, body = message.partition("\n")
    assert len(subject) <= 72
    assert subject.startswith("feat: Add user profiles: a shared contract")
    assert subject.endswith("…")
    assert REQUEST in " ".join(body.split())  # shortened above, whole below
    assert "- data-model\n  - data-model: add app/model.py, tests/test_model.py" in body
    assert body.rstrip().endswith("Agentloop-Build: b1")
    for files in STREAM_FILES.values():
        for path in files:
            assert shown(ws, path) is not None, path
    # The commit passes all suites, run on its own.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ws.path,
        capture_output=True,
        text=True,
        env={**ws.env(), "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout
    assert "4 passed" in done.stdout
    assert all(c.removed_worktree and c.deleted_branch for c in clean)
    assert leftovers(ws) == ([], [])


def test_a_stream_that_changed_a_contract_file_loses_that_change_only(ws: Workspace) -> None:
    contracts = build(ws, "contracts", STREAM_FILES["contracts"])
    # The backend "fixed" the contract on its own: a conflict the contract must win.
    backend = build(
        ws,
        "backend",
        {
            "app/contracts.py": 'USER_FIELDS = ("id", "name", "email")\n',
            "app/backend.py": "def lookup(uid):\n    return {'id': uid}\n",
        },
    )
    result = integrate(integrator(ws, ScriptedAgent()), [backend, contracts], verify=False)

    merged = {m.stream: m for m in result.streams}
    assert merged["contracts"].outcome == "merged"
    assert merged["backend"].outcome == "contract_kept"
    assert merged["backend"].contract_kept == ("app/contracts.py",)
    assert not merged["backend"].matched_contract
    assert merged["contracts"].matched_contract
    assert result.conflicts == 1
    assert shown(ws, "app/contracts.py") == CONTRACTS_PY
    assert shown(ws, "app/backend.py") == "def lookup(uid):\n    return {'id': uid}\n"
    # The worktree follows the branch.
    assert (ws.path / "app/contracts.py").read_text() == CONTRACTS_PY


SHARED_FRONT = "A = 1\n"
SHARED_BACK = "B = 2\n"


def _write(path: str, text: str, also: Mapping[str, str] | None = None) -> Callable[[Path], None]:
    def session(cwd: Path) -> None:
        write_tree(cwd, {path: text, **(also or {})})

    return session


def two_writers(ws: Workspace) -> list[StreamReport]:
    """Frontend and backend both wrote app/shared.py: validation missed it, a setup script
    did it, whatever: a real conflict outside the contract."""
    front = build(ws, "frontend", {"app/frontend.py": "X = 1\n", "app/shared.py": SHARED_FRONT})
    back = build(ws, "backend", {"app/backend.py": "Y = 1\n", "app/shared.py": SHARED_BACK})
    return [front, back]


def test_a_conflict_outside_the_contract_gets_one_fixup_session(ws: Workspace) -> None:
    agent = ScriptedAgent(_write("app/shared.py", SHARED_FRONT + SHARED_BACK))
    result = integrate(integrator(ws, agent), two_writers(ws), verify=False)

    merged = {m.stream: m for m in result.streams}
    assert merged["frontend"].outcome == "merged"
    assert merged["backend"].outcome == "resolved"
    assert merged["backend"].conflicts == ("app/shared.py",)
    assert merged["backend"].matched_contract  # no contract file involved
    assert result.fixup_sessions == 1
    assert shown(ws, "app/shared.py") == SHARED_FRONT + SHARED_BACK
    assert shown(ws, "app/backend.py") == "Y = 1\n"
    [call] = agent.calls
    # The prompt names the conflict, the contract and both versions.
    for text in ("app/shared.py", "app/contracts.py", "A = 1", "B = 2"):
        assert text in call.prompt, text
    assert "stream backend" in call.prompt
    # The session worked on the merge with git's markers, in a checkout of its own.
    assert call.cwd != ws.path
    assert not call.cwd.exists()


@pytest.mark.parametrize(
    ("session", "why"),
    [
        (
            _write("app/shared.py", SHARED_FRONT + SHARED_BACK, {"app/frontend.py": "X = 2\n"}),
            "changed files outside the conflict: app/frontend.py",
        ),
        (None, "conflict markers left in app/shared.py"),
    ],
)
def test_a_failed_fixup_leaves_the_stream_out_and_keeps_its_branch(
    ws: Workspace, session: Callable[[Path], None] | None, why: str
) -> None:
    agent = ScriptedAgent(*([session] if session else []))
    reports = two_writers(ws)
    result = integrate(integrator(ws, agent), reports, verify=False)

    merged = {m.stream: m for m in result.streams}
    assert merged["backend"].outcome == "failed"
    assert why in merged["backend"].reason
    assert len(agent.calls) == 1  # one session, not more
    assert shown(ws, "app/shared.py") == SHARED_FRONT  # the frontend's, untouched
    assert shown(ws, "app/backend.py") is None
    sha = commit_build(ws, result)
    assert sha is not None
    assert "Left out:\n- backend: " in git.message(ws.path, sha)
    clean = clean_streams(ws, reports, keep={"backend"})
    assert {c.stream: c.kept for c in clean} == {"frontend": "", "backend": "left out of the build"}
    branches, trees = leftovers(ws)
    assert branches == [f"{ws.branch}.backend"]  # kept, with its work
    assert trees == []
    assert shown(ws, "app/frontend.py") == "X = 1\n"


FIX_MODEL = _write(
    "app/model.py",
    "def make_user(uid, name):\n    return {'id': uid, 'name': name}\n",
)


def streams_that_break_together(ws: Workspace) -> list[StreamReport]:
    """Each stream passes its own tests; merged, the backend's test finds the data model
    dropping the name."""
    model = build(
        ws,
        "data-model",
        {
            "app/model.py": "def make_user(uid, name):\n    return {'id': uid}\n",
            "tests/test_model.py": "from app.model import make_user\n\n"
            "def test_id():\n    assert make_user(1, 'a')['id'] == 1\n",
        },
    )
    back = build(ws, "backend", STREAM_FILES["backend"])
    return [model, back]


def manifest_without_contracts() -> Manifest:
    return Manifest(
        REQUEST, tuple(s for s in MANIFEST.streams if s.id in ("data-model", "backend"))
    )


@pytest.mark.parametrize("fixed", [True, False])
def test_a_failing_full_suite_gets_a_bounded_fixup(ws: Workspace, fixed: bool) -> None:
    agent = ScriptedAgent(*([FIX_MODEL] if fixed else []))
    reports = streams_that_break_together(ws)
    result = integrate(integrator(ws, agent, manifest_without_contracts()), reports)

    assert [m.outcome for m in result.streams] == ["merged", "merged"]
    assert result.verification is not None
    assert result.verification.new_failures == ("pytest::tests/test_backend.py::test_lookup",)
    assert result.failures == 1
    assert len(agent.calls) == (1 if fixed else 2)  # at most 2 attempts
    if fixed:
        assert result.verification.remaining == ()
        assert "'name': name" in (shown(ws, "app/model.py") or "")
    else:
        assert result.verification.remaining == result.verification.new_failures
    sha = commit_build(ws, result)
    assert run_git(ws.path, "rev-list", f"{ws.base_sha}..{ws.branch}").split() == [sha]
    clean_streams(ws, reports)
    assert leftovers(ws) == ([], [])  # the fix-up's workspace and branch are gone too


def test_a_dirty_stream_worktree_is_saved_before_it_goes(ws: Workspace) -> None:
    report = build(ws, "frontend", STREAM_FILES["frontend"])
    integrate(integrator(ws, ScriptedAgent()), [report], verify=False)
    [path] = [wt.path for wt in git.list_worktrees(ws.repo) if wt.branch == report.branch]
    (path / "app/frontend.py").write_text("unsaved edit\n")
    (path / "notes.txt").write_text("untracked work\n")

    [clean] = clean_streams(ws, [report])

    assert clean.removed_worktree
    assert clean.deleted_branch
    assert not path.exists()
    assert clean.rescued is not None
    patch = clean.rescued.read_text()
    assert "+unsaved edit" in patch
    assert "+untracked work" in patch
    assert leftovers(ws) == ([], [])


def test_nothing_built_means_no_commit(ws: Workspace) -> None:
    failed = StreamReport("frontend", "failed", None, None, 0.0, 5.0, 1, 0.0, reason="tests failed")
    result: Integration = integrate(integrator(ws, ScriptedAgent()), [failed])
    assert [(m.outcome, m.reason) for m in result.streams] == [("not_built", "tests failed")]
    assert result.verification is None
    assert commit_build(ws, result) is None


def test_the_builds_ledger_row_of_an_integration(ws: Workspace) -> None:
    contracts = build(ws, "contracts", STREAM_FILES["contracts"], seconds=30.0)
    backend = build(
        ws,
        "backend",
        {"app/contracts.py": "USER_FIELDS = ()\n", "app/backend.py": "Y = 1\n"},
        seconds=50.0,
    )
    frontend = build(ws, "frontend", {"app/frontend.py": "X = 1\n"}, seconds=40.0)
    failed = StreamReport("data-model", "failed", None, None, 0.0, 20.0, 3, 0.3, reason="red")
    reports = [contracts, backend, frontend, failed]
    result = integrate(integrator(ws, ScriptedAgent()), reports)
    sha = commit_build(ws, result)
    started = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
    record = build_record(
        result, reports, started_at=started, finished_at=started + timedelta(seconds=70),
        wall_s=70.0, commit=sha,
    )  # fmt: skip
    with History.open(ledger_path(ws.repo)) as h:
        h.record_build(record)
        [row] = h.ledger().builds
    assert row == record
    assert (row.streams, row.merged, row.serial_s, row.wall_s) == (4, 3, 140.0, 70.0)
    # The backend conflicted on the contract: one integration failure, 2 of the 3
    # integrated streams matched the contract.
    assert (row.conflicts, row.failed_suites, row.integrated, row.contract_matched) == (1, 0, 3, 2)
    metrics = build_metrics([row])
    assert (metrics.speedup, metrics.failure_rate) == (2.0, 1.0)
    assert metrics.contract_accuracy == 2 / 3


EDIT_CONTRACT = _write("app/contracts.py", 'USER_FIELDS = ("id",)\n')


def test_the_full_suites_fixup_may_not_change_the_contract(ws: Workspace) -> None:
    """The contract wins after the merges too. The frontend was built to show the id alone,
    against the contract's id and name: changing the contract would turn the suite green,
    and that fix-up is rejected; the contract stays as the contracts stream wrote it."""
    agent = ScriptedAgent(EDIT_CONTRACT, EDIT_CONTRACT)
    frontend = {
        **STREAM_FILES["frontend"],
        "tests/test_frontend.py": "from app.frontend import label\n\n"
        "def test_label():\n    assert label({'id': 3, 'name': 'bo'}) == '3'\n",
    }
    reports = [build(ws, "contracts", STREAM_FILES["contracts"])]
    reports.append(build(ws, "frontend", frontend))
    result = integrate(integrator(ws, agent), reports)

    assert result.verification is not None
    assert result.verification.new_failures == ("pytest::tests/test_frontend.py::test_label",)
    assert result.verification.remaining == result.verification.new_failures
    assert len(agent.calls) == 2
    assert "app/contracts.py" in agent.prompts[0]  # the session is told, not only refused
    report = result.verification.fixup
    assert report is not None
    assert {a.outcome for t in report.tasks for a in t.attempts} == {"rejected_forbidden_path"}
    assert shown(ws, "app/contracts.py") == CONTRACTS_PY
