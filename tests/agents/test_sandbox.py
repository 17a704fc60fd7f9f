"""The OS sandbox of a headless session: which paths it names, whether this machine can run
it, and what it does to real commands run by the real Claude Code CLI (scripted model)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from agentloop.agents import sandbox
from agentloop.agents.base import SessionLimits, SessionResult
from agentloop.agents.claude import ClaudeCodeAgent
from agentloop.rails.paths import DEFAULT_FORBIDDEN, DEFAULT_SECRETS, ForbiddenPaths
from agentloop.testing.model_server import CWD, Match, ModelServer, Text, ToolUse, Turn, offline_env
from agentloop.testing.repos import git_init, pytest_project, write_tree
from agentloop.workspace import Workspace

needs_sandbox = pytest.mark.skipif(
    sandbox.unavailable() is not None,
    reason=f"no OS sandbox here ({sandbox.unavailable()}); `make test` installs one",
)

FILES = {
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "auth/token.py": "TOKEN = 1\n",
    "src/billing/x.py": "B = 1\n",
    "users/hard_delete.py": "D = 1\n",
    ".env": "API_KEY=sk-live-sandbox-secret\n",
    ".gitignore": ".env\n.venv/\nnode_modules/\n__pycache__/\n.pytest_cache/\n",
    ".venv/bin/python": "",
    "web/node_modules/vitest/index.js": "",
    "calc/__pycache__/ops.cpython-311.pyc": "",
    ".pytest_cache/v/cache/nodeids": "[]",
    "tests/test_tmp.py": """\
        def test_tmp(tmp_path):
            (tmp_path / "x").write_text("ok")
            assert (tmp_path / "x").read_text() == "ok"
        """,
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_init(pytest_project(tmp_path / "repo", FILES))


def policy_for(repo: Path, home: Path, *, sandboxed: bool = True) -> sandbox.Policy:
    forbidden = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN, root=str(repo))
    return sandbox.build_policy(
        top=repo, repo=repo, forbidden=forbidden, secrets=DEFAULT_SECRETS, home=home,
        sandboxed=sandboxed,
    )  # fmt: skip


def test_the_policy_names_existing_paths_absolutely(repo: Path, tmp_path: Path) -> None:
    policy = policy_for(repo, tmp_path / "home")
    denied = {p.relative_to(repo).as_posix() for p in policy.deny_write if p.is_relative_to(repo)}
    # The git directory, each forbidden directory as a whole, forbidden files, the rails'
    # own files whether they exist or not, and the environments tests import from.
    assert {".git", "auth", "src/billing", "users/hard_delete.py", ".env"} <= denied
    assert {"agentloop.yaml", ".agentloop", ".claude/settings.json"} <= denied
    # Everything ignored that is there when the session starts (web/ holds only an ignored
    # node_modules, so git names web/ itself), caches excepted.
    assert {".venv", "web"} <= denied
    assert not any("__pycache__" in p or ".pytest_cache" in p for p in denied)
    assert "calc" not in denied
    assert "calc/ops.py" not in denied
    assert repo / ".env" in policy.deny_read
    assert tmp_path / "home" / ".ssh" in policy.deny_read
    settings = sandbox.settings(policy)
    fs = settings["sandbox"]["filesystem"]
    # Claude Code honours only `//`-absolute paths there (relative ones protect nothing).
    assert all(p.startswith("//") for p in fs["denyWrite"] + fs["denyRead"] + fs["allowWrite"])
    assert fs["allowWrite"] == [f"/{repo}"]
    assert settings["sandbox"]["failIfUnavailable"] is True
    assert settings["sandbox"]["allowUnsandboxedCommands"] is False
    assert settings["sandbox"]["network"]["allowedDomains"] == []
    deny = settings["permissions"]["deny"]
    assert f"Edit(/{repo}/**/auth/**)" in deny
    assert f"Read(/{repo}/**/.env*)" in deny
    assert f"Edit(/{repo}/.git/**)" in deny


def test_the_checkouts_environment_is_denied_where_its_links_lead(tmp_path: Path) -> None:
    # A run's worktree holds the checkout's .venv and node_modules as mirrors (real
    # directories of links): a denied link protects only itself, so its targets are named.
    store = write_tree(tmp_path / "store", {"stored/index.js": ""})
    checkout = git_init(
        write_tree(
            tmp_path / "checkout",
            {
                ".gitignore": ".venv/\nnode_modules/\n",
                "package.json": "{}",
                "packages/local/index.js": "",
                ".venv/pyvenv.cfg": "",
                ".venv/lib/dep.py": "",
                "node_modules/leftpad/index.js": "",
            },
        )
    )
    (checkout / ".venv/bin").mkdir()
    (checkout / ".venv/bin/python").symlink_to(sys.executable)
    (checkout / "node_modules/stored").symlink_to(store / "stored")
    (checkout / "node_modules/@app").mkdir()
    (checkout / "node_modules/@app/local").symlink_to("../../packages/local")
    with Workspace.open(checkout) as ws:
        assert ws.linked == (".venv", "node_modules")
        denied = set(policy_for(ws.path, tmp_path / "home").deny_write)
        top = ws.path.resolve()
        assert {top / ".venv", top / "node_modules"} <= denied
        real = checkout.resolve()
        assert {real / ".venv", real / "node_modules", store.resolve() / "stored"} <= denied
        # The worktree's own workspace package is the agent's to fix.
        assert not any(p == top / "packages" or top / "packages" in p.parents for p in denied)


def test_no_sandbox_keeps_the_permission_rules(repo: Path, tmp_path: Path) -> None:
    settings = sandbox.settings(policy_for(repo, tmp_path / "home", sandboxed=False))
    assert "sandbox" not in settings
    assert f"Edit(/{repo}/**/auth/**)" in settings["permissions"]["deny"]


def test_file_tools_are_scoped_to_the_worktree(tmp_path: Path) -> None:
    rules = sandbox.scoped_tools(("Bash", "Read", "Edit", "Write", "Bash(git diff *)"), tmp_path)
    assert rules == ("Bash", "Read", f"Edit(/{tmp_path}/**)", "Bash(git diff *)")


# ------------------------------------------------------------------ is there one


def _bin(tmp_path: Path, fake_bwrap: str | None, socat: bool = True) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    if fake_bwrap is not None:
        (folder / "bwrap").write_text(f"#!/bin/sh\n{fake_bwrap}\n")
        (folder / "bwrap").chmod(0o755)
    if socat:
        (folder / "socat").write_text("#!/bin/sh\nexit 0\n")
        (folder / "socat").chmod(0o755)
    return str(folder)


@pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap is the Linux sandbox")
def test_what_is_missing_is_named(tmp_path: Path) -> None:
    sandbox._bwrap_works.cache_clear()
    assert sandbox.unavailable({"PATH": _bin(tmp_path, None, socat=False)}) == (
        "bwrap and socat not found on PATH"
    )
    failing = "echo 'bwrap: No permissions to create new namespace' >&2; exit 1"
    (tmp_path / "bin").rename(tmp_path / "old")
    why = sandbox.unavailable({"PATH": _bin(tmp_path, failing)})
    assert (
        why == "bwrap cannot create a sandbox here: bwrap: No permissions to create new namespace"
    )
    with pytest.raises(sandbox.SandboxUnavailable) as raised:
        sandbox.require({"PATH": str(tmp_path / "bin")})
    assert "--no-sandbox" in (raised.value.hint or "")


def run(
    turns: Sequence[Turn],
    repo: Path,
    home: Path,
    *,
    path: str | None = None,
    tools: Sequence[str] = ("Bash", "Read", "Edit", "Grep", "Glob"),
) -> tuple[SessionResult, ModelServer]:
    with ModelServer(turns) as server:
        env = {**os.environ, **offline_env(home, server.base_url)}
        if path is not None:
            env["PATH"] = path
        result = ClaudeCodeAgent().run(
            "go", cwd=repo, limits=SessionLimits(max_turns=10, allowed_tools=tuple(tools)), env=env,
            policy=policy_for(repo, home),
        )  # fmt: skip
    return result, server


def bash(*commands: str) -> list[Turn]:
    turns = [
        Turn([ToolUse("Bash", {"command": c})], match=Match(assistant_turns=n))
        for n, c in enumerate(commands)
    ]
    return [*turns, Turn([Text("done")], match=Match(assistant_turns=len(commands)))]


@needs_sandbox
def test_the_cli_refusing_to_start_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    git = shutil.which("git")
    assert git is not None
    folder = Path(_bin(tmp_path, None, socat=False))
    (folder / "git").symlink_to(git)
    with pytest.raises(sandbox.SandboxUnavailable) as raised:
        run(bash("echo hi"), repo, tmp_path / "home", path=str(folder))
    assert "refused to start without its sandbox" in raised.value.message
    assert "bubblewrap" in raised.value.message


# ------------------------------------------------------------------ real commands


@needs_sandbox
def test_commands_cannot_write_outside_their_places_nor_read_secrets(
    repo: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    result, server = run(
        bash(
            "echo x >> auth/token.py; echo rc=$?",
            "git -c user.name=a -c user.email=b commit -qam x; echo rc=$?",
            "git config alias.p push; echo rc=$?",
            "cat .env; echo rc=$?",
            f"echo x > {tmp_path}/outside; echo rc=$?",
            "echo x > .venv/bin/python; echo rc=$?",
            "echo ok > calc/new.py && echo wrote",
            f"curl -s -m 5 {os.environ.get('ANTHROPIC_BASE_URL', 'http://127.0.0.1:9')} "
            "|| echo no-network",
            "env | grep -c sk-ant-offline-model-server || echo no-key",
        ),
        repo,
        home,
    )
    outputs = [r.content for r in server.tool_results()]
    assert result.ok, result
    assert "Read-only file system" in outputs[0]
    assert "Read-only file system" in outputs[1] or "index.lock" in outputs[1]
    assert "could not lock config file" in outputs[2]
    assert "sk-live-sandbox-secret" not in outputs[3]
    assert "Read-only file system" in outputs[4]
    assert "Read-only file system" in outputs[5]
    assert "wrote" in outputs[6]
    assert "no-network" in outputs[7]
    # The model API key reaches the CLI through a file the commands cannot see.
    assert outputs[8].strip().endswith("no-key"), outputs[8]
    assert (repo / "auth" / "token.py").read_text() == "TOKEN = 1\n"
    assert not (tmp_path / "outside").exists()
    assert (repo / "calc" / "new.py").read_text() == "ok\n"


@needs_sandbox
def test_tests_run_inside_the_sandbox(repo: Path, tmp_path: Path) -> None:
    result, server = run(
        bash(f"{sys.executable} -m pytest -q tests/test_tmp.py 2>&1 | tail -3"),
        repo,
        tmp_path / "home",
    )
    (output,) = [r.content for r in server.tool_results()]
    assert "1 passed" in output, output
    assert result.ok


@needs_sandbox
def test_what_the_cli_leaves_is_removed(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ignore = home / ".config" / "git" / "ignore"
    ignore.parent.mkdir(parents=True)
    ignore.write_text("*.swp\n")
    git_dir = sorted(p.name for p in (repo / ".git").iterdir())
    result, _ = run(bash("echo hi"), repo, home)
    assert result.ok
    # Its mount stubs in .git, and its line in the user's global ignore file, are gone.
    assert sorted(p.name for p in (repo / ".git").iterdir()) == git_dir
    assert not (repo / ".git" / "objects" / "info" / "alternates").exists()
    assert ignore.read_text() == "*.swp\n"


def test_tidy_keeps_what_is_not_the_clis(tmp_path: Path) -> None:
    repo = git_init(write_tree(tmp_path / "repo", {"a.txt": "a\n"}))
    home = tmp_path / "home"
    ignore = home / ".config" / "git" / "ignore"
    ignore.parent.mkdir(parents=True)
    ignore.write_text("*.swp\n")
    with sandbox.tidy(repo, {"HOME": str(home)}) as removed:
        (repo / ".git" / "config.worktree").write_text("")  # a stub: removed
        (repo / ".git" / "notes.txt").write_text("mine\n")  # has bytes: kept
        ignore.write_text("*.swp\n*.log\n")  # not the CLI's line: kept
    assert not (repo / ".git" / "config.worktree").exists()
    assert (repo / ".git" / "notes.txt").read_text() == "mine\n"
    assert ignore.read_text() == "*.swp\n*.log\n"
    assert removed == [repo / ".git" / "config.worktree"]


def test_tidy_of_sessions_ending_side_by_side_does_not_trip_on_the_same_stub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two jobs' sessions end together: each one's clean-up lists the same new stub, and
    # the other one removes it between this one's look and its unlink.
    repo = git_init(write_tree(tmp_path / "repo", {"a.txt": "a\n"}))
    stub = repo / ".git" / "objects" / "info" / ".claude-sandbox-noreplace"
    looked = sandbox._empty

    def raced(path: Path) -> bool:
        empty = looked(path)
        if path == stub:
            path.unlink()  # the other session's tidy, just now
        return empty

    monkeypatch.setattr(sandbox, "_empty", raced)
    with sandbox.tidy(repo, {"HOME": str(tmp_path / "home")}) as removed:
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("")
    assert not stub.exists()
    assert stub not in removed


@needs_sandbox
def test_the_edit_tools_are_scoped_and_denied_by_permission_rules(
    repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.py"
    calls = [
        ("Write", {"file_path": str(outside), "content": "x"}),
        ("Write", {"file_path": f"{CWD}/auth/token.py", "content": "x"}),
        ("Write", {"file_path": f"{CWD}/.git/hooks/pre-commit", "content": "x"}),
        ("Read", {"file_path": f"{CWD}/.env"}),
        ("Grep", {"pattern": "sk-live", "path": CWD, "output_mode": "content"}),
        ("Write", {"file_path": f"{CWD}/calc/ok.py", "content": "ok\n"}),
    ]
    turns = [
        Turn([ToolUse(name, args)], match=Match(assistant_turns=n))
        for n, (name, args) in enumerate(calls)
    ]
    turns.append(Turn([Text("done")], match=Match(assistant_turns=len(calls))))
    # Write allowed too, as a user's agent.allowed_tools may: still only in the worktree.
    _, server = run(turns, repo, tmp_path / "home", tools=("Read", "Edit", "Write", "Grep"))
    results = server.tool_results()
    assert [r.is_error for r in results[:4]] == [True] * 4, results
    # The Grep tool ran (it exists in headless sessions) and found nothing: the Read deny
    # rule keeps .env out of its search.
    assert "No such tool" not in results[4].content
    assert "sk-live-sandbox-secret" not in results[4].content
    assert not results[5].is_error
    assert not outside.exists()
    assert (repo / "auth" / "token.py").read_text() == "TOKEN = 1\n"
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert (repo / "calc" / "ok.py").read_text() == "ok\n"


_NODE_TOOLS = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]


@needs_sandbox
@pytest.mark.npm
@pytest.mark.skipif(bool(_NODE_TOOLS), reason=f"needs node and npm; missing: {_NODE_TOOLS}")
def test_vitest_runs_inside_the_sandbox_with_node_modules_read_only(tmp_path: Path) -> None:
    from agentloop.testing.npm import make_vitest_project

    project = make_vitest_project(
        tmp_path / "web",
        {
            "src/math.js": "export const add = (a, b) => a + b\n",
            "test/math.test.js": "import { add } from '../src/math.js'\n"
            "import { test, expect } from 'vitest'\n"
            "test('add', () => expect(add(2, 3)).toBe(5))\n",
            ".gitignore": "node_modules/\n",
        },
        Path(__file__).resolve().parents[2] / ".cache" / "npm",
    )
    git_init(project)
    policy = policy_for(project, tmp_path / "home")
    assert project / "node_modules" in policy.deny_write
    result, server = run(
        bash(
            "node_modules/.bin/vitest run 2>&1 | tail -5",
            "touch node_modules/x; echo rc=$?",
        ),
        project,
        tmp_path / "home",
    )
    first, second = (r.content for r in server.tool_results())
    assert "1 passed" in first, first
    assert "Read-only file system" in second
    assert not (project / "node_modules" / "x").exists()
    assert result.ok
