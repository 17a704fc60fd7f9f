"""`agentloop check`: the change since a base against the rails, through the real CLI in
real git repositories."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import pytest

from agentloop import session as session_mod
from agentloop.rails.change import SessionKind
from agentloop.rails.integrity import IntegrityKind
from agentloop.testing.repos import SAMPLE_REPO, git_init, run_cli, run_git, write_tree

TEST_CALC = """\
    from app.calc import add

    def test_add():
        assert add(1, 2) == 3
        assert add(0, 0) == 0

    def test_add_negative():
        assert add(-1, -1) == -2
    """

PROJECT = {
    **SAMPLE_REPO,
    "src/app/calc.py": "def add(a, b):\n    return a + b\n",
    "src/auth/token.py": "SECRET = 'x'\n",
    "src/core/engine.py": "SPEED = 1\n",
    "tests/test_calc.py": TEST_CALC,
    ".claude/settings.json": "{}\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_init(write_tree(tmp_path / "repo", PROJECT))


def check(repo: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("check", *args, cwd=cwd or repo, home=repo.parent / "home", timeout=60)


def commit_all(repo: Path, message: str = "change") -> None:
    run_git(repo, "add", "-A")
    run_git(
        repo, "-c", "user.name=t", "-c", "user.email=t@agentloop.invalid",
        "commit", "-q", "-m", message,
    )  # fmt: skip


def edit(repo: Path, path: str, text: str) -> None:
    write_tree(repo, {path: text})


def lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return done.stdout.splitlines()


def assert_no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stdout + done.stderr


def assert_one_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert_no_traceback(done)
    assert done.stdout == ""
    found = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(found) == 2, done.stderr
    assert found[0].startswith("error: "), done.stderr
    assert found[1].startswith("hint: "), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr


# ---------------------------------------------------------------- kept


def test_no_changes_pass(repo: Path) -> None:
    done = check(repo)
    assert done.returncode == 0, done.stderr
    assert lines(done) == [lines(done)[0]]
    assert lines(done)[0].startswith("rails kept: no changes since HEAD (")


def test_an_ordinary_fix_passes(repo: Path) -> None:
    edit(repo, "src/app/calc.py", "def add(a, b):\n    return b + a\n")
    done = check(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines(done)[0].startswith("rails kept: 1 changed file checked against HEAD (")
    assert done.stderr == ""


def test_adding_tests_and_assertions_passes(repo: Path) -> None:
    target = repo / "tests/test_calc.py"
    target.write_text(target.read_text() + "    assert add(2, 2) == 4\n")
    edit(repo, "tests/test_more.py", "def test_more():\n    assert True\n")
    done = check(repo)
    assert done.returncode == 0, done.stdout
    assert "2 changed files checked" in done.stdout


# ---------------------------------------------------------------- forbidden paths


def test_an_edit_under_auth_is_refused(repo: Path) -> None:
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")
    done = check(repo)
    assert done.returncode == 1
    assert lines(done)[0].startswith("rails broken: 1 problem in 1 changed file since HEAD (")
    assert "forbidden path  src/auth/token.py: matches forbidden pattern **/auth/**" in lines(done)
    assert lines(done)[-1].startswith("to fix: undo the changes to src/auth/token.py")
    assert_no_traceback(done)


def test_a_new_untracked_file_under_auth_is_refused(repo: Path) -> None:
    edit(repo, "src/auth/backdoor.py", "OPEN = True\n")
    assert "?? src/auth/backdoor.py" in run_git(repo, "status", "--porcelain")
    done = check(repo)
    assert done.returncode == 1
    assert "forbidden path  src/auth/backdoor.py" in done.stdout


def test_an_ignored_file_under_auth_is_not_a_change(repo: Path) -> None:
    edit(repo, "src/auth/debug.log", "noise\n")  # *.log is in .gitignore
    done = check(repo)
    assert done.returncode == 0, done.stdout
    assert "no changes" in done.stdout


@pytest.mark.parametrize("staged", [True, False])
def test_moving_a_file_out_of_a_forbidden_dir_is_refused(repo: Path, staged: bool) -> None:
    if staged:
        run_git(repo, "mv", "src/auth/token.py", "src/app/token.py")
    else:
        os.rename(repo / "src/auth/token.py", repo / "src/app/token.py")
    done = check(repo, "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["changed"] == ["src/app/token.py", "src/auth/token.py"]
    assert [(v["kind"], v["path"], v["pattern"]) for v in doc["violations"]] == [
        ("forbidden_path", "src/auth/token.py", "**/auth/**")
    ]


@pytest.mark.parametrize(
    ("target", "detail"),
    [
        ("/tmp/elsewhere.py", "a symbolic link out of the repository"),
        ("../../../outside.py", "a symbolic link out of the repository"),
        ("calc.log", "a symbolic link to what the change does not hold"),
        ("../auth/token.py", "a symbolic link into a forbidden path (**/auth/**)"),
    ],
)
def test_a_symbolic_link_out_of_the_change_is_refused(repo: Path, target: str, detail: str) -> None:
    (repo / "src/app/calc.log").write_text("ignored\n")
    (repo / "src/app/calc.py").unlink()
    (repo / "src/app/calc.py").symlink_to(target)
    done = check(repo, "--json")
    assert done.returncode == 1, done.stdout
    (violation,) = json.loads(done.stdout)["violations"]
    assert (violation["kind"], violation["path"]) == ("forbidden_path", "src/app/calc.py")
    assert violation["detail"] == detail


def test_a_symbolic_link_to_a_file_of_the_change_is_fine(repo: Path) -> None:
    (repo / "src/app/calc.py").unlink()
    (repo / "src/app/calc.py").symlink_to("../core/engine.py")
    assert check(repo).returncode == 0


def test_forbid_adds_a_pattern(repo: Path) -> None:
    edit(repo, "src/core/engine.py", "SPEED = 2\n")
    assert check(repo).returncode == 0
    done = check(repo, "--forbid", "src/core/**", "--forbid", "docs/**")
    assert done.returncode == 1
    assert "src/core/engine.py: matches forbidden pattern src/core/**" in done.stdout


@pytest.mark.parametrize("path", [".claude/settings.json", "agentloop.yaml"])
def test_the_rails_own_files_are_protected_whatever_the_config(tmp_path: Path, path: str) -> None:
    repo = git_init(
        write_tree(
            tmp_path / "repo",
            {**PROJECT, "agentloop.yaml": "rails:\n  forbidden_paths: []\n"},
        )
    )
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")  # allowed by this config
    assert check(repo).returncode == 0
    edit(
        repo,
        path,
        '{"disableAllHooks": true}\n'
        if path.endswith(".json")
        else "rails:\n  forbidden_paths: []\n  allow_test_edits: true\n",
    )
    done = check(repo)
    assert done.returncode == 1
    assert f"forbidden path  {path}: matches forbidden pattern" in done.stdout
    assert "src/auth/token.py" not in done.stdout.splitlines()[1]


def test_committed_changes_since_base_count(repo: Path) -> None:
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")
    commit_all(repo)
    assert "no changes" in check(repo).stdout
    done = check(repo, "--base", "HEAD~1")
    assert done.returncode == 1
    assert "forbidden path  src/auth/token.py" in done.stdout
    assert "since HEAD~1 (" in done.stdout
    # Committed, staged and unstaged changes together.
    edit(repo, "src/app/calc.py", "def add(a, b):\n    return b + a\n")
    edit(repo, "src/app/extra.py", "X = 1\n")
    run_git(repo, "add", "src/app/extra.py")
    doc = json.loads(check(repo, "--base", "HEAD~1", "--json").stdout)
    assert doc["changed"] == ["src/app/calc.py", "src/app/extra.py", "src/auth/token.py"]
    assert doc["base"] == run_git(repo, "rev-parse", "HEAD~1").strip()
    assert doc["base_ref"] == "HEAD~1"


# ---------------------------------------------------------------- test integrity


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ("delete_file", "test_file_deleted"),
        ("delete_test", "test_deleted"),
        ("remove_assertion", "assertion_removed"),
        ("skip", "skip_added"),
    ],
)
def test_weakened_tests_are_refused(repo: Path, change: str, kind: str) -> None:
    target = repo / "tests/test_calc.py"
    text = target.read_text()
    if change == "delete_file":
        target.unlink()
    elif change == "delete_test":
        target.write_text(text.split("def test_add_negative")[0])
    elif change == "remove_assertion":
        target.write_text(text.replace("    assert add(0, 0) == 0\n", ""))
    else:
        target.write_text(
            "import pytest\n\n"
            + text.replace("def test_add():", "@pytest.mark.skip\ndef test_add():")
        )
    done = check(repo)
    assert done.returncode == 1, done.stdout
    integrity = [line for line in lines(done) if line.startswith("test integrity  ")]
    assert len(integrity) == 1, done.stdout
    assert integrity[0].startswith("test integrity  tests/test_calc.py")
    assert integrity[0].endswith(f"({kind})")
    assert lines(done)[-1].startswith("to fix: restore the tests in tests/test_calc.py")
    doc = json.loads(check(repo, "--json").stdout)
    assert [v["kind"] for v in doc["violations"]] == [kind]


def test_removed_assertion_names_the_test_and_the_assertion(repo: Path) -> None:
    target = repo / "tests/test_calc.py"
    target.write_text(target.read_text().replace("    assert add(0, 0) == 0\n", ""))
    done = check(repo)
    assert (
        "test integrity  tests/test_calc.py::test_add: `assert add(0, 0) == 0` removed "
        "(assertion_removed)"
    ) in lines(done)


def test_allow_test_edits_lets_test_changes_pass(tmp_path: Path) -> None:
    repo = git_init(
        write_tree(
            tmp_path / "repo", {**PROJECT, "agentloop.yaml": "rails:\n  allow_test_edits: true\n"}
        )
    )
    (repo / "tests/test_calc.py").unlink()
    done = check(repo)
    assert done.returncode == 0, done.stdout
    assert "tests not checked: rails.allow_test_edits is true" in done.stdout
    assert json.loads(check(repo, "--json").stdout)["test_integrity"] is False


def test_a_change_cannot_allow_test_edits_for_itself(repo: Path) -> None:
    # pyproject.toml is not protected (fixes edit it): the rails come from the base.
    with (repo / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.agentloop.rails]\nallow_test_edits = true\nforbidden_paths = []\n")
    (repo / "tests/test_calc.py").unlink()
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")
    done = check(repo, "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["test_integrity"] is True
    assert {v["kind"] for v in doc["violations"]} == {"forbidden_path", "test_file_deleted"}
    # Once committed, the new configuration is the base's.
    commit_all(repo)
    edit(repo, "src/auth/token.py", "SECRET = 'z'\n")
    assert check(repo).returncode == 0


def test_both_kinds_are_reported_together(repo: Path) -> None:
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")
    (repo / "tests/test_calc.py").unlink()
    done = check(repo)
    assert done.returncode == 1
    assert lines(done)[0].startswith("rails broken: 2 problems in 2 changed files")
    assert lines(done)[-1] == (
        "to fix: undo the changes to src/auth/token.py (`git checkout HEAD -- <path>`; "
        "delete it if new); restore the tests in tests/test_calc.py as they were at HEAD and "
        "fix the code under test instead"
    )


# ---------------------------------------------------------------- a project in a subdirectory


def test_a_project_in_a_subdirectory(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    write_tree(top, {"README.md": "mono\n", ".claude/settings.json": "{}\n"})
    write_tree(
        top / "proj", {**PROJECT, "agentloop.yaml": "rails:\n  forbidden_paths: ['**/core/**']\n"}
    )
    git_init(top)
    project = top / "proj"
    edit(project, "src/auth/token.py", "SECRET = 'y'\n")  # allowed by proj's config
    done = check(project, "--json")
    assert done.returncode == 0, done.stdout
    doc = json.loads(done.stdout)
    assert doc["repository"] == str(top.resolve())
    assert doc["changed"] == ["proj/src/auth/token.py"]
    # Run from the top with -C, too; paths stay relative to the top.
    edit(project, "src/core/engine.py", "SPEED = 2\n")
    (project / "tests/test_calc.py").unlink()
    edit(top, ".claude/settings.json", "{}\n\n")
    done = check(top, "-C", "proj")
    assert done.returncode == 1
    assert "forbidden path  proj/src/core/engine.py: matches forbidden pattern **/core/**" in lines(
        done
    )
    assert "forbidden path  .claude/settings.json: matches forbidden pattern" in done.stdout
    assert "test integrity  proj/tests/test_calc.py" in done.stdout
    edit(project, "agentloop.yaml", "rails:\n  forbidden_paths: []\n")
    assert "forbidden path  proj/agentloop.yaml" in check(project).stdout


# ---------------------------------------------------------------- usage errors


def test_an_unknown_base_is_a_usage_error(repo: Path) -> None:
    assert_one_error(check(repo, "--base", "nope"), "--base 'nope' is not a commit")


def test_not_a_git_repository_is_a_usage_error(tmp_path: Path) -> None:
    plain = write_tree(tmp_path / "plain", {"a.py": "x = 1\n"})
    assert_one_error(check(plain), "is not a git repository")


def test_a_missing_directory_is_a_usage_error(repo: Path) -> None:
    assert_one_error(check(repo, "-C", "nowhere"), "nowhere is not a directory")


def test_a_repository_without_commits_is_a_usage_error(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "fresh", {"a.py": "x = 1\n"})
    run_git(repo, "init", "-q")
    assert_one_error(check(repo), "has no commit yet")


def test_an_invalid_forbid_pattern_is_a_usage_error(repo: Path) -> None:
    assert_one_error(check(repo, "--forbid", "[z-a]"), "invalid forbidden-path pattern")


def test_an_invalid_config_is_a_usage_error(repo: Path) -> None:
    edit(repo, "agentloop.yaml", "rails:\n  allow_test_edits: maybe\n")
    done = check(repo)
    assert done.returncode == 2
    assert_no_traceback(done)
    assert done.stderr.startswith("error: ")


def test_errors_in_json_mode_are_a_document(repo: Path) -> None:
    done = check(repo, "--base", "nope", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["exit_code"] == 2


# ---------------------------------------------------------------- --json


@pytest.fixture(scope="module")
def validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath("check.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def valid(validator: Any, doc: dict[str, Any]) -> dict[str, Any]:
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert problems == []
    return doc


def test_json_validates_and_has_the_fields(repo: Path, validator: Any) -> None:
    doc = valid(validator, json.loads(check(repo, "--json").stdout))
    assert doc["ok"] is True
    assert doc["changed"] == []
    assert doc["violations"] == []
    assert doc["base"] == run_git(repo, "rev-parse", "HEAD").strip()
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")
    target = repo / "tests/test_calc.py"
    target.write_text(target.read_text().replace("    assert add(0, 0) == 0\n", ""))
    done = check(repo, "--json", "--forbid", "src/core/**")
    assert done.returncode == 1
    doc = valid(validator, json.loads(done.stdout))
    assert doc["ok"] is False
    assert doc["repository"] == str(repo.resolve())
    assert doc["changed"] == ["src/auth/token.py", "tests/test_calc.py"]
    assert doc["test_integrity"] is True
    assert "src/core/**" in doc["forbidden_paths"]
    assert doc["forbidden_paths"][-1] == ".agentloop/**"
    assert doc["violations"] == [
        {
            "kind": "forbidden_path",
            "path": "src/auth/token.py",
            "test": None,
            "detail": "matches forbidden pattern **/auth/**",
            "pattern": "**/auth/**",
        },
        {
            "kind": "assertion_removed",
            "path": "tests/test_calc.py",
            "test": "test_add",
            "detail": "`assert add(0, 0) == 0` removed",
            "pattern": None,
        },
    ]


def test_json_error_document_validates(repo: Path) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(
        resources.files("agentloop.schemas").joinpath("check.schema.json").read_text("utf-8")
    )
    error_schema = {**schema["$defs"]["error"], "$defs": schema["$defs"]}
    doc = json.loads(check(repo, "--base", "nope", "--json").stdout)
    assert list(Draft202012Validator(error_schema).iter_errors(doc)) == []


def test_schema_kinds_match_the_records() -> None:
    schema = json.loads(
        resources.files("agentloop.schemas").joinpath("check.schema.json").read_text("utf-8")
    )
    kinds = schema["$defs"]["violation"]["properties"]["kind"]["enum"]
    assert tuple(kinds) == ("forbidden_path", *get_args(IntegrityKind), *get_args(SessionKind))


# ---------------------------------------------------------------- what the index hides


def test_index_flags_hide_no_change(repo: Path) -> None:
    run_git(repo, "update-index", "--assume-unchanged", "src/auth/token.py")
    run_git(repo, "update-index", "--skip-worktree", "tests/test_calc.py")
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")
    target = repo / "tests/test_calc.py"
    target.write_text(target.read_text().replace("    assert add(0, 0) == 0\n", ""))
    assert run_git(repo, "status", "--porcelain") == ""  # git itself is blind now
    done = check(repo, "--json")
    assert done.returncode == 1, done.stdout
    doc = json.loads(done.stdout)
    assert doc["changed"] == ["src/auth/token.py", "tests/test_calc.py"]
    assert [v["kind"] for v in doc["violations"]] == ["forbidden_path", "assertion_removed"]


def test_an_exclude_rule_hides_no_tracked_change(repo: Path) -> None:
    with (repo / ".git" / "info" / "exclude").open("a") as handle:
        handle.write("src/auth/\n")
    edit(repo, "src/auth/token.py", "SECRET = 'y'\n")
    assert "src/auth/token.py" in check(repo).stdout


@pytest.mark.parametrize("where", ["src/auth", "plugins/new"])
def test_a_gitignore_that_hides_itself_is_a_change(repo: Path, where: str) -> None:
    edit(repo, f"{where}/.gitignore", "*\n")
    edit(repo, f"{where}/backdoor.py", "OPEN = True\n")
    assert run_git(repo, "status", "--porcelain") == ""
    doc = json.loads(check(repo, "--json").stdout)
    assert doc["changed"] == [f"{where}/.gitignore"]
    assert doc["ok"] is (where != "src/auth")


def test_agentloops_own_directory_is_never_part_of_the_change(repo: Path) -> None:
    edit(repo, ".agentloop/history.jsonl", "{}\n")  # not excluded here: a fresh clone
    done = check(repo, "--json")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["changed"] == []


# ---------------------------------------------------------------- inside an /autofix session

SESSION = "5d1e3b7a-0c2f-4e8b-9a6d-2f4c8e1b3a57"


@pytest.fixture
def session(repo: Path) -> Path:
    """A session started in the user's checkout, with the user's uncommitted work (a
    change to a tracked file, a new file) and a stash."""
    (repo.parent / "home").mkdir(exist_ok=True)
    edit(repo, "src/core/engine.py", "SPEED = 2\n")
    run_git(repo, "stash", "push", "--quiet", "-m", "the user's stash")
    edit(repo, "README.md", "the user's notes on the readme\n")
    edit(repo, "src/core/engine.py", "SPEED = 3  # the user's tuning\n")
    edit(repo, "notes/todo.txt", "the user's todo\n")
    done = run_cli(
        "session", "start", "--id", SESSION, cwd=repo, home=repo.parent / "home", timeout=60
    )
    assert done.returncode == 0, done.stderr
    return repo


def in_session(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`agentloop check` as the agent runs it in Claude Code's Bash."""
    return run_cli(
        "check", *args, cwd=repo, home=repo.parent / "home", timeout=60,
        extra_env={"CLAUDE_CODE_SESSION_ID": SESSION},
    )  # fmt: skip


