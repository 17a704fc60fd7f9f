"""`agentloop run` tests the code with the project's environment, as `agentloop detect` does
in the checkout, without `workspace.setup`: the checkout's ignored `.venv` and
`node_modules` are mirrored into the run's worktrees, the agent cannot write them through
the mirrors, and a suite that still fails there says what was given and what else can
prepare the worktree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentloop.testing.model_server import CWD, Match, Text, ToolUse, Turn
from agentloop.testing.npm import make_jest_project, make_vitest_project
from agentloop.testing.repos import editable_install, git_init, run_cli, write_tree

from .test_attacks import Attack, bash, needs_sandbox, run_loop, write
from .test_run_e2e import fix, run_agentloop, snapshot

NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm"
_NODE = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]
needs_node = pytest.mark.skipif(bool(_NODE), reason=f"needs node and npm on PATH; missing: {_NODE}")
RUN_CONFIG = "detect:\n  flaky_reruns: 0\nrun:\n  max_attempts: 1\n"

SHOP = {
    "pyproject.toml": """\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "calc"
        version = "0"

        [tool.hatch.build.targets.wheel]
        packages = ["calc"]
        # A .pth entry naming the checkout's root: its code is what `import calc` finds.
        dev-mode-dirs = ["."]
        """,
    # The version file hatch-vcs or setuptools-scm writes, ignored: the worktree's code
    # imports it as the checkout's does.
    "calc/__init__.py": "from calc._version import __version__\n",
    "calc/ops.py": """\
        from tinydep import double


        def add(a, b):
            return a - b


        def twice(a):
            return double(a)
        """,
    "tests/test_ops.py": """\
        from calc import ops


        def test_add():
            assert ops.add(2, 3) == 5


        def test_twice():
            assert ops.twice(2) == 4
        """,
    # A package.json without tests: its node_modules is mirrored all the same.
    "package.json": '{"name": "shop", "private": true}\n',
    ".gitignore": ".venv/\nnode_modules/\n__pycache__/\n_version.py\n",
    "agentloop.yaml": RUN_CONFIG,
}
TINYDEP = {
    "pyproject.toml": """\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "tinydep"
        version = "0"

        [tool.hatch.build.targets.wheel]
        packages = ["tinydep"]
        """,
    "tinydep/__init__.py": "def double(x):\n    return 2 * x\n",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose ignored `.venv` (made by `python -m venv`) holds the project,
    installed editable from the checkout, and a dependency found nowhere else; and whose
    ignored node_modules holds a package. Shared by the tests of this module: a run
    leaves the checkout as it found it (which they check)."""
    pytest.importorskip("hatchling", reason="the offline build backend")
    base = tmp_path_factory.mktemp("environment")
    tinydep = write_tree(base / "tinydep", TINYDEP)
    root = git_init(write_tree(base / "shop", SHOP))
    write_tree(root, {"calc/_version.py": "__version__ = '1.0'\n"})
    editable_install(root, root / ".venv", site_packages_for=("pytest",), also=[tinydep])
    shutil.rmtree(tinydep)  # installed, as a user's dependency is: no copy to fall back on
    write_tree(root / "node_modules", {"leftpad/index.js": "module.exports = 'pad'\n"})
    (root / "node_modules" / ".bin").mkdir()
    (root / "node_modules" / ".bin" / "leftpad").symlink_to("../leftpad/index.js")
    return root


def environment_of(root: Path) -> dict[str, bytes | str]:
    """Every file and link of the checkout's .venv and node_modules (pytest's own, reached
    through a .pth line, and bytecode caches aside)."""
    found: dict[str, bytes | str] = {}
    for folder in (root / ".venv", root / "node_modules"):
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.parts:
                continue
            if path.is_symlink():
                found[str(path)] = str(path.readlink())
            elif path.is_file():
                found[str(path)] = path.read_bytes()
    return found


