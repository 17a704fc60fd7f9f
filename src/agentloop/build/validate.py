"""Does a manifest hold together? Checked before anything runs; every problem is
collected (not just the first), each naming the streams and paths involved.

The rules:
- stream ids are unique; every `depends_on` names a stream; the dependencies form no
  cycle (named in order: `a → b → a`, each depending on the next);
- contracts come first: a contracts stream depends on contracts streams only, and a
  stream that uses a contract (`uses`, else every contract) depends, directly or through
  its dependencies, on the stream that writes it (its worktree starts after that stream
  merged);
- every contract's path is owned by exactly one stream, and that stream's template is
  `contracts`;
- no two streams own the same path, and no stream owns a forbidden or protected path.

Ownership globs are gitignore-style (pathspec's "gitignore", as rails/paths.py), matched
case-insensitively like the rails (`Auth/x` and `auth/x` can be one file). `!` patterns
are refused: an exception carved out of another glob cannot be checked for overlap
soundly, and listing what a stream owns is clearer anyway.

Two streams overlap when any of these finds a path both may write (a false overlap is an
error the user fixes by narrowing a glob; a missed one is merge chaos, so each rule errs
towards finding one):
(a) a file in the repository (tracked, or untracked and not ignored) matched by both;
(b) a path spelled without wildcards (a contract's path, a literal glob) matched by the
    other stream, as a file or as a directory holding it;
(c) two globs that can match one path, decided segment by segment: each glob becomes a
    sequence of segment patterns, `**` standing for any number of segments; a glob with
    no slash but at its end matches at any depth (a leading `**`); a glob that can name a
    directory matches everything under it (a trailing `**`). Two segment patterns meet
    when a name matches both: exact when either is literal; for two wildcard patterns,
    when their literal beginnings and endings agree (one a prefix / suffix of the other),
    which can only over-report. The one reading that narrows: a last segment with a
    wildcard and a dot (`*.py`, `test_*.ts`) is read as naming files, not directories,
    so `web/**/*.ts` and `web/**/*.css` do not overlap, though a directory named
    `x.ts` would be matched by both: rule (a) catches one that exists, and the diff
    check after each attempt catches any path its stream does not own.

A stream's glob reaches a forbidden path (rails.forbidden_paths and agentloop's protected
files) when its literal part (the segments before the first wildcard) is forbidden
(`auth/**`, `src/payments/*.py`), when it can match the same path as a forbidden pattern
rooted at a directory (`.github/**` meets `.github/workflows/**`; decided as in (c)), or
when a repository file it matches is forbidden. A forbidden pattern that matches at any
depth (`**/auth/**`, `**/*delet*`) would meet every broad glob: for those the first and
last checks apply, and the rails refuse such a file at run time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from pathspec import PathSpec, Pattern

from agentloop import git
from agentloop.build.manifest import ManifestError
from agentloop.build.model import Manifest, Stream
from agentloop.rails.paths import PROTECTED, ForbiddenPaths

ProblemKind = Literal[
    "duplicate_id",
    "unknown_dependency",
    "cycle",
    "bad_glob",
    "overlap",
    "forbidden",
    "contract_path",
    "contract_unowned",
    "contract_owner",
    "contract_order",
    "unknown_contract",
]

# How many example paths a message names before "and N more".
_SHOWN = 3
_WILD = re.compile(r"[*?\[\\]")
_SPECIAL = "*?[]\\"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    message: str
    streams: tuple[str, ...]
    paths: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Glob:
    stream: str
    text: str  # as written in the manifest
    # Lower-case segment patterns; "**" is any number of segments (none included).
    segments: tuple[str, ...]
    # The segments before the first wildcard, as written ("" when it starts with one).
    literal: str
    spec: PathSpec[Pattern]

    @property
    def is_literal(self) -> bool:
        return _WILD.search(self.text) is None

    def matches(self, path: str) -> bool:
        """`path` (repository-relative) is this glob's, as a file or as a directory."""
        lower = path.lower()
        return self.spec.match_file(lower) or self.spec.match_file(lower + "/")


def repository_files(top: Path) -> tuple[str, ...]:
    """The files rule (a) looks at: tracked, and untracked but not ignored."""
    return git.listed_paths(top, ignored=())


def check(manifest: Manifest, *, top: Path, forbidden: ForbiddenPaths, source: str) -> None:
    """Raise ManifestError listing every problem of `manifest` in the repository at `top`."""
    found = problems(manifest, files=repository_files(top), forbidden=forbidden)
    if found:
        raise ManifestError(source, [str(p) for p in found])


