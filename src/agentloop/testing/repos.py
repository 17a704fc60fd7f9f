"""Build throwaway projects for tests: real files, real git, real pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

PYPROJECT = """\
[project]
name = "fixture"
version = "0"

[tool.pytest.ini_options]
pythonpath = ["."]
"""


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write `files` (relative path → text, dedented) under root and return root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def pytest_project(root: Path, files: Mapping[str, str]) -> Path:
    """A pytest project that imports its own packages from the root without installing."""
    return write_tree(root, {"pyproject.toml": PYPROJECT, **files})


def git_init(root: Path) -> Path:
    """Make root a git repository with everything committed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="agentloop tests",
        GIT_AUTHOR_EMAIL="tests@agentloop.invalid",
        GIT_COMMITTER_NAME="agentloop tests",
        GIT_COMMITTER_EMAIL="tests@agentloop.invalid",
    )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(
            ["git", *args], cwd=root, env=env, check=True, capture_output=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return root


def agentloop_env(home: Path, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for running the agentloop CLI in a subprocess, isolated from the real
    home, with this interpreter's environment active (as a user's activated venv), npm
    quiet, no jest-junit settings of the caller's, and extra_env on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTLOOP_", "GIT_", "JEST_JUNIT_"))
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        CLAUDE_CONFIG_DIR=str(home / ".claude"),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        VIRTUAL_ENV=sys.prefix,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        npm_config_update_notifier="false",
        npm_config_fund="false",
    )
    env.update(extra_env or {})
    return env


def run_cli(
    *args: str,
    cwd: Path,
    home: Path,
    timeout: float = 300,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m agentloop ARGS` as a user would run it: stdin closed, output captured, in
    `agentloop_env(home, extra_env)`."""
    return subprocess.run(
        [sys.executable, "-m", "agentloop", *args],
        check=False,
        cwd=cwd,
        env=agentloop_env(home, extra_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def process_alive(pid: int) -> bool:
    """True while `pid` runs. A killed orphan can linger as a zombie until its new parent
    reaps it (in containers, PID 1 often never does): that counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
