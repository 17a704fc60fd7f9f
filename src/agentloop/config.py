"""Configuration: one `load_config()` that reads, merges and validates.

Layers merge as defaults < file < environment < flags. The file is `agentloop.yaml` at
the repository root, or `[tool.agentloop]` in `pyproject.toml` (not both). Environment
variables are `AGENTLOOP_<SECTION>__<KEY>` (e.g. `AGENTLOOP_DETECT__FLAKY_RERUNS=0`);
their values are read as YAML scalars or flow lists. Every key is documented in the
reference shipped with the package (`agentloop config --reference`, resources/config.md;
docs/config.md is a copy); a test keeps it and these models in step.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agentloop import durations
from agentloop.agents.secrets import is_secret_name
from agentloop.errors import ConfigError
from agentloop.rails.paths import DEFAULT_FORBIDDEN, DEFAULT_SECRETS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = "agentloop.yaml"
ENV_PREFIX = "AGENTLOOP_"

ReportFormat = Literal["pytest-json", "junit", "vitest-json"]
REFERENCE_COMMAND = "agentloop config --reference"

# Seconds, or a duration as written on the command line (`90s`, `20m`, `1h30m`).
Seconds = Annotated[float, BeforeValidator(durations.coerce)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SuiteConfig(_Model):
    """One test suite: a command and how to read its results."""

    name: str = Field(min_length=1)
    run: str = Field(min_length=1, description="shell command that runs the suite")
    format: ReportFormat = "pytest-json"
    report: str | None = Field(
        default=None,
        description="report file the command writes (relative to cwd); required for junit",
    )
    cwd: str = "."
    timeout: Seconds | None = Field(default=None, gt=0)
    rerun: str | None = Field(
        default=None,
        description="command prefix that re-runs single tests; the test selector is appended",
    )


class DetectConfig(_Model):
    flaky_reruns: int = Field(default=2, ge=0, le=20)
    suite_timeout: Seconds = Field(default=600, gt=0)
    rerun_timeout: Seconds = Field(default=120, gt=0)


class AgentConfig(_Model):
    cli_path: str | None = Field(
        default=None, description="Claude Code binary; default: the one bundled in the SDK"
    )
    model: str | None = None
    allowed_tools: tuple[str, ...] = ("Bash", "Read", "Edit", "Grep", "Glob")
    max_turns: int = Field(default=50, ge=1)
    budget_per_attempt_usd: float = Field(default=2.0, gt=0)


class RunConfig(_Model):
    max_attempts: int = Field(default=3, ge=1, le=20)
    max_runtime: Seconds = Field(default=1200, gt=0, description="seconds for the whole run")
    max_budget_usd: float = Field(default=10.0, gt=0)
    jobs: int | None = Field(
        default=None, ge=1, le=32, description="tasks fixed at once (default: min(4, CPUs))"
    )
    checks: tuple[str, ...] = Field(
        default=(), description="commands (e.g. `ruff check .`) whose new findings reject a fix"
    )


class RailsConfig(_Model):
    forbidden_paths: tuple[str, ...] = DEFAULT_FORBIDDEN
    secret_paths: tuple[str, ...] = Field(
        default=DEFAULT_SECRETS, description="files the agent may not read"
    )
    allow_test_edits: bool = False


class SandboxConfig(_Model):
    network: tuple[str, ...] = Field(
        default=(),
        description="domains Bash may reach from inside the sandbox (e.g. pypi.org); none "
        "by default",
    )


class WorkspaceConfig(_Model):
    setup: tuple[str, ...] = ()
    setup_timeout: Seconds = Field(default=600, gt=0)


class HooksConfig(_Model):
    post_edit: tuple[str, ...] = Field(
        default=(),
        description="fast checks run on a file Claude Code just edited; {file} is its path",
    )
    post_edit_timeout: Seconds = Field(default=30, gt=0, description="seconds per command")


class GitHubConfig(_Model):
    repo: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="owner/name; default: GITHUB_REPOSITORY, else the push remote's URL",
    )
    api_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="REST API root; default: GITHUB_API_URL, else https://api.github.com",
    )
    reviewers: tuple[str, ...] = Field(
        default=(), description="users, and teams as team:<slug>; default: CODEOWNERS"
    )
    daily_pr_cap: int = Field(default=5, ge=0, description="new auto-fix PRs per 24 hours")
    draft: bool = True


Severity = Literal["P0", "P1", "P2"]

# Frames in these paths are not the project's to fix: installed packages, vendored code,
# the interpreter. Matched with git's wildmatch rules against a frame's filename and
# absolute path, case-insensitively (as rails.forbidden_paths).
DEFAULT_EXCLUDED_FRAMES: tuple[str, ...] = (
    "**/site-packages/**",
    "**/dist-packages/**",
    "**/vendor/**",
    "**/_vendor/**",
    "**/node_modules/**",
    "<frozen *>",
)


class SeverityRule(_Model):
    """One triage rule: every condition it names must hold; the first rule that matches an
    issue gives its severity (configured rules before the built-in ones)."""

    severity: Severity
    name: str | None = Field(default=None, description="the words the triage shows for it")
    type: str | None = Field(
        default=None, description="regular expression matching the exception type in full"
    )
    message: str | None = Field(
        default=None, description="regular expression searched in the exception's message"
    )
    level: tuple[str, ...] = Field(default=(), description="any of these Sentry levels")
    tags: dict[str, str] = Field(
        default_factory=dict, description="tag → regular expression matching its value in full"
    )
    path: str | None = Field(default=None, description="glob matching an in-app frame's path")
    handled: bool | None = Field(default=None, description="false: an unhandled crash")

    @field_validator("type", "message")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("tags")
    @classmethod
    def _tag_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            cls._regex(pattern)
        return value


class SentryConfig(_Model):
    organization: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    projects: tuple[str, ...] = Field(
        default=(), description="project slugs; empty: every project of the organization"
    )
    base_url: str = Field(default="https://sentry.io", pattern=r"^https?://")
    max_errors_per_hour: int = Field(default=100, ge=0)
    max_fixes: int = Field(default=5, ge=0)
    exclude_paths: tuple[str, ...] = DEFAULT_EXCLUDED_FRAMES
    severity_rules: tuple[SeverityRule, ...] = ()
    tracking_issue: int | None = Field(
        default=None, ge=1, description="issue number the incident report is commented on"
    )
    runtime: Seconds = Field(
        default=1800, gt=0, description="seconds for REPRODUCE and FIX of every group together"
    )
    sensitive_paths: tuple[str, ...] = Field(
        default=(),
        description="globs of sensitive code beyond auth, payments, billing and deletion: "
        "a crash there is fixed only with --allow-sensitive",
    )


ChannelKind = Literal["slack", "webhook"]


class ChannelConfig(_Model):
    """Where notifications go. The address is a secret: only the name of the environment
    variable holding it is configured, never the address itself."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    type: ChannelKind
    url_env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the webhook's address",
    )

    @field_validator("url_env")
    @classmethod
    def _kept_from_the_agent(cls, value: str) -> str:
        # The address is the webhook's credential: agent sessions get every variable of
        # agentloop's environment except those named like secrets (agents/secrets.py).
        if not is_secret_name(value) or value.startswith(("ANTHROPIC_", "CLAUDE_")):
            raise ValueError(
                f"{value} is not named like a secret, so agent sessions would see the "
                "webhook's address: use a name with WEBHOOK in it (e.g. "
                "AGENTLOOP_SLACK_WEBHOOK)"
            )
        return value


