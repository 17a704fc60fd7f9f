"""Every install instruction and hint names what really installs this project: the
distribution `agentloop-rails` from a checkout or a git URL, never PyPI's `agentloop`,
which belongs to an unrelated project."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import agentloop
from agentloop.errors import UsageError
from agentloop.install import entry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# `pip install agentloop`, `pipx install agentloop`, `uv tool install agentloop`, `-U`…:
# the bare name, not a path, a URL or agentloop-rails.
STRANGER = re.compile(
    r"\b(?:pip|pipx|uv tool|uv pip)\s+(?:install|upgrade)\s+(?:-\S+\s+)*agentloop(?![\w./-])"
)


def test_the_distribution_has_a_name_of_its_own() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == agentloop.DISTRIBUTION == "agentloop-rails"
    assert project["scripts"] == {"agentloop": "agentloop.cli:main"}


def _texts() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "CLAUDE.md", *(ROOT / "docs").rglob("*.md")]
    for top in (ROOT / "src" / "agentloop", ROOT / ".claude", ROOT / "examples"):
        found += [
            p for p in top.rglob("*")
            if p.is_file() and p.suffix in (".py", ".sh", ".md", ".json", ".yaml", ".toml")
        ]  # fmt: skip
    return found


def test_no_instruction_installs_a_strangers_package() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _texts()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        # The README says once, in so many words, that this command is the wrong one.
        if STRANGER.search(line) and "unrelated project" not in line
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "line",
    ["pip install agentloop", "pipx install -U agentloop", "uv tool install agentloop`"],
)
def test_the_check_sees_the_bare_name(line: str) -> None:
    assert STRANGER.search(line)


@pytest.mark.parametrize(
    "line", ["pipx install /path/to/agentloop", "pip install agentloop-rails", "pip install -e ."]
)
def test_the_check_lets_real_sources_through(line: str) -> None:
    assert not STRANGER.search(line)


def test_the_hint_without_an_installed_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "elsewhere.py")])
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(UsageError) as caught:
        entry.entry_point()
    assert "pipx install <agentloop checkout or git URL>" in (caught.value.hint or "")