def agent(repo: Path, script: str) -> None:
    subprocess.run(script, shell=True, cwd=repo, check=True, capture_output=True)


def test_session_start_saves_the_users_work_and_the_git_state(session: Path) -> None:
    record = session_mod.path_of(session, SESSION)
    loaded = session_mod.load(record)
    assert loaded.user_files == ("README.md", "notes/todo.txt", "src/core/engine.py")
    assert [f.path for f in loaded.user_work] == list(loaded.user_files)
    assert all(f.sha256 for f in loaded.user_work)
    patch = session_mod.work_patch(record).read_text()
    assert "+SPEED = 3  # the user's tuning" in patch
    assert "+the user's todo" in patch
    assert session_mod.git_state_file(record).is_file()


def test_an_honest_change_in_a_session_passes(session: Path) -> None:
    edit(session, "src/app/calc.py", "def add(a, b):\n    return b + a\n")
    done = in_session(session, "--json")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["changed"] == ["src/app/calc.py"]


@pytest.mark.parametrize(
    "attack",
    [
        "git checkout HEAD -- src",
        "git checkout-index -f -a",
        "git read-tree -u --reset HEAD",
        "git reset -q --hard",
        "git stash push -q -- src/core/engine.py",
    ],
)
def test_overwriting_the_users_work_is_named_with_the_way_back(session: Path, attack: str) -> None:
    agent(session, attack)
    done = in_session(session)
    assert done.returncode == 1, done.stdout
    patch = f".agentloop/sessions/{SESSION}/user-work.patch"
    line = (
        "user work lost  src/core/engine.py: the user's uncommitted change to "
        f"src/core/engine.py was overwritten; restore it: git apply "
        f"--include=src/core/engine.py {patch}"
    )
    assert line in lines(done), done.stdout
    assert_no_traceback(done)
    # The way back works.
    agent(session, f"git apply --include=src/core/engine.py {patch}")
    assert (session / "src/core/engine.py").read_text() == "SPEED = 3  # the user's tuning\n"


