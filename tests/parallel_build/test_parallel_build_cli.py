"""`agentloop parallel-build`: the plan of a valid manifest, every problem of an invalid
one with exit 2, and a clear refusal of what cannot be done. (A manifest written from a
request: test_decompose.py.)"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from agentloop import cli
from agentloop.testing.repos import git_init, run_cli, write_tree

from .test_manifest import readme_manifest

INVALID = """\
request: r
contracts:
  - {name: user, kind: types, path: shared/user.ts}
streams:
  - {id: backend, title: b, template: api-endpoint, prompt: p, owns: ['src/api/**'],
     depends_on: [ui]}
  - {id: users, title: u, template: custom, prompt: p, owns: [src/api/users.py, auth/**]}
  - {id: ui, title: u, template: ui-feature, prompt: p, owns: ['web/**'], depends_on: [backend]}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_tree(root, {"src/api/users.py": "", "web/index.ts": ""})
    git_init(root)
    (root / "build.yaml").write_text(readme_manifest(), encoding="utf-8")
    (root / "bad.yaml").write_text(INVALID, encoding="utf-8")
    return root


def test_an_invalid_manifest_lists_every_problem_and_exits_2(repo: Path, tmp_path: Path) -> None:
    done = run_cli(
        "parallel-build", "--manifest", "bad.yaml", "--plan-only", cwd=repo, home=tmp_path / "h"
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "error: bad.yaml: 4 problems in the manifest"
    assert "dependency cycle: backend → ui → backend" in lines[1]
    assert "streams `backend` and `users` can both write src/api/users.py" in lines[2]
    assert "stream `users` owns auth/**, which reaches paths no stream may write" in lines[3]
    assert "contract `user` (shared/user.ts) is owned by no stream" in lines[4]
    assert lines[5].startswith("hint: fix them in bad.yaml")
    assert len(lines) == 6


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["parallel-build", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_valid_manifest_prints_its_waves(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = main(capsys, "-C", str(repo), "--manifest", str(repo / "build.yaml"),
                          "--plan-only", "--jobs", "3")  # fmt: skip
    assert (code, err) == (0, "")
    assert "4 stream(s) in 3 wave(s), up to 3 at once; 2 contract(s)" in out
    assert "wave 1: contracts\n" in out
    assert "wave 2: data, ui (at once)\n" in out
    assert "wave 3: api\n" in out
    assert "writes contract user-profile (api): shared/contracts/profile.schema.json" in out


def test_the_plan_as_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = main(capsys, "-C", str(repo), "--manifest", str(repo / "build.yaml"),
                        "--plan-only", "--json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    text = resources.files("agentloop.schemas").joinpath("build-plan.schema.json").read_text()
    jsonschema.validate(doc, json.loads(text))
    assert doc["waves"] == [["contracts"], ["data", "ui"], ["api"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: give a feature request or --manifest FILE"),
        (["Add a page", "--manifest", "build.yaml"], "error: give a feature request or --manifest"),
        (["--manifest", "build.yaml", "--out", "x.yaml"], "error: --out is where a manifest"),
    ],
)
def test_what_cannot_be_done_is_refused_plainly(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(repo)
    code, out, err = main(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith(message), err
    assert "hint:" in err


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("request: r\nstreams: [\n", "  - not valid YAML at line 3, column 1"),
        ("request: r\nstream: []\n", "  - stream: unknown key (did you mean `streams`?)"),
    ],
)
def test_an_unreadable_manifest_exits_2(
    repo: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    (repo / "odd.yaml").write_text(text, encoding="utf-8")
    code, out, err = main(capsys, "-C", str(repo), "--manifest", str(repo / "odd.yaml"),
                          "--plan-only")  # fmt: skip
    assert (code, out) == (2, "")
    assert err.startswith("error: "), err
    assert any(line.startswith(problem) for line in err.splitlines()), err
