"""Test suites: finding them, running them with the reporter agentloop needs, and the
selector command that re-runs a single test.

agentloop never edits the user's files to get a report: reporter flags and report paths
are added to the command line, and reports are written to a temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from agentloop import proc
from agentloop.config import Config, SuiteConfig
from agentloop.errors import ConfigError, ReportError, SuiteError
from agentloop.failures import probe as probe_events
from agentloop.failures import pytest_json, vitest_json
from agentloop.failures.model import (
    Dialect,
    Location,
    ParsedFailure,
    ParsedReport,
    Stage,
    SuiteRun,
)
from agentloop.failures.reports import Format, parse_report

Runner = Literal["pytest", "vitest", "jest"]
_PROBE_MODULE = "agentloop_pytest_probe"
_NOT_FOUND = 127
_PYTEST_NO_TESTS = 5
# Colourless output: it ends up in reports and prompts. Nothing else of the user's
# environment is changed (not even CI=1, which some test suites react to).
_ENV = {"NO_COLOR": "1", "FORCE_COLOR": "0", "PY_COLORS": "0"}
_DEFAULT_PREFIX: dict[Dialect, str] = {
    "pytest": "python -m pytest",
    "vitest": "npx vitest run",
    "jest": "npx jest",
    "go": "go test",
    "surefire": "mvn -q test",
    "junit": "",
}


@dataclass(frozen=True)
class Suite:
    name: str
    run: str
    format: Format
    cwd: Path
    timeout: float
    # A report the command writes itself; None when agentloop adds the reporter flags.
    report: str | None = None
    # Which runner agentloop drives when it adds the flags itself.
    runner: Runner | None = None
    rerun: str = ""
    notes: tuple[str, ...] = ()
    # From the user's configuration (rather than discovered): decides what a hint says.
    configured: bool = False


# ---------------------------------------------------------------- discovery


def _python_for(root: Path) -> str:
    for candidate in (root / ".venv" / "bin" / "python", root / "venv" / "bin" / "python"):
        if candidate.is_file():
            return str(candidate.relative_to(root))
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and (Path(venv) / "bin" / "python").is_file():
        return str(Path(venv) / "bin" / "python")
    return shutil.which("python3") or shutil.which("python") or "python3"


# Where test files are looked for without configuration: in a folder named like a test
# folder at any depth (`tests/`, `toolz/tests/`, `src/pkg/tests/`), never under what
# pytest does not collect by default (its norecursedirs, virtualenvs) nor in other tools'
# trees. Breadth first and bounded, so a huge checkout costs a few milliseconds.
_TEST_FOLDERS = frozenset({"tests", "test", "testing"})
_NOT_SEARCHED = frozenset(
    {"node_modules", "venv", "build", "dist", "site-packages", "__pycache__", "target",
     "CVS", "_darcs", "{arch}", "htmlcov"}
)  # fmt: skip
_SEARCH_DEPTH = 5
_SEARCH_DIRS = 10_000


def _looks_like_pytest(root: Path) -> bool:
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and "[tool.pytest" in pyproject.read_text(errors="replace"):
        return True
    if any((root / name).is_file() for name in ("pytest.ini", "conftest.py")):
        return True
    for name, marker in (("setup.cfg", "[tool:pytest]"), ("tox.ini", "[pytest]")):
        path = root / name
        if path.is_file() and marker in path.read_text(errors="replace"):
            return True
    queue: list[tuple[str, int, bool]] = [(str(root), 0, False)]
    # The list grows as it is read: breadth first.
    for visited, (directory, depth, in_tests) in enumerate(queue):
        if visited >= _SEARCH_DIRS:
            return False
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if (in_tests or depth == 0) and name.endswith(".py") and entry.is_file():
                if name.startswith("test_") or name.endswith("_test.py"):
                    return True
            elif (
                depth < _SEARCH_DEPTH
                and entry.is_dir(follow_symlinks=False)
                and not name.startswith(".")
                and name not in _NOT_SEARCHED
                and not name.endswith((".egg-info", ".egg"))
                and not os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
            ):
                queue.append((entry.path, depth + 1, in_tests or name in _TEST_FOLDERS))
    return False


def _pytest_suite(root: Path, timeout: float) -> Suite:
    python = _python_for(root)
    check = proc.run(
        [
            python if os.path.isabs(python) else str(root / python),
            "-c",
            "import pytest\ntry:\n import pytest_jsonreport\nexcept ImportError:\n print('nojson')",
        ],
        cwd=root,
        timeout=60,
    )
    if not check.ok:
        raise SuiteError(
            f"this looks like a pytest project, but pytest is not importable by {python}",
            hint=f"install it (`{python} -m pip install pytest pytest-json-report`) "
            "or configure suites in agentloop.yaml",
        )
    prefix = f"{shlex.quote(python)} -m pytest"
    if "nojson" in check.stdout:
        return Suite(
            name="pytest",
            run=f"{prefix} --continue-on-collection-errors -p no:cacheprovider "
            "-o junit_family=xunit1",
            format="junit",
            cwd=root,
            timeout=timeout,
            runner="pytest",
            rerun=prefix,
            notes=(f"pytest-json-report is not installed for {python}; read pytest's JUnit XML",),
        )
    return Suite(
        name="pytest",
        run=f"{prefix} --continue-on-collection-errors -p no:cacheprovider",
        format="pytest-json",
        cwd=root,
        timeout=timeout,
        runner="pytest",
        rerun=prefix,
    )


def _npm_suite(root: Path, timeout: float) -> Suite | None:
    package = root / "package.json"
    if not package.is_file():
        return None
    try:
        data: Any = json.loads(package.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise SuiteError(
            f"package.json is not valid JSON ({exc.msg} at line {exc.lineno})",
            hint="fix package.json, or configure suites in agentloop.yaml",
        ) from exc
    script = str((data.get("scripts") or {}).get("test") or "") if isinstance(data, dict) else ""
    try:
        words = shlex.split(script)
    except ValueError:
        words = []
    simple = bool(words) and not any(w in ("&&", "||", ";", "|") for w in words)
    for runner in ("vitest", "jest"):
        if runner not in script:
            continue
        # Keep the script's own options (e.g. --config) when it is one plain command.
        extra = [w for w in words[1:] if w not in ("run", "watch", "--watch", "--watchAll")]
        own = simple and words[0] == runner
        args = " ".join(shlex.quote(w) for w in extra) if own else ""
        # Re-runs keep the script's options (e.g. --config) but not its file filters.
        options = shlex.join(rerun_options(extra, runner)) if own else ""
        if runner == "vitest":
            return Suite(
                name="vitest",
                run=f"npx --no-install vitest run {args}".strip(),
                format="vitest-json",
                cwd=root,
                timeout=timeout,
                runner="vitest",
                rerun=f"npx vitest run {options}".strip(),
            )
        if not (root / "node_modules" / "jest-junit").is_dir():
            raise SuiteError(
                "this jest project has no jest-junit reporter installed",
                hint="run `npm install --save-dev jest-junit`, "
                "or configure suites in agentloop.yaml",
            )
        return Suite(
            name="jest",
            run=f"npx --no-install jest --ci {args}".strip(),
            format="junit",
            cwd=root,
            timeout=timeout,
            runner="jest",
            rerun=f"npx jest {options}".strip(),
        )
    return None


# What a re-run drops from a suite's command line: what selects or stops tests (a re-run
# names its own) and the reporters (agentloop adds its own). Everything else, e.g.
# `--timeout=5`, `-c pytest.ini`, `-p xdist`, stays: a re-run must behave like the suite.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PYTEST_DROP_FLAGS = _words(
    "--lf --last-failed --ff --failed-first --nf --new-first --sw --stepwise --sw-skip "
    "--stepwise-skip -x --exitfirst --co --collect-only --json-report "
    "--continue-on-collection-errors"
)
_PYTEST_DROP_VALUES = _words(
    "-k -m --deselect --ignore --ignore-glob --lfnf --last-failed-no-failures --maxfail "
    "--junitxml --junit-xml --junit-prefix --json-report-file --json-report-indent "
    "--json-report-omit --resultlog --report-log --cov-fail-under"
)
# Options whose value is the next word: kept together (a value must never pass for a path).
_PYTEST_VALUES = _words(
    "-c --config-file -o --override-ini -p --rootdir --basetemp --confcutdir --import-mode "
    "--tb -r -W --pythonwarnings --capture --color --durations --durations-min --log-level "
    "--log-cli-level --log-file --log-format --timeout --timeout-method --timeout_method -n "
    "--numprocesses --dist --maxprocesses --cov --cov-report --cov-config "
    "--reruns --reruns-delay --only-rerun --ds --dc --hypothesis-profile --hypothesis-seed "
    "-P --asyncio-mode --randomly-seed"
)
_JS_DROP_FLAGS = _words(
    "--watch --watchAll --json --bail --onlyChanged -o --changed --passWithNoTests "
    "--listTests --coverage --silent"
)
_JS_DROP_VALUES = _words(
    "-t --testNamePattern --testPathPattern --testPathPatterns --reporter --reporters "
    "--outputFile --shard --changedSince --exclude --testPathIgnorePatterns"
)
_JS_VALUES = _words(
    "-c --config --root -r --dir --project --environment --pool --mode --testTimeout "
    "--hookTimeout --maxWorkers -w --rootDir --roots --selectProjects --env "
    "--testEnvironment --setupFiles --globalSetup --maxConcurrency --poolOptions"
)


def _pytest_positional(word: str, cwd: Path | None) -> bool:
    if "::" in word or word.endswith(".py"):
        return True
    # Without a directory to look in, a bare word is taken for a path: keeping a test
    # directory would re-run all of it.
    return cwd is None or (cwd / word).exists()


def rerun_options(words: Sequence[str], runner: Runner, cwd: Path | None = None) -> list[str]:
    """A suite's options minus what selects tests, stops the run or reports: what a re-run
    of a few of its tests keeps. `words` is what follows the runner on the command line."""
    pytest = runner == "pytest"
    drop_flags = _PYTEST_DROP_FLAGS if pytest else _JS_DROP_FLAGS
    drop_values = _PYTEST_DROP_VALUES if pytest else _JS_DROP_VALUES
    values = _PYTEST_VALUES if pytest else _JS_VALUES
    kept: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name = word.partition("=")[0]
        takes_next = "=" not in word and i + 1 < len(words)
        if word.startswith("-") and word != "-":
            if name in drop_flags or name.startswith("--json-report"):
                i += 1
                if name == "--json-report-omit":  # takes any number of words
                    while i < len(words) and not words[i].startswith("-"):
                        i += 1
                continue
            if pytest and name == "-p" and takes_next and "agentloop" in words[i + 1]:
                i += 2
                continue
            if name in drop_values:
                i += 2 if takes_next else 1
                continue
            if pytest and name[:2] in ("-k", "-m") and len(name) > 2 and name[1] != "-":
                i += 1  # -kEXPR
                continue
            if name in values and takes_next:
                kept.extend(words[i : i + 2])
                i += 2
                continue
            kept.append(word)
            i += 1
            continue
        # A bare word: a test path or filter (dropped), or the value of an option this
        # table does not know (kept).
        if not pytest or _pytest_positional(word, cwd):
            i += 1
            continue
        kept.append(word)
        i += 1
    return kept


def _rerun_prefix(run: str, fmt: Format, cwd: Path | None = None) -> str:
    """`uv run pytest --timeout=5 -x tests` → `uv run pytest --timeout=5`: the command up
    to the runner itself, with the suite's own options but nothing that selects tests."""
    try:
        words = shlex.split(run)
    except ValueError:
        return _DEFAULT_PREFIX["pytest"]
    for i, word in enumerate(words):
        if re.search(r"(^|/)(py\.test|pytest)$", word):
            return shlex.join([*words[: i + 1], *rerun_options(words[i + 1 :], "pytest", cwd)])
    return _DEFAULT_PREFIX["pytest"] if fmt == "pytest-json" else ""


