"""check_change: both rails on one change, reading only what the integrity check needs."""

from __future__ import annotations

from agentloop.rails.change import Reader, check_change
from agentloop.rails.integrity import check_integrity
from agentloop.rails.paths import ForbiddenPaths

BEFORE = {
    "src/app.py": "X = 1\n",
    "src/auth/token.py": "S = 1\n",
    "tests/test_app.py": "def test_a():\n    assert 1\n    assert 2\n",
}
AFTER = {
    "src/app.py": "X = 2\n",
    "src/auth/token.py": "S = 2\n",
    "tests/test_app.py": "def test_a():\n    assert 1\n",
}


def test_both_rails_and_only_test_files_read() -> None:
    read: list[str] = []

    def reader(side: dict[str, str]) -> Reader:
        def read_one(path: str) -> str | None:
            read.append(path)
            return side.get(path)

        return read_one

    result = check_change(
        sorted(AFTER),
        forbidden=ForbiddenPaths.with_protected(["**/auth/**"]),
        allow_test_edits=False,
        before=reader(BEFORE),
        after=reader(AFTER),
    )
    assert not result.ok
    assert result.problems == 2
    assert [v.path for v in result.forbidden] == ["src/auth/token.py"]
    assert result.integrity == check_integrity(BEFORE, AFTER)
    assert [v.kind for v in result.integrity] == ["assertion_removed"]
    assert sorted(read) == ["tests/test_app.py", "tests/test_app.py"]  # once per side


def test_allowed_test_edits_read_nothing() -> None:
    def never(path: str) -> str | None:
        raise AssertionError(f"read {path}")

    result = check_change(
        sorted(AFTER),
        forbidden=ForbiddenPaths.with_protected([]),
        allow_test_edits=True,
        before=never,
        after=never,
    )
    assert result.ok
    assert not result.integrity_checked
    assert result.changed == tuple(sorted(AFTER))
