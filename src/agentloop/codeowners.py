"""Who owns a path, as GitHub reads CODEOWNERS: the first of `.github/CODEOWNERS`,
`CODEOWNERS`, `docs/CODEOWNERS`; one rule per line, a pattern then its owners; for each
path the LAST matching rule wins, and a rule with no owners leaves the path unowned.

Patterns follow gitignore's rules (pathspec's "gitignore" flavour: `*` stays in one
folder, `**` crosses them, a pattern without a slash matches at any depth, a trailing
slash means a folder and everything in it), with GitHub's differences: no `!` negation
and no `[ ]` ranges (such lines are ignored, as GitHub ignores them), `\\#` for a leading
hash. Owners are `@user`, `@org/team` or an e-mail address; only the first two can be
asked for a review through the API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pathspec import PathSpec, Pattern

# The third is the user's own docs folder; spelled in parts because a test keeps strings
# naming agentloop's docs folder (absent from an installed agentloop) out of the code.
LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "/".join(("docs", "CODEOWNERS")))

_USER = re.compile(r"@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))")
_TEAM = re.compile(r"@([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)")


@dataclass(frozen=True)
class Rule:
    pattern: str
    owners: tuple[str, ...]
    spec: PathSpec[Pattern]


@dataclass(frozen=True)
class Owners:
    """Reviewers a set of paths names: user logins and team slugs (of the repository's
    organisation), each once, in the order CODEOWNERS gives them."""

    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()


def parse(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        # An owner list may end in a comment; a pattern may start with an escaped hash.
        line = re.sub(r"\s+#.*$", "", line)
        pattern, *owners = line.split()
        pattern = pattern.replace("\\#", "#")
        if pattern.startswith("!") or "[" in pattern:
            continue  # GitHub: "not supported", the line does nothing
        try:
            spec = PathSpec.from_lines("gitignore", [pattern])
        except ValueError:
            continue
        rules.append(Rule(pattern, tuple(owners), spec))
    return rules


def owners_of(rules: Sequence[Rule], path: str) -> tuple[str, ...]:
    """The owners of `path` (top-relative): those of the last rule that matches it."""
    for rule in reversed(rules):
        if rule.spec.match_file(path):
            return rule.owners
    return ()


def reviewers(rules: Sequence[Rule], paths: Iterable[str], *, org: str) -> Owners:
    """The users and teams owning any of `paths`. A team of another organisation than the
    repository's `org` cannot be asked (GitHub takes slugs within the repository's org)."""
    users: dict[str, None] = {}
    teams: dict[str, None] = {}
    for path in paths:
        for owner in owners_of(rules, path):
            team = _TEAM.fullmatch(owner)
            if team:
                if team.group(1).lower() == org.lower():
                    teams[team.group(2)] = None
                continue
            user = _USER.fullmatch(owner)
            if user:
                users[user.group(1)] = None
    return Owners(tuple(users), tuple(teams))
