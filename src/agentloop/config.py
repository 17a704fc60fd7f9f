"""Configuration: one `load_config()` that reads, merges and validates.

Layers merge as defaults < file < environment < flags. The file is `agentloop.yaml` at
the repository root, or `[tool.agentloop]` in `pyproject.toml` (not both). Environment
variables are `AGENTLOOP_<SECTION>__<KEY>` (e.g. `AGENTLOOP_DETECT__FLAKY_RERUNS=0`);
their values are read as YAML scalars or flow lists. Every key is documented in
docs/config.md; a test keeps that page and these models in step.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentloop.errors import ConfigError
from agentloop.rails.paths import DEFAULT_FORBIDDEN, DEFAULT_SECRETS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = "agentloop.yaml"
ENV_PREFIX = "AGENTLOOP_"

ReportFormat = Literal["pytest-json", "junit", "vitest-json"]


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
    timeout: float | None = Field(default=None, gt=0)
    rerun: str | None = Field(
        default=None,
        description="command prefix that re-runs single tests; the test selector is appended",
    )


class DetectConfig(_Model):
    flaky_reruns: int = Field(default=2, ge=0, le=20)
    suite_timeout: float = Field(default=600, gt=0)
    rerun_timeout: float = Field(default=120, gt=0)


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
    max_runtime: float = Field(default=1200, gt=0, description="seconds for the whole run")
    max_budget_usd: float = Field(default=10.0, gt=0)
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
    setup_timeout: float = Field(default=600, gt=0)


class HooksConfig(_Model):
    post_edit: tuple[str, ...] = Field(
        default=(),
        description="fast checks run on a file Claude Code just edited; {file} is its path",
    )
    post_edit_timeout: float = Field(default=30, gt=0, description="seconds per command")


class Config(_Model):
    suites: tuple[SuiteConfig, ...] = ()
    detect: DetectConfig = DetectConfig()
    agent: AgentConfig = AgentConfig()
    run: RunConfig = RunConfig()
    rails: RailsConfig = RailsConfig()
    sandbox: SandboxConfig = SandboxConfig()
    workspace: WorkspaceConfig = WorkspaceConfig()
    hooks: HooksConfig = HooksConfig()


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
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"{CONFIG_FILE} is not valid YAML: {first}",
                hint=f"fix the syntax in {yaml_path}",
            ) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{CONFIG_FILE} must be a mapping of keys, not a {type(loaded).__name__}",
                hint="start it with keys such as `suites:` or `detect:` (see docs/config.md)",
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


def _describe(exc: ValidationError, source: str) -> ConfigError:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _field_path(loc)
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
        else:
            problems.append(f"{path}: {error['msg']}")
    first, rest = problems[0], problems[1:]
    more = f"; also {'; '.join(rest)}" if rest else ""
    return ConfigError(
        f"invalid configuration in {source}: {first}{more}",
        hint="fix these keys; docs/config.md lists every key with its default",
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