def problems(
    manifest: Manifest, *, files: Sequence[str], forbidden: ForbiddenPaths
) -> tuple[Problem, ...]:
    found: list[Problem] = []
    found += _ids(manifest)
    found += _dependencies(manifest)
    globs, bad = _globs(manifest)
    found += bad
    found += _overlaps(manifest, globs, files)
    found += _forbidden(globs, files, forbidden)
    found += _contracts(manifest, globs)
    return tuple(found)


def waves(manifest: Manifest) -> tuple[tuple[str, ...], ...]:
    """The streams in dependency order, grouped: each wave's streams depend only on
    earlier waves, so they can run at once. (For a manifest without problems.)"""
    ids = [s.id for s in manifest.streams]
    placed: dict[str, int] = {}
    result: list[tuple[str, ...]] = []
    while len(placed) < len(ids):
        wave = tuple(
            s.id
            for s in manifest.streams
            if s.id not in placed and all(d in placed for d in s.depends_on if d in ids)
        )
        if not wave:
            raise ValueError("the dependencies have a cycle: validate the manifest first")
        for stream_id in wave:
            placed[stream_id] = len(result)
        result.append(wave)
    return tuple(result)


# ----------------------------------------------------------------------------- the graph


def _ids(manifest: Manifest) -> list[Problem]:
    positions: dict[str, list[int]] = {}
    for index, stream in enumerate(manifest.streams):
        positions.setdefault(stream.id, []).append(index)
    return [
        Problem(
            "duplicate_id",
            f"stream id `{stream_id}` is used by {len(where)} streams "
            f"({', '.join(f'streams[{i}]' for i in where)}): each stream needs its own id",
            (stream_id,),
        )
        for stream_id, where in positions.items()
        if len(where) > 1
    ]


def _dependencies(manifest: Manifest) -> list[Problem]:
    ids = {s.id for s in manifest.streams}
    found = []
    for stream in manifest.streams:
        for dep in stream.depends_on:
            if dep not in ids:
                guess = difflib.get_close_matches(dep, sorted(ids), n=1)
                tip = f" (did you mean `{guess[0]}`?)" if guess else ""
                found.append(
                    Problem(
                        "unknown_dependency",
                        f"stream `{stream.id}` depends on `{dep}`, which is not a stream "
                        f"in the manifest{tip}",
                        (stream.id,),
                    )
                )
    for cycle in _cycles(manifest):
        found.append(
            Problem(
                "cycle",
                f"dependency cycle: {' → '.join((*cycle, cycle[0]))} (each depends on the "
                "next): no stream of it could ever start",
                tuple(cycle),
            )
        )
    return found


def _cycles(manifest: Manifest) -> list[list[str]]:
    """One cycle per strongly connected part of the graph that has one, starting at its
    stream listed first and following depends_on in the order written."""
    order = {s.id: i for i, s in enumerate(manifest.streams)}
    edges: dict[str, list[str]] = {}
    for stream in manifest.streams:
        edges.setdefault(stream.id, []).extend(d for d in stream.depends_on if d in order)
    cycles: list[list[str]] = []
    seen: set[str] = set()
    for start in order:
        if start in seen:
            continue
        path = _path_back(start, edges)
        if path is None:
            continue
        cycles.append(path)
        seen |= _part(start, edges)
    return cycles


