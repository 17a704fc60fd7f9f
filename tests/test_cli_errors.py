"""Bad input gets one clear line and a hint, a documented exit code, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentloop import cli
from agentloop.testing.repos import git_init, pytest_project, run_cli, write_tree

GOOD_JUNIT = (
    '<testsuites><testsuite name="pytest"><testcase classname="tests.test_a" name="test_x">'
    '<failure message="AssertionError: nope">E   AssertionError: nope</failure>'
    "</testcase></testsuite></testsuites>"
)


def assert_one_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert any(line.startswith("hint: ") for line in lines), stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (None, ("does not exist",)),
        (b"", ("is empty",)),
        (b"   \n", ("is empty",)),
        (b"hello world", ("neither JSON nor XML",)),
        (GOOD_JUNIT.encode()[:-40], ("not well-formed XML",)),
        (b'{"tests": [{"nodeid": "a", ', ("not valid JSON",)),
        (b'{"something": "else"}', ("not a pytest-json-report report",)),
        (b"<html><body/></html>", ("not a JUnit report",)),
    ],
)
def test_unusable_reports(
    tmp_path: Path, content: bytes | None, fragments: tuple[str, ...]
) -> None:
    report = tmp_path / "report"
    if content is not None:
        report.write_bytes(content)
    done = run_cli("detect", "--report", str(report), cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 2
    assert_one_error(done.stderr, *fragments)
    assert done.stdout == ""


def test_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text(GOOD_JUNIT)
    done = run_cli(
        "detect", "--report", "r.xml", "--format", "xml", cwd=tmp_path, home=tmp_path / "home"
    )
    assert done.returncode == 2
    assert_one_error(done.stderr, "unknown report format 'xml'", "pytest-json, junit")


def test_non_utf8_report_still_parses(tmp_path: Path) -> None:
    data = GOOD_JUNIT.replace("nope", "caf\udce9").encode("utf-8", "surrogateescape")
    (tmp_path / "r.xml").write_bytes(data)
    done = run_cli("detect", "--report", "r.xml", "--json", cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 1, done.stderr
    (task,) = json.loads(done.stdout)["tasks"]
    assert task["message"] == "caf\ufffd"


def test_not_a_git_repository_is_said_once(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text(GOOD_JUNIT)
    done = run_cli("detect", "--report", "r.xml", cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 1
    assert done.stderr.count("not a git repository") == 1
    assert "1 failures in 1 tasks (0 flaky)" in done.stdout


def test_json_errors_are_json(tmp_path: Path) -> None:
    done = run_cli("detect", "--report", "missing.xml", "--json", cwd=tmp_path, home=tmp_path)
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert error["exit_code"] == 2
    assert "does not exist" in error["message"]
    assert error["hint"]


@pytest.mark.parametrize(
    ("suite", "fragments"),
    [
        ("run: definitely-not-a-command-xyz\n", ("command not found",)),
        ("run: 'true'\n    format: junit\n    report: out.xml\n", ("printed nothing",)),
        ("run: echo building\n    format: junit\n    report: out.xml\n", ("without writing",)),
    ],
)
def test_broken_suite_commands(tmp_path: Path, suite: str, fragments: tuple[str, ...]) -> None:
    write_tree(tmp_path, {"agentloop.yaml": f"suites:\n  - name: unit\n    {suite}"})
    done = run_cli("detect", cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 2, done.stderr
    assert_one_error(done.stderr, *fragments)


def test_no_suite_found(tmp_path: Path) -> None:
    done = run_cli("detect", cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 2
    assert_one_error(done.stderr, "no test suite found", "agentloop.yaml")


def test_invalid_config_names_the_field(tmp_path: Path) -> None:
    write_tree(tmp_path, {"agentloop.yaml": "detect:\n  flaky_rerun: 3\n"})
    done = run_cli("detect", cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 2
    assert_one_error(done.stderr, "detect.flaky_rerun", "did you mean `flaky_reruns`")


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    done = run_cli("detect", "--flaky-reruns", "lots", cwd=tmp_path, home=tmp_path)
    assert done.returncode == 2
    assert_one_error(done.stderr, "--flaky-reruns")
    done = run_cli(
        "detect", "--report", "x", "--suite", "a", "--bogus", cwd=tmp_path, home=tmp_path
    )
    assert done.returncode == 2
    assert_one_error(done.stderr, "--bogus")


def test_version_and_help(tmp_path: Path) -> None:
    done = run_cli("--version", cwd=tmp_path, home=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("agentloop ")
    done = run_cli("detect", "--help", cwd=tmp_path, home=tmp_path)
    assert done.returncode == 0
    assert "--flaky-reruns" in done.stdout


def test_a_bug_exits_3_and_leaves_a_crash_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import agentloop.commands.detect as detect_module

    def explode(**_: object) -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(detect_module, "detect", explode)
    code = cli.main(["detect", "--repo", str(tmp_path)])
    assert code == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaboom" in err
    assert "Traceback" not in err
    logs = list((Path.home() / ".cache" / "agentloop").glob("crash-*.log"))
    assert len(logs) == 1
    assert "kaboom" in logs[0].read_text()


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import agentloop.commands.detect as detect_module

    def interrupted(**_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(detect_module, "detect", interrupted)
    assert cli.main(["detect", "--repo", str(tmp_path)]) == 130


def test_suite_printing_non_utf8_output(tmp_path: Path) -> None:
    root = pytest_project(
        tmp_path / "p",
        {
            "tests/test_bytes.py": """\
                import sys

                def test_prints_latin1():
                    sys.stdout.buffer.write(b"caf\\xe9\\n")
                    assert False, "broken"
                """
        },
    )
    done = run_cli("detect", "--json", "--flaky-reruns", "0", cwd=root, home=tmp_path / "home")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["summary"]["failures"] == 1


def test_zero_tests_is_not_green(tmp_path: Path) -> None:
    """A suite that collects nothing checked nothing: not exit 0, whichever way it ran."""
    root = git_init(pytest_project(tmp_path / "repo", {"tests/test_x.py": "X = 1\n"}))
    home = tmp_path / "home"
    done = run_cli("detect", cwd=root, home=home)
    assert done.returncode == 2
    assert_one_error(done.stderr, "no test ran: pytest found 0 tests", "pytest exited 5")
    done = run_cli("detect", "--json", cwd=root, home=home)
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["message"].startswith("no test ran")
    (tmp_path / "empty.xml").write_text('<testsuites><testsuite name="x" tests="0"/></testsuites>')
    done = run_cli("detect", "--report", str(tmp_path / "empty.xml"), cwd=root, home=home)
    assert done.returncode == 2
    assert_one_error(done.stderr, "no test ran", "empty.xml")
    done = run_cli("run", "--dry-run", cwd=root, home=home)  # run's baseline alike
    assert done.returncode == 2
    assert_one_error(done.stderr, "no test ran: pytest found 0 tests")
    # One test is enough to have a verdict.
    (root / "tests/test_x.py").write_text("def test_x():\n    pass\n")
    assert run_cli("detect", cwd=root, home=home).returncode == 0
