"""build.yaml read field by field: every wrong key named with where it is and what it
wants; the published schema and the records agree."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
import yaml

from agentloop.build import validate
from agentloop.build.manifest import ManifestError, as_data, load, parse
from agentloop.build.model import Template
from agentloop.rails.paths import DEFAULT_FORBIDDEN, ForbiddenPaths

README = Path(__file__).resolve().parents[2] / "README.md"
STREAM = "{id: api, title: t, template: custom, prompt: p, owns: [src/**]}"


def schema(name: str) -> dict[str, Any]:
    text = resources.files("agentloop.schemas").joinpath(name).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def problems_of(text: str) -> tuple[str, ...]:
    with pytest.raises(ManifestError) as caught:
        parse(text)
    return caught.value.problems


def test_a_yaml_syntax_error_gives_its_line_and_column() -> None:
    (problem,) = problems_of("request: r\nstreams:\n  - {id: api, owns: [a\n")
    assert problem.startswith("not valid YAML at line 4, column 1:"), problem


def test_unknown_keys_are_named_with_a_guess() -> None:
    found = problems_of(
        "request: r\nstreams:\n  - {id: api, title: t, template: custom, prompt: p, "
        "own: [src/**]}\ncontract: []\n"
    )
    assert found == (
        "streams[0] (api).owns: required key missing",
        "streams[0] (api).own: unknown key (did you mean `owns`?)",
        "contract: unknown key (did you mean `contracts`?)",
    )


def test_wrong_types_are_named_field_by_field() -> None:
    found = problems_of(
        "request: 5\nstreams:\n"
        "  - {id: Api, title: t, template: endpoint, prompt: p, owns: src/**}\n"
        "  - {id: ui, title: t, template: custom, prompt: p, owns: []}\n"
        "contracts:\n  - {name: user, kind: schema, path: shared/user.ts}\n"
    )
    assert found[0] == "request: expected a string; got a number"
    assert found[1].startswith("streams[0] (Api).id: expected lowercase letters, digits and `-`")
    assert found[2].startswith("streams[0] (Api).template: Input should be 'contracts'")
    assert found[3] == (
        "streams[0] (Api).owns: expected a list of globs, e.g. `[src/api/**]`; "
        "got the string 'src/**'"
    )
    assert found[4] == "streams[1] (ui).owns: a stream must own at least one glob"
    assert found[5].startswith("contracts[0].kind: Input should be 'types'")
    assert len(found) == 6


def test_not_a_mapping_and_a_missing_file(tmp_path: Path) -> None:
    assert problems_of("- a\n- b\n") == (
        "expected a mapping with `request`, `streams` and `contracts`; got a list",
    )
    with pytest.raises(Exception, match="does not exist"):
        load(tmp_path / "build.yaml")


def test_the_schema_and_the_records_agree() -> None:
    manifest = schema("build-manifest.schema.json")
    stream = manifest["$defs"]["stream"]["properties"]
    assert tuple(manifest["$defs"]["template"]["enum"]) == get_args(Template)
    assert stream["id"]["pattern"] == "^[a-z0-9-]+$"
    parsed = parse(f"request: r\nstreams: [{STREAM}]\n")
    jsonschema.validate(as_data(parsed), manifest)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"request": "r", "streams": [{"id": "api", "own": []}]}, manifest)


def readme_manifest() -> str:
    section = README.read_text(encoding="utf-8").split("## `agentloop parallel-build`", 1)[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found, "the README's parallel-build section shows a manifest"
    return found.group(1)


def test_the_readme_example_is_a_valid_manifest() -> None:
    text = readme_manifest()
    manifest = parse(text)
    jsonschema.validate(yaml.safe_load(text), schema("build-manifest.schema.json"))
    rails = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN)
    assert validate.problems(manifest, files=(), forbidden=rails) == ()
    assert [s.template for s in manifest.streams] == [
        "contracts", "data-model", "api-endpoint", "ui-feature"
    ]  # fmt: skip
