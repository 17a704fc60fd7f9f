"""A parallel build's manifest (`build.yaml`): read, checked field by field, and turned
into build.model records.

This is the shape only (types, required keys, unknown keys, an id a branch can carry);
whether the streams fit together (ownership, dependencies, contracts) is
build/validate.py's. Every problem found is reported, not just the first; the JSON Schema
of the same shape is schemas/build-manifest.schema.json (for a coordinator session that
writes the manifest, and for editors).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentloop.build.model import Contract, Manifest, Stream, Template

# One definition of how config errors read (a key's path, what was given, a YAML error's
# line and column): the manifest's read the same.
from agentloop.config import _field_path, _kind, _yaml_where
from agentloop.errors import ConfigError

MANIFEST_FILE = "build.yaml"
STREAM_ID = r"^[a-z0-9-]+$"


class ManifestError(ConfigError):
    """The manifest cannot be used: every problem found, one per line under a summary."""

    def __init__(self, source: str, problems: Iterable[str], *, hint: str | None = None):
        self.problems = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        listing = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(
            f"{source}: {count} {noun} in the manifest{listing}",
            hint=hint
            or f"fix {'it' if count == 1 else 'them'} in {source} and run "
            f"`agentloop parallel-build --manifest {source} --plan-only` again",
        )


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _ContractDoc(_Model):
    name: str = Field(min_length=1)
    kind: Literal["types", "api", "errors", "other"]
    path: str = Field(min_length=1)
    description: str = ""


class _StreamDoc(_Model):
    id: str = Field(pattern=STREAM_ID)
    title: str = Field(min_length=1)
    template: Template
    prompt: str = Field(min_length=1)
    owns: tuple[str, ...] = Field(min_length=1)
    depends_on: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    uses: tuple[str, ...] | None = None


class _ManifestDoc(_Model):
    request: str = Field(min_length=1)
    streams: tuple[_StreamDoc, ...] = Field(min_length=1)
    contracts: tuple[_ContractDoc, ...] = ()


_MODELS: dict[str, type[BaseModel]] = {
    "streams": _StreamDoc,
    "contracts": _ContractDoc,
}

_SHAPES = {
    "streams": "a list of streams, each a mapping with id, title, template, prompt and owns",
    "contracts": "a list of contracts, each a mapping with name, kind and path",
    "owns": "a list of globs, e.g. `[src/api/**]`",
    "depends_on": "a list of stream ids, e.g. `[contracts]`",
    "uses": "a list of contract names",
    "tests": "a list of commands, e.g. `[pytest tests/api]`",
}


def load(path: Path, *, source: str | None = None) -> Manifest:
    """The manifest in `path`; ManifestError naming every problem of its shape."""
    name = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{name} does not exist",
            hint="pass the manifest's path with --manifest (relative to the current directory)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name} cannot be read: {exc}", hint="pass a UTF-8 YAML file") from None
    return parse(text, source=name)


def parse(text: str, *, source: str = MANIFEST_FILE) -> Manifest:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(
            source, [f"not valid YAML{_yaml_where(exc)}"], hint=f"fix the syntax in {source}"
        ) from None
    if not isinstance(data, Mapping):
        raise ManifestError(
            source,
            [f"expected a mapping with `request`, `streams` and `contracts`; got {_kind(data)}"],
        )
    try:
        doc = _ManifestDoc.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(source, _describe(exc, data)) from None
    return Manifest(
        request=doc.request,
        streams=tuple(
            Stream(
                id=s.id,
                title=s.title,
                template=s.template,
                prompt=s.prompt,
                owns=s.owns,
                depends_on=s.depends_on,
                tests=s.tests,
                uses=s.uses,
            )
            for s in doc.streams
        ),
        contracts=tuple(
            Contract(name=c.name, kind=c.kind, path=c.path, description=c.description)
            for c in doc.contracts
        ),
    )


def _where(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    """The key's path, with the stream's id beside its index (`streams[1] (api).owns`):
    the user knows streams by id."""
    path = _field_path(loc)
    if len(loc) >= 2 and loc[0] == "streams" and isinstance(loc[1], int):
        streams = data.get("streams")
        if isinstance(streams, list) and loc[1] < len(streams):
            entry = streams[loc[1]]
            if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
                head = f"streams[{loc[1]}]"
                return f"{head} ({entry['id']}){path[len(head) :]}"
    return path


def _describe(exc: ValidationError, data: Mapping[str, Any]) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        where = _where(loc, data)
        given = error.get("input")
        key = next((part for part in reversed(loc) if isinstance(part, str)), "")
        if kind == "extra_forbidden":
            parent = _MODELS.get(str(loc[0])) if len(loc) > 2 else _ManifestDoc
            known = list((parent or _ManifestDoc).model_fields)
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            tip = f"did you mean `{guess[0]}`?" if guess else f"known: {', '.join(known)}"
            problems.append(f"{where}: unknown key ({tip})")
        elif kind == "missing":
            problems.append(f"{where}: required key missing")
        elif kind in ("tuple_type", "list_type") and key in _SHAPES:
            problems.append(f"{where}: expected {_SHAPES[key]}; got {_kind(given)}")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            what = "a stream" if key == "streams" else "a contract" if key == "contracts" else ""
            shape = f"{what} (a mapping)" if what else "a mapping"
            problems.append(f"{where}: expected {shape}; got {_kind(given)}")
        elif kind == "string_pattern_mismatch" and key == "id":
            problems.append(
                f"{where}: expected lowercase letters, digits and `-` (it names a branch); "
                f"got {_kind(given)}"
            )
        elif kind == "too_short" and key == "owns":
            problems.append(f"{where}: a stream must own at least one glob")
        elif kind == "too_short" and key == "streams":
            # pydantic also says it when every stream given was invalid: those are named.
            if not given:
                problems.append(f"{where}: a build needs at least one stream")
        elif kind == "string_type":
            problems.append(f"{where}: expected a string; got {_kind(given)}")
        else:
            problems.append(f"{where}: {error['msg']}")
    return problems


def as_data(manifest: Manifest) -> dict[str, Any]:
    """The manifest as build.yaml holds it (and --json prints it)."""
    return {
        "request": manifest.request,
        "streams": [
            {
                "id": s.id,
                "title": s.title,
                "template": s.template,
                "prompt": s.prompt,
                "owns": list(s.owns),
                "depends_on": list(s.depends_on),
                "tests": list(s.tests),
                **({"uses": list(s.uses)} if s.uses is not None else {}),
            }
            for s in manifest.streams
        ],
        "contracts": [
            {"name": c.name, "kind": c.kind, "path": c.path, "description": c.description}
            for c in manifest.contracts
        ],
    }
