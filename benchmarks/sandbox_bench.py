"""What the OS sandbox costs per agent session, measured side by side in one run.

What it measures
----------------
One agent session, as `agentloop run` starts it (ClaudeCodeAgent: the real Claude Code CLI
bundled in claude-agent-sdk, the scripted model on 127.0.0.1 standing in for Claude), in a
git worktree of a small pytest project. The scripted session makes the calls a typical fix
makes: it reads the failing test and the code, runs the test with pytest, edits the code,
runs the test again and `git diff` — four Bash commands, a Read and an Edit. Each session
runs twice per round, once with the sandbox policy (`sandboxed=True`: bubblewrap on Linux)
and once with the same policy minus the sandbox (`--no-sandbox`: permission rules only),
the order alternating each round so neither side always goes first. Reported: the median,
min and max wall time of a whole session on each side, the median ratio of the paired
times, and the extra seconds per Bash command.

Before timing, it checks that the sandbox really is on: a write to a forbidden path from
Bash must fail inside it and succeed without it; the script exits non-zero otherwise.

How to run it
-------------
    .venv/bin/python benchmarks/sandbox_bench.py              # 10 rounds
    .venv/bin/python benchmarks/sandbox_bench.py --rounds 3   # smoke run

It needs bwrap and socat on Linux (`make sandbox-deps`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentloop.agents import sandbox
from agentloop.agents.base import SessionLimits
from agentloop.agents.claude import ClaudeCodeAgent
from agentloop.rails.paths import DEFAULT_FORBIDDEN, DEFAULT_SECRETS, ForbiddenPaths
from agentloop.testing.model_server import CWD, Match, ModelServer, Text, ToolUse, Turn, offline_env
from agentloop.testing.repos import git_init, pytest_project

PROJECT = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "auth/__init__.py": "",
    "auth/token.py": "TOKEN = 1\n",
    "tests/test_ops.py": "from calc import ops\n\ndef test_add():\n    assert ops.add(2, 3) == 5\n",
}
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_ops.py"
BASH_CALLS = 4


def session_script() -> list[Turn]:
    calls = [
        ToolUse("Read", {"file_path": f"{CWD}/tests/test_ops.py"}),
        ToolUse("Read", {"file_path": f"{CWD}/calc/ops.py"}),
        ToolUse("Bash", {"command": f"{PYTEST} || true"}),
        ToolUse(
            "Edit",
            {"file_path": f"{CWD}/calc/ops.py", "old_string": "a - b", "new_string": "a + b"},
        ),
        ToolUse("Bash", {"command": PYTEST}),
        ToolUse("Bash", {"command": "git diff --stat"}),
        ToolUse("Bash", {"command": "git status --short"}),
    ]
    turns = [Turn([call], match=Match(assistant_turns=n)) for n, call in enumerate(calls)]
    return [*turns, Turn([Text("Fixed.")], match=Match(assistant_turns=len(calls)))]


def one_session(top: Path, home: Path, sandboxed: bool, turns: list[Turn]) -> float:
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=top, check=True)
    forbidden = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN, root=str(top))
    policy = sandbox.build_policy(
        top=top, repo=top, forbidden=forbidden, secrets=DEFAULT_SECRETS, home=home,
        sandboxed=sandboxed,
    )  # fmt: skip
    with ModelServer(turns) as server:
        env = {**os.environ, **offline_env(home, server.base_url)}
        started = time.perf_counter()
        result = ClaudeCodeAgent().run(
            "fix the failing test", cwd=top, limits=SessionLimits(max_turns=20), env=env,
            policy=policy,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"session failed ({'with' if sandboxed else 'without'} sandbox): {result}")
    return elapsed


def sandbox_holds(top: Path, home: Path) -> bool:
    """A Bash write into auth/ fails in the sandbox and succeeds without it."""
    probe = [
        Turn([ToolUse("Bash", {"command": "echo x >> auth/token.py; echo rc=$?"})],
             match=Match(assistant_turns=0)),
        Turn([Text("done")], match=Match(assistant_turns=1)),
    ]  # fmt: skip
    outcomes = []
    for sandboxed in (True, False):
        subprocess.run(["git", "checkout", "-q", "--", "."], cwd=top, check=True)
        one_session(top, home, sandboxed, probe)
        outcomes.append((top / "auth" / "token.py").read_text() != PROJECT["auth/token.py"])
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=top, check=True)
    return outcomes == [False, True]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    why = sandbox.unavailable()
    if why is not None:
        print(f"no sandbox here: {why}; run `make sandbox-deps`", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="agentloop-bench-") as tmp:
        top = git_init(pytest_project(Path(tmp) / "repo", PROJECT))
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ.update(
            {k: v for k, v in {
                "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@e",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@e",
            }.items()}
        )  # fmt: skip
        if not sandbox_holds(top, home):
            print("the sandbox did not stop a write to auth/: not measuring", file=sys.stderr)
            return 1
        turns = session_script()
        one_session(top, home, True, turns)  # warm the page cache for both sides
        with_s, without_s = [], []
        for n in range(args.rounds):
            order = (True, False) if n % 2 == 0 else (False, True)
            times = {sandboxed: one_session(top, home, sandboxed, turns) for sandboxed in order}
            with_s.append(times[True])
            without_s.append(times[False])
            print(f"round {n + 1}: sandbox {times[True]:.2f} s, none {times[False]:.2f} s")
    ratios = [a / b for a, b in zip(with_s, without_s, strict=True)]
    extra = statistics.median(a - b for a, b in zip(with_s, without_s, strict=True))
    for name, values in (("with the sandbox", with_s), ("without", without_s)):
        print(
            f"{name:>16}: median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f}) over {len(values)} sessions"
        )
    print(f"extra per Bash command: {extra / BASH_CALLS * 1000:.0f} ms ({BASH_CALLS} per session)")
    print(
        f"sandbox / no sandbox, per session: {statistics.median(ratios):.2f}x "
        f"(+{extra:.2f} s median of paired differences)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
