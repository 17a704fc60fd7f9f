"""What a user reads in --help and types on the command line: flags, metavars, durations,
and the configuration reference shipped with the package."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import typer

from agentloop import cli, durations
from agentloop.testing.repos import run_cli, write_tree

# typer 0.29 labels options with Python types: `<bool>`, `<list[str]>`, `<float range>`.
PLACEHOLDER = re.compile(r"<[a-z][\w\[\], ]*>")


def _command_paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for command in group.registered_commands:
        assert command.name or command.callback is not None
        name = command.name or command.callback.__name__.replace("_", "-")  # type: ignore[union-attr]
        paths.append((*prefix, name))
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        assert sub.name is not None
        paths += _command_paths(sub.typer_instance, (*prefix, sub.name))
    return paths


def test_no_type_placeholders_in_any_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    paths = _command_paths(cli.app)
    assert {("run",), ("config",), ("session", "start")} <= set(paths)
    for path in paths:
        assert cli.main([*path, "--help"]) == 0
        text = capsys.readouterr().out
        assert "--help" in text
        assert not PLACEHOLDER.findall(text), (path, PLACEHOLDER.findall(text), text)
    assert cli.main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"--dry-run +Plan only", text), text  # a flag: no value, no --no-dry-run
    assert "--no-dry-run" not in text
    assert re.search(r"--task +N\|ID ", text), text
    assert re.search(r"--max-runtime +DURATION ", text), text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("2.5", 2.5),
        ("90s", 90),
        ("20m", 1200),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1h 30m 15s", 5415),
        ("1.5h", 5400),
        ("2d", 172800),
        (" 20M ", 1200),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert durations.parse(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "20x", "30m1h", "1h1h", "-5", "0", "0s", "nan", "1e999"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        durations.parse(text)


def test_duration_flags(tmp_path: Path) -> None:
    done = run_cli("run", "--max-runtime", "20 minutes", cwd=tmp_path, home=tmp_path / "h")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "error: Invalid value for '--max-runtime': '20 minutes' is not a duration "
        "(write seconds or e.g. 90, 90s, 20m, 1h or 1h30m)"
    )
    assert done.stderr.splitlines()[1].startswith("hint: ")
    done = run_cli("detect", "--timeout", "0s", "--json", cwd=tmp_path, home=tmp_path / "h")
    assert done.returncode == 2
    assert "not a positive duration" in json.loads(done.stdout)["error"]["message"]


def test_duration_flags_reach_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def fake_detect(**kwargs: object) -> int:
        seen.update(kwargs)
        return 0

    def fake_run(**kwargs: object) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr("agentloop.commands.detect.detect", fake_detect)
    monkeypatch.setattr("agentloop.commands.run.run", fake_run)
    assert cli.main(["detect", "--timeout", "1h30m", "--rerun-timeout", "90s"]) == 0
    assert (seen["timeout"], seen["rerun_timeout"]) == (5400, 90)
    assert cli.main(["run", "--max-runtime", "20m"]) == 0
    assert seen["max_runtime"] == 1200
    assert cli.main(["run", "--max-runtime", "45"]) == 0
    assert seen["max_runtime"] == 45


def test_config_reference_ships_with_the_package(tmp_path: Path) -> None:
    done = run_cli("config", "--reference", cwd=tmp_path, home=tmp_path / "h")
    assert done.returncode == 0, done.stderr
    docs = Path(__file__).resolve().parents[1] / "docs" / "config.md"
    assert done.stdout == docs.read_text()
    done = run_cli("config", "--reference", "--json", cwd=tmp_path, home=tmp_path / "h")
    assert json.loads(done.stdout)["reference"].startswith("# Configuration")


def test_config_shows_what_is_in_effect(tmp_path: Path) -> None:
    write_tree(tmp_path, {"agentloop.yaml": "run:\n  max_runtime: 20m\n"})
    done = run_cli(
        "config",
        "--json",
        cwd=tmp_path,
        home=tmp_path / "h",
        extra_env={"AGENTLOOP_DETECT__FLAKY_RERUNS": "0"},
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["source"] == "agentloop.yaml"
    assert doc["config"]["run"]["max_runtime"] == 1200
    assert doc["config"]["detect"]["flaky_reruns"] == 0
    done = run_cli("config", cwd=tmp_path, home=tmp_path / "h")
    assert "max_runtime: 1200" in done.stdout
    assert "agentloop config --reference" in done.stderr


def _user_facing_strings(path: Path) -> list[str]:
    """String literals of a module except docstrings (those are for contributors)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_hint_points_into_a_source_checkout() -> None:
    """A pipx user has no docs/ folder: hints and the files init writes name the CLI."""
    src = Path(__file__).resolve().parents[1] / "src" / "agentloop"
    offenders = [
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if any("docs/" in text for text in _user_facing_strings(path))
    ]
    offenders += [
        str(path.relative_to(src))
        for path in (src / "assets").rglob("*")
        if path.is_file() and "docs/" in path.read_text()
    ]
    assert offenders == []
