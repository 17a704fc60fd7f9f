"""Forbidden paths: git wildmatch rules, case-insensitive, and anything that leaves the
repository counts as forbidden."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentloop.rails.paths import (
    DEFAULT_FORBIDDEN,
    OUTSIDE_REPOSITORY,
    ForbiddenPaths,
    PathViolation,
    Rename,
)

DEFAULTS = ForbiddenPaths()

# (path, the default pattern that forbids it, or None when it is allowed)
CASES = [
    ("src/app/auth/login.py", "**/auth/**"),
    ("auth/login.py", "**/auth/**"),
    ("src/Auth/Login.py", "**/auth/**"),
    ("SRC/AUTH/X.PY", "**/auth/**"),
    ("src/authority.py", None),
    ("src/auth", "**/auth/**"),
    (".claude", ".claude/**"),
    ("src/oauth/x.py", None),
    ("src/auth.py", None),
    ("services/payments/stripe.ts", "**/payments/**"),
    ("billing/invoice.py", "**/billing/**"),
    ("src/billing_report.py", None),
    ("soft_delete.py", "**/*delet*"),
    ("src/models/SoftDelete.java", "**/*delet*"),
    ("docs/deleting.md", "**/*delet*"),
    ("src/deletion/queue.py", "**/*delet*"),
    ("migrations/0001_initial.py", "**/migrations/**"),
    ("app/shop/migrations/0002_price.py", "**/migrations/**"),
    ("alembic/versions/abc123_add_table.py", "**/alembic/versions/**"),
    ("db/migrate/20240101_create_users.rb", "**/db/migrate/**"),
    ("alembic/env.py", None),
    (".env", ".env*"),
    (".env.production", ".env*"),
    ("config/.env", ".env*"),
    ("services/api/.env.local", ".env*"),
    ("docs/env.md", None),
    (".github/workflows/ci.yml", ".github/workflows/**"),
    (".github/dependabot.yml", None),
    (".claude/settings.json", ".claude/**"),
    (".claude/hooks/guard.sh", ".claude/**"),
    ("agentloop.yaml", "agentloop.yaml"),
    ("packages/web/agentloop.yaml", "agentloop.yaml"),
    ("agentloop.yml", None),
    ("src/app/cart.py", None),
    ("tests/test_cart.py", None),
    ("./src/auth/x.py", "**/auth/**"),
    ("src//auth/x.py", "**/auth/**"),
    ("src/x/../auth/y.py", "**/auth/**"),
    ("src\\auth\\x.py", "**/auth/**"),
    ("../etc/passwd", OUTSIDE_REPOSITORY),
    ("src/../../etc/passwd", OUTSIDE_REPOSITORY),
    ("..", OUTSIDE_REPOSITORY),
    ("/abs/path", OUTSIDE_REPOSITORY),
    ("/etc/passwd", OUTSIDE_REPOSITORY),
    ("C:\\Windows\\system.ini", OUTSIDE_REPOSITORY),
    ("", OUTSIDE_REPOSITORY),
    (".", OUTSIDE_REPOSITORY),
    ("./", OUTSIDE_REPOSITORY),
]


@pytest.mark.parametrize(("path", "pattern"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_default_patterns(path: str, pattern: str | None) -> None:
    assert DEFAULTS.match(path) == pattern


def test_defaults_are_the_issues_list() -> None:
    assert DEFAULT_FORBIDDEN == (
        "**/auth/**",
        "**/payments/**",
        "**/billing/**",
        "**/*delet*",
        "**/migrations/**",
        "**/alembic/versions/**",
        "**/db/migrate/**",
        ".env*",
        ".github/workflows/**",
        ".claude/**",
        "agentloop.yaml",
    )


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("/work/repo/src/auth/x.py", "**/auth/**"),
        ("/work/repo/src/app.py", None),
        ("/work/repo/../other/src/app.py", OUTSIDE_REPOSITORY),
        ("/work/repository/src/app.py", OUTSIDE_REPOSITORY),
        ("/work/repo", OUTSIDE_REPOSITORY),
        ("/etc/passwd", OUTSIDE_REPOSITORY),
        ("src/auth/x.py", "**/auth/**"),
    ],
)
def test_absolute_paths_inside_the_root_are_relative_to_it(path: str, pattern: str | None) -> None:
    assert ForbiddenPaths(root="/work/repo/").match(path) == pattern


def test_relative_names_the_path_or_nothing() -> None:
    assert DEFAULTS.relative("./a//b/./c.py") == "a/b/c.py"
    assert DEFAULTS.relative("a/../../b") is None
    assert ForbiddenPaths(root="/r").relative("/r/a/b.py") == "a/b.py"


def test_user_patterns_keep_gitignore_semantics_with_negation() -> None:
    paths = ForbiddenPaths(("**/auth/**", "!**/auth/README.md", "/Makefile", "*.lock"))
    assert paths.match("src/auth/README.md") is None
    assert paths.match("src/auth/tokens.py") == "**/auth/**"
    assert paths.match("Makefile") == "/Makefile"
    # A leading slash anchors at the root; a bare name matches at any depth.
    assert paths.match("docs/Makefile") is None
    assert paths.match("web/package.lock") == "*.lock"


def test_an_invalid_pattern_fails_at_construction_and_names_itself() -> None:
    with pytest.raises(ValueError, match=r"'\[z-a\]'"):
        ForbiddenPaths(("[z-a]",))


def test_violations_keep_order_count_each_path_once_and_check_both_sides_of_renames() -> None:
    found = DEFAULTS.violations(
        [
            "src/app.py",
            "src/auth/x.py",
            Rename("src/auth/old.py", "src/plain.py"),
            Rename("src/plain2.py", ".github/workflows/ci.yml"),
            Rename("src/a.py", "src/b.py"),
            "src/auth/x.py",
            "../outside",
        ]
    )
    assert found == (
        PathViolation("src/auth/x.py", "**/auth/**"),
        PathViolation("src/auth/old.py", "**/auth/**", renamed_with="src/plain.py"),
        PathViolation(
            ".github/workflows/ci.yml", ".github/workflows/**", renamed_with="src/plain2.py"
        ),
        PathViolation("../outside", OUTSIDE_REPOSITORY),
    )
    assert str(found[0]) == "src/auth/x.py: matches forbidden pattern **/auth/**"
    assert str(found[-1]) == "../outside: outside the repository"


def test_nothing_forbidden_when_there_are_no_patterns_but_escapes_still_are() -> None:
    paths = ForbiddenPaths(())
    assert paths.violations(["src/auth/x.py", ".env"]) == ()
    assert paths.match("../x") == OUTSIDE_REPOSITORY


segment = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@given(st.lists(segment, min_size=1, max_size=5))
def test_spelling_never_changes_the_verdict(parts: list[str]) -> None:
    path = "/".join(parts)
    verdict = DEFAULTS.match(path)
    assert DEFAULTS.match(f"./{path}") == verdict
    assert DEFAULTS.match(path.upper()) == verdict
    assert DEFAULTS.match(f"{parts[0]}/../{path}") == verdict
    assert DEFAULTS.match(f"../{path}") == OUTSIDE_REPOSITORY
