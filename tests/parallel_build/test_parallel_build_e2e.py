"""`agentloop parallel-build --manifest build.yaml` end to end: the real Claude Code CLI
bundled in claude-agent-sdk against the scripted Messages API, on a real repository with a
Python backend (pytest) and a TypeScript frontend (vitest), four streams.

One run, because every session is a real CLI process: the suite's time budget allows one.
It shows what the issue's acceptance asks for: the three streams after the contracts are
built at the same time (their recorded intervals overlap); a stream that writes outside
what it owns is rejected and its next attempt lands; that stream's try at changing the
contract never reaches the result (the contract's text is what the contracts stream
wrote); the result is one commit that passes both suites run on their own; no worktree or
branch of the build is left, and the user's checkout is as it was.

Why the contract is kept before integration rather than by a merge conflict: a stream's
edit of a contract file is refused as it is made (permission rules, guard, sandbox) and
any change of it that got through is rejected by the diff check after the attempt, so no
built stream carries one; integrate.py's "contract wins" is for a branch that does, and is
tested in process (tests/parallel_build/test_integrate.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

from agentloop.testing.build_fixture import (
    CONTRACT_PY,
    CONTRACT_TS,
    MANIFEST_FILE,
    STREAM_FILES,
    STREAMS,
    fullstack_repo,
)
from agentloop.testing.model_server import CWD, Match, ModelServer, Text, ToolUse, Turn, offline_env
from agentloop.testing.npm import make_vitest_project
from agentloop.testing.repos import run_cli

NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm"

# Each turn answers after this long: sessions take seconds, as a model's do, so streams
# built one after another could not overlap by accident of timing.
DELAY_S = 1.0
# What api's first attempt writes outside backend/**: a file at the top, by a script of
# its own (the guard sees a shell command's own targets, not a program's).
STRAY = "openapi.json"
GENERATOR = "backend/gen_openapi.py"
GENERATE = f"from pathlib import Path\n\nPath('{STRAY}').write_text('{{}}')\n"
CONTRACT_EDIT = "toolu_contract_edit"


def git_out(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def snapshot(root: Path) -> dict[str, Any]:
    """What the user has in their checkout: every file's bytes (outside .git and
    agentloop's own .agentloop/), HEAD, the branch, the status and the stash."""
    files = {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not {".git", ".agentloop", "node_modules", "__pycache__"}
        & set(p.relative_to(root).parts)
    }
    return {
        "files": files,
        "head": git_out(root, "rev-parse", "HEAD"),
        "branch": git_out(root, "branch", "--show-current"),
        "status": git_out(root, "status", "--porcelain", "--untracked-files=all"),
        "stash": git_out(root, "stash", "list"),
    }


def key(stream: str) -> str:
    """What only `stream`'s prompts contain (build/prompts/stream.md)."""
    return f"## Your stream: {stream} ("


def turn(stream: str, number: int, *blocks: Text | ToolUse) -> Turn:
    """The model's `number`th answer (0: the first) in a session of `stream`."""
    return Turn(blocks, match=Match(prompt=key(stream), assistant_turns=number), delay_s=DELAY_S)


def writes(stream: str) -> list[ToolUse]:
    return [
        ToolUse("Write", {"file_path": f"{CWD}/{path}", "content": text})
        for path, text in STREAM_FILES[stream].items()
    ]


def one_session(stream: str) -> list[Turn]:
    """Write the stream's files, then say so."""
    return [turn(stream, 0, *writes(stream)), turn(stream, 1, Text(f"{stream} is built."))]


# api's first attempt writes its files, tries to raise the contract's title limit (an
# Edit of contracts/todo.py: refused, it is the contracts stream's) and has a script write
# openapi.json at the top, which no stream owns: the attempt is rejected for that. Its
# second attempt (the turns below are used up by then) writes only backend/**.
TRIED_CONTRACT = "TITLE_MAX = 200"
API_FIRST = [
    turn(
        "api",
        0,
        ToolUse("Read", {"file_path": f"{CWD}/contracts/todo.py"}),
        *writes("api"),
    ),
    turn(
        "api",
        1,
        ToolUse(
            "Edit",
            {
                "file_path": f"{CWD}/contracts/todo.py",
                "old_string": "TITLE_MAX = 80",
                "new_string": TRIED_CONTRACT,
            },
            id=CONTRACT_EDIT,
        ),
        ToolUse("Write", {"file_path": f"{CWD}/{GENERATOR}", "content": GENERATE}),
    ),
    turn("api", 2, ToolUse("Bash", {"command": f"python {GENERATOR} && echo generated"})),
    turn("api", 3, Text("api is built, with its OpenAPI document.")),
]


