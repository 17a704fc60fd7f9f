"""The PreToolUse guard of the headless loop: what it denies before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from agentloop.rails.guard import make_guard
from agentloop.rails.paths import ForbiddenPaths

GUARD = make_guard(ForbiddenPaths(root="/repo"))


@pytest.mark.parametrize(
    ("tool", "tool_input", "denied"),
    [
        ("Edit", {"file_path": "/repo/auth/token.py"}, "forbidden path"),
        ("Write", {"file_path": "/repo/.github/workflows/ci.yml"}, "forbidden path"),
        ("Edit", {"file_path": "/etc/passwd"}, "forbidden path"),
        ("Edit", {"file_path": "/repo/src/app.py"}, None),
        ("Read", {"file_path": "/repo/.env.production"}, "holds secrets"),
        ("Read", {"file_path": "/repo/src/app.py"}, None),
        ("Bash", {"command": "echo x > auth/token.py"}, "auth/token.py"),
        ("Bash", {"command": "git push origin HEAD"}, "git push"),
        ("Bash", {"command": "bash -c 'git -C . push'"}, "git push"),
        ("Bash", {"command": "cat config/.env"}, "holds secrets"),
        ("Bash", {"command": "python -m pytest 'tests/t.py::test[a b/c]'"}, None),
        ("Bash", {"command": "grep -rn auth src"}, None),
        ("Grep", {"pattern": "auth"}, None),
    ],
)
def test_guard_decisions(tool: str, tool_input: dict[str, Any], denied: str | None) -> None:
    reason = GUARD(tool, tool_input)
    if denied is None:
        assert reason is None
    else:
        assert reason is not None
        assert denied in reason
        assert reason.startswith("agentloop rails: ")
