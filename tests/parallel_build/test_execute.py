"""EXECUTE of a parallel build, driven by the in-process scripted agent: real git
worktrees and branches, real commands for the streams' tests, no model and no CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agentloop import git, suites
from agentloop.agents import sandbox
from agentloop.build.execute import (
    Interrupted,
    StreamSettings,
    execute,
    port_base,
    stream_branch,
)
from agentloop.build.model import Manifest, Stream, StreamReport
from agentloop.config import load_config
from agentloop.rails.paths import DEFAULT_FORBIDDEN, ForbiddenPaths
from agentloop.testing.agents import ScriptedAgent
from agentloop.testing.repos import git_init, pytest_project, write_tree
from agentloop.workspace import Workspace

FILES = {
    "README.md": "shop\n",
    "contracts/order.py": "FIELDS = ()\n",
    "api/orders.py": "def create():\n    return None\n",
    "web/app.ts": "export const app = 1;\n",
}

CONTRACTS = Stream("contracts", "Order type", "contracts", "Define an order.", ("contracts/**",))
API = Stream("api", "Orders endpoint", "api-endpoint", "Add POST /orders.", ("api/**",))
WEB = Stream("web", "Orders page", "ui-feature", "Add the orders page.", ("web/**",))

Session = Callable[[Path], None]


def write(path: str, text: str) -> Session:
    def session(cwd: Path) -> None:
        (cwd / path).parent.mkdir(parents=True, exist_ok=True)
        (cwd / path).write_text(text)

    return session


def both(*sessions: Session) -> Session:
    def session(cwd: Path) -> None:
        for s in sessions:
            s(cwd)

    return session


def key(stream: str) -> str:
    """What only `stream`'s prompts contain."""
    return f"Your stream: {stream} ("


def run_git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def worktrees(root: Path) -> list[str]:
    out = run_git(root, "worktree", "list", "--porcelain")
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


def branches(root: Path) -> list[str]:
    return run_git(root, "branch", "--format=%(refname:short)").split()


@pytest.fixture
def root(tmp_path: Path, git_identity: None) -> Path:
    return git_init(write_tree(tmp_path / "repo", FILES))


def merge_into(ws: Workspace, merged: list[str]) -> Callable[[StreamReport], None]:
    """The integration's part, in small: the stream's commit merged onto the integration
    branch (checked out in the run's worktree) in the object store."""

    def merge(report: StreamReport) -> None:
        assert report.commit is not None
        tip = git.head_sha(ws.path)
        result = git.merge_trees(ws.path, tip, report.commit)
        assert result.tree is not None, result.conflicts
        new = git.commit_tree(ws.path, result.tree, tip, f"merge {report.stream}")
        git.advance_branch(ws.path, ws.branch, new, tip)
        git.restore_worktree(ws.path, new, git.ignored_entries(ws.path))
        merged.append(report.stream)

    return merge


@contextmanager
def build(root: Path) -> Iterator[Workspace]:
    with Workspace.open(root, branch_prefix="agentloop/build-") as ws:
        yield ws


def settings(**overrides: object) -> StreamSettings:
    forbidden = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN)
    return StreamSettings(forbidden=forbidden, sandboxed=True, **overrides)  # type: ignore[arg-type]


def run(
    ws: Workspace,
    manifest: Manifest,
    agent: ScriptedAgent,
    *,
    jobs: int = 2,
    merged: list[str] | None = None,
    **overrides: object,
) -> tuple[StreamReport, ...]:
    return execute(
        ws,
        manifest,
        agent=agent,
        integration_branch=ws.branch,
        merge=merge_into(ws, [] if merged is None else merged),
        jobs=jobs,
        settings=settings(**overrides),
        taken=lambda _port: False,
    )


def overlap(a: StreamReport, b: StreamReport) -> bool:
    return a.started_s < b.finished_s and b.started_s < a.finished_s