# A word of a shell command that runs pytest: `pytest`, `.venv/bin/pytest`, `-m pytest`.
_PYTEST_WORD = re.compile(r"(?:^|(?<=\s))(?:\S*/)?(?:py\.test|pytest)(?=\s|$)")
_PYTEST_MODULE = re.compile(r"(?<=\s-m\s)pytest(?=\s|$)")
_VITEST_WORD = re.compile(r"(?:^|(?<=\s))(?:\S*/)?vitest(?=\s|$)")


def _configured(root: Path, index: int, suite: SuiteConfig, default_timeout: float) -> Suite:
    cwd = (root / suite.cwd).resolve()
    if not cwd.is_dir():
        raise ConfigError(
            f"suites[{index}].cwd: {suite.cwd} is not a directory under {root}",
            hint="set `cwd` relative to the repository root",
        )
    # Whichever way a suite was found, a pytest run gets the probe (a kill keeps what had
    # finished and names the running test); agentloop adds reporter flags only when the
    # suite names no report of its own.
    runner: Runner | None = None
    if _PYTEST_WORD.search(suite.run):
        runner = "pytest"
    elif suite.format == "vitest-json" and suite.report is None:
        if not _VITEST_WORD.search(suite.run):
            raise ConfigError(
                f"suites[{index}].report is required for format vitest-json unless `run` "
                "calls vitest itself (agentloop then adds the JSON reporter)",
                hint="set `report:` to the JSON file the command writes, or run "
                "`npx vitest run` directly",
            )
        runner = "vitest"
    elif suite.format == "pytest-json" and suite.report is None:
        runner = "pytest"  # e.g. `make test`: pytest-json-report's flags are appended
    return Suite(
        name=suite.name,
        run=suite.run,
        format=suite.format,
        cwd=cwd,
        timeout=suite.timeout or default_timeout,
        report=suite.report,
        runner=runner,
        rerun=suite.rerun
        if suite.rerun is not None
        else _rerun_prefix(suite.run, suite.format, cwd),
        configured=True,
    )