class NotifyConfig(_Model):
    channels: tuple[ChannelConfig, ...] = ()
    escalation: tuple[tuple[str, ...], ...] = Field(
        default=(),
        description="tiers of channel names: the first gets the alert and the report, each "
        "next one an alert not acknowledged escalate_after minutes after the previous tier",
    )
    escalate_after: int = Field(default=30, ge=1, description="minutes")

    @model_validator(mode="after")
    def _names(self) -> NotifyConfig:
        names = [c.name for c in self.channels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"channel names must be unique: {', '.join(dupes)}")
        unknown = sorted({n for tier in self.escalation for n in tier} - set(names))
        if unknown:
            raise ValueError(
                f"escalation names channels not in notify.channels: {', '.join(unknown)}"
            )
        if any(not tier for tier in self.escalation):
            raise ValueError("an escalation tier lists no channel")
        return self

    @property
    def tiers(self) -> tuple[tuple[ChannelConfig, ...], ...]:
        """The escalation tiers as channels; without `escalation`, every channel is the
        first and only tier."""
        by_name = {c.name: c for c in self.channels}
        if not self.escalation:
            return (self.channels,) if self.channels else ()
        return tuple(tuple(by_name[n] for n in tier) for tier in self.escalation)


class Config(_Model):
    suites: tuple[SuiteConfig, ...] = ()
    detect: DetectConfig = DetectConfig()
    agent: AgentConfig = AgentConfig()
    run: RunConfig = RunConfig()
    rails: RailsConfig = RailsConfig()
    sandbox: SandboxConfig = SandboxConfig()
    workspace: WorkspaceConfig = WorkspaceConfig()
    hooks: HooksConfig = HooksConfig()
    github: GitHubConfig = GitHubConfig()
    sentry: SentryConfig = SentryConfig()
    notify: NotifyConfig = NotifyConfig()