def test_independent_streams_are_built_at_once_each_with_its_own_environment(
    root: Path,
) -> None:
    agent = ScriptedAgent(
        by_prompt={
            key("api"): [write("api/orders.py", "def create():\n    return {}\n")],
            key("web"): [write("web/app.ts", "export const app = 2;\n")],
        },
        delay_s=0.5,
    )
    manifest = Manifest("orders", (API, WEB))
    with build(root) as ws:
        reports = run(ws, manifest, agent)
        assert [(r.stream, r.outcome, r.attempts) for r in reports] == [
            ("api", "built", 1),
            ("web", "built", 1),
        ]
        api, web = reports
        # Built side by side: their sessions' intervals on the build's clock overlap.
        assert overlap(api, web)
        assert api.branch == stream_branch(ws.run_id, "api")
        assert (ws.path / "api/orders.py").read_text() == "def create():\n    return {}\n"
        assert (ws.path / "web/app.ts").read_text() == "export const app = 2;\n"
        envs = {c.env["AGENTLOOP_STREAM"]: c.env["AGENTLOOP_PORT_BASE"] for c in agent.calls}
        assert set(envs) == {"api", "web"}
        assert len(set(envs.values())) == 2
        assert {c.cwd.parent for c in agent.calls} == {ws.places.worktrees}
        # Each stream's worktree and branch are gone once it is merged.
        assert worktrees(root) == [str(root), str(ws.path)]
        assert sorted(branches(root)) == [ws.branch, "main"]


def test_a_dependent_stream_starts_from_the_integration_tip_holding_its_dependency(
    root: Path,
) -> None:
    seen: dict[str, str] = {}

    def api(cwd: Path) -> None:
        seen["contract"] = (cwd / "contracts/order.py").read_text()
        seen["head"] = git.head_sha(cwd)
        (cwd / "api/orders.py").write_text("from contracts.order import FIELDS\n")

    agent = ScriptedAgent(
        by_prompt={
            key("contracts"): [write("contracts/order.py", "FIELDS = ('id',)\n")],
            key("api"): [api],
        }
    )
    api_stream = Stream("api", "Orders", "api-endpoint", "Use it.", ("api/**",), ("contracts",))
    merged: list[str] = []
    with build(root) as ws:
        first, second = run(ws, Manifest("orders", (CONTRACTS, api_stream)), agent, merged=merged)
        assert (first.outcome, second.outcome) == ("built", "built")
        assert merged == ["contracts", "api"]
        assert seen["contract"] == "FIELDS = ('id',)\n"
        # It started from the integration branch after the merge: the merge is its base.
        assert run_git(ws.path, "log", "-1", "--format=%s", seen["head"]).strip() == (
            "merge contracts"
        )
        assert second.started_s >= first.finished_s
        assert "Built before you" in agent.prompts[1]
        assert "contracts" in agent.prompts[1]


def test_a_write_outside_the_owned_globs_is_rejected_undone_and_explained(root: Path) -> None:
    seen: list[str] = []

    def stays_inside(cwd: Path) -> None:
        seen.append((cwd / "web/app.ts").read_text())
        (cwd / "api/orders.py").write_text("def create():\n    return {'ok': True}\n")

    agent = ScriptedAgent(
        by_prompt={
            key("api"): [
                both(
                    write("api/orders.py", "def create():\n    return 1\n"),
                    write("web/app.ts", "export const app = 'api was here';\n"),
                ),
                stays_inside,
            ],
            key("web"): [write("web/app.ts", "export const app = 2;\n")],
        }
    )
    with build(root) as ws:
        api, web = run(ws, Manifest("orders", (API, WEB)), agent, jobs=1)
        assert (api.outcome, api.attempts, api.violations) == ("built", 2, ("web/app.ts",))
        assert web.outcome == "built"
        # The second attempt found the file as it was, and was told why.
        assert seen == [FILES["web/app.ts"]]
        second = next(p for p in agent.prompts if key("api") in p and "Attempt 1" in p)
        assert "stream api owns api/**; web/app.ts belongs to stream web" in second
        assert run_git(ws.path, "show", f"{api.commit}:web/app.ts") == FILES["web/app.ts"]
        assert (ws.path / "web/app.ts").read_text() == "export const app = 2;\n"