def _path_back(start: str, edges: Mapping[str, list[str]]) -> list[str] | None:
    """The shortest path start → … → start (breadth first, edges in written order)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in edges.get(node, []):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


def _reach(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    found: set[str] = set()
    stack = list(edges.get(start, ()))
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(edges.get(node, ()))
    return found


def _part(start: str, edges: Mapping[str, list[str]]) -> set[str]:
    """The streams on some cycle through `start` (reachable from it and reaching it)."""
    return {n for n in _reach(start, edges) if start in _reach(n, edges)}


# ------------------------------------------------------------------------------ the globs


def _globs(manifest: Manifest) -> tuple[list[_Glob], list[Problem]]:
    globs, bad = [], []
    for stream in manifest.streams:
        for text in stream.owns:
            parsed = _parse(stream.id, text)
            if isinstance(parsed, str):
                bad.append(
                    Problem(
                        "bad_glob",
                        f"stream `{stream.id}` owns {text!r}: {parsed}",
                        (stream.id,),
                        (text,),
                    )
                )
            else:
                globs.append(parsed)
    return globs, bad


def _parse(stream: str, text: str) -> _Glob | str:
    """The glob, or why it cannot be one."""
    if not text.strip() or text != text.strip():
        return "a glob may not be empty or start or end with spaces"
    if text.startswith("!"):
        return "`!` patterns are not supported in owns: list what the stream owns instead"
    if text.startswith("#"):
        return "a glob may not start with `#` (a comment in gitignore syntax)"
    body = text[1:] if text.startswith("/") else text
    parts = body.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "not a path relative to the repository's top (no `..`, `.` or `//`)"
    try:
        spec = PathSpec.from_lines("gitignore", [text.lower()])
    except (ValueError, re.error) as exc:
        return f"not a valid glob ({exc})"
    anchored = text.startswith("/") or len(parts) > 1
    segments = [p.lower() for p in parts]
    if not anchored and segments[0] != "**":
        segments.insert(0, "**")
    last = segments[-1]
    names_files = _WILD.search(last) is not None and "." in last and last != "**"
    if last != "**" and (text.endswith("/") or not names_files):
        segments.append("**")  # a directory: everything under it too
    collapsed: list[str] = []
    for seg in segments:
        if not (seg == "**" and collapsed and collapsed[-1] == "**"):
            collapsed.append(seg)
    literal = []
    for part in parts:
        if _WILD.search(part):
            break
        literal.append(part)
    return _Glob(stream, text, tuple(collapsed), "/".join(literal), spec)


def _meet(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether some path matches both segment sequences (see the module's rule (c))."""

    @cache
    def go(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        # `**` matches no segment, or the other side's next one and maybe more.
        if i < len(a) and a[i] == "**" and (go(i + 1, j) or (j < len(b) and go(i, j + 1))):
            return True
        if j < len(b) and b[j] == "**" and (go(i, j + 1) or (i < len(a) and go(i + 1, j))):
            return True
        if i < len(a) and j < len(b) and a[i] != "**" and b[j] != "**":
            return _names_meet(a[i], b[j]) and go(i + 1, j + 1)
        return False

    return go(0, 0)


@lru_cache(maxsize=4096)
def _names_meet(a: str, b: str) -> bool:
    wild_a, wild_b = _WILD.search(a), _WILD.search(b)
    if wild_a is None and wild_b is None:
        return a == b
    if wild_a is None:
        return _name_matches(b, a)
    if wild_b is None:
        return _name_matches(a, b)
    head_a, head_b = a[: wild_a.start()], b[: wild_b.start()]
    tail_a, tail_b = _tail(a), _tail(b)
    return (head_a.startswith(head_b) or head_b.startswith(head_a)) and (
        tail_a.endswith(tail_b) or tail_b.endswith(tail_a)
    )


def _tail(pattern: str) -> str:
    """The literal characters after the last wildcard (or bracket, or escape)."""
    end = len(pattern)
    while end > 0 and pattern[end - 1] not in _SPECIAL:
        end -= 1
    return pattern[end:]


@lru_cache(maxsize=4096)
def _name_matches(pattern: str, name: str) -> bool:
    # Anchored, so a one-segment pattern matches the one name exactly.
    return PathSpec.from_lines("gitignore", ["/" + pattern]).match_file(name)


# --------------------------------------------------------------------------- ownership


def _some(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def _overlaps(manifest: Manifest, globs: list[_Glob], files: Sequence[str]) -> list[Problem]:
    # Each glob's paths among the repository's files (a) and the paths spelled without
    # wildcards (b), looked up once; then every pair of globs of two streams.
    spelled = [g.text.strip("/") for g in globs if g.is_literal]
    spelled += [c.path for c in manifest.contracts]
    lowered = {f.lower(): f for f in files}
    hits = [_files_of(g, lowered) | {p for p in spelled if g.matches(p)} for g in globs]
    ids = list(dict.fromkeys(s.id for s in manifest.streams))
    found = []
    for i, first in enumerate(ids):
        for second in ids[i + 1 :]:
            pairs: dict[tuple[str, str], None] = {}
            paths: dict[str, None] = {}
            for x, x_hits in zip(globs, hits, strict=True):
                if x.stream != first:
                    continue
                for y, y_hits in zip(globs, hits, strict=True):
                    if y.stream != second:
                        continue
                    shared = sorted(x_hits & y_hits)
                    if shared or _meet(x.segments, y.segments):  # (a), (b); (c)
                        pairs[(x.text, y.text)] = None
                        paths.update(dict.fromkeys(shared))
            if not pairs:
                continue
            listed = list(paths)
            where = _some(listed) if listed else "the same new files"
            mine = list(dict.fromkeys(a for a, _ in pairs))
            theirs = list(dict.fromkeys(b for _, b in pairs))
            found.append(
                Problem(
                    "overlap",
                    f"ownership overlaps: streams `{first}` and `{second}` can both write "
                    f"{where} ({first}: {', '.join(mine)}; {second}: {', '.join(theirs)}); "
                    "narrow one of the globs so each path has one owner"
                    + _anchor_hint([*mine, *theirs]),
                    (first, second),
                    tuple(listed) or tuple(dict.fromkeys((*mine, *theirs))),
                )
            )
    return found


def _files_of(glob: _Glob, lowered: Mapping[str, str]) -> set[str]:
    """The files `glob` matches; `lowered` maps each file's lower-case path to itself."""
    return {lowered[f] for f in glob.spec.match_files(lowered)}


def _rooted(pattern: str) -> bool:
    """A forbidden pattern tied to a directory from the top (`.github/workflows/**`), not
    one that matches at any depth (`**/auth/**`, `.env*`)."""
    body = pattern.lstrip("/")
    return (
        not pattern.startswith("!")
        and not body.startswith("**")
        and (pattern.startswith("/") or "/" in body.rstrip("/"))
    )


def _forbidden(
    globs: list[_Glob], files: Sequence[str], forbidden: ForbiddenPaths
) -> list[Problem]:
    rooted = [(p, _parse("", p)) for p in forbidden.patterns if _rooted(p)]
    lowered = {f.lower(): f for f in files}
    found = []
    for glob in globs:
        reached: dict[str, str] = {}  # path or glob → the forbidden pattern
        if glob.literal:
            pattern = forbidden.match(glob.literal)
            if pattern is not None:
                reached[glob.literal] = pattern
        for pattern, parsed in rooted:
            if isinstance(parsed, _Glob) and _meet(glob.segments, parsed.segments):
                reached.setdefault(pattern, pattern)
        for path in sorted(_files_of(glob, lowered)):
            pattern = forbidden.match(path)
            if pattern is not None:
                reached.setdefault(path, pattern)
        if not reached:
            continue
        shown = [
            f"{what} ({_why(pattern)})" if what != pattern else _why(pattern)
            for what, pattern in list(reached.items())[:_SHOWN]
        ]
        more = f" and {len(reached) - _SHOWN} more" if len(reached) > _SHOWN else ""
        found.append(
            Problem(
                "forbidden",
                f"stream `{glob.stream}` owns {glob.text}, which reaches paths no stream may "
                f"write: {', '.join(shown)}{more}; narrow the glob (agents never write "
                "forbidden or protected paths)" + _anchor_hint([glob.text]),
                (glob.stream,),
                tuple(reached),
            )
        )
    return found


def _anchor_hint(globs: Sequence[str]) -> str:
    """For a glob with no slash (`mkdocs.yml`, `README.md`): it matches at any depth, as
    in a .gitignore, so it meets the forbidden `.github/workflows/**` and every other
    stream's directories. Whoever wrote it (a person, the coordinator) almost always
    meant the file at the top, and "narrow the glob" alone does not say how."""
    loose = [g for g in dict.fromkeys(globs) if _any_depth(g)]
    if not loose:
        return ""
    first = loose[0].rstrip("/")
    return (
        f" ({', '.join(loose)} matches at any depth, as in a .gitignore: "
        f"write /{first} for the one at the top)"
    )


def _any_depth(glob: str) -> bool:
    body = glob.rstrip("/")
    return not glob.startswith(("/", "**")) and "/" not in body


def _why(pattern: str) -> str:
    kind = "protected" if pattern in PROTECTED else "forbidden"
    return f"{kind} by {pattern}"


# --------------------------------------------------------------------------- contracts


def _contracts(manifest: Manifest, globs: list[_Glob]) -> list[Problem]:
    found = []
    streams: dict[str, Stream] = {}
    for stream in manifest.streams:
        streams.setdefault(stream.id, stream)
    names: dict[str, int] = {}
    for contract in manifest.contracts:
        names[contract.name] = names.get(contract.name, 0) + 1
    for name, count in names.items():
        if count > 1:
            found.append(
                Problem(
                    "contract_path",
                    f"contract name `{name}` is used "
                    f"{count} times: each contract needs its own name",
                    (),
                )
            )
    owner_of: dict[str, str] = {}
    for contract in manifest.contracts:
        what = f"contract `{contract.name}` ({contract.path})"
        path = contract.path
        if _WILD.search(path) or path.endswith("/") or isinstance(_parse("", path), str):
            found.append(
                Problem(
                    "contract_path",
                    f"{what}: a contract's path names one "
                    "file, relative to the repository's top, without wildcards",
                    (),
                    (contract.path,),
                )
            )
            continue
        owners = list(dict.fromkeys(g.stream for g in globs if g.matches(contract.path)))
        if not owners:
            found.append(
                Problem(
                    "contract_unowned",
                    f"{what} is owned by no stream: add "
                    "its path to the owns of the contracts stream that writes it",
                    (),
                    (contract.path,),
                )
            )
        elif len(owners) > 1:
            found.append(
                Problem(
                    "contract_owner",
                    f"{what} is owned by {len(owners)} "
                    f"streams ({', '.join(owners)}): exactly one contracts "
                    "stream writes it",
                    tuple(owners),
                    (contract.path,),
                )
            )
        else:
            owner = streams[owners[0]]
            owner_of[contract.name] = owner.id
            if not owner.is_contracts:
                found.append(
                    Problem(
                        "contract_owner",
                        f"{what} is owned by stream "
                        f"`{owner.id}`, whose template is {owner.template}: "
                        "contracts are written first, by a stream with template: "
                        "contracts",
                        (owner.id,),
                        (contract.path,),
                    )
                )
    edges = {s.id: list(s.depends_on) for s in streams.values()}
    known = set(names)
    for stream in streams.values():
        if stream.is_contracts:
            for dep in stream.depends_on:
                other = streams.get(dep)
                if other is not None and not other.is_contracts:
                    found.append(
                        Problem(
                            "contract_order",
                            f"contracts stream `{stream.id}` "
                            f"depends on `{dep}` (template {other.template}): "
                            "contracts come first, so a contracts stream "
                            "depends on contracts streams only",
                            (stream.id, dep),
                        )
                    )
            continue
        for name in stream.uses or ():
            if name not in known:
                guess = difflib.get_close_matches(name, sorted(known), n=1)
                tip = f" (did you mean `{guess[0]}`?)" if guess else ""
                found.append(
                    Problem(
                        "unknown_contract",
                        f"stream `{stream.id}` uses "
                        f"contract `{name}`, which the manifest does not "
                        f"declare{tip}",
                        (stream.id,),
                    )
                )
        # One problem per stream, naming every contracts stream it still has to wait for.
        before = _reach(stream.id, edges)
        missing: dict[str, list[str]] = {}
        for contract in manifest.contracts_of(stream):
            owner_id = owner_of.get(contract.name)
            if owner_id is None or not streams[owner_id].is_contracts:
                continue  # reported above: the contract has no proper owner yet
            if owner_id != stream.id and owner_id not in before:
                missing.setdefault(owner_id, []).append(f"{contract.name} ({contract.path})")
        if missing:
            used = ", ".join(f"{', '.join(names)}, written by {o}" for o, names in missing.items())
            add = ", ".join(f"`{o}`" for o in missing)
            paths = tuple(
                c.path
                for c in manifest.contracts
                if c.name in owner_of and owner_of[c.name] in missing
            )
            found.append(
                Problem(
                    "contract_order",
                    f"stream `{stream.id}` uses contract(s) {used}, but does not depend on "
                    f"{add}: add {add} to its depends_on (contracts come first)",
                    (stream.id, *missing),
                    paths,
                )
            )
    return found


def owners(manifest: Manifest, path: str) -> tuple[str, ...]:
    """The streams whose globs match `path` (in a valid manifest, at most one)."""
    globs, _ = _globs(manifest)
    return tuple(dict.fromkeys(g.stream for g in globs if g.matches(path)))


def owner_of_contracts(manifest: Manifest) -> dict[str, str]:
    """Each contract's path → the stream that writes it (when exactly one does)."""
    found = {c.path: owners(manifest, c.path) for c in manifest.contracts}
    return {path: streams[0] for path, streams in found.items() if len(streams) == 1}
