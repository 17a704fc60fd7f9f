"""A manifest is checked as a whole before anything runs: every problem, each naming its
streams and paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pathspec import PathSpec

from agentloop.build import validate
from agentloop.build.manifest import ManifestError, parse
from agentloop.build.model import Manifest
from agentloop.rails.paths import DEFAULT_FORBIDDEN, ForbiddenPaths
from agentloop.testing.repos import git_init, write_tree

RAILS = ForbiddenPaths.with_protected(DEFAULT_FORBIDDEN)

VALID = """\
request: Let users set a display name, shown on their profile page
contracts:
  - name: user-profile
    kind: api
    path: shared/contracts/profile.schema.json
    description: GET and PUT /api/profile request and response bodies
  - name: profile-errors
    kind: errors
    path: shared/contracts/errors.json
streams:
  - id: contracts
    title: Profile contracts
    template: contracts
    prompt: Write the profile API's JSON schema and its error codes.
    owns: [shared/contracts/**]
  - id: data
    title: Display name column
    template: data-model
    prompt: Add a nullable display_name (at most 80 characters) to users.
    owns: [backend/models/user.py, backend/schema/*.sql, frontend/src/types/user.ts]
    depends_on: [contracts]
  - id: api
    title: Profile endpoint
    template: api-endpoint
    prompt: GET and PUT /api/profile, validated against the contract.
    owns: [backend/routes/profile.py, frontend/src/hooks/useProfile.ts, tests/e2e/test_profile.py]
    depends_on: [data]
    tests: [pytest tests/e2e/test_profile.py]
  - id: ui
    title: Profile page
    template: ui-feature
    prompt: A profile page where users edit their display name.
    owns: [frontend/src/components/Profile/**, frontend/src/pages/profile.tsx]
    depends_on: [contracts]
    uses: [user-profile]
"""


def manifest(*streams: str, contracts: str = "") -> Manifest:
    text = "request: r\nstreams:\n" + "".join(f"  - {s}\n" for s in streams)
    return parse(text + (f"contracts:\n{contracts}" if contracts else ""))


def stream(
    sid: str, owns: str, *, template: str = "custom", deps: str = "[]", extra: str = ""
) -> str:
    return (
        f"{{id: {sid}, title: t, template: {template}, prompt: p, owns: {owns}, "
        f"depends_on: {deps}{extra}}}"
    )


def problems(m: Manifest, files: tuple[str, ...] = ()) -> list[validate.Problem]:
    return list(validate.problems(m, files=files, forbidden=RAILS))


def only(found: list[validate.Problem], kind: str) -> validate.Problem:
    assert [p.kind for p in found] == [kind], [str(p) for p in found]
    return found[0]


def test_a_valid_manifest_has_no_problem_and_runs_in_waves() -> None:
    m = parse(VALID)
    assert problems(m, ("frontend/src/pages/home.tsx", "backend/models/user.py")) == []
    assert validate.waves(m) == (("contracts",), ("data", "ui"), ("api",))


def test_a_glob_and_a_file_it_holds_overlap() -> None:
    m = manifest(stream("backend", "['src/api/**']"), stream("users", "[src/api/users.py]"))
    problem = only(problems(m), "overlap")
    assert problem.streams == ("backend", "users")
    assert problem.paths == ("src/api/users.py",)
    assert "`backend` and `users` can both write src/api/users.py" in str(problem)
    assert "backend: src/api/**; users: src/api/users.py" in str(problem)


def test_two_wildcard_globs_overlap_on_a_file_that_does_not_exist_yet() -> None:
    m = manifest(stream("a", "['src/*/handlers.py']"), stream("b", "['src/api/*.py']"))
    problem = only(problems(m, files=("src/web/other.py",)), "overlap")
    assert "can both write the same new files (a: src/*/handlers.py; b: src/api/*.py)" in str(
        problem
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("src/api/**", "src/web/**"),
        ("web/**/*.ts", "web/**/*.css"),
        ("backend/*.py", "backend/sub/*.py"),
        ("tests/**/test_*.py", "tests/**/*_spec.ts"),
    ],
)
def test_disjoint_globs_do_not_overlap(first: str, second: str) -> None:
    m = manifest(stream("a", f"['{first}']"), stream("b", f"['{second}']"))
    assert problems(m) == []


