"""The text init adds to files the user owns (a block in CLAUDE.md, two lines in
.gitignore) and the agentloop.yaml it writes when the project has no configuration.

Additions are put in so they can be taken out exactly: the caller records what was added
(the separator before the block, the appended lines) and `remove_*` takes out exactly that.
Files are read and written with `surrogateescape`, so bytes that are not UTF-8 survive.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from agentloop.config import Config, RailsConfig, RunConfig, load_config
from agentloop.errors import ConfigError, SuiteError, UsageError
from agentloop.install.files import MARKER, template
from agentloop.rails.paths import PROTECTED
from agentloop.suites import Suite, discover

CLAUDE_MD = "CLAUDE.md"
GITIGNORE = ".gitignore"
CONFIG_FILE = "agentloop.yaml"
BEGIN = "<!-- agentloop:begin (managed by agentloop init; edit outside this block) -->"
END = "<!-- agentloop:end -->"
GITIGNORE_LINES = "# agentloop: local run state\n.agentloop/\n"
# Reports of suites whose runner writes its own (JUnit) report: inside the state directory,
# which .gitignore (and `agentloop run`, through .git/info/exclude) keeps out of git.
REPORTS = ".agentloop/reports"

_BEGIN_LINE = re.compile(r"^<!-- agentloop:begin\b.*$", re.M)
_END_LINE = re.compile(r"^<!-- agentloop:end -->[ \t]*(?:\r?\n|\Z)", re.M)
_STATE_ENTRIES = {".agentloop", ".agentloop/", "/.agentloop", "/.agentloop/"}


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _separator(text: str) -> str:
    """A blank line between the user's text and ours."""
    if not text:
        return ""
    return "\n" if text.endswith("\n") else "\n\n"


# ---------------------------------------------------------------- CLAUDE.md


@dataclass(frozen=True)
class SuiteLine:
    """A suite as the CLAUDE.md block shows it."""

    name: str
    run: str
    cwd: str = "."


def render_block(config: Config, suites: Sequence[SuiteLine]) -> str:
    """The CLAUDE.md block, markers included, ending with a newline."""

    def code(text: str) -> str:
        return f"``{text}``" if "`" in text else f"`{text}`"

    if suites:
        tests = "\n".join(
            f"- {code(s.run)} (suite {code(s.name)}"
            + (f", run from {code(s.cwd + '/')})" if s.cwd not in ("", ".") else ")")
            for s in suites
        )
    else:
        tests = "No test suite was found: configure `suites:` in agentloop.yaml."
    rails = config.rails
    body = Template(template("CLAUDE.block.md")).substitute(
        tests=tests,
        forbidden=", ".join(code(p) for p in rails.forbidden_paths) or "none configured",
        protected=", ".join(code(p) for p in PROTECTED),
        max_attempts=config.run.max_attempts,
        max_minutes=f"{config.run.max_runtime / 60:g}",
        test_edits=(
            "Tests may be changed here (`rails.allow_test_edits`)."
            if rails.allow_test_edits
            else "Never delete, skip or loosen a test to make it pass."
        ),
    )
    return f"{BEGIN}\n{body.rstrip()}\n{END}\n"


def find_block(text: str) -> tuple[int, int] | None:
    """Where the block is (from its begin line to the end of its end line), or None."""
    begins = list(_BEGIN_LINE.finditer(text))
    ends = list(_END_LINE.finditer(text))
    if not begins and not ends:
        return None
    if len(begins) == 1 and len(ends) == 1 and begins[0].start() < ends[0].start():
        return begins[0].start(), ends[0].end()
    raise UsageError(
        f"{CLAUDE_MD} has a broken agentloop block ({len(begins)} begin and {len(ends)} end "
        "markers); agentloop cannot tell which text is its own",
        hint=f"leave one `{BEGIN}` … `{END}` pair in {CLAUDE_MD}, or delete both marker "
        "lines, and run the command again",
    )


def append_block(text: str, block: str) -> tuple[str, str]:
    """The text with the block appended, and the separator put before it."""
    separator = _separator(text)
    return text + separator + block, separator


def remove_block(text: str, span: tuple[int, int], separator: str) -> str:
    start, end = span
    before = text[:start]
    if separator and before.endswith(separator):
        before = before[: -len(separator)]
    return before + text[end:]


# ---------------------------------------------------------------- .gitignore


def ignores_state(text: str) -> bool:
    return any(line.strip() in _STATE_ENTRIES for line in text.splitlines())


def append_lines(text: str) -> tuple[str, str]:
    """The text with our lines appended, and exactly what was appended."""
    added = _separator(text) + GITIGNORE_LINES
    return text + added, added


def remove_lines(text: str, added: str) -> str | None:
    """The text without the lines init appended (the last copy of them), or None when
    they are not there any more."""
    for piece in (added, GITIGNORE_LINES):
        at = text.rfind(piece)
        if at >= 0:
            return text[:at] + text[at + len(piece) :]
    return None


# ---------------------------------------------------------------- agentloop.yaml