def test_a_stream_that_keeps_writing_outside_is_rejected_and_its_dependents_skipped(
    root: Path,
) -> None:
    outside = write("web/app.ts", "export const app = 3;\n")
    agent = ScriptedAgent(by_prompt={key("contracts"): [outside, outside]})
    api_stream = Stream("api", "Orders", "api-endpoint", "Use it.", ("api/**",), ("contracts",))
    with build(root) as ws:
        contracts, api = run(ws, Manifest("orders", (CONTRACTS, api_stream)), agent, max_attempts=2)
        assert (contracts.outcome, contracts.attempts) == ("rejected", 2)
        assert "web/app.ts is owned by no stream" in contracts.reason
        assert (api.outcome, api.attempts) == ("skipped", 0)
        assert "contracts was not built" in api.reason
        assert len(agent.calls) == 2
        assert worktrees(root) == [str(root), str(ws.path)]


def test_the_streams_own_tests_run_in_its_worktree_and_a_failure_is_the_next_prompts(
    root: Path,
) -> None:
    check = f"{sys.executable} -c \"import api.orders as o; assert o.create() == 'ok', o.create()\""
    stream = Stream("api", "Orders", "api-endpoint", "Return ok.", ("api/**",), tests=(check,))
    agent = ScriptedAgent(
        by_prompt={
            key("api"): [
                write("api/orders.py", "def create():\n    return 'nope'\n"),
                write("api/orders.py", "def create():\n    return 'ok'\n"),
            ]
        }
    )
    with build(root) as ws:
        (report,) = run(ws, Manifest("orders", (stream,)), agent)
        assert (report.outcome, report.attempts) == ("built", 2)
        assert "AssertionError: nope" in agent.prompts[1]
        assert report.cost_usd == pytest.approx(0.02)


def test_in_a_project_below_the_top_the_stream_works_from_the_top(
    tmp_path: Path, git_identity: None
) -> None:
    # Found on humanize in pkgs/humanize of a larger repository: the manifest's globs,
    # prompts and test commands are the repository's (the coordinator plans at its top),
    # but the stream's session started in pkgs/humanize/ of its worktree, so the file the
    # agent wrote as the prompt said went to pkgs/humanize/pkgs/humanize/..., owned by no
    # stream, and the stream failed three times having "changed nothing".
    repo = git_init(write_tree(tmp_path / "repo", {"pkgs/app/README.md": "app\n",
                                                   "README.md": "monorepo\n"}))  # fmt: skip
    made = "pkgs/app/api/orders.py"
    check = f"test -f {made}"
    stream = Stream("api", "Orders", "custom", f"Write {made}.", ("pkgs/app/api/**",),
                    tests=(check,))  # fmt: skip
    agent = ScriptedAgent(by_prompt={key("api"): [write(made, "X = 1\n")]})
    with Workspace.open(repo / "pkgs" / "app", branch_prefix="agentloop/build-") as ws:
        (report,) = run(ws, Manifest("orders", (stream,)), agent)
        assert (report.outcome, report.attempts) == ("built", 1), report.reason
        assert report.commit is not None
        assert run_git(repo, "show", f"{report.commit}:{made}") == "X = 1\n"


def test_a_failed_stream_says_why_each_attempt_failed_and_keeps_its_last_work(root: Path) -> None:
    # Found on humanize: a tests stream's first attempt wrote its tests, which failed (the
    # implementation was another stream's, not merged yet); the next two wrote nothing
    # new, and the report said only "3 attempts failed; the last: changed nothing".
    check = f"{sys.executable} -c \"import api.orders as o; assert o.create() == 'ok', o.create()\""
    stream = Stream("api", "Orders", "api-endpoint", "Return ok.", ("api/**",), tests=(check,))
    agent = ScriptedAgent(by_prompt={key("api"): [write("api/orders.py", "def create():\n"
                                                        "    return 'nope'\n")]})  # fmt: skip
    with build(root) as ws:
        (report,) = run(ws, Manifest("orders", (stream,)), agent)
    assert (report.outcome, report.attempts) == ("failed", 3)
    assert report.reason.startswith("3 attempts failed: 1: `"), report.reason
    assert "AssertionError: nope" in report.reason
    assert "; 2-3: changed nothing; its last attempt's changes: " in report.reason
    # What it wrote is kept, every attempt having been undone: a patch git applies.
    patch = Path(report.reason.rsplit("its last attempt's changes: ", 1)[1])
    assert "+    return 'nope'" in patch.read_text()
    assert run_git(root, "apply", "--check", str(patch)) == ""