def test_a_file_that_exists_is_an_overlap_even_where_the_globs_read_as_file_names() -> None:
    # `*.ts` read as naming files misses a directory named like one; the file is found.
    m = manifest(stream("a", "['web/**/*.ts']"), stream("b", "['web/**/*.css']"))
    problem = only(problems(m, files=("web/odd.ts/x.css",)), "overlap")
    assert problem.paths == ("web/odd.ts/x.css",)


def test_a_cycle_is_named_in_order() -> None:
    m = manifest(
        stream("a", "[a/**]", deps="[b]"),
        stream("b", "[b/**]", deps="[c]"),
        stream("c", "[c/**]", deps="[a]"),
    )
    problem = only(problems(m), "cycle")
    assert "dependency cycle: a → b → c → a" in str(problem)
    assert problem.streams == ("a", "b", "c")


def test_unknown_dependency_and_duplicate_id() -> None:
    m = manifest(
        stream("backend", "[b/**]"),
        stream("front", "[f/**]", deps="[backnd]"),
        stream("front", "[g/**]"),
    )
    found = problems(m)
    assert [p.kind for p in found] == ["duplicate_id", "unknown_dependency"]
    assert "stream id `front` is used by 2 streams (streams[1], streams[2])" in str(found[0])
    assert "`front` depends on `backnd`, which is not a stream" in str(found[1])
    assert "did you mean `backend`?" in str(found[1])


CONTRACT = "  - {name: user, kind: types, path: shared/user.ts}\n"


def test_a_contract_no_stream_owns() -> None:
    m = manifest(stream("contracts", "[shared/api/**]", template="contracts"), contracts=CONTRACT)
    problem = only(problems(m), "contract_unowned")
    assert "contract `user` (shared/user.ts) is owned by no stream" in str(problem)


def test_a_contract_owned_by_a_stream_that_is_not_a_contracts_stream() -> None:
    m = manifest(stream("backend", "[shared/**]", template="api-endpoint"), contracts=CONTRACT)
    problem = only(problems(m), "contract_owner")
    assert "`user` (shared/user.ts) is owned by stream `backend`" in str(problem)
    assert "template: contracts" in str(problem)


def test_a_stream_using_a_contract_depends_on_its_stream() -> None:
    m = manifest(
        stream("contracts", "[shared/**]", template="contracts"),
        stream("ui", "[web/**]", template="ui-feature"),
        contracts=CONTRACT,
    )
    problem = only(problems(m), "contract_order")
    assert problem.streams == ("ui", "contracts")
    assert "`ui` uses contract(s) user (shared/user.ts), written by contracts" in str(problem)
    assert "add `contracts` to its depends_on" in str(problem)
    # Through another dependency is enough: that one started after the contracts merged.
    m = manifest(
        stream("contracts", "[shared/**]", template="contracts"),
        stream("api", "[api/**]", deps="[contracts]"),
        stream("ui", "[web/**]", deps="[api]"),
        contracts=CONTRACT,
    )
    assert problems(m) == []


def test_a_contracts_stream_depends_on_contracts_streams_only() -> None:
    m = manifest(
        stream("contracts", "[shared/**]", template="contracts", deps="[api]"),
        stream("api", "[api/**]"),
    )
    problem = only(problems(m), "contract_order")
    assert "contracts stream `contracts` depends on `api`" in str(problem)


@pytest.mark.parametrize(
    ("glob", "reached"),
    [
        ("src/auth/**", "src/auth (forbidden by **/auth/**)"),
        ("auth/session.py", "auth/session.py (forbidden by **/auth/**)"),
        (".github/**", "forbidden by .github/workflows/**"),
        (".github/workflows/ci.yml", "forbidden by .github/workflows/**"),
        ("**/*.yml", "forbidden by .github/workflows/**"),
        (".claude/**", "protected by .claude/settings.json"),
    ],
)
def test_a_glob_reaching_forbidden_paths_is_refused(glob: str, reached: str) -> None:
    m = manifest(stream("backend", f"['{glob}']"))
    problem = only(problems(m), "forbidden")
    assert f"stream `backend` owns {glob}, which reaches paths no stream may write" in str(problem)
    assert reached in str(problem)


