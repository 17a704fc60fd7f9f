"""Test helpers: run `agentloop detect --json` on a throwaway project and read what it printed.

`detect` runs the CLI in a subprocess (see `agentloop.testing.repos.run_cli`) and returns a
`DetectRun`; `failures`, `by_test_id` and `schema_errors` read its JSON document;
`run_selector` re-runs a printed selector as a user would, and `junit_cases` / `ran` read the
JUnit report such a re-run writes. `check_flaky_split` is the flaky / order-dependent check
that the jest and vitest tests share.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop.testing.repos import agentloop_env, run_cli

# What the jest and vitest tests add to `agentloop_env`: the runners' CI mode, no colour.
NPM_RUNNER_ENV: Mapping[str, str] = {"NO_COLOR": "1", "CI": "1"}
# The placeholder `check_flaky_split` replaces with the path of its run counter (as JSON).
COUNTER_PLACEHOLDER = "__COUNTER__"


@dataclass(frozen=True)
class DetectRun:
    """One `agentloop detect --json` run: the project, the home it was isolated in, the
    environment it ran with (re-run a printed selector with it), and what it returned."""

    project: Path
    home: Path
    env: dict[str, str]
    returncode: int
    doc: dict[str, Any]
    stderr: str


def detect(
    project: Path,
    home: Path,
    *flags: str,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> DetectRun:
    """`agentloop detect --json FLAGS` inside project, with home (created if missing) as HOME
    and extra_env on top of `agentloop_env`. Fails the test when it prints no JSON; the exit
    code is the caller's to check."""
    home.mkdir(parents=True, exist_ok=True)
    done = run_cli(
        "detect", "--json", *flags, cwd=project, home=home, extra_env=extra_env, timeout=timeout
    )
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"detect printed no JSON (exit {done.returncode})\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return DetectRun(
        project=project,
        home=home,
        env=agentloop_env(home, extra_env),
        returncode=done.returncode,
        doc=doc,
        stderr=done.stderr,
    )


def failures(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every failure of every task, in task order."""
    return [failure for task in doc["tasks"] for failure in task["failures"]]


def by_test_id(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The failures of every task, by test id."""
    return {failure["test_id"]: failure for failure in failures(doc)}


@cache
def _detect_validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath("detect.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(doc: Mapping[str, Any]) -> list[str]:
    """Where doc breaks the packaged detect schema (`path: message`); empty when it is valid."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in _detect_validator().iter_errors(doc)
    ]


def run_selector(
    command: str, *, cwd: Path, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a printed selector (plus whatever the caller appended) through the shell, as a user
    pasting it would: stdin closed, output captured, the exit code left to the caller."""
    return subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def junit_cases(report: Path) -> list[ET.Element]:
    """Every <testcase> of a JUnit XML report, in document order."""
    return list(ET.parse(report).getroot().iter("testcase"))


def ran(case: ET.Element) -> bool:
    """Whether a JUnit <testcase> ran (was not skipped)."""
    return case.find("skipped") is None


def check_flaky_split(
    tmp_path: Path,
    make_project: Callable[[Path, Mapping[str, str]], Path],
    files: Mapping[str, str],
    *,
    flaky_id: str,
    order_id: str,
    real_id: str,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Check that detect sets a flaky test apart, and makes an order-dependent one a task
    beside a real failure.

    `files` are written by make_project(dest, files), each with COUNTER_PLACEHOLDER replaced
    by the path of a run counter outside the project (as a JSON string). flaky_id must fail
    on odd-numbered runs and pass on even ones, counting in that file, so that with two
    re-runs it fails, passes, fails; order_id must fail only after another test of its file
    ran; real_id must fail every time.

    This module's asserts are not rewritten by pytest, so each names what it found.
    """
    counter = tmp_path / "runs.txt"
    counted = json.dumps(str(counter))
    written = {name: text.replace(COUNTER_PLACEHOLDER, counted) for name, text in files.items()}
    project = make_project(tmp_path / "flaky", written)

    run = detect(project, tmp_path / "home", "--flaky-reruns", "2", extra_env=extra_env)

    errors = schema_errors(run.doc)
    assert errors == [], errors
    # The suite run and exactly two re-runs alone: fail, pass, fail.
    runs = counter.read_text(encoding="utf-8")
    assert runs == "3", runs
    flaky = {entry["failure"]["test_id"]: entry for entry in run.doc["flaky"]}
    found = {test_id: (e["kind"], e["reruns"], e["passes"]) for test_id, e in flaky.items()}
    assert found == {flaky_id: ("flaky", 2, 1)}, found
    # The order-dependent test fails again with its whole file: a task, like the real one.
    left = by_test_id(run.doc)
    assert set(left) == {real_id, order_id}, set(left)
    assert left[real_id]["order_dependent"] is False, left[real_id]
    victim = left[order_id]
    # vitest and jest cannot run a chosen subset of tests in a chosen order: no polluter,
    # and the selector reproduces it with the whole file.
    assert (victim["order_dependent"], victim["polluter"]) == (True, None), victim
    assert victim["selector"] is not None, victim
    assert " -t " not in victim["selector"], victim
    summary = run.doc["summary"]
    assert summary == {
        "failures": 2,
        "tasks": len(run.doc["tasks"]),
        "flaky": 1,
        "order_dependent": 1,
        "green": False,
    }, summary
    assert run.returncode == 1, run.stderr