def test_the_policy_and_guard_of_a_stream_allow_its_own_paths_only(root: Path) -> None:
    agent = ScriptedAgent(by_prompt={key("api"): [write("api/orders.py", "X = 1\n")]})
    with build(root) as ws:
        run(ws, Manifest("orders", (API, WEB)), agent, jobs=1)
        call = agent.calls[0]
        assert call.policy is not None
        assert call.guard is not None
        top = call.cwd.resolve()
        policy = call.policy
        assert policy.write_globs == ("api/**",)
        # Bash: the rest of the worktree is read-only in the sandbox, the own area is not.
        assert {top / "web", top / "contracts", top / "README.md"} <= set(policy.deny_write)
        assert not any(p == top / "api" or top / "api" in p.parents for p in policy.deny_write)
        document = sandbox.settings(policy)
        assert f"/{top}/web" in document["sandbox"]["filesystem"]["denyWrite"]
        # The file tools: only the owned glob is allowed, in `dontAsk` nothing else is.
        assert sandbox.scoped_tools(("Read", "Edit", "Write"), top, policy.write_globs) == (
            "Read",
            f"Edit(/{top}/api/**)",
        )
        # The guard says whose file it is.
        refusal = call.guard("Edit", {"file_path": str(top / "web/app.ts")})
        assert refusal is not None
        assert "stream api owns api/**; web/app.ts belongs to stream web" in refusal
        assert call.guard("Write", {"file_path": str(top / "api/new.py")}) is None
        shell = call.guard("Bash", {"command": "echo x > README.md"})
        assert shell is not None
        assert "README.md is owned by no stream" in shell
        # The rails' own refusals still hold inside the owned area.
        assert call.guard("Edit", {"file_path": str(top / "api/auth/keys.py")}) is not None


def test_unowned_paths_are_whole_directories_where_nothing_can_be_owned() -> None:
    top = Path("/w")
    listed = ["README.md", "src/api/a.py", "src/api/b.md", "src/web/x.ts", "tests/t.py"]
    assert sandbox.unowned(top, ["src/api/*.py"], listed) == [
        top / "README.md",
        top / "src/api/b.md",
        top / "src/web",
        top / "tests",
    ]
    # A glob that matches at any depth leaves every directory open; files are judged.
    assert sandbox.unowned(top, ["*.py"], listed) == [
        top / "README.md",
        top / "src/api/b.md",
        top / "src/web/x.ts",
    ]


def test_ctrl_c_stops_every_stream_and_leaves_no_worktree_or_branch(root: Path) -> None:
    def interrupt(cwd: Path) -> None:
        (cwd / "api/orders.py").write_text("half done\n")
        # A real ^C: a signal to the process, delivered to the main thread.
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(1)

    agent = ScriptedAgent(by_prompt={key("api"): [interrupt]})
    slow = ScriptedAgent(delay_s=60)

    class Both(ScriptedAgent):
        def run(self, prompt: str, **kw: object):  # type: ignore[no-untyped-def,override]
            return (agent if key("api") in prompt else slow).run(prompt, **kw)  # type: ignore[arg-type]

        def cancel(self) -> None:
            agent.cancel()
            slow.cancel()

    started = time.monotonic()
    with build(root) as ws:
        with pytest.raises(Interrupted) as stopped:
            run(ws, Manifest("orders", (API, WEB)), Both())
        assert time.monotonic() - started < 30
        assert [(r.stream, r.outcome) for r in stopped.value.reports] == [
            ("api", "interrupted"),
            ("web", "interrupted"),
        ]
        assert worktrees(root) == [str(root), str(ws.path)]
        assert sorted(branches(root)) == [ws.branch, "main"]
    assert worktrees(root) == [str(root)]
    assert branches(root) == ["main"]


def test_a_dirty_stream_worktree_is_saved_before_it_is_removed(root: Path) -> None:
    with build(root) as ws:
        path = ws.worktree("stream-api", branch=stream_branch(ws.run_id, "api"))
        (path / "api/orders.py").write_text("work in progress\n")
        rescued = ws.drop_worktree(path)
        assert rescued is not None
        assert "+work in progress" in rescued.read_text()
        assert not path.exists()
        assert stream_branch(ws.run_id, "api") not in branches(root)