def test_deleting_the_users_new_file_is_named(session: Path) -> None:
    agent(session, "git clean -fdq")
    doc = json.loads(in_session(session, "--json").stdout)
    assert [(v["kind"], v["path"]) for v in doc["violations"]] == [
        ("user_work_lost", "notes/todo.txt")
    ]


@pytest.mark.parametrize(
    ("attack", "path", "said"),
    [
        ("git update-ref -d refs/stash", "refs/stash", "refs/stash deleted (1 entry)"),
        ("git stash drop -q", "refs/stash", "refs/stash deleted (1 entry)"),
        ("git config alias.p push", "config", "config changed (+alias.p=push)"),
        ("git tag evil", "refs/tags/evil", "refs/tags/evil added"),
        ("git branch -f side HEAD", "refs/heads/side", "refs/heads/side added"),
        ("echo '*.py' >> .git/info/exclude", "info/exclude", "info/exclude changed (+*.py)"),
        ("printf '#!/bin/sh\\n' > .git/hooks/pre-push", "hooks/pre-push", "hooks/pre-push added"),
        ("git config --global core.hooksPath /tmp", "~/.gitconfig", "~/.gitconfig added"),
    ],
)
def test_moving_git_state_in_a_session_is_named_with_the_way_back(
    session: Path, attack: str, path: str, said: str
) -> None:
    agent(session, f"HOME={session.parent / 'home'} && export HOME && {attack}")
    done = in_session(session, "--json")
    assert done.returncode == 1, done.stdout
    (violation,) = json.loads(done.stdout)["violations"]
    assert violation["kind"] == "git_state_changed"
    assert violation["path"].endswith(path.lstrip("~"))
    assert said in violation["detail"]
    assert "; put it back: " in violation["detail"]
    text = in_session(session).stdout
    assert f"git state  {violation['path']}: {said}" in text