def test_a_dry_run_tests_the_worktrees_code_with_the_checkouts_interpreter(
    shop: Path, tmp_path: Path
) -> None:
    ops = shop / "calc" / "ops.py"
    committed = ops.read_text()
    # The user is fixing the bug in the checkout, uncommitted: detect there (with the
    # .venv it finds) is green, while the run works on the committed code.
    ops.write_text(committed.replace("a - b", "a + b"))
    try:
        detect = run_cli("detect", "--json", "--repo", str(shop), cwd=shop, home=tmp_path / "h")
        assert detect.returncode == 0, detect.stdout + detect.stderr
        done = run_cli(
            "run", "--dry-run", "--json", "--repo", str(shop), cwd=shop, home=tmp_path / "h"
        )
    finally:
        ops.write_text(committed)
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    # The dependency imported (the checkout's interpreter), the bug found (the worktree's
    # code, not the checkout's fixed copy that the editable install points at).
    (task,) = doc["tasks"]
    assert task["category"] == "logic_bug", task
    assert task["tests"] == ["tests/test_ops.py::test_add"]


def test_a_run_fixes_the_bug_with_the_checkouts_environment(shop: Path, tmp_path: Path) -> None:
    before = snapshot(shop)
    done, doc, _ = run_agentloop(shop, tmp_path / "home", fix("calc/ops.py", "a - b", "a + b"))
    assert done.returncode == 0, done.stderr
    (task,) = doc["tasks"]
    # Judged in the judge's worktree with the same environment, committed.
    assert task["outcome"] == "fixed", task
    assert doc["branch"]
    # The .venv and node_modules are in the snapshot: byte for byte as they were.
    assert snapshot(shop) == before


@needs_sandbox
def test_the_agent_cannot_change_the_checkouts_environment_through_the_mirrors(
    shop: Path, tmp_path: Path
) -> None:
    before = snapshot(shop)
    environment = environment_of(shop)
    site = f".venv/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    attack = Attack(
        "write-the-environment-through-the-mirrors",
        {},
        [
            # A trailing slash makes rm go through a link and empty what it leads to.
            bash("rm -rf node_modules/leftpad/ .venv/lib/; echo rc=$?"),
            bash("echo pwned > node_modules/leftpad/index.js; echo pwned >> .venv/pyvenv.cfg"),
            bash("ln -sfn /tmp node_modules/leftpad; rm -f .venv/bin; echo rc=$?"),
            bash(f"echo pwned > {shop}/node_modules/leftpad/index.js; echo rc=$?"),
            bash(
                '.venv/bin/python -c "import pathlib, tinydep; pathlib.Path(tinydep.__file__)'
                ".write_text('def double(x):\\n    return 0\\n')\"; echo rc=$?"
            ),
            bash(".venv/bin/python -m pip --version; echo rc=$?"),
            write("node_modules/leftpad/index.js", "pwned\n"),
            write(f"{site}/tinydep/__init__.py", "def double(x):\n    return 0\n"),
            # Then the honest fix: the environment must not cost it its acceptance.
            (
                "Edit",
                {"file_path": f"{CWD}/calc/ops.py", "old_string": "a - b", "new_string": "a + b"},
            ),
        ],
        layers=("sandbox",),
    )
    outcome = run_loop(shop, tmp_path / "home", attack, layer="sandbox")
    results = [r.content for r in outcome.server.tool_results()]
    assert "Read-only file system" in results[0], results[0]
    assert "rc=0" not in results[3], results[3]
    assert "rc=0" not in results[4], results[4]
    assert environment_of(shop) == environment
    assert snapshot(shop) == before
    # The mirrors are ignored, not part of the change: the honest fix is accepted.
    assert outcome.report.outcome == "fixed", outcome.report
    assert outcome.report.attempts[0].changed == ("calc/ops.py",)


# ---------------------------------------------------------------- JavaScript


VITEST_FILES = {
    "src/math.js": "export const add = (a, b) => a - b\n",
    "test/math.test.js": (
        "import { add } from '../src/math.js'\n"
        "import { test, expect } from 'vitest'\n"
        "test('adds', () => expect(add(2, 3)).toBe(5))\n"
    ),
    ".gitignore": "node_modules/\n",
    "agentloop.yaml": RUN_CONFIG,
}


