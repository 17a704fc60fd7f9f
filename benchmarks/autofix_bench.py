"""Benchmark a whole autofix run: agentloop against the serial loop and aider, side by side.

What it measures
----------------
One generated repository (benchmarks/autofix_repo.py): ``--bugs`` independent QuixBugs-style
bugs (default 8, each in its own module with its own test module), one bug in a helper
shared by two modules that fails ``--shared`` tests (default 2), one flaky test (fails the
first time it runs, passes afterwards), and filler modules whose passing tests sleep so the
whole suite takes about ``--suite-seconds`` (default 10); failing tests do not sleep.

A scripted model fixes every bug, answering each request after ``--turn-seconds`` (default
2). Every contestant gets a fresh copy of the repository, its own HOME, a fresh script, the
same delay per reply; all run in this one invocation, one after the other:

* ``serial``: the loop the common tools run. Run the whole suite, hand the first failure
  not tried yet to one Claude Code session (the real CLI bundled in claude-agent-sdk,
  through ``agentloop.agents.claude.ClaudeCodeAgent``, no sandbox), re-run the whole suite
  after every edit, until green or every failure was tried once.
* ``jobs1`` / ``jobs4``: ``agentloop run --jobs 1`` / ``--jobs 4`` (n/a while ``agentloop
  run --help`` has no ``--jobs``).
* ``aider``: aider-chat with ``--auto-test --test-cmd 'python -m pytest …'``, driven with
  ``--message /test`` until green (each invocation stops after aider's 3 reflections),
  against the same oracle served as an OpenAI-compatible endpoint on 127.0.0.1
  (benchmarks/openai_oracle.py, ``diff`` edit format). n/a when aider is not installed.

The Claude Code sessions of the oracle take two replies per bug (Read and Edit, then a
final sentence); aider's take two as well (naming the file so aider adds it to the chat,
then the SEARCH/REPLACE block).

Columns: wall time; agent sessions (conversations opened; for aider, its invocations);
model requests; pytest processes that ran the whole suite and those that ran part of it
(a plugin outside the repository, loaded through PYTEST_PLUGINS, logs each pytest
process); the tool's own CPU time as a share of wall time; root causes fixed.

The tool's own CPU: every Python process under a contestant reports its own
``getrusage(RUSAGE_SELF)`` at exit (a sitecustomize outside the repository); the sum over
those that are not pytest is the tool's. That is agentloop's process (all its threads),
the serial loop's driver, aider's process, and any Python helper they start; it leaves out
pytest, the Claude Code CLI (not Python), git, and the scripted model (in this process).

The physical limit is the slowest fixing session's wall time plus one full-suite run, both
measured in the serial loop (the same CLI, the same delays): no schedule can finish before
its slowest fix is written and verified.

How to run it
-------------
    make bench-autofix                                   # the issue's configuration
    .venv/bin/python benchmarks/autofix_bench.py --bugs 2 --suite-seconds 1 --turn-seconds 0
    .venv/bin/python benchmarks/autofix_bench.py --only serial,aider --aider ~/aider/bin/aider

Install aider into a virtual environment of its own (it pins many packages), Python 3.10
to 3.12:  python3.11 -m venv ~/aider && ~/aider/bin/pip install aider-chat
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import autofix_repo
from autofix_repo import Config, Planted, RootCause

from agentloop.testing.model_server import (
    CWD,
    Match,
    ModelServer,
    Text,
    ToolUse,
    Turn,
    offline_env,
)
from agentloop.testing.repos import GIT_IDENTITY, agentloop_env, git_init

CONTESTANTS = ("serial", "jobs1", "jobs4", "aider")
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


@dataclass(frozen=True)
class Result:
    name: str
    label: str
    available: bool
    note: str = ""
    wall_s: float = 0.0
    sessions: int = 0
    requests: int = 0
    full_runs: int = 0
    targeted_runs: int = 0
    other_runs: int = 0  # pytest processes that ran no test (collection only)
    pytest_s: float = 0.0  # wall time inside pytest processes, summed
    tool_cpu_s: float = 0.0
    fixed: int = 0
    causes: int = 0
    regressions: int = 0
    # Serial loop only: what the physical limit is made of.
    session_s: tuple[float, ...] = ()
    full_run_s: tuple[float, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cpu_share(self) -> float:
        return self.tool_cpu_s / self.wall_s if self.wall_s else 0.0


# ---------------------------------------------------------------- the scripted model


def claude_script(causes: Sequence[RootCause], delay: float) -> list[Turn]:
    """Per root cause, one session of two replies: read and fix the file, then say so."""
    turns: list[Turn] = []
    for cause in causes:
        file = f"{CWD}/{cause.path}"
        turns += [
            Turn(
                [
                    Text(f"The bug is in {cause.path}."),
                    ToolUse("Read", {"file_path": file}),
                    ToolUse(
                        "Edit",
                        {"file_path": file, "old_string": cause.buggy, "new_string": cause.fixed},
                    ),
                ],
                match=Match(prompt=cause.key, assistant_turns=0),
                delay_s=delay,
            ),
            Turn(
                [Text(f"Fixed {cause.path}.")],
                match=Match(prompt=cause.key, assistant_turns=1),
                delay_s=delay,
            ),
        ]
    return turns


def fallback(delay: float) -> Turn:
    # Anything unscripted (the flaky test, a second try) gets a short answer, just as slow.
    return Turn([Text("I found nothing to change for this failure.")], delay_s=delay)


# ---------------------------------------------------------------- measuring helpers


def _git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**env, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=True,
    ).stdout


def tree_state(repo: Path) -> str:
    """A hash of the work tree's changes against HEAD (untracked files included)."""
    text = _git(repo, "status", "--porcelain") + _git(repo, "diff", "HEAD")
    return hashlib.sha256(text.encode()).hexdigest()