def test_a_dropped_stash_comes_back_with_the_command_check_gives(session: Path) -> None:
    stash = run_git(session, "stash", "list")
    agent(session, "git stash drop -q")
    (violation,) = json.loads(in_session(session, "--json").stdout)["violations"]
    agent(session, violation["detail"].split("; put it back: ", 1)[1])
    assert run_git(session, "stash", "list") == stash
    assert in_session(session).returncode == 0


def test_the_branch_may_advance_only_by_agentloops_own_commits(session: Path) -> None:
    edit(session, "src/app/calc.py", "def add(a, b):\n    return b + a\n")
    run_git(session, "add", "src/app/calc.py")
    commit_all_staged = ["-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "fix"]
    run_git(session, *commit_all_staged)
    done = in_session(session, "--json")
    assert done.returncode == 1
    (violation,) = json.loads(done.stdout)["violations"]
    assert violation["path"] == "refs/heads/main"
    assert "refs/heads/main moved" in violation["detail"]
    # Made by agentloop's commit tool, the same commit is the session's own.
    sha = run_git(session, "rev-parse", "HEAD").strip()
    session_mod.record_commit(session_mod.path_of(session, SESSION), sha)
    done = in_session(session, "--json")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["changed"] == ["src/app/calc.py"]


def test_session_check_output_validates(session: Path, validator: Any) -> None:
    agent(session, "git checkout HEAD -- src && git update-ref -d refs/stash")
    done = in_session(session, "--json")
    doc = valid(validator, json.loads(done.stdout))
    assert {v["kind"] for v in doc["violations"]} == {"user_work_lost", "git_state_changed"}
