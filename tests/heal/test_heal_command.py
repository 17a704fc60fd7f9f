"""`agentloop heal --dry-run [--json]` end to end in-process: config file, token from the
environment, the loopback fake Sentry, the triage printed; it changes nothing."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop import cli, errors, output
from agentloop.commands.heal import heal
from agentloop.integrations.sentry import Sentry
from agentloop.testing.fake_sentry import FakeSentry
from agentloop.testing.repos import write_tree

from .conftest import TOKEN


@pytest.fixture(scope="module")
def validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath("heal.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture
def project(tmp_path: Path, fake: FakeSentry) -> Path:
    return write_tree(
        tmp_path / "shop",
        {
            "agentloop.yaml": (
                f"sentry: {{organization: acme, projects: [shop], base_url: '{fake.url}',"
                " max_fixes: 1}\n"
            )
        },
    )


def run_cli(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    # As wide as a log gets (output.py): a pytest-xdist worker's COLUMNS says 80, which
    # folds the table's cells across lines.
    monkeypatch.setattr(output.out, "width", 120)
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_json_shows_the_triage_and_validates(
    project: Path,
    fake: FakeSentry,
    events: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    validator: Any,
) -> None:
    fake.add_event(events["checkout"], count=6)
    fake.add_event(events["preview"], count=2)
    fake.add_event(events["refund_crash"], count=1)
    fake.add_event(events["search"], count=9)
    fake.add_event(events["report_warning"], count=4)

    code, out, err = run_cli(
        ["heal", "--dry-run", "--json", "--repo", str(project)], monkeypatch, capsys
    )

    assert code == 0, err
    doc = json.loads(out)
    validator.validate(doc)
    assert doc["decision"] == "fix"
    assert doc["breaker"] == {"tripped": False, "errors_last_hour": 22, "max_errors_per_hour": 100}
    [selected] = doc["selected"]  # max_fixes: 1
    assert (selected["severity"], selected["events_24h"], selected["score"]) == ("P1", 8, 16)
    assert [i["short_id"] for i in selected["issues"]] == ["SHOP-1", "SHOP-2"]
    assert selected["crash_frame"]["file"].endswith("shop/cart.py")
    assert [g["severity"] for g in doc["documented"]] == ["P2"]
    excluded, capped = sorted(s["reason"] for s in doc["skipped"])
    assert excluded.endswith("shop/vendor/legacy_client.py is in excluded path **/vendor/**")
    assert capped == "over the cap of sentry.max_fixes (1)"
    # Read-only: every request was a GET (the fake answers nothing else).
    assert {r.method for r in fake.requests} == {"GET"}
    assert TOKEN not in out + err


def test_dry_run_prints_a_table(
    project: Path,
    fake: FakeSentry,
    events: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.add_event(events["checkout"], count=3)
    code, out, _ = run_cli(["heal", "--dry-run", "--repo", str(project)], monkeypatch, capsys)
    assert code == 0
    assert "1 unresolved Sentry issue of the last 24 hours in acme (shop)" in out
    assert "KeyError: 'qty'" in out
    assert "dry run: would fix 1 root cause; nothing was changed or opened" in out


def test_the_breaker_says_alert(
    project: Path,
    fake: FakeSentry,
    events: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.add_event(events["checkout"], count=101)
    code, out, _ = run_cli(["heal", "--dry-run", "--repo", str(project)], monkeypatch, capsys)
    assert code == 0
    assert "rate breaker tripped: 101 errors in the last hour > 100" in out
    assert "would fix nothing and open an alert issue" in out


def test_a_run_outside_git_is_refused_with_exit_2_before_reading_sentry(
    project: Path,
    fake: FakeSentry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(["heal", "--repo", str(project)], monkeypatch, capsys)
    assert code == errors.USAGE == 2
    assert err.startswith(f"error: {project} is not a git repository")
    assert "or use --dry-run to only see the triage" in err
    assert fake.requests == []


def test_no_token_is_a_config_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("AGENTLOOP_SENTRY_TOKEN", raising=False)
    assert cli.main(["heal", "--dry-run", "--repo", str(project)]) == 2
    assert "needs a Sentry token" in capsys.readouterr().err


def test_sentry_failing_is_exit_4_in_one_line_without_the_token(
    project: Path,
    fake: FakeSentry,
    client: Sentry,
    sleeps: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.fail(r"/api/0/organizations/acme/issues/", 503, times=None)

    code = errors.guarded(
        lambda: heal(repo=project, dry_run=True, as_json=False, environ={}, sentry=client),
        report=lambda message, hint, code: output.error(message, hint, code=code),
    )

    captured = capsys.readouterr()
    assert code == errors.SERVICE == 4
    error_line, hint_line = captured.err.strip().splitlines()
    assert error_line == (
        "error: Sentry failed GET /api/0/organizations/acme/issues/ (503: fake failure 503) "
        "after 5 tries"
    )
    assert hint_line.startswith("hint: Sentry may be having an outage")
    assert len(sleeps) == 4  # bounded, and nothing really slept
    assert TOKEN not in captured.out + captured.err


def test_personal_data_in_an_exception_message_is_not_printed(
    project: Path,
    fake: FakeSentry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agentloop.testing.sentry_events import capture

    # int("alice@example.com"): Python puts the value in the message, Sentry in the title.
    fake.add_event(capture("refund", {"amount": "alice@example.com"}))
    for args in (["--json"], []):
        code, out, err = run_cli(
            ["heal", "--dry-run", *args, "--repo", str(project)], monkeypatch, capsys
        )
        assert code == 0, err
        assert "alice@example.com" not in out + err
        assert "[email]" in out