def junit_failures(path: Path) -> dict[str, str]:
    """Node id → failure text of every failed or erroring test case in a JUnit file."""
    failures: dict[str, str] = {}
    if not path.is_file():
        return failures
    for case in ET.parse(path).iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            continue
        module = case.get("classname", "").replace(".", "/")
        node = f"{module}.py::{case.get('name', '')}"
        failures[node] = f"{problem.get('message', '')}\n{problem.text or ''}".strip()
    return failures


def failing_tests(tree: Path, home: Path) -> set[str]:
    """The tests failing in `tree`, run apart from any contestant (not counted)."""
    with tempfile.TemporaryDirectory(prefix="autofix-bench-check-") as tmp:
        xml = Path(tmp) / "junit.xml"
        env = agentloop_env(home)
        for name in (autofix_repo.LOG_VARIABLE, autofix_repo.CPU_VARIABLE, "PYTEST_PLUGINS"):
            env.pop(name, None)
        env.pop(autofix_repo.STATE_VARIABLE, None)  # the flaky test passes without it
        subprocess.run(
            [*PYTEST, f"--junitxml={xml}"],
            cwd=tree,
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return set(junit_failures(xml))


def score(tree: Path, home: Path, planted: Planted) -> tuple[int, int]:
    """(root causes whose every test passes, previously passing tests that now fail)."""
    failing = failing_tests(tree, home)
    fixed = sum(1 for cause in planted.causes if not failing & set(cause.tests))
    return fixed, len(failing & set(planted.passing))


def branch_tree(repo: Path, branch: str, into: Path) -> Path:
    """The files of `branch` written to `into` (its work tree, without .git)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", branch], cwd=repo, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    return into


@dataclass(frozen=True)
class Counts:
    full: int
    targeted: int
    other: int
    pytest_s: float
    tool_cpu_s: float


def counts(logs: Path, planted: Planted) -> Counts:
    runs = autofix_repo.read_lines(logs / "pytest.jsonl")
    full = sum(1 for r in runs if r["ran"] and r["collected"] >= planted.total)
    targeted = sum(1 for r in runs if r["ran"] and r["collected"] < planted.total)
    other = sum(1 for r in runs if not r["ran"])
    processes = autofix_repo.read_lines(logs / "cpu.jsonl")
    return Counts(
        full=full,
        targeted=targeted,
        other=other,
        pytest_s=sum(r["end"] - r["start"] for r in runs),
        tool_cpu_s=sum(p["cpu"] for p in processes if not p["pytest"]),
    )


@dataclass(frozen=True)
class Arena:
    """One contestant's fresh copy of the repository, its HOME and its logs."""

    root: Path
    tools: Path

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env: dict[str, str] = agentloop_env(self.home)
        env.update(autofix_repo.counting_env(self.tools, self.logs, env))
        env.update(GIT_IDENTITY)
        env.update(extra)
        return env


def arena(base: Path, name: str, pristine: Path, tools: Path) -> Arena:
    place = Arena(base / name, tools)
    shutil.copytree(pristine, place.repo, symlinks=True)
    place.home.mkdir(parents=True)
    return place


def measured(
    name: str,
    label: str,
    place: Arena,
    planted: Planted,
    *,
    tree: Path,
    wall: float,
    sessions: int,
    requests: int,
    note: str = "",
    **more: Any,
) -> Result:
    """A contestant's row: what it was timed at and counted, its logs, and its result
    `tree` scored by a separate pytest run."""
    fixed, regressions = score(tree, place.home, planted)
    c = counts(place.logs, planted)
    return Result(
        name=name,
        label=label,
        available=True,
        note=note,
        wall_s=wall,
        sessions=sessions,
        requests=requests,
        full_runs=c.full,
        targeted_runs=c.targeted,
        other_runs=c.other,
        pytest_s=c.pytest_s,
        tool_cpu_s=c.tool_cpu_s,
        fixed=fixed,
        causes=len(planted.causes),
        regressions=regressions,
        **more,
    )


def timed_out(name: str, label: str, timeout: float) -> Result:
    return Result(name, label, False, f"failed: still running after --timeout {timeout:g} s")


# ---------------------------------------------------------------- contestants


def run_serial(place: Arena, planted: Planted, delay: float, timeout: float) -> Result:
    out = place.root / "serial.json"
    with ModelServer(claude_script(planted.causes, delay), fallback=fallback(delay)) as server:
        env = place.env(offline_env(place.home, server.base_url))
        start = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, __file__, "_serial", str(place.repo), str(out)],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return timed_out("serial", "serial loop", timeout)
        wall = time.monotonic() - start
        requests = len(server.messages_requests())
        sessions = len(server.prompts())
    if done.returncode != 0 or not out.is_file():
        return Result("serial", "serial loop", False, f"failed: {done.stderr.strip()[-400:]}")
    doc = json.loads(out.read_text())
    return measured(
        "serial",
        "serial loop",
        place,
        planted,
        tree=place.repo,
        wall=wall,
        sessions=sessions,
        requests=requests,
        session_s=tuple(s["seconds"] for s in doc["sessions"] if s["changed"]),
        full_run_s=tuple(doc["full_runs"]),
    )


