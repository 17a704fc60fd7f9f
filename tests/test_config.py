from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentloop.config import Config, DetectConfig, SuiteConfig, load_config
from agentloop.errors import ConfigError
from agentloop.testing.repos import write_tree

ROOT = Path(__file__).resolve().parents[1]
# The reference ships in the package (`agentloop config --reference`); docs/ holds a copy.
REFERENCE = ROOT / "src" / "agentloop" / "resources" / "config.md"
DOCS = ROOT / "docs" / "config.md"


def test_defaults_without_any_file(tmp_path: Path) -> None:
    config, source = load_config(tmp_path, environ={})
    assert source is None
    assert config.detect == DetectConfig(flaky_reruns=2, suite_timeout=600, rerun_timeout=120)
    assert config.suites == ()


def test_layers_merge_defaults_file_environment_flags(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": (
                "detect:\n  flaky_reruns: 5\n  rerun_timeout: 30\n  suite_timeout: 90\n"
            )
        },
    )
    environ = {"AGENTLOOP_DETECT__RERUN_TIMEOUT": "45", "AGENTLOOP_DETECT__SUITE_TIMEOUT": "70"}
    config, source = load_config(
        tmp_path, environ=environ, overrides={"detect": {"suite_timeout": 10}}
    )
    assert source == "agentloop.yaml"
    assert config.detect.flaky_reruns == 5  # file
    assert config.detect.rerun_timeout == 45  # environment over file
    assert config.detect.suite_timeout == 10  # flag over environment


def test_pyproject_section(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "pyproject.toml": """\
                [tool.agentloop]
                detect = { flaky_reruns = 0 }

                [[tool.agentloop.suites]]
                name = "unit"
                run = "pytest -q"
                """
        },
    )
    config, source = load_config(tmp_path, environ={})
    assert source == "pyproject.toml [tool.agentloop]"
    assert config.detect.flaky_reruns == 0
    assert config.suites == (SuiteConfig(name="unit", run="pytest -q"),)


@pytest.mark.parametrize(
    ("files", "environ", "fragments"),
    [
        ({"agentloop.yaml": "detect: [\n"}, {}, ["not valid YAML"]),
        (
            {"agentloop.yaml": "detect:\n  flaky_reruns: 1\nrun: {max_attempts: [1\n"},
            {},
            ["not valid YAML at line 4, column 1"],
        ),
        ({"agentloop.yaml": "detect:\n  a: 1\n    b: 2\n"}, {}, ["line 3, column 6"]),
        (
            {"agentloop.yaml": "suites:\n  name: unit\n  run: pytest\n"},
            {},
            ["suites: expected a list of suites", "`name` and `run`", "got a mapping"],
        ),
        (
            {"agentloop.yaml": "suites:\n  - pytest -q\n"},
            {},
            ["suites[0]: expected a suite: a mapping with `name` and `run`"],
        ),
        (
            {"agentloop.yaml": "rails:\n  forbidden_paths: secret/**\n"},
            {},
            ["rails.forbidden_paths: expected a list of strings", "'secret/**'"],
        ),
        ({"agentloop.yaml": "detect: 3\n"}, {}, ["detect: expected a mapping of keys"]),
        (
            {"pyproject.toml": '[tool.agentloop]\nsuites = "pytest"\n'},
            {},
            ["pyproject.toml [tool.agentloop]", "suites: expected a list of suites"],
        ),
        (
            {"pyproject.toml": '[tool.agentloop.suites]\nname = "unit"\nrun = "pytest"\n'},
            {},
            ["suites: expected a list of suites", "got a mapping"],
        ),
        ({"pyproject.toml": "[tool.agentloop]\ndetect = {\n"}, {}, ["at line 2"]),
        ({"agentloop.yaml": "run: {max_runtime: 20 minutes}\n"}, {}, ["is not a duration"]),
        ({"agentloop.yaml": "run: {max_runtime: 30m1h}\n"}, {}, ["is not a duration"]),
        ({"agentloop.yaml": "- a\n- b\n"}, {}, ["must be a mapping"]),
        (
            {"agentloop.yaml": "suites:\n  - name: a\n    runn: x\n"},
            {},
            ["suites[0].runn: unknown key", "`run`", "suites[0].run: Field required"],
        ),
        ({"agentloop.yaml": "detect:\n  flaky_reruns: -1\n"}, {}, ["detect.flaky_reruns"]),
        ({}, {"AGENTLOOP_DETECT__FLAKY_RERUNS": "many"}, ["AGENTLOOP_* environment"]),
        (
            {"agentloop.yaml": "suites:\n  - {name: a, run: x}\n  - {name: a, run: y}\n"},
            {},
            ["unique"],
        ),
        (
            {"agentloop.yaml": "suites:\n  - {name: a, run: x, format: junit}\n"},
            {},
            ["suites[0].report is required"],
        ),
        (
            {"agentloop.yaml": "detect: {}\n", "pyproject.toml": "[tool.agentloop]\n"},
            {},
            ["both agentloop.yaml and [tool.agentloop]"],
        ),
        ({"pyproject.toml": "[tool.agentloop\n"}, {}, ["not valid TOML"]),
    ],
)
def test_invalid_configuration(
    tmp_path: Path, files: dict[str, str], environ: dict[str, str], fragments: list[str]
) -> None:
    write_tree(tmp_path, files)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ=environ)
    for fragment in fragments:
        assert fragment in caught.value.message
    assert caught.value.hint


def test_every_key_is_documented_with_its_default() -> None:
    text = REFERENCE.read_text()
    documented = set(re.findall(r"^\| `([\w.\[\]]+)` \|", text, re.M))
    expected = {f"suites[].{name}" for name in SuiteConfig.model_fields}
    for section, field in Config.model_fields.items():
        if section == "suites":
            continue
        model = field.annotation
        assert isinstance(model, type)
        for name, inner in model.model_fields.items():  # type: ignore[attr-defined]
            key = f"{section}.{name}"
            expected.add(key)
            row = next((ln for ln in text.splitlines() if ln.startswith(f"| `{key}` |")), None)
            assert row is not None, f"{key} is not documented in {REFERENCE.name}"
            default = inner.default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert f"`{default:g}`" in row, row
            elif isinstance(default, bool):
                assert f"`{str(default).lower()}`" in row, row
    assert documented == expected


def test_docs_hold_the_shipped_reference() -> None:
    assert DOCS.read_text() == REFERENCE.read_text(), (
        f"{DOCS} must be a copy of {REFERENCE} (the source, shipped in the package): "
        "`python -m agentloop config --reference > docs/config.md`"
    )


def test_durations_in_the_file_and_the_environment(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "agentloop.yaml": (
                "detect: {suite_timeout: 1h30m, rerun_timeout: 90s}\n"
                "run: {max_runtime: 20m}\n"
                "suites:\n  - {name: a, run: pytest, timeout: 2m}\n"
            )
        },
    )
    config, _ = load_config(tmp_path, environ={"AGENTLOOP_WORKSPACE__SETUP_TIMEOUT": "1.5h"})
    assert config.detect.suite_timeout == 5400
    assert config.detect.rerun_timeout == 90
    assert config.run.max_runtime == 1200
    assert config.suites[0].timeout == 120
    assert config.workspace.setup_timeout == 5400
