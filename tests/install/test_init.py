"""`agentloop init` on real git repositories through the real CLI: it installs, it is
idempotent, it never overwrites or deletes a byte of the user's, and `--uninstall` leaves
the repository exactly as it found it."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from agentloop.config import load_config
from agentloop.install import files, mcpjson, settings, texts
from agentloop.rails.paths import PROTECTED
from agentloop.testing.repos import (
    SAMPLE_REPO,
    git_init,
    pytest_project,
    run_cli,
    run_git,
    write_tree,
)
from agentloop.testing.trees import mtimes, snapshot

SHIPPED = [a.path for a in files.assets()]

USERS_SETTINGS = """\
{
    "permissions": {
        "deny": ["Read(.env)"],
        "allow": ["Bash(make test)"]
    },
    "hooks": {
        "PreToolUse": [
            {
                "matcher": "Bash",
                "hooks": [{"type": "command", "command": "./scripts/check-bash.sh"}]
            }
        ]
    },
    "model": "sonnet"
}
"""


def init(root: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("init", *args, cwd=root, home=home, timeout=120)


def repo(root: Path, files_: dict[str, str] | None = None) -> Path:
    return git_init(write_tree(root, files_ or {"README.md": "hello\n"}))


def one_error(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert [line.startswith("error: ") for line in lines].count(True) == 1, stderr
    assert any(line.startswith("hint: ") for line in lines), stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def init_schema() -> Draft202012Validator:
    text = resources.files("agentloop.schemas").joinpath("init.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_round_trip(root: Path, home: Path) -> None:
    before, status = snapshot(root), run_git(root, "status", "--porcelain")
    done = init(root, home)
    assert done.returncode == 0, done.stderr
    for path in SHIPPED:
        assert (root / path).is_file(), path
    undone = init(root, home, "--uninstall")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert snapshot(root) == before
    assert run_git(root, "status", "--porcelain") == status


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("files_", [None, SAMPLE_REPO], ids=["bare", "sample"])
def test_init_then_uninstall_leaves_the_repository_byte_identical(
    tmp_path: Path, isolated_home: Path, files_: dict[str, str] | None
) -> None:
    assert_round_trip(repo(tmp_path / "p", files_), isolated_home)


@pytest.mark.parametrize("newline", [True, False], ids=["newline", "no-newline"])
def test_round_trip_with_the_users_own_claude_md_gitignore_and_settings(
    tmp_path: Path, isolated_home: Path, newline: bool
) -> None:
    end = "\n" if newline else ""
    root = write_tree(
        tmp_path / "p",
        {
            "CLAUDE.md": "# House rules\n\nBe nice.",
            ".gitignore": f"*.log\nbuild/{end}",
            ".claude/settings.json": USERS_SETTINGS,
        },
    )
    (root / "CLAUDE.md").write_text("# House rules\n\nBe nice." + end)
    (root / "CLAUDE.md").chmod(0o600)
    git_init(root)
    assert_round_trip(root, isolated_home)


def test_round_trip_through_a_symlinked_claude_md(tmp_path: Path, isolated_home: Path) -> None:
    root = write_tree(tmp_path / "p", {"AGENTS.md": "# Agents\n"})
    (root / "CLAUDE.md").symlink_to("AGENTS.md")
    git_init(root)
    before = snapshot(root)
    assert init(root, isolated_home).returncode == 0
    assert (root / "CLAUDE.md").is_symlink()
    assert texts.BEGIN in (root / "AGENTS.md").read_text()
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert snapshot(root) == before


# ---------------------------------------------------------------- what it writes


def test_merged_settings_keep_every_user_key_and_hook(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p", {".claude/settings.json": USERS_SETTINGS})
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    assert "merged .claude/settings.json" in done.stdout
    merged = json.loads((root / settings.PATH).read_text())
    users = json.loads(USERS_SETTINGS)
    record = json.loads((root / files.MANIFEST).read_text())
    owned = settings.Owned.from_json(record["settings"]["owned"])
    assert settings.unmerge(settings.unmerge_owned(merged, owned)) == users
    # The user's rules first, where they were; ours after them.
    assert merged["permissions"]["allow"] == users["permissions"]["allow"]
    assert merged["permissions"]["deny"][0] == "Read(.env)"
    assert "Edit(/.git/**)" in merged["permissions"]["deny"]
    assert merged["hooks"]["PreToolUse"][0] == users["hooks"]["PreToolUse"][0]
    assert settings.ours(merged) == {h.event: [h.group()] for h in settings.HOOKS}
    assert settings.problem(merged) is None
    assert (root / settings.PATH).read_text().endswith("}\n")
    # The original bytes are kept for uninstall.
    assert (root / record["settings"]["backup"]).read_text() == USERS_SETTINGS


def test_what_a_fresh_install_writes(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p")
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    for asset in files.assets():
        path = root / asset.path
        assert path.read_bytes() == asset.data
        assert path.stat().st_mode & 0o777 == (0o755 if asset.path.endswith(".sh") else 0o644)
        assert f"created {asset.path}" in done.stdout
    written = json.loads((root / settings.PATH).read_text())
    assert written["hooks"] == settings.generated()["hooks"]
    assert written["sandbox"]["enabled"] is True
    assert written["enabledMcpjsonServers"] == ["agentloop"]
    assert json.loads((root / mcpjson.PATH).read_text()) == {
        "mcpServers": {"agentloop": {"type": "stdio", "command": "sh", "args": [mcpjson.SCRIPT]}}
    }
    claude_md = (root / "CLAUDE.md").read_text()
    assert claude_md.startswith(texts.BEGIN + "\n")
    assert claude_md.endswith(texts.END + "\n")
    for protected in PROTECTED:
        assert f"`{protected}`" in claude_md
    assert "At most 3 attempts per failure and 20 minutes per run" in claude_md
    assert "/autofix" in claude_md
    assert "git push" in claude_md
    assert (root / ".gitignore").read_text() == "# agentloop: local run state\n.agentloop/\n"
    # The local state is ignored: only files to commit show up.
    status = run_git(root, "status", "--porcelain", "--untracked-files=all")
    assert ".agentloop" not in status
    assert "?? .claude/settings.json" in status
    assert "?? .mcp.json" in status


def test_gitignore_lines_are_appended_once(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p", {".gitignore": "*.log"})
    assert init(root, isolated_home).returncode == 0
    assert (root / ".gitignore").read_text() == (
        "*.log\n\n# agentloop: local run state\n.agentloop/\n"
    )
    already = repo(tmp_path / "q", {".gitignore": "/.agentloop\n"})
    assert init(already, isolated_home).returncode == 0
    assert (already / ".gitignore").read_text() == "/.agentloop\n"


def test_claude_md_block_is_appended_and_updated_in_place(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(
        tmp_path / "p", {"CLAUDE.md": "# Mine\n", "agentloop.yaml": "run:\n  max_attempts: 5\n"}
    )
    assert init(root, isolated_home).returncode == 0
    text = (root / "CLAUDE.md").read_text()
    assert text.startswith("# Mine\n\n" + texts.BEGIN + "\n")
    assert "At most 5 attempts" in text
    # The configuration changes; the block follows it, in place, the rest untouched.
    (root / "CLAUDE.md").write_text(text + "\nMore of mine.\n")
    (root / "agentloop.yaml").write_text("run:\n  max_attempts: 2\n  max_runtime: 600\n")
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    text = (root / "CLAUDE.md").read_text()
    assert "At most 2 attempts per failure and 10 minutes per run" in text
    assert text.startswith("# Mine\n\n" + texts.BEGIN)
    assert text.endswith("\nMore of mine.\n")
    assert text.count(texts.BEGIN) == 1


def test_a_second_init_changes_nothing(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p", {"CLAUDE.md": "x\n", ".claude/settings.json": USERS_SETTINGS})
    assert init(root, isolated_home).returncode == 0
    before, times = snapshot(root), mtimes(root)
    again = init(root, isolated_home)
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stdout
    assert snapshot(root) == before
    assert mtimes(root) == times
    doc = json.loads(init(root, isolated_home, "--json").stdout)
    assert doc["changed"] is False
    assert {f["action"] for f in doc["files"]} == {"unchanged"}


# ---------------------------------------------------------------- the user's bytes


def test_a_changed_owned_file_is_refused_then_forced_then_restored(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    assert init(root, isolated_home).returncode == 0
    guard = root / ".claude/hooks/guard.sh"
    mine = guard.read_bytes() + b"# my tweak\n"
    guard.write_bytes(mine)
    before = snapshot(root)
    refused = init(root, isolated_home)
    assert refused.returncode == 2
    one_error(refused.stderr, ".claude/hooks/guard.sh", "changed since", "--force")
    assert snapshot(root) == before
    forced = init(root, isolated_home, "--force")
    assert forced.returncode == 0, forced.stderr
    backup = root / files.BACKUPS / ".claude/hooks/guard.sh"
    assert backup.read_bytes() == mine
    assert guard.read_bytes() == next(a.data for a in files.assets() if a.path.endswith("guard.sh"))
    record = json.loads((root / files.MANIFEST).read_text())
    assert record["backups"] == [
        {"path": ".claude/hooks/guard.sh", "backup": f"{files.BACKUPS}/.claude/hooks/guard.sh"}
    ]
    undone = init(root, isolated_home, "--uninstall")
    assert undone.returncode == 0, undone.stderr
    assert "restored .claude/hooks/guard.sh" in undone.stdout
    assert guard.read_bytes() == mine
    assert not (root / ".agentloop").exists()


def test_the_users_own_skill_is_refused_without_force(tmp_path: Path, isolated_home: Path) -> None:
    skill = ".claude/skills/autofix/SKILL.md"
    root = repo(tmp_path / "p", {skill: "---\nname: autofix\n---\nMy own autofix.\n"})
    before = snapshot(root)
    refused = init(root, isolated_home)
    assert refused.returncode == 2
    one_error(refused.stderr, skill, "not installed by agentloop init", "--force")
    assert snapshot(root) == before
    assert init(root, isolated_home, "--force").returncode == 0
    assert (
        root / files.BACKUPS / skill
    ).read_text() == "---\nname: autofix\n---\nMy own autofix.\n"
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert snapshot(root) == before


def test_an_outdated_file_of_ours_is_updated_without_force(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    assert init(root, isolated_home).returncode == 0
    # As if an older agentloop had installed another version of the script.
    old = b"#!/bin/sh\n# agentloop:managed - an older version\nexit 0\n"
    (root / ".claude/hooks/stop-gate.sh").write_bytes(old)
    record_path = root / files.MANIFEST
    record = json.loads(record_path.read_text())
    record["files"][".claude/hooks/stop-gate.sh"]["sha256"] = files.sha256(old)
    # ... and a skill this version no longer ships.
    gone = root / ".claude/skills/retired/SKILL.md"
    gone.parent.mkdir()
    gone.write_bytes(b"# agentloop:managed\n")
    record["files"][".claude/skills/retired/SKILL.md"] = {"sha256": files.sha256(gone.read_bytes())}
    record_path.write_text(json.dumps(record))
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    assert "updated .claude/hooks/stop-gate.sh" in done.stdout
    assert "removed .claude/skills/retired/SKILL.md" in done.stdout
    assert (root / ".claude/hooks/stop-gate.sh").read_bytes() != old
    assert not gone.exists()


def test_uninstall_keeps_a_file_the_user_changed(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p")
    assert init(root, isolated_home).returncode == 0
    (root / "agentloop.yaml").write_text("run:\n  max_attempts: 4\n")
    undone = init(root, isolated_home, "--uninstall")
    assert undone.returncode == 1
    assert "kept agentloop.yaml" in undone.stdout
    assert (root / "agentloop.yaml").read_text() == "run:\n  max_attempts: 4\n"
    assert not (root / ".claude").exists()
    assert not (root / files.MANIFEST).exists()


def test_uninstall_keeps_the_gitignore_lines_while_files_not_agentloops_are_left(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    assert init(root, isolated_home).returncode == 0
    (root / ".agentloop/notes.txt").write_text("mine")
    undone = init(root, isolated_home, "--uninstall")
    assert undone.returncode == 1
    assert "kept .gitignore" in undone.stdout
    assert ".agentloop/notes.txt" in undone.stdout
    assert (root / ".agentloop/notes.txt").read_text() == "mine"
    # It stays out of git: only the (kept) .gitignore init created shows.
    assert run_git(root, "status", "--porcelain", "--untracked-files=all") == "?? .gitignore\n"


def test_uninstall_strands_no_gitignore_lines_for_agentloops_own_files(
    tmp_path: Path, isolated_home: Path
) -> None:
    """What agentloop wrote in .agentloop/ itself: the working state goes, the history of
    runs stays (said so) in a folder that ignores itself, and .gitignore is as it was."""
    root = repo(tmp_path / "p", {"README.md": "hello\n", ".gitignore": "*.log\n"})
    assert init(root, isolated_home).returncode == 0
    state = root / ".agentloop"
    write_tree(
        state,
        {
            "history.db": "ledger",
            "history.db-wal": "wal",
            "runs/20261130-a/report.md": "# run a",
            "runs/20261130-b/report.md": "# run b",
            "sessions/abc.json": "{}",
            "reports/unit.xml": "<testsuites/>",
            "builds/total.yaml": "request: r\n",
        },
    )
    undone = init(root, isolated_home, "--uninstall", "--json")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    doc = json.loads(undone.stdout)
    assert init_schema().is_valid(doc)
    actions = {f["path"]: f["action"] for f in doc["files"]}
    assert actions[".gitignore"] == "updated"
    assert actions[".agentloop/"] == "removed"  # the working state
    (kept,) = [n for n in doc["notes"] if "history" in n]
    assert "the run ledger (history.db), 2 run reports" in kept
    assert "parallel-build manifests and logs" in kept
    assert (root / ".gitignore").read_text() == "*.log\n"
    assert sorted(p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file()) == [
        ".gitignore", "builds/total.yaml", "history.db", "history.db-wal",
        "runs/20261130-a/report.md", "runs/20261130-b/report.md",
    ]  # fmt: skip
    assert (state / "history.db").read_text() == "ledger"
    assert run_git(root, "status", "--porcelain", "--untracked-files=all") == ""
    # Installing again and uninstalling again is just as clean.
    assert init(root, isolated_home).returncode == 0
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert (root / ".gitignore").read_text() == "*.log\n"
    assert run_git(root, "status", "--porcelain", "--untracked-files=all") == ""


def test_uninstall_takes_agentloops_working_state_along(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    before, status = snapshot(root), run_git(root, "status", "--porcelain")
    assert init(root, isolated_home).returncode == 0
    write_tree(root / ".agentloop", {"sessions/abc.json": "{}", "reports/unit.xml": "<x/>"})
    undone = init(root, isolated_home, "--uninstall")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert "working state" in undone.stdout
    assert not (root / ".agentloop").exists()
    assert snapshot(root) == before
    assert run_git(root, "status", "--porcelain") == status


def test_init_warns_when_the_hooks_cannot_run_agentloop(
    tmp_path: Path,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The guard fails closed: an agentloop the hooks cannot run blocks every tool call."""
    from agentloop import cli
    from agentloop.install import entry

    root = repo(tmp_path / "p")
    broken = tmp_path / "gone-venv" / "bin" / "agentloop"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'agentloop'\" >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    monkeypatch.setattr(entry, "entry_point", lambda: broken)
    assert cli.main(["init", "-C", str(root)]) == 0
    err = capsys.readouterr().err
    (warning,) = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert f"the hooks run {broken}, but `agentloop --version` exited 1" in warning
    assert "No module named 'agentloop'" in warning
    assert "every tool call in Claude Code would be blocked" in warning
    assert "pipx install" in warning
    # Still installed: the user may fix the environment and keep the rest.
    assert (root / ".agentloop/command").read_text() == f"{broken}\n"

    # One that runs, but from uvx's cache, which is cleared without warning.
    cached = tmp_path / ".cache" / "uv" / "archive-v0" / "x1" / "bin" / "agentloop"
    cached.parent.mkdir(parents=True)
    cached.write_text(f"#!/bin/sh\necho 'agentloop {agentloop_version()}'\n")
    cached.chmod(0o755)
    monkeypatch.setattr(entry, "entry_point", lambda: cached)
    assert cli.main(["init", "-C", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert init_schema().is_valid(doc)
    (warning,) = doc["warnings"]
    assert "from a temporary environment" in warning


def test_a_working_agentloop_gives_no_warning(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p")
    done = init(root, isolated_home, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["warnings"] == []
    assert "warning:" not in done.stderr


def agentloop_version() -> str:
    from agentloop import __version__

    return __version__


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"hooks": {"PreToolUse": [}', "not valid JSON"),
        ('{"hooks": [{"matcher": "Bash"}]}', "hooks: expected an object, got an array"),
    ],
    ids=["bad-json", "hooks-list"],
)
def test_an_invalid_settings_file_is_refused(
    tmp_path: Path, isolated_home: Path, content: str, fragment: str
) -> None:
    root = repo(tmp_path / "p", {".claude/settings.json": content})
    before = snapshot(root)
    done = init(root, isolated_home)
    assert done.returncode == 2
    one_error(done.stderr, ".claude/settings.json", fragment)
    assert done.stdout == ""
    assert snapshot(root) == before


def test_uninstall_without_a_record(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p")
    done = init(root, isolated_home, "--uninstall")
    assert done.returncode == 0
    assert "nothing to uninstall" in done.stderr
    write_tree(root, {".claude/hooks/guard.sh": "#!/bin/sh\n# agentloop:managed\n"})
    before = snapshot(root)
    refused = init(root, isolated_home, "--uninstall")
    assert refused.returncode == 2
    one_error(refused.stderr, "no install record", ".claude/hooks/guard.sh")
    assert snapshot(root) == before


def test_outside_a_git_repository(tmp_path: Path, isolated_home: Path) -> None:
    (tmp_path / "p").mkdir()
    done = init(tmp_path / "p", isolated_home)
    assert done.returncode == 2
    one_error(done.stderr, "is not a git repository", "git init")
    assert list((tmp_path / "p").iterdir()) == []


# ---------------------------------------------------------------- agentloop.yaml


def test_the_prefilled_config_lists_the_pytest_suite(tmp_path: Path, isolated_home: Path) -> None:
    root = git_init(
        pytest_project(tmp_path / "p", {"tests/test_a.py": "def test_a():\n    assert True\n"})
    )
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    text = (root / "agentloop.yaml").read_text()
    assert files.MARKER in text.splitlines()[0]
    assert "# run:\n#   max_attempts: 3\n" in text
    config, source = load_config(root, environ={})
    assert source == "agentloop.yaml"
    assert [s.name for s in config.suites] == ["pytest"]
    assert config.suites[0].run.startswith("python -m pytest ")
    assert config.suites[0].format == "pytest-json"
    assert f"`{config.suites[0].run}`" in (root / "CLAUDE.md").read_text()
    # The suite it wrote runs.
    detect = run_cli("detect", "--json", cwd=root, home=isolated_home, timeout=120)
    assert detect.returncode == 0, detect.stderr
    assert json.loads(detect.stdout)["summary"]["green"] is True


def test_without_a_suite_the_config_has_a_commented_example(
    tmp_path: Path, isolated_home: Path
) -> None:
    root = repo(tmp_path / "p")
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    assert "no test suite found" in done.stderr
    text = (root / "agentloop.yaml").read_text()
    assert "# suites:\n#   - name: unit\n" in text or "# suites:\n# - name: unit\n" in text
    assert yaml.safe_load(text) is None
    config, _ = load_config(root, environ={})
    assert config.suites == ()
    assert "No test suite was found" in (root / "CLAUDE.md").read_text()


@pytest.mark.parametrize("where", ["agentloop.yaml", "pyproject.toml"])
def test_the_users_config_is_left_alone(tmp_path: Path, isolated_home: Path, where: str) -> None:
    config = (
        {"agentloop.yaml": "suites:\n  - name: unit\n    run: make test\n"}
        if where == "agentloop.yaml"
        else {"pyproject.toml": "[tool.agentloop.run]\nmax_attempts = 7\n"}
    )
    root = repo(tmp_path / "p", config)
    done = init(root, isolated_home)
    assert done.returncode == 0, done.stderr
    assert (root / where).read_text() == config[where]
    if where == "pyproject.toml":
        assert not (root / "agentloop.yaml").exists()
        assert "At most 7 attempts" in (root / "CLAUDE.md").read_text()
    else:
        assert "`make test` (suite `unit`)" in (root / "CLAUDE.md").read_text()
    assert init(root, isolated_home, "--uninstall").returncode == 0
    assert (root / where).read_text() == config[where]


def test_prefill_of_junit_suites_loads(tmp_path: Path) -> None:
    """Suites that need their reporter flags spelled out still load as configuration."""
    from agentloop.suites import Suite, discover

    found = [
        Suite("pytest", "/opt/venv/bin/python -m pytest -o junit_family=xunit1", "junit",
              tmp_path, 60, runner="pytest", rerun="/opt/venv/bin/python -m pytest"),
        Suite("vitest", "npx --no-install vitest run", "vitest-json", tmp_path, 60,
              runner="vitest", rerun="npx vitest run"),
        Suite("jest", "npx --no-install jest --ci", "junit", tmp_path, 60, runner="jest",
              rerun="npx jest"),
    ]  # fmt: skip
    (tmp_path / "agentloop.yaml").write_text(texts.prefill(found))
    config, _ = load_config(tmp_path, environ={})
    by_name = {s.name: s for s in config.suites}
    assert by_name["pytest"].run.startswith("python -m pytest ")
    assert by_name["pytest"].report == ".agentloop/reports/pytest.xml"
    assert "--junitxml=.agentloop/reports/pytest.xml" in by_name["pytest"].run
    # vitest: agentloop adds its JSON reporter (whole stacks) at run time, as when found.
    assert by_name["vitest"].run == "npx --no-install vitest run"
    assert (by_name["vitest"].format, by_name["vitest"].report) == ("vitest-json", None)
    [vitest] = [s for s in discover(tmp_path, config) if s.name == "vitest"]
    assert vitest.runner == "vitest"
    assert by_name["jest"].run.startswith("JEST_JUNIT_OUTPUT_FILE=.agentloop/reports/jest.xml ")


# ---------------------------------------------------------------- --json


def test_json_output_follows_the_schema(tmp_path: Path, isolated_home: Path) -> None:
    validator = init_schema()
    root = repo(tmp_path / "p", {".claude/settings.json": USERS_SETTINGS})
    docs: list[dict[str, Any]] = []
    for args in ((), (), ("--uninstall",)):
        done = init(root, isolated_home, "--json", *args)
        assert done.returncode == 0, done.stderr
        docs.append(json.loads(done.stdout))
    for doc in docs:
        validator.validate(doc)
    assert docs[0]["changed"]
    assert not docs[1]["changed"]
    assert docs[2]["changed"]
    assert docs[2]["command"] == "uninstall"
    actions = {f["path"]: f["action"] for f in docs[0]["files"]}
    assert actions[settings.PATH] == "merged"
    assert {f["action"] for f in docs[2]["files"]} <= {"removed", "restored"}
    (root / settings.PATH).write_text("{")
    error = init(root, isolated_home, "--json")
    assert error.returncode == 2
    Draft202012Validator(validator.schema["$defs"]["error"]).validate(json.loads(error.stdout))


def test_force_and_uninstall_do_not_mix(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p")
    done = init(root, isolated_home, "--uninstall", "--force")
    assert done.returncode == 2
    one_error(done.stderr, "--force")


def test_every_shipped_file_is_marked() -> None:
    assert SHIPPED, "no assets found in the package"
    assert any(p.endswith("/SKILL.md") for p in SHIPPED)
    for asset in files.assets():
        assert files.is_marked(asset.data), asset.path
        assert os.sep == "/" or "\\" not in asset.path


def test_an_edited_claude_md_block_is_refused_and_kept(tmp_path: Path, isolated_home: Path) -> None:
    root = repo(tmp_path / "p", {"CLAUDE.md": "# Mine\n"})
    assert init(root, isolated_home).returncode == 0
    claude_md = root / "CLAUDE.md"
    edited = claude_md.read_text().replace("## agentloop\n", "## agentloop\nMy note.\n")
    claude_md.write_text(edited)
    # A change of configuration would rewrite the block: refused, the note is the user's.
    (root / "agentloop.yaml").write_text("run:\n  max_attempts: 2\n")
    refused = init(root, isolated_home)
    assert refused.returncode == 2
    one_error(refused.stderr, "CLAUDE.md", "block was edited")
    assert claude_md.read_text() == edited
    undone = init(root, isolated_home, "--uninstall")
    assert undone.returncode == 1
    assert "kept CLAUDE.md" in undone.stdout
    assert claude_md.read_text() == edited