def jobs_supported() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "agentloop", "run", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return "--jobs" in done.stdout


def run_agentloop(
    place: Arena, planted: Planted, delay: float, timeout: float, jobs: int, supported: bool
) -> Result:
    name, label = f"jobs{jobs}", f"agentloop --jobs {jobs}"
    # Before --jobs, agentloop fixed one task at a time: that is --jobs 1.
    flags = ["--jobs", str(jobs)] if supported else []
    if not supported and jobs != 1:
        return Result(name, label, False, "n/a: `agentloop run` has no --jobs yet")
    with ModelServer(claude_script(planted.causes, delay), fallback=fallback(delay)) as server:
        env = place.env(offline_env(place.home, server.base_url))
        start = time.monotonic()
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "agentloop",
                    "run",
                    "--repo",
                    str(place.repo),
                    "--json",
                    *flags,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return timed_out(name, label, timeout)
        wall = time.monotonic() - start
        requests = len(server.messages_requests())
        sessions = len(server.prompts())
    (place.root / "run.json").write_text(done.stdout)
    (place.root / "run.stderr").write_text(done.stderr)
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Result(
            name, label, False, f"no JSON (exit {done.returncode}): {done.stderr.strip()[-400:]}"
        )
    # The fixes are on the run's branch; the checkout is left as it was.
    tree = place.repo
    if doc.get("branch"):
        tree = branch_tree(place.repo, doc["branch"], place.root / "result")
    return measured(
        name,
        label,
        place,
        planted,
        tree=tree,
        wall=wall,
        sessions=sessions,
        requests=requests,
        extra={"exit_code": done.returncode, "stopped_by": doc.get("stopped_by")},
    )