SCRIPT = [
    *one_session("contracts"),
    *API_FIRST,
    *one_session("api"),
    *one_session("web"),
    *one_session("model"),
]


def run_build(root: Path, home: Path) -> tuple[subprocess.CompletedProcess[str], ModelServer]:
    with ModelServer(SCRIPT) as server:
        done = run_cli(
            "parallel-build", "--manifest", MANIFEST_FILE, "--jobs", "4", "--json",
            cwd=root, home=home, timeout=400,
            extra_env=offline_env(home, server.base_url),
        )  # fmt: skip
    return done, server


def checkout(root: Path, commit: str, dest: Path) -> Path:
    """The commit's tree at `dest`, outside git (no worktree to clean up), with vitest
    linked in as the fixture has it."""
    make_vitest_project(dest, {}, NPM_CACHE)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=root, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def suites_pass(tree: Path) -> tuple[subprocess.CompletedProcess[str], ...]:
    common: dict[str, Any] = {"cwd": tree, "capture_output": True, "text": True, "timeout": 180}
    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], check=False, **common
    )
    vitest_run = subprocess.run(["node_modules/.bin/vitest", "run"], check=False, **common)
    return pytest_run, vitest_run


def test_four_streams_build_in_parallel_and_land_as_one_green_commit(tmp_path: Path) -> None:
    root = fullstack_repo(tmp_path / "repo", NPM_CACHE)
    base = git_out(root, "rev-parse", "HEAD").strip()
    before = snapshot(root)

    done, server = run_build(root, tmp_path / "home")

    assert done.returncode == 0, (done.stdout, done.stderr)
    doc = json.loads(done.stdout)
    streams = {s["id"]: s for s in doc["streams"]}
    assert sorted(streams) == sorted(STREAMS)
    assert {s: streams[s]["outcome"] for s in STREAMS} == dict.fromkeys(STREAMS, "built")

    # The contracts first; then api, web and model at once.
    contracts_done = streams["contracts"]["finished_s"]
    wave = [streams[s] for s in ("api", "web", "model")]
    assert all(s["started_s"] >= contracts_done for s in wave), doc["streams"]
    assert max(s["started_s"] for s in wave) < min(s["finished_s"] for s in wave), doc["streams"]
    assert doc["wall_s"] < doc["serial_estimate_s"], doc

    # api's first attempt wrote where no stream may, and was rejected; its second landed.
    assert streams["api"]["attempts"] == 2, streams["api"]
    assert streams["api"]["violations"] == [STRAY], streams["api"]
    for other in ("contracts", "web", "model"):
        assert (streams[other]["attempts"], streams[other]["violations"]) == (1, []), other
    # Its edit of the contract was refused as it was made.
    (edit,) = [r for r in server.tool_results() if r.tool_use_id == CONTRACT_EDIT]
    assert edit.is_error, edit

    # Exactly one new commit on the build's branch, on top of where the user was.
    branch, commit = doc["branch"], doc["commit"]
    assert git_out(root, "rev-list", f"{base}..{branch}").split() == [commit]
    assert git_out(root, "rev-parse", f"{commit}^").strip() == base
    integration = doc["integration"]
    assert integration["remaining"] in ([], 0), integration

    # Its tree: every stream's files, the contract as the contracts stream wrote it, and
    # nothing of the rejected attempt.
    for files in STREAM_FILES.values():
        for path, text in files.items():
            assert git_out(root, "show", f"{commit}:{path}") == text, path
    assert git_out(root, "show", f"{commit}:contracts/todo.py") == CONTRACT_PY
    assert git_out(root, "show", f"{commit}:contracts/todo.ts") == CONTRACT_TS
    assert TRIED_CONTRACT not in git_out(root, "grep", "-h", "TITLE_MAX", commit, "--")
    assert STRAY not in git_out(root, "ls-tree", "-r", "--name-only", commit).split()

    # Nothing of the build is left but its branch; the user's checkout is as it was.
    worktrees = git_out(root, "worktree", "list", "--porcelain")
    assert [line for line in worktrees.splitlines() if line.startswith("worktree ")] == [
        f"worktree {root}"
    ]
    assert git_out(root, "branch", "--list", "agentloop/build-*").split() == [branch]
    assert snapshot(root) == before

    # The commit passes both suites, run on a checkout of it alone.
    pytest_run, vitest_run = suites_pass(checkout(root, commit, tmp_path / "result"))
    assert pytest_run.returncode == 0, pytest_run.stdout + pytest_run.stderr
    assert "5 passed" in pytest_run.stdout, pytest_run.stdout
    assert vitest_run.returncode == 0, vitest_run.stdout + vitest_run.stderr
    assert "3 passed" in vitest_run.stdout, vitest_run.stdout
