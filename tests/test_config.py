from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentloop.config import Config, DetectConfig, SuiteConfig, load_config
from agentloop.errors import ConfigError
from agentloop.testing.repos import write_tree

DOCS = Path(__file__).resolve().parents[1] / "docs" / "config.md"


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
    text = DOCS.read_text()
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
            assert row is not None, f"{key} is not documented in docs/config.md"
            default = inner.default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert f"`{default:g}`" in row, row
            elif isinstance(default, bool):
                assert f"`{str(default).lower()}`" in row, row
    assert documented == expected