def test_each_slot_gets_a_port_range_of_its_own_free_of_busy_ports() -> None:
    assert port_base(0, base=20000, step=100, taken=lambda _p: False) == 20000
    assert port_base(2, base=20000, step=100, taken=lambda _p: False) == 20200
    # Its first port is held by something else: a range above every slot's.
    busy = {20100}
    assert port_base(1, base=20000, step=100, taken=busy.__contains__) == 26500


def test_the_runtime_cap_stops_every_stream_and_skips_those_not_started(root: Path) -> None:
    agent = ScriptedAgent(delay_s=30)
    later = Stream("later", "After", "custom", "Then.", ("README.md",), ("api",))
    started = time.monotonic()
    with build(root) as ws:
        reports = run(ws, Manifest("orders", (API, WEB, later)), agent, max_runtime_s=1)
        assert time.monotonic() - started < 10
        assert [(r.stream, r.outcome, r.attempts) for r in reports] == [
            ("api", "failed", 1),
            ("web", "failed", 1),
            ("later", "skipped", 0),
        ]
        assert all("max_runtime reached" in r.reason for r in reports[:2])
        assert len(agent.calls) == 2
        assert worktrees(root) == [str(root), str(ws.path)]
        assert sorted(branches(root)) == [ws.branch, "main"]


def test_without_tests_of_its_own_a_stream_runs_the_suites_on_the_test_files_it_owns(
    tmp_path: Path, git_identity: None
) -> None:
    files = {
        "api/__init__.py": "",
        "api/orders.py": "def create():\n    return None\n",
        "tests/test_api.py": "from api.orders import create\n\ndef test_create():\n"
        "    assert create() == 'ok'\n",
        # Another stream's test, red until that stream is built: not this stream's to pass.
        "tests/test_web.py": "def test_page():\n    assert False\n",
    }
    root = git_init(pytest_project(tmp_path / "repo", files))
    stream = Stream("api", "Orders", "api-endpoint", "Return ok.", ("api/**", "tests/test_api.py"))
    agent = ScriptedAgent(
        by_prompt={
            key("api"): [
                write("api/orders.py", "def create():\n    return 'nope'\n"),
                write("api/orders.py", "def create():\n    return 'ok'\n"),
            ]
        }
    )
    with build(root) as ws:
        config, _ = load_config(ws.root)
        found = suites.discover(ws.root, config)
        (report,) = execute(
            ws,
            Manifest("orders", (stream,)),
            agent=agent,
            integration_branch=ws.branch,
            merge=merge_into(ws, []),
            jobs=1,
            settings=settings(),
            suites=found,
            taken=lambda _port: False,
        )
        assert (report.outcome, report.attempts) == ("built", 2)
        assert "tests/test_api.py::test_create" in agent.prompts[1]
        # And why it failed: on humanize the ids alone hid an AttributeError.
        assert "(AssertionError: assert 'nope' == 'ok'" in agent.prompts[1], agent.prompts[1]
        assert "test_web" not in agent.prompts[1]


def test_a_suite_is_given_only_the_test_files_its_runner_takes(tmp_path: Path) -> None:
    """With pytest and vitest both at the top, a stream's Python tests went to vitest too
    (found by the end-to-end test): each runner now gets its own kind of file."""
    from agentloop.build.execute import _runs

    pytest_suite = suites.Suite("pytest", "pytest", "pytest-json", tmp_path, 60, runner="pytest")
    vitest_suite = suites.Suite("vitest", "vitest", "vitest-json", tmp_path, 60, runner="vitest")
    custom = suites.Suite("make", "make test", "junit", tmp_path, 60, report="r.xml")
    assert _runs(pytest_suite, "models/test_store.py")
    assert not _runs(vitest_suite, "models/test_store.py")
    assert _runs(vitest_suite, "web/app.test.ts")
    assert not _runs(pytest_suite, "web/app.test.ts")
    assert not _runs(custom, "models/test_store.py")