def _known_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _read_file(root: Path) -> tuple[dict[str, Any], str | None]:
    yaml_path = root / CONFIG_FILE
    pyproject = root / "pyproject.toml"
    from_yaml: dict[str, Any] | None = None
    from_toml: dict[str, Any] | None = None
    if yaml_path.is_file():
        try:
            loaded = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{CONFIG_FILE} is not valid YAML{_yaml_where(exc)}",
                hint=f"fix the syntax in {yaml_path}",
            ) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{CONFIG_FILE} must be a mapping of keys, not a {type(loaded).__name__}",
                hint=f"start it with keys such as `suites:` or `detect:` (`{REFERENCE_COMMAND}`)",
            )
        from_yaml = loaded
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"pyproject.toml is not valid TOML: {exc}", hint=f"fix the syntax in {pyproject}"
            ) from exc
        section = data.get("tool", {}).get("agentloop")
        if section is not None:
            if not isinstance(section, dict):
                raise ConfigError(
                    "[tool.agentloop] in pyproject.toml must be a table",
                    hint="write it as `[tool.agentloop]` followed by keys",
                )
            from_toml = section
    if from_yaml is not None and from_toml is not None:
        raise ConfigError(
            "both agentloop.yaml and [tool.agentloop] in pyproject.toml configure agentloop",
            hint="keep one of them; agentloop will not guess which one you meant",
        )
    if from_yaml is not None:
        return from_yaml, CONFIG_FILE
    if from_toml is not None:
        return from_toml, "pyproject.toml [tool.agentloop]"
    return {}, None


def _yaml_where(exc: Exception) -> str:
    """`, line L, column C: problem` from PyYAML's marks (0-based), which its message
    buries under the snippet it quotes."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if mark is None:
        text = str(exc).strip()
        return f": {text.splitlines()[0]}" if text else f": {type(exc).__name__}"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem or 'syntax error'}"


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section == "suites":
            raise ConfigError(
                f"{name}: suites cannot be set from the environment",
                hint=f"configure suites in {CONFIG_FILE}",
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        layer.setdefault(section, {})[key] = value
    return layer


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_SUITE_SHAPE = (
    "a list of suites, each a mapping with `name` and `run` (optional: "
    + ", ".join(f"`{k}`" for k in SuiteConfig.model_fields if k not in ("name", "run"))
    + "), e.g. `suites: [{name: unit, run: pytest tests}]`"
)


def _expected(loc: tuple[int | str, ...], kind: str, given: object) -> str | None:
    """What shape a key wants, in the words of the reference, for the type errors whose
    pydantic message (`Input should be a valid tuple`) names Python types instead."""
    got = f"got {_kind(given)}"
    if loc == ("suites",) and kind in ("tuple_type", "list_type"):
        return f"expected {_SUITE_SHAPE}; {got}"
    mapping = kind in ("model_type", "dict_type", "model_attributes_type")
    if mapping and len(loc) == 2 and loc[0] == "suites" and isinstance(loc[1], int):
        return f"expected a suite: a mapping with `name` and `run`; {got}"
    if mapping and len(loc) == 1:
        return f"expected a mapping of keys (`{REFERENCE_COMMAND}` lists them); {got}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list of strings, e.g. `[a, b]`; {got}"
    return None


def _kind(value: object) -> str:
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _describe(exc: ValidationError, source: str) -> ConfigError:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _field_path(loc)
        expected = _expected(loc, error["type"], error.get("input"))
        if expected is not None:
            problems.append(f"{path}: {expected}")
            continue
        if error["type"] == "extra_forbidden":
            parent: type[BaseModel] = Config
            for part in loc[:-1]:
                if isinstance(part, str):
                    field = parent.model_fields.get(part)
                    annotation = field.annotation if field else None
                    inner = getattr(annotation, "__args__", (annotation,))[0]
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        parent = inner
                    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
                        parent = annotation
            known = _known_keys(parent)
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            tip = f" (did you mean `{guess[0]}`?)" if guess else f" (known: {', '.join(known)})"
            problems.append(f"{path}: unknown key{tip}")
        elif error["type"] == "value_error":  # ours (a duration): no "Value error, " prefix
            problems.append(f"{path}: {error.get('ctx', {}).get('error', error['msg'])}")
        else:
            problems.append(f"{path}: {error['msg']}")
    first, rest = problems[0], problems[1:]
    more = f"; also {'; '.join(rest)}" if rest else ""
    return ConfigError(
        f"invalid configuration in {source}: {first}{more}",
        hint=f"fix these keys; `{REFERENCE_COMMAND}` lists every key with its default",
    )


def load_config(
    root: Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, str | None]:
    """Return the validated configuration and where the file layer came from (or None)."""
    file_layer, source = _read_file(root)
    env_layer = _env_layer(os.environ if environ is None else environ)
    merged = _merge(_merge(file_layer, env_layer), overrides or {})
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        layers = [s for s in (source, "AGENTLOOP_* environment" if env_layer else None) if s]
        raise _describe(exc, " / ".join(layers) or "flags") from exc
    names = [s.name for s in config.suites]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"invalid configuration in {source}: suite names must be unique: {', '.join(dupes)}",
            hint="give each suite its own `name`",
        )
    for index, suite in enumerate(config.suites):
        if suite.format == "junit" and not suite.report:
            raise ConfigError(
                f"invalid configuration in {source}: suites[{index}].report is required "
                "for format junit",
                hint="set `report:` to the XML file the command writes",
            )
    return config, source