def _portable(command: str) -> str:
    """A discovered command without this machine's absolute interpreter path: the file is
    committed, so `/home/me/.venvs/x/bin/python` becomes `python` (the same interpreter
    while that environment is active, which is how discovery found it). A project's own
    `.venv/bin/python` is already relative and stays."""
    words = shlex.split(command)
    if words and os.path.isabs(words[0]):
        words[0] = os.path.basename(words[0])
    return shlex.join(words)


def suite_entry(suite: Suite) -> dict[str, str]:
    """A discovered suite as agentloop.yaml keys that make agentloop run it the same way.
    A configured suite without `report` gets the reporter flags added as a discovered one
    does (pytest-json-report's, vitest's JSON and JUnit); a JUnit suite names its report
    file (under .agentloop/reports/, kept out of git).

    pytest is written as `format: pytest-json` exactly when discovery chose it (the
    plugin is importable), never `junit` by preference: JSON carries each failure's
    traceback as data. A `junit` pytest suite still gets agentloop's probe, so a hang
    loses nothing either way (suites._configured)."""
    run = _portable(suite.run)
    if suite.runner == "pytest" and suite.format == "pytest-json":
        return {"name": suite.name, "run": run}
    if suite.runner == "vitest":
        entry = {"name": suite.name, "run": run, "format": "vitest-json"}
        if suite.rerun:
            entry["rerun"] = _portable(suite.rerun)
        return entry
    report = f"{REPORTS}/{suite.name}.xml"
    if suite.runner == "pytest":
        run += f" --junitxml={report}"
    elif suite.runner == "jest":
        env = (
            f"JEST_JUNIT_OUTPUT_FILE={report} JEST_JUNIT_ADD_FILE_ATTRIBUTE=true "
            "JEST_JUNIT_REPORT_TEST_SUITE_ERRORS=true"
        )
        run = f"{env} {run} --reporters=default --reporters=jest-junit"
    entry = {"name": suite.name, "run": run, "format": "junit", "report": report}
    if suite.rerun:
        entry["rerun"] = _portable(suite.rerun)
    return entry


def _commented(doc: dict[str, Any]) -> str:
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=10_000)
    return "".join(f"# {line}\n" for line in text.splitlines())


def prefill(found: Sequence[Suite]) -> str:
    """agentloop.yaml for a project without configuration: the suites found, and the
    defaults of the rails and the run, commented out, to show the knobs."""
    head = (
        f"# {MARKER} - written by `agentloop init` from the test suites it found.\n"
        "# It is yours now: init never rewrites it (`agentloop init --uninstall` removes it\n"
        "# only while it is unchanged). `agentloop config --reference` lists every key.\n"
    )
    if found:
        suites = yaml.safe_dump(
            {"suites": [suite_entry(s) for s in found]},
            sort_keys=False,
            default_flow_style=False,
            width=10_000,
        )
    else:
        suites = (
            "# No test suite was found (agentloop looks for pytest, and npm with vitest or\n"
            "# jest). Configure yours, for example:\n"
            + _commented({"suites": [{"name": "unit", "run": "python -m pytest tests"}]})
        )
    defaults = {
        "run": RunConfig().model_dump(mode="json"),
        "rails": RailsConfig().model_dump(mode="json"),
    }
    return (
        f"{head}\n{suites}\n"
        "# agentloop's defaults (run.max_runtime is in seconds): uncomment a key to change it.\n"
        f"{_commented(defaults)}"
    )


@dataclass(frozen=True)
class ProjectConfig:
    config: Config
    # Where the user's configuration is; None when init writes agentloop.yaml.
    source: str | None
    prefill: str | None
    suites: tuple[SuiteLine, ...]
    notes: tuple[str, ...] = ()


def _discover(root: Path, config: Config) -> tuple[list[Suite], str | None]:
    try:
        return discover(root, config), None
    except (SuiteError, ConfigError) as exc:
        return [], exc.message


def project_config(root: Path) -> ProjectConfig:
    """The configuration the installed files describe: the user's own (never changed), or
    the agentloop.yaml init is about to write from what discovery finds."""
    # The environment is left out on purpose: what init writes must not depend on the
    # AGENTLOOP_* variables of the shell it happens to run in.
    config, source = load_config(root, environ={})
    if source is not None:
        if config.suites:
            lines = tuple(SuiteLine(s.name, s.run, s.cwd) for s in config.suites)
            return ProjectConfig(config, source, None, lines)
        found, why = _discover(root, config)
        notes = (f"no test suite found: {why}",) if why else ()
        lines = tuple(SuiteLine(s.name, suite_entry(s)["run"]) for s in found)
        return ProjectConfig(config, source, None, lines, notes)
    found, why = _discover(root, config)
    text = prefill(found)
    loaded = yaml.safe_load(text) or {}
    # What init writes must load: checked here, before anything is written.
    written = Config.model_validate(loaded)
    lines = tuple(SuiteLine(s.name, s.run, s.cwd) for s in written.suites)
    notes = (
        (f"no test suite found ({why}): {CONFIG_FILE} has a commented example to fill in",)
        if why
        else ()
    )
    return ProjectConfig(written, None, text, lines, notes)