def run_aider(
    place: Arena, planted: Planted, delay: float, timeout: float, aider: str | None
) -> Result:
    import openai_oracle

    label = "aider"
    if aider is None:
        return Result("aider", label, False, "n/a: aider not found; " + AIDER_HINT)
    version = subprocess.run(
        [aider, "--version"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=agentloop_env(place.home),
        check=False,
    ).stdout.strip()
    with openai_oracle.Oracle(planted.causes, delay=delay) as oracle:
        env = place.env(openai_oracle.aider_env(place.home, oracle.base_url))
        argv = [aider, *openai_oracle.aider_args(place.root, oracle.base_url, " ".join(PYTEST))]
        invocations = 0
        unchanged = 0
        start = time.monotonic()
        deadline = start + timeout
        # A user types /test again when aider stops (after 3 reflections, or an answer
        # with no edit): until the suite is green, or twice in a row nothing changed.
        while unchanged < 2 and time.monotonic() < deadline:
            before = tree_state(place.repo)
            invocations += 1
            with (place.root / f"aider-{invocations}.log").open("w") as log:
                try:
                    subprocess.run(
                        [*argv, "--message", "/test"],
                        cwd=place.repo,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        timeout=max(deadline - time.monotonic(), 1),
                        check=False,
                    )
                except subprocess.TimeoutExpired:
                    return timed_out("aider", label, timeout)
            runs = autofix_repo.read_lines(place.logs / "pytest.jsonl")
            if runs and runs[-1]["ran"] and not runs[-1]["failed"]:
                break
            unchanged = unchanged + 1 if tree_state(place.repo) == before else 0
        wall = time.monotonic() - start
        requests = oracle.requests
        exchanges = "".join(json.dumps(e) + "\n" for e in oracle.exchanges)
        (place.root / "oracle.jsonl").write_text(exchanges)
    return measured(
        "aider",
        label,
        place,
        planted,
        tree=place.repo,
        wall=wall,
        sessions=invocations,
        requests=requests,
        note=version,
    )


AIDER_HINT = (
    "install it into its own venv (Python 3.10-3.12): python3.11 -m venv ~/aider && "
    "~/aider/bin/pip install aider-chat; then pass --aider ~/aider/bin/aider"
)


# ---------------------------------------------------------------- the serial loop itself

SERIAL_PROMPT = """\
The test suite of this repository fails. Fix the first failing test:

{test}

{failure}

Change the code under test so the test passes; do not change the tests. Do not commit."""


def serial_loop(repo: Path, out: Path) -> int:
    """Run in its own process (so its CPU is measured like agentloop's): the whole suite,
    one session on the first failure not tried yet, the whole suite again after an edit."""
    from agentloop.agents.base import SessionLimits
    from agentloop.agents.claude import ClaudeCodeAgent

    agent = ClaudeCodeAgent()
    limits = SessionLimits(max_turns=10, timeout_s=600)
    tried: set[str] = set()
    sessions: list[dict[str, Any]] = []
    full_runs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="autofix-serial-") as tmp:
        xml = Path(tmp) / "junit.xml"
        while True:
            xml.unlink(missing_ok=True)
            start = time.monotonic()
            subprocess.run(
                [*PYTEST, f"--junitxml={xml}"],
                cwd=repo,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            full_runs.append(time.monotonic() - start)
            failures = junit_failures(xml)
            edited = False
            for test, failure in failures.items():
                if test in tried:
                    continue
                tried.add(test)
                before = tree_state(repo)
                prompt = SERIAL_PROMPT.format(test=test, failure=failure)
                result = agent.run(prompt, cwd=repo, limits=limits, env=dict(os.environ))
                edited = tree_state(repo) != before
                sessions.append(
                    {
                        "test": test,
                        "seconds": result.duration_s,
                        "changed": edited,
                        "outcome": result.outcome,
                    }
                )
                if edited:
                    break  # re-run the whole suite after every edit
            if not edited:
                break  # green, or every failure tried once
    out.write_text(json.dumps({"sessions": sessions, "full_runs": full_runs}))
    return 0


# ---------------------------------------------------------------- report


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def physical_limit(results: Sequence[Result]) -> float | None:
    serial = next((r for r in results if r.name == "serial" and r.available), None)
    if serial is None or not serial.session_s or not serial.full_run_s:
        return None
    return max(serial.session_s) + statistics.median(serial.full_run_s)


def ratios(results: Sequence[Result], limit: float | None) -> dict[str, float | None]:
    by = {r.name: r for r in results if r.available}

    def ratio(a: str, b: str) -> float | None:
        if a in by and b in by and by[b].wall_s:
            return by[a].wall_s / by[b].wall_s
        return None

    found: dict[str, float | None] = {
        "jobs4/serial": ratio("jobs4", "serial"),
        "jobs4/aider": ratio("jobs4", "aider"),
    }
    for r in results:
        found[f"{r.name}/limit"] = r.wall_s / limit if r.available and limit else None
    return found


def table(results: Sequence[Result], limit: float | None, config: Mapping[str, Any]) -> str:
    lines = [
        f"{config['bugs']} independent bugs + 1 shared by {config['shared']} tests + 1 flaky "
        f"test; suite ~{config['suite_seconds']:g} s (measured {config['suite_measured_s']:.1f} "
        f"s, {config['tests']} tests); {config['turn_seconds']:g} s per model reply",
        "",
        f"{'contestant':<20}{'wall s':>8}{'sessions':>10}{'requests':>10}{'full runs':>11}"
        f"{'targeted':>10}{'in pytest s':>13}{'own CPU':>9}{'fixed':>8}{'/limit':>8}",
    ]
    for r in results:
        if not r.available:
            lines.append(f"{r.label:<20}{'n/a':>8}   {r.note}")
            continue
        fixed = f"{r.fixed}/{r.causes}" + (f" ({r.regressions} broke)" if r.regressions else "")
        lines.append(
            f"{r.label:<20}{r.wall_s:>8.1f}{r.sessions:>10}{r.requests:>10}{r.full_runs:>11}"
            f"{r.targeted_runs:>10}{r.pytest_s:>13.1f}{r.cpu_share:>9.1%}{fixed:>8}"
            f"{_fmt(r.wall_s / limit if limit else None, '.2f'):>8}"
        )
    found = ratios(results, limit)
    serial = next((r for r in results if r.name == "serial" and r.available), None)
    # A tool that has to run the suite once to find the failures before it can fix them.
    floor = limit + statistics.median(serial.full_run_s) if limit and serial else None
    per_cause = "   ".join(
        f"{r.name} {r.sessions / r.causes:.2f}" for r in results if r.available and r.causes
    )
    lines += [
        "",
        f"physical limit: {_fmt(limit, '.1f')} s (slowest fixing session + one full-suite "
        "run, measured in the serial loop); with a first full run to find the failures: "
        f"{_fmt(floor, '.1f')} s = {_fmt(floor / limit if floor and limit else None, '.2f')}"
        " x the limit",
        f"sessions per root cause: {per_cause}",
        f"jobs4 / serial loop: {_fmt(found['jobs4/serial'], '.2f')} (target <= 0.35)   "
        f"jobs4 / aider: {_fmt(found['jobs4/aider'], '.2f')} (target <= 0.4)   "
        f"jobs4 / limit: {_fmt(found.get('jobs4/limit'), '.2f')} (target <= 1.3)",
    ]
    aider = next((r for r in results if r.name == "aider"), None)
    if aider is not None and aider.available:
        lines.append(f"(aider's sessions are its invocations of `--message /test`; {aider.note})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["_serial"]:
        return serial_loop(Path(args_list[1]), Path(args_list[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bugs", type=int, default=8, help="independent bugs (1-13)")
    parser.add_argument("--shared", type=int, default=2, help="tests failing from one helper bug")
    parser.add_argument("--filler", type=int, default=20, help="modules with only passing tests")
    parser.add_argument("--suite-seconds", type=float, default=10.0)
    parser.add_argument("--turn-seconds", type=float, default=2.0, help="delay per model reply")
    parser.add_argument(
        "--only",
        default=",".join(CONTESTANTS),
        help=f"comma-separated, of {', '.join(CONTESTANTS)}",
    )
    parser.add_argument("--aider", default=shutil.which("aider"), help="aider's executable")
    parser.add_argument("--timeout", type=float, default=1800, help="per contestant, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--json-file", type=Path, help="also write the JSON document here")
    args = parser.parse_args(args_list)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(chosen) - set(CONTESTANTS)
    if unknown:
        parser.error(f"unknown contestants: {', '.join(sorted(unknown))}")
    config = Config(
        bugs=args.bugs, shared=args.shared, filler=args.filler, suite_seconds=args.suite_seconds
    )

    base = Path(tempfile.mkdtemp(prefix="agentloop-autofix-bench-"))
    try:
        pristine = base / "pristine"
        planted = autofix_repo.generate(pristine, config)
        git_init(pristine)
        tools = autofix_repo.tools_dir(base / "tools")
        start = time.monotonic()
        failing_tests(pristine, base)  # also warms the disk cache for every contestant
        suite_measured = time.monotonic() - start
        supported = any(c.startswith("jobs") for c in chosen) and jobs_supported()
        results: list[Result] = []
        for name in CONTESTANTS:
            if name not in chosen:
                continue
            place = arena(base, name, pristine, tools)
            log(f"running {name} ...")
            if name == "serial":
                result = run_serial(place, planted, args.turn_seconds, args.timeout)
            elif name == "aider":
                result = run_aider(place, planted, args.turn_seconds, args.timeout, args.aider)
            else:
                jobs = int(name.removeprefix("jobs"))
                result = run_agentloop(
                    place, planted, args.turn_seconds, args.timeout, jobs, supported
                )
            log(
                f"  {name}: {result.wall_s:.1f} s, fixed {result.fixed}/{result.causes}"
                if result.available
                else f"  {name}: {result.note}"
            )
            results.append(result)
        limit = physical_limit(results)
        described = {
            **dataclasses.asdict(config),
            "turn_seconds": args.turn_seconds,
            "tests": planted.total,
            "root_causes": len(planted.causes),
            "suite_measured_s": suite_measured,
        }
        doc = {
            "config": described,
            "physical_limit_s": limit,
            "ratios": ratios(results, limit),
            "results": [
                {
                    **dataclasses.asdict(r),
                    "cpu_share": r.cpu_share,
                    "sessions_per_root_cause": r.sessions / r.causes if r.causes else None,
                }
                for r in results
            ],
        }
        text = json.dumps(doc, indent=2)
        if args.json_file is not None:
            args.json_file.write_text(text + "\n")
        print(text if args.json else table(results, limit, described))
        return 0 if all(r.available or "n/a" in r.note for r in results) else 1
    finally:
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
