"""Build throwaway projects for tests: real files, real git, real pytest."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

PYPROJECT = """\
[project]
name = "fixture"
version = "0"

[tool.pytest.ini_options]
pythonpath = ["."]
"""


SRC_LAYOUT_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "tinypkg"
version = "0"

[tool.hatch.build.targets.wheel]
packages = ["src/tinypkg"]
# A .pth entry pointing at src/, as setuptools writes for a src layout.
dev-mode-dirs = ["src"]
"""
"""pyproject.toml of `tinypkg`, a hatchling project with its package under src/, for
`editable_install`."""


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


# Tests run with an isolated HOME, so no .gitconfig: commits need a name from somewhere.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "agentloop tests",
    "GIT_AUTHOR_EMAIL": "tests@agentloop.invalid",
    "GIT_COMMITTER_NAME": "agentloop tests",
    "GIT_COMMITTER_EMAIL": "tests@agentloop.invalid",
}


def _identity_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_IDENTITY)
    return env


def _git_steps(root: Path, *steps: list[str]) -> None:
    for args in steps:
        subprocess.run(
            ["git", *args], cwd=root, env=_identity_env(), check=True, capture_output=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


def git_init(root: Path) -> Path:
    """Make root a git repository with everything committed."""
    _git_steps(root, ["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"])
    return root


def commit_all(root: Path, message: str) -> None:
    """Commit everything in root's work tree, as the tests' identity (HOME is isolated, so
    no user identity exists)."""
    _git_steps(root, ["add", "-A"], ["commit", "-q", "-m", message])


def _site_packages(module: str) -> str:
    """The directory this interpreter imports the package `module` from."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module named {module!r}", name=module)
    return str(Path(spec.origin).parents[1])


def editable_install(
    project: Path,
    venv: Path,
    *,
    site_packages_for: Sequence[str] = (),
    also: Sequence[Path] = (),
) -> Path:
    """`pip install -e project` into a new venv of its own at `venv`; return its python.

    No network: pip and hatchling (which must be importable here) come from this
    interpreter's environment for the install step only, so the venv ends up with nothing
    but the editable project, the local projects in `also` (installed as a user's
    dependencies are, not editable), plus, through a .pth file, the site-packages of each
    module in `site_packages_for` (as if those were installed there too)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    tools = os.pathsep.join(dict.fromkeys(_site_packages(m) for m in ("hatchling", "pip")))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PIP_", "PYTHON"))}
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation",
         "--no-cache-dir", "--disable-pip-version-check", "-e", str(project),
         *map(str, also)],
        check=True, capture_output=True, env={**env, "PYTHONPATH": tools},
    )  # fmt: skip
    if site_packages_for:
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        lines = dict.fromkeys(_site_packages(m) for m in site_packages_for)
        (Path(site) / "zz_test_tools.pth").write_text("".join(f"{d}\n" for d in lines))
    return python


def agentloop_env(home: Path, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for running the agentloop CLI in a subprocess, isolated from the real
    home, with this interpreter's environment active (as a user's activated venv), npm
    quiet, no jest-junit settings of the caller's, none of GitHub Actions' (tests run in CI
    must not find its token, its repository or its step summary, nor believe they are
    CI), and extra_env on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTLOOP_", "GIT_", "JEST_JUNIT_", "GITHUB_", "RUNNER_"))
        # A test run from inside Claude Code must not join that session.
        and k not in ("CLAUDE_CODE_SESSION_ID", "CI", "GH_TOKEN")
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
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m agentloop ARGS` as a user would run it: stdin closed (or `input` on it, as
    Claude Code gives a hook its event), output captured, in `agentloop_env(home,
    extra_env)`."""
    return subprocess.run(
        [sys.executable, "-m", "agentloop", *args],
        check=False,
        cwd=cwd,
        env=agentloop_env(home, extra_env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
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


# A small committed project for the git and workspace tests.
SAMPLE_REPO = {
    "README.md": "hello\n",
    "src/app/__init__.py": "VALUE = 1\n",
    "tests/test_app.py": "from app import VALUE\n\ndef test(): assert VALUE == 1\n",
    ".gitignore": "*.log\n",
}


def run_git(cwd: Path, *args: str) -> str:
    """git's stdout, for assertions; --no-optional-locks so looking never touches the index."""
    from agentloop import git

    return subprocess.run(
        ["git", "--no-optional-locks", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env=git.clean_env(),
        stdin=subprocess.DEVNULL,
    ).stdout


def repo_state(root: Path) -> dict[str, object]:
    """What a run must leave exactly as it found in the user's repository besides the
    files: the bytes of `.git/config`, every hook (with its mode) and every `info/` file,
    every ref and what it points at, the stash list and HEAD."""
    git_dir = root / ".git"

    def files(folder: Path) -> dict[str, tuple[bytes, int]]:
        if not folder.is_dir():
            return {}
        return {
            str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    return {
        "config": (git_dir / "config").read_bytes(),
        "hooks": files(git_dir / "hooks"),
        "info": files(git_dir / "info"),
        "refs": run_git(root, "for-each-ref", "--format=%(refname) %(objectname)"),
        "stash": run_git(root, "stash", "list", "--format=%H %gs"),
        "head": (git_dir / "HEAD").read_bytes(),
    }