def discover(root: Path, config: Config) -> list[Suite]:
    """The configured suites, or the ones agentloop can find: pytest, and npm with vitest/jest."""
    timeout = config.detect.suite_timeout
    if config.suites:
        return [_configured(root, i, s, timeout) for i, s in enumerate(config.suites)]
    found: list[Suite] = []
    if _looks_like_pytest(root):
        found.append(_pytest_suite(root, timeout))
    npm = _npm_suite(root, timeout)
    if npm is not None:
        found.append(npm)
    if not found:
        raise SuiteError(
            f"no test suite found in {root} (looked for pytest, and npm with vitest or jest)",
            hint="configure `suites:` in agentloop.yaml (`agentloop config --reference`)",
        )
    return found


# ---------------------------------------------------------------- running


def _command(
    suite: Suite, report: Path, probe: Path, base: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    env = dict(_ENV)
    command = suite.run
    if suite.runner == "pytest":
        env.update(probe_env(probe, base))
        command = with_probe(command)
    if suite.report is not None:
        return command, env  # the command writes its own report
    if suite.runner == "pytest":
        if suite.format == "pytest-json":
            flags = f"--json-report --json-report-file={shlex.quote(str(report))} " + (
                "--json-report-omit keywords log streams warnings"
            )
        else:
            flags = f"--junitxml={shlex.quote(str(report))}"
        return f"{command} {flags}", env
    if suite.runner == "vitest":
        # JSON for the whole stacks; JUnit beside it for what only it names (a describe
        # block's failing hook, an assertion's diff: vitest_json.merge_junit).
        flags = (
            f"--reporter=default --reporter=json --outputFile.json={shlex.quote(str(report))} "
            f"--reporter=junit --outputFile.junit={shlex.quote(str(_side_junit(report)))}"
        )
        return f"{command} {flags}", env
    if suite.runner == "jest":
        env.update(
            JEST_JUNIT_OUTPUT_FILE=str(report),
            JEST_JUNIT_ADD_FILE_ATTRIBUTE="true",
            JEST_JUNIT_REPORT_TEST_SUITE_ERRORS="true",
        )
        return f"{suite.run} --reporters=default --reporters=jest-junit", env
    return suite.run, env


def probe_env(probe: Path, base: Mapping[str, str]) -> dict[str, str]:
    """What a pytest process needs to load agentloop's probe and write to `probe`."""
    probe_dir = str(resources.files("agentloop.resources") / "pytest_probe")
    return {
        "AGENTLOOP_PROBE_FILE": str(probe),
        "PYTHONPATH": os.pathsep.join(p for p in (probe_dir, base.get("PYTHONPATH")) if p),
    }


def with_probe(run: str) -> str:
    """`uv run pytest -x tests` → `uv run pytest -p agentloop_pytest_probe -x tests`: right
    after the word that is pytest, so it reaches pytest whatever follows (`| tee log`)."""
    # `-m pytest` first: a directory named pytest (`cd pytest && …`) is no place for -p.
    match = _PYTEST_MODULE.search(run) or _PYTEST_WORD.search(run)
    if match is None:
        return f"{run} -p {_PROBE_MODULE}"
    return f"{run[: match.end()]} -p {_PROBE_MODULE}{run[match.end() :]}"


def _side_junit(report: Path) -> Path:
    return report.with_name(report.name + ".xml")


def _from_probe(events: list[dict[str, Any]], suite: Suite) -> ParsedReport:
    """What a killed pytest run had done: its failures, and the tests it was running."""
    failures: list[ParsedFailure] = []
    running: dict[str, tuple[str, int | None]] = {}
    reported: set[str] = set()
    seen = 0
    for event in events:
        kind, nodeid = event.get("event"), str(event.get("nodeid", ""))
        if kind == "start":
            seen += 1
            lineno = event.get("line")
            running[nodeid] = (
                str(event.get("file", "")),
                lineno + 1 if isinstance(lineno, int) else None,
            )
        elif kind == "finish":
            running.pop(nodeid, None)
        elif kind == "collect_failed":
            failures.append(pytest_json.text_failure(nodeid, str(event.get("longrepr", ""))))
        elif kind == "failed" and nodeid not in reported and "subtest" not in event:
            # A test that failed its call and then its teardown is one failure.
            reported.add(nodeid)
            when = event.get("when")
            stage: Stage = (
                "setup" if when == "setup" else "teardown" if when == "teardown" else "call"
            )
            failures.append(
                pytest_json.text_failure(nodeid, str(event.get("longrepr", "")), stage=stage)
            )
    for nodeid, (file, lineno) in running.items():
        path_, _, name = nodeid.partition("::")
        failures.append(
            ParsedFailure(
                dialect="pytest",
                test_id=nodeid,
                test_name=name or nodeid,
                file=file or path_,
                line=lineno,
                error_type="Timeout",
                message=f"still running when suite {suite.name!r} "
                f"hit its {suite.timeout:g}s timeout",
                text="",
                stage="call",
                frames=(Location(file or path_, lineno),) if lineno else (),
                timed_out=True,
            )
        )
    return ParsedReport(dialect="pytest", format=suite.format, failures=tuple(failures), total=seen)


def _suite_failure(
    suite: Suite, error_type: str, message: str, text: str, *, timed_out: bool
) -> ParsedReport:
    dialect: Dialect = (
        suite.runner
        if suite.runner is not None
        else "junit"
        if suite.format == "junit"
        else "vitest"
        if suite.format == "vitest-json"
        else "pytest"
    )
    failure = ParsedFailure(
        dialect=dialect,
        test_id=f"<suite {suite.name}>",
        test_name=f"<suite {suite.name}>",
        file=None,
        line=None,
        error_type=error_type,
        message=message,
        text=text,
        stage="collection",
        timed_out=timed_out,
    )
    return ParsedReport(dialect=failure.dialect, format=suite.format, failures=(failure,), total=0)


# The line in a runner's output that says why it stopped, most telling first: pytest's
# `error:`/`ERROR:` lines, npm's `npm error …` (not its log-file epilogue), then any
# `SomethingError: …` line.
_ERROR_LINES = (
    re.compile(r"^(?:\S+ )*?\S+: error: (?P<line>.+)$", re.M),  # argparse: `pytest: error: …`
    re.compile(r"^ERROR: (?!usage:)(?P<line>.+)$", re.M),
    re.compile(
        r"^npm (?:error|ERR!) (?!code |errno |path |syscall |A complete log|Log files|"
        r"You can rerun|\s*$)(?P<line>.+)$",
        re.M,
    ),
    re.compile(r"^\s*(?P<line>(?:[A-Za-z_$][\w.$]*)?(?:Error|Exception): .+)$", re.M),
)
_PYTEST_COLLECTED = re.compile(r"^collected (?P<n>\d+) items?(?: / (?P<errors>\d+) errors?)?", re.M)
_PYTEST_INTERRUPTED = 2
_PROBE_MISSING = re.compile(rf"No module named '{_PROBE_MODULE}'")
_NO_PROBE_NOTE = (
    "ran without agentloop's probe (pytest could not import it there): if the suite is "
    "killed at its timeout, its results are lost"
)


def runner_error(output: str) -> str | None:
    """The runner's own account of why it stopped, one line; None when it gave none."""
    for pattern in _ERROR_LINES:
        match = pattern.search(output)
        if match:
            line = match["line"].strip()
            return line if len(line) <= 300 else line[:299] + "…"
    return None


def _error_hint(suite: Suite, error: str | None, where: str) -> str:
    by_hand = f"run `{suite.run}` by hand in {suite.cwd} to see the rest"
    if error and "--json-report" in error:
        return (
            "pytest-json-report is not active for the pytest this suite runs: install it "
            "there (`python -m pip install pytest-json-report`), or read pytest's JUnit XML "
            "instead (`format: junit`, `--junitxml=FILE` in `run`, `report: FILE`)"
        )
    if error and re.search(r"No module named '?pytest\b", error):
        return f"install pytest for the interpreter the suite runs, or {where}"
    if error and "npx canceled due to missing packages" in error:
        return f"run `npm install` in {suite.cwd}, or {where}"
    return f"{by_hand}, or {where}"


def _probe_counts(events: list[dict[str, Any]]) -> tuple[int | None, int]:
    """From the probe: (tests pytest collected, or None if it never said; tests started)."""
    # Distinct tests and the largest count: under pytest-xdist the controller and each
    # worker report (the controller collects nothing, every worker collects everything).
    collected: int | None = None
    started: set[str] = set()
    for event in events:
        count = event.get("count")
        if event.get("event") == "collected" and isinstance(count, int):
            collected = max(collected or 0, count)
        elif event.get("event") == "start":
            started.add(str(event.get("nodeid", "")))
    return collected, len(started)


def _not_run(suite: Suite, events: list[dict[str, Any]], output: str) -> tuple[int | None, bool]:
    """How many collected tests never ran (None: unknown), and whether pytest stopped at
    collection."""
    if suite.runner != "pytest":
        return None, False
    collected, started = _probe_counts(events)
    match = _PYTEST_COLLECTED.search(output)
    if collected is None and match:
        collected = int(match["n"])
    stopped = "error during collection" in output or "errors during collection" in output
    if collected is None:
        return None, stopped
    return max(collected - started, 0), stopped


def run_suite(
    suite: Suite, workdir: Path, root: Path, *, env: Mapping[str, str] | None = None
) -> tuple[SuiteRun, ParsedReport]:
    """Run one suite with its reporter; what it did, and the failures it reported.
    Raises SuiteError when there is nothing to read (no command, no report)."""
    report_path = (
        workdir / f"{suite.name}.report" if suite.report is None else suite.cwd / suite.report
    )
    probe = probe_path(workdir, suite)
    probe.unlink(missing_ok=True)  # the probe appends: an earlier run's events would lie
    if suite.report is not None:
        report_path.unlink(missing_ok=True)  # a stale report from an earlier run would lie
    base = os.environ if env is None else env
    command, extra_env = _command(suite, report_path, probe, base)
    done = proc.run(command, cwd=suite.cwd, timeout=suite.timeout, env={**base, **extra_env})
    output = done.stdout + "\n" + done.stderr
    if suite.runner == "pytest" and suite.report is not None and _PROBE_MISSING.search(output):
        # The command runs pytest somewhere PYTHONPATH does not reach (tox, a container):
        # the user's own report still works without the probe, so run it as they wrote it.
        run, report = run_suite(replace(suite, runner=None), workdir, root, env=env)
        return run, replace(report, notes=(*report.notes, _NO_PROBE_NOTE))
    error = runner_error(output)
    # Read once: the kill's results, the subtests and what never ran all come from it.
    events = probe_events.events(probe) if suite.runner == "pytest" else []
    where = (
        f"fix `run` of suite {suite.name!r} in agentloop.yaml"
        if suite.configured
        else "configure the suite in agentloop.yaml"
    )

    def outcome(report: ParsedReport) -> tuple[SuiteRun, ParsedReport]:
        if suite.runner == "pytest":
            # Failed subtests: only the probe saw each with its message.
            report = probe_events.with_subtests(report, events)
        cwd = suite.cwd.relative_to(root) if suite.cwd.is_relative_to(root) else suite.cwd
        not_run, at_collection = _not_run(suite, events, output)
        notes = list(report.notes)
        if not_run:
            why = (
                "pytest stopped at a collection error"
                if at_collection and done.returncode == _PYTEST_INTERRUPTED
                else f"the suite was killed at its {suite.timeout:g}s timeout"
                if done.timed_out
                else f"the suite stopped early (exit {done.returncode})"
            )
            fix = (
                "; add --continue-on-collection-errors to its `run` to run them anyway"
                if at_collection and done.returncode == _PYTEST_INTERRUPTED
                else ""
            )
            notes.append(f"{why}: {not_run} collected tests never ran{fix}")
        run = SuiteRun(
            name=suite.name,
            format=suite.format,
            command=command,
            cwd=cwd.as_posix(),
            exit_code=done.returncode,
            duration=done.duration,
            timed_out=done.timed_out,
            tests=report.total,
            not_run=not_run,
        )
        return run, replace(report, notes=tuple(notes))

    if done.timed_out:
        if suite.runner == "pytest":
            return outcome(_from_probe(events, suite))
        return outcome(
            _suite_failure(
                suite,
                "Timeout",
                f"suite {suite.name!r} hit its {suite.timeout:g}s timeout and was killed",
                done.tail(),
                timed_out=True,
            )
        )
    if not report_path.is_file():
        if done.returncode == _NOT_FOUND:
            raise SuiteError(
                f"suite {suite.name!r}: command not found: {error or done.tail(1) or suite.run}",
                hint=f"install the test runner, or {where}",
                output=done.stdout + done.stderr,
            )
        if not (done.stdout.strip() or done.stderr.strip()):
            raise SuiteError(
                f"suite {suite.name!r} printed nothing and wrote no report "
                f"(exit {done.returncode})",
                hint=f"run `{suite.run}` by hand in {suite.cwd}, or {where}",
            )
        raise SuiteError(
            f"suite {suite.name!r} exited {done.returncode} without writing its report: "
            f"{error or done.tail(1)}",
            hint=_error_hint(suite, error, where),
            output=done.stdout + done.stderr,
        )
    try:
        report = parse_report(
            report_path.read_bytes(),
            fmt=suite.format,
            name=f"suite {suite.name!r} report",
            root=suite.cwd,
        )
    except ReportError as exc:
        if error is None:
            raise
        raise SuiteError(
            f"{exc.message}: {error}",
            hint=_error_hint(suite, error, where),
            output=done.stdout + done.stderr,
        ) from exc
    side = _side_junit(report_path)
    if suite.runner == "vitest" and suite.report is None and side.is_file():
        with contextlib.suppress(ReportError):
            junit = parse_report(side.read_bytes(), fmt="junit", name="", root=suite.cwd)
            report = vitest_json.merge_junit(report, junit)
    no_tests = suite.runner == "pytest" and done.returncode == _PYTEST_NO_TESTS
    if done.returncode != 0 and not report.failures and not no_tests:
        # A red suite must never look green: e.g. an unhandled error outside any test.
        said = f": {error}" if error else ""
        return outcome(
            _suite_failure(
                suite,
                "SuiteError",
                f"suite {suite.name!r} exited {done.returncode} "
                f"but its report lists no failing test{said}",
                done.tail(40),
                timed_out=False,
            )
        )
    return outcome(report)


# ---------------------------------------------------------------- selectors


def _go_selector(prefix: str, failure: ParsedFailure, cwd: Path) -> str:
    module = ""
    gomod = cwd / "go.mod"
    if gomod.is_file():
        match = re.search(r"^module\s+(\S+)", gomod.read_text(errors="replace"), re.M)
        module = match.group(1) if match else ""
    package = failure.classname
    rel = package[len(module) :].lstrip("/") if module and package.startswith(module) else ""
    target = f"./{rel}" if rel else "./..."
    if failure.stage == "collection":
        return f"{prefix} {target} -count=1"
    pattern = "/".join(f"^{re.escape(part)}$" for part in failure.test_name.split("/"))
    return f"{prefix} {target} -run {shlex.quote(pattern)} -count=1"


def _name_pattern(failure: ParsedFailure) -> str:
    """The -t regex for vitest and jest. Both match it against the names of the describe
    blocks and the test joined by single spaces; vitest's JUnit name joins them with " > ",
    which a test's own name may also contain, so either is accepted. Whitespace inside a
    name may have been normalised by XML (a tab becomes a space): match any."""

    def words(part: str) -> str:
        return r"\s+".join(re.escape(word) for word in part.split())

    separator = " > " if failure.dialect == "vitest" else None
    parts = failure.test_name.split(separator) if separator else [failure.test_name]
    body = r"(?:\s|\s>\s)".join(words(part) for part in parts)
    # A failing describe-level hook: re-run every test in that block.
    return (
        f"^{body}\\s" if failure.stage == "setup" and failure.dialect == "vitest" else f"^{body}$"
    )


def selector(failure: ParsedFailure, *, prefix: str, cwd: Path) -> str | None:
    """The shell command that re-runs exactly this test, from the suite's cwd."""
    if failure.test_id.startswith("<suite "):
        return None
    prefix = prefix or _DEFAULT_PREFIX[failure.dialect]
    if not prefix:
        return None
    if failure.dialect == "pytest":
        return f"{prefix} {shlex.quote(failure.parent or failure.test_id)}"
    if failure.dialect in ("vitest", "jest"):
        if failure.file is None:
            return None
        if failure.stage == "collection":
            return f"{prefix} {shlex.quote(failure.file)}"
        return f"{prefix} {shlex.quote(failure.file)} -t {shlex.quote(_name_pattern(failure))}"
    if failure.dialect == "go":
        return _go_selector(prefix, failure, cwd)
    if failure.dialect == "surefire":
        cls = failure.classname.rsplit(".", 1)[-1]
        # A parameterized case (`m{String}[1]`) cannot be named; its method can (`m*`).
        method = re.split(r"[{\[]", failure.test_name, maxsplit=1)[0]
        method += "*" if method != failure.test_name else ""
        return (
            f"{prefix} -Dtest={shlex.quote(cls + '#' + method)} "
            "-Dsurefire.failIfNoSpecifiedTests=false"
        )
    return None


# Evidence in a runner's output that a test really ran and passed: a filter that matches
# nothing exits 0 in vitest, jest, go and Surefire (with failIfNoSpecifiedTests=false).
_RAN_AND_PASSED: dict[Dialect, re.Pattern[str]] = {
    "vitest": re.compile(r"Tests\s+[1-9]\d* passed"),
    "jest": re.compile(r"Tests:\s+(?:.*, )?[1-9]\d* passed"),
    "go": re.compile(r"^(?:ok|---\s*PASS)", re.M),
    "surefire": re.compile(r"Tests run: [1-9]\d*, Failures: 0, Errors: 0"),
}


def run_selector(
    command: str,
    *,
    dialect: Dialect,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> tuple[bool, str]:
    """Run a selector: (True only when the test ran and passed, its output). pytest exits 5
    when nothing was collected; the other runners need their output read."""
    done = proc.run(command, cwd=cwd, timeout=timeout, env={**(env or os.environ), **_ENV})
    output = done.stdout + "\n" + done.stderr
    if not done.ok:
        return False, output
    if dialect == "go" and "no tests to run" in output:
        return False, output
    evidence = _RAN_AND_PASSED.get(dialect)
    return evidence is None or bool(evidence.search(output)), output


# What agentloop.reruns needs to run a suite's tests the way run_suite does.
RUN_ENV: Mapping[str, str] = _ENV
PROBE_MODULE = _PROBE_MODULE
# run_suite's note when it ran the suite a second time, without the probe.
NO_PROBE_NOTE = _NO_PROBE_NOTE


def probe_missing(output: str) -> bool:
    """Whether pytest said it could not import agentloop's probe (it runs where
    PYTHONPATH does not reach: tox, a container)."""
    return bool(_PROBE_MISSING.search(output))


def default_prefix(dialect: Dialect) -> str:
    return _DEFAULT_PREFIX[dialect]


def probe_path(workdir: Path, suite: Suite) -> Path:
    """Where run_suite's pytest probe writes (read again for the order the tests ran in)."""
    return workdir / f"{suite.name}.probe.jsonl"


def reporter_command(suite: Suite, report: Path, probe: Path) -> tuple[str, dict[str, str]]:
    """The suite's command with agentloop's reporter, and the environment it adds."""
    return _command(suite, report, probe, os.environ)


def read_run_report(suite: Suite, report: Path) -> ParsedReport:
    """What the reporter of `reporter_command` wrote, read as run_suite reads it."""
    parsed = parse_report(report.read_bytes(), fmt=suite.format, name="report", root=suite.cwd)
    side = _side_junit(report)
    if suite.runner == "vitest" and side.is_file():
        with contextlib.suppress(ReportError):
            junit = parse_report(side.read_bytes(), fmt="junit", name="", root=suite.cwd)
            parsed = vitest_json.merge_junit(parsed, junit)
    return parsed