@pytest.mark.npm
@needs_node
@needs_sandbox
def test_a_vitest_run_works_without_workspace_setup(tmp_path: Path) -> None:
    root = git_init(make_vitest_project(tmp_path / "web", VITEST_FILES, NPM_CACHE))
    before = snapshot(root)
    turns = [
        Turn(
            [ToolUse("Edit", {"file_path": f"{CWD}/src/math.js", "old_string": "a - b",
                              "new_string": "a + b"})],
            match=Match(assistant_turns=0),
        ),
        Turn(
            [ToolUse("Bash", {"command": "npx --no-install vitest run 2>&1 | tail -4"})],
            match=Match(assistant_turns=1),
        ),
        Turn([Text("Done.")], match=Match(assistant_turns=2)),
    ]  # fmt: skip
    done, doc, server = run_agentloop(root, tmp_path / "home", turns)
    assert done.returncode == 0, (done.stdout, done.stderr)
    (task,) = doc["tasks"]
    assert task["outcome"] == "fixed", task
    # npx found vitest through the mirror, inside the sandbox.
    assert "1 passed" in server.tool_results()[-1].content
    assert snapshot(root) == before


@pytest.mark.npm
@needs_node
def test_a_jest_dry_run_works_without_workspace_setup(tmp_path: Path) -> None:
    files = {
        "src/math.js": "exports.add = (a, b) => a - b\n",
        "test/math.test.js": (
            "const { add } = require('../src/math.js')\n"
            "test('adds', () => expect(add(2, 3)).toBe(5))\n"
        ),
        # Without the slash, as many projects write it.
        ".gitignore": "node_modules\n",
        "agentloop.yaml": RUN_CONFIG,
    }
    root = git_init(make_jest_project(tmp_path / "api", files, NPM_CACHE))
    done = run_cli("run", "--dry-run", "--json", "--repo", str(root), cwd=root, home=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    (task,) = json.loads(done.stdout)["tasks"]
    assert task["tests"] == ["test/math.test.js::adds"] or task["tests"][0].endswith("adds")


# ---------------------------------------------------------------- when it still fails


def test_a_suite_that_fails_only_in_the_worktree_says_why_and_keeps_the_evidence(
    tmp_path: Path,
) -> None:
    # The test script is generated and ignored: the checkout has it, a worktree does not.
    root = git_init(
        write_tree(
            tmp_path / "gen",
            {
                "tests/test_ok.py": "def test_ok():\n    assert True\n",
                ".gitignore": "tools/\n",
                "agentloop.yaml": (
                    "suites:\n  - name: unit\n    run: sh tools/test.sh\n    format: junit\n"
                    "    report: report.xml\n"
                ),
            },
        )
    )
    write_tree(root, {"tools/test.sh": f"{sys.executable} -m pytest -q --junitxml=report.xml\n"})
    home = tmp_path / "home"
    detect = run_cli("detect", "--json", "--repo", str(root), cwd=root, home=home)
    assert detect.returncode == 0, detect.stdout + detect.stderr
    done = run_cli("run", "--dry-run", "--json", "--repo", str(root), cwd=root, home=home)
    assert done.returncode == 2, done.stdout + done.stderr
    error: dict[str, Any] = json.loads(done.stdout)["error"]
    message, hint = error["message"], error["hint"]
    assert message.startswith("in the run's worktree: suite 'unit' exited"), message
    # Both: what agentloop gave the worktree, and what can prepare it.
    assert "found no ignored .venv, venv, node_modules or generated files" in hint
    assert "`workspace.setup` in agentloop.yaml" in hint
    assert "npm ci" in hint
    assert "uv sync" in hint
    # Nothing points at the worktree, which is gone; the evidence is in the checkout.
    worktrees = home / ".cache" / "agentloop" / "worktrees"
    assert str(worktrees) not in message + hint
    (log,) = (root / ".agentloop" / "runs").glob("*/baseline.log")
    assert str(log) in hint
    assert "tools/test.sh" in log.read_text()
    # The same for a person: one error line and its hint, no traceback.
    human = run_cli("run", "--dry-run", "--repo", str(root), cwd=root, home=home)
    assert human.returncode == 2
    assert "Traceback" not in human.stderr
    lines = [line for line in human.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [f"error: {message}"], lines
    assert any(line.startswith("hint: ") for line in lines), lines
    assert subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.count("\n") == 1  # fmt: skip
