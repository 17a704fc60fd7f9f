"""The sandbox a project's own sessions run in (agents.sandbox.project_policy and
project_settings): what `agentloop init` writes into the committed .claude/settings.json.
What Claude Code makes of it is tested with the real CLI in tests/hooks."""

from __future__ import annotations

import json
from pathlib import Path

from agentloop.agents import sandbox
from agentloop.rails.paths import DEFAULT_FORBIDDEN, DEFAULT_SECRETS, ForbiddenPaths
from agentloop.testing.repos import git_init, write_tree

STATE = (".agentloop/init.json", ".agentloop/command", ".agentloop/lock.json")


def project(tmp_path: Path) -> Path:
    return git_init(
        write_tree(
            tmp_path / "proj",
            {
                "calc.py": "x = 1\n",
                "auth/token.py": "S = 1\n",
                "sub/payments/pay.py": "P = 1\n",
                "deploy/id_rsa": "KEY\n",
                ".gitignore": ".venv/\n",
            },
        )
    )


def policy(root: Path, home: Path, **extra: object) -> sandbox.Policy:
    return sandbox.project_policy(
        root=root,
        top=root,
        forbidden=ForbiddenPaths(DEFAULT_FORBIDDEN),
        secrets=DEFAULT_SECRETS,
        network=("pypi.org",),
        home=home,
        state=STATE,
        **extra,  # type: ignore[arg-type]
    )


def test_the_settings_name_no_path_of_this_machine(tmp_path: Path) -> None:
    root, home = project(tmp_path), tmp_path / "home"
    doc = sandbox.project_settings(policy(root, home), home=home)
    text = json.dumps(doc)
    assert str(root) not in text
    assert str(home) not in text
    deny_write = doc["sandbox"]["filesystem"]["denyWrite"]
    assert deny_write[:3] == [".git", "auth", "sub/payments"]
    assert {*STATE, ".claude/settings.json", ".claude/hooks", ".mcp.json"} <= set(deny_write)
    assert doc["sandbox"]["filesystem"]["denyRead"][:2] == ["deploy/id_rsa", "~/.ssh"]
    assert doc["sandbox"]["network"] == {"allowedDomains": ["pypi.org"]}
    rules = doc["permissions"]["deny"]
    assert {"Edit(/.git/**)", "Edit(/auth/**)", "Edit(/**/auth/**)", "Read(~/.ssh/**)"} <= set(
        rules
    )
    assert {"Read(/deploy/id_rsa)", "Read(/**/.env*)"} <= set(rules)
    # The user decides whether sandboxed commands still ask; nothing widens writes.
    assert "autoAllowBashIfSandboxed" not in doc["sandbox"]
    assert "allowWrite" not in doc["sandbox"]["filesystem"]


def test_agentloops_records_are_read_only_but_not_its_sessions(tmp_path: Path) -> None:
    root, home = project(tmp_path), tmp_path / "home"
    doc = sandbox.project_settings(policy(root, home), home=home)
    assert ".agentloop" not in doc["sandbox"]["filesystem"]["denyWrite"]
    # Claude Code merges Edit(...) deny rules into the sandbox's denyWrite: one for all of
    # .agentloop/ would stop `agentloop detect` recording the session.
    assert not [r for r in doc["permissions"]["deny"] if r.startswith("Edit(/.agentloop/**")]


def test_only_what_exists_or_is_planned_is_listed(tmp_path: Path) -> None:
    root, home = project(tmp_path), tmp_path / "home"
    # A directory init is about to create counts as there: a second init writes the same.
    planned = policy(root, home, planned=[".claude/skills/autofix/SKILL.md"])
    assert root / ".claude" in planned.deny_write
    assert root / ".claude" not in policy(root, home).deny_write
    # A project in a subdirectory of the repository: no .git of its own to list.
    sub = root / "sub"
    inner = sandbox.project_policy(
        root=sub, top=root, forbidden=ForbiddenPaths(DEFAULT_FORBIDDEN), secrets=(), home=home
    )
    assert sub / ".git" not in inner.deny_write
    assert sub / "payments" in inner.deny_write
    assert root / "auth" not in inner.deny_write


def test_agentloops_installation_is_listed_when_it_is_inside_the_project(tmp_path: Path) -> None:
    root, home = project(tmp_path), tmp_path / "home"
    venv, elsewhere = root / ".venv", tmp_path / "pipx" / "agentloop"
    doc = sandbox.project_settings(policy(root, home, installation=[venv, elsewhere]), home=home)
    deny_write = doc["sandbox"]["filesystem"]["denyWrite"]
    assert ".venv" in deny_write
    # Outside the project the sandbox lets no command write anyway; the committed file
    # does not name this machine's paths.
    assert not [p for p in deny_write if "pipx" in p]