def test_a_broad_glob_is_refused_for_the_forbidden_files_it_holds() -> None:
    m = manifest(stream("backend", "['src/**']"))
    assert problems(m, files=("src/app.py",)) == []
    problem = only(problems(m, files=("src/app.py", "src/billing/charge.py")), "forbidden")
    assert "src/billing/charge.py (forbidden by **/billing/**)" in str(problem)


def test_a_top_level_file_spelled_without_a_slash_is_told_how_to_anchor_it() -> None:
    # Found on humanize: the coordinator gave the docs stream `mkdocs.yml`. As in a
    # .gitignore it matches at any depth (.github/workflows/mkdocs.yml, and under every
    # other stream's files), so it overlapped all three streams and reached the
    # forbidden paths; "narrow the glob" did not say how, and three sessions failed.
    loose = manifest(
        stream("impl", "['src/humanize/rate.py']"),
        stream("docs", "['docs/rate.md', 'mkdocs.yml']"),
    )
    found = problems(loose)
    assert {p.kind for p in found} == {"overlap", "forbidden"}, [str(p) for p in found]
    for problem in found:
        assert "mkdocs.yml matches at any depth" in str(problem), str(problem)
        assert "write /mkdocs.yml for the one at the top" in str(problem), str(problem)
    anchored = manifest(
        stream("impl", "['src/humanize/rate.py']"),
        stream("docs", "['docs/rate.md', '/mkdocs.yml']"),
    )
    assert problems(anchored, files=("mkdocs.yml", "docs/index.md")) == []


def test_no_anchoring_hint_for_globs_that_have_a_directory() -> None:
    found = problems(manifest(stream("a", "['src/**']"), stream("b", "['src/x.py']")))
    assert "at any depth" not in str(only(found, "overlap"))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    write_tree(tmp_path, {"src/api/users.py": "", "src/api/orders.py": ""})
    git_init(tmp_path)
    m = manifest(
        stream("backend", "['src/api/**']", deps="[ui]"),
        stream("users", "['src/api/users.py']"),
        stream("ui", "['web/**']", deps="[backend]"),
        contracts=CONTRACT,
    )
    with pytest.raises(ManifestError) as caught:
        validate.check(m, top=tmp_path, forbidden=RAILS, source="build.yaml")
    lines = caught.value.message.splitlines()
    assert lines[0] == "build.yaml: 3 problems in the manifest"
    assert "dependency cycle: backend → ui → backend" in lines[1]
    assert "can both write src/api/users.py" in lines[2]
    assert "contract `user` (shared/user.ts) is owned by no stream" in lines[3]


# Segment patterns and names small enough that hypothesis finds the corners.
_SEGMENTS = st.sampled_from(["a", "b", "*", "**", "a*", "*.py", "x.py", "?", "[ab]"])
_NAMES = st.sampled_from(["a", "b", "ab", "x.py", "a.py"])


def _matches(glob: str, path: str) -> bool:
    """pathspec's verdict, but a glob whose last segment reads as file names (see the
    module) matches only as a file, not through a directory above the path."""
    spec = PathSpec.from_lines("gitignore", [glob])
    if not spec.match_file(path):
        return False
    last = glob.rstrip("/").rsplit("/", 1)[-1]
    if any(c in last for c in "*?[") and "." in last and last != "**":
        parts = path.split("/")
        return not any(spec.match_file("/".join(parts[:n])) for n in range(1, len(parts)))
    return True


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_SEGMENTS, min_size=1, max_size=3),
    st.lists(_SEGMENTS, min_size=1, max_size=3),
    st.lists(st.lists(_NAMES, min_size=1, max_size=4), min_size=1, max_size=20),
)
def test_rule_c_never_misses_a_path_both_globs_match(
    one: list[str], two: list[str], paths: list[list[str]]
) -> None:
    first, second = "/".join(one), "/".join(two)
    a, b = validate._parse("a", first), validate._parse("b", second)
    assert isinstance(a, validate._Glob)
    assert isinstance(b, validate._Glob)
    for parts in paths:
        path = "/".join(parts)
        if _matches(first, path) and _matches(second, path):
            assert validate._meet(a.segments, b.segments), (first, second, path)
