"""The rails' pure checks: which paths an attempt may touch, and whether it kept the tests
honest. Inputs are paths and file contents; the loop feeds them from git."""

from agentloop.rails.integrity import IntegrityKind, IntegrityViolation, check_integrity
from agentloop.rails.paths import (
    DEFAULT_FORBIDDEN,
    OUTSIDE_REPOSITORY,
    ForbiddenPaths,
    PathViolation,
    Rename,
)

__all__ = [
    "DEFAULT_FORBIDDEN",
    "OUTSIDE_REPOSITORY",
    "ForbiddenPaths",
    "IntegrityKind",
    "IntegrityViolation",
    "PathViolation",
    "Rename",
    "check_integrity",
]
