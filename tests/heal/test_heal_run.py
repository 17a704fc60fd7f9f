"""`agentloop heal` wired end to end in-process: the loopback fake Sentry serving real
sentry-sdk events of the fixture shop, the in-process ScriptedAgent writing the test and
the fix the model would, real git and pytest, the fake GitHub API over a real bare
`origin`, a webhook sink as the notification channel."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentloop import output
from agentloop.commands.heal import Services, heal
from agentloop.errors import UsageError
from agentloop.heal.notify import Notifier
from agentloop.integrations.github import GitHub
from agentloop.integrations.sentry import Sentry
from agentloop.testing.agents import ScriptedAgent, Session
from agentloop.testing.fake_github import FakeGitHub
from agentloop.testing.fake_sentry import FakeSentry
from agentloop.testing.repos import commit_all, run_git
from agentloop.testing.sentry_events import capture
from agentloop.testing.webhook_sink import WebhookSink

from .conftest import CART, TOKEN

GH_TOKEN = "ghs_HEALRUNtoken0123456789abcdefABCDEF01"
TEST_FILE = "tests/test_sentry_shop_1.py"
CART_TEST = """\
from shop import views


def test_checkout_of_an_item_without_qty():
    views.checkout({"items": [{"price": 3}]})
"""
# Fails, but not as production did: a TypeError in the test itself.
WRONG_REASON = """\
from shop import orders


def test_refund_of_a_negative_amount():
    orders.refund(None + 1)
"""


def write(path: str, text: str) -> Session:
    def session(cwd: Path) -> None:
        (cwd / path).parent.mkdir(parents=True, exist_ok=True)
        (cwd / path).write_text(text)

    return session


def edit(path: str, old: str, new: str) -> Session:
    def session(cwd: Path) -> str:
        target = cwd / path
        target.write_text(target.read_text().replace(old, new))
        return "An item posted without a quantity raised KeyError; it now counts as one."

    return session


def nothing(cwd: Path) -> None:
    """A session that writes no test: the group is skipped, cheaply."""


FIX_CART = edit("shop/cart.py", 'item["qty"]', 'item.get("qty", 1)')


def git_out(cwd: Path, *args: str) -> str:
    return run_git(cwd, *args).strip()


@dataclass
class World:
    root: Path
    origin: Path
    sentry: FakeSentry
    client: Sentry
    github: FakeGitHub
    sink: WebhookSink
    env: dict[str, str]

    def services(self, agent: ScriptedAgent | None = None, *, sentry: bool = True) -> Services:
        return Services(
            sentry=self.client if sentry else None,
            agent=agent,
            github=lambda repo, token, api: GitHub(repo, token, api_url=api, sleep=lambda s: 0),
            notifier=Notifier(sleep=lambda s: None),
        )

    def heal(
        self,
        capsys: pytest.CaptureFixture[str],
        *sessions: Session,
        root: Path | None = None,
        **flags: Any,
    ) -> tuple[int, dict[str, Any], ScriptedAgent]:
        agent = ScriptedAgent(*sessions)
        code = heal(
            repo=root or self.root,
            dry_run=False,
            as_json=True,
            environ=self.env,
            services=self.services(agent),
            **flags,
        )
        out = capsys.readouterr().out
        return code, json.loads(out), agent

    def writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.github.requests if r.method != "GET"]

    def remote_branches(self) -> list[str]:
        return git_out(self.origin, "for-each-ref", "--format=%(refname:short)").split()

    def clone(self, name: str) -> Path:
        """A fresh checkout of origin, as a CI job makes."""
        dest = self.root.parent / name
        run_git(self.root.parent, "clone", "-q", str(self.origin), str(dest))
        return dest


@pytest.fixture
def world(project: Path, fake: FakeSentry, client: Sentry, tmp_path: Path) -> Iterator[World]:
    (project / "agentloop.yaml").write_text(
        "sentry: {organization: acme, projects: [shop]}\n"
        "agent: {max_turns: 5}\n"
        "run: {max_attempts: 1}\n"
        "notify: {channels: [{name: team, type: webhook, url_env: AGENTLOOP_TEAM_WEBHOOK}]}\n"
    )
    commit_all(project, "agentloop.yaml")
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(project), str(origin))
    run_git(project, "remote", "add", "origin", str(origin))
    with FakeGitHub() as github, WebhookSink() as sink:
        github.add_repo("o/r", origin=origin)
        env = {
            "GITHUB_TOKEN": GH_TOKEN,
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_API_URL": github.api_url,
            "AGENTLOOP_TEAM_WEBHOOK": sink.url("/hooks/team"),
            "SENTRY_AUTH_TOKEN": TOKEN,
        }
        yield World(project, origin, fake, client, github, sink, env)


def checkout_state(root: Path) -> tuple[str, str, str]:
    """What the user sees of their checkout: HEAD, the branch, the status."""
    return (
        git_out(root, "rev-parse", "HEAD"),
        git_out(root, "branch", "--show-current"),
        git_out(root, "status", "--porcelain", "--untracked-files=all"),
    )


def validator(name: str = "heal-run") -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    text = resources.files("agentloop.schemas").joinpath(f"{name}.schema.json").read_text()
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# ---------------------------------------------------------------- the breaker


def test_the_breaker_at_101_events_alerts_without_any_session(
    world: World, events: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    world.sentry.add_event(events["checkout"], count=101)
    before = checkout_state(world.root)

    # Without --yes: exit 5 all the same, nothing opened or sent, and what would be.
    monkeypatch.setattr(output.out, "width", 200)
    code = heal(repo=world.root, dry_run=False, as_json=False, environ=world.env,
                services=world.services(ScriptedAgent()))  # fmt: skip
    out = capsys.readouterr().out
    assert code == 5
    assert "rate breaker tripped: 101 errors in the last hour > 100" in out
    assert "open (or update) the alert issue and notify the first tier" in out
    [run_dir] = (world.root / ".agentloop" / "runs").iterdir()
    assert f"publish with: agentloop heal --publish {run_dir} --yes" in out
    assert (world.writes(), world.sink.requests) == ([], [])

    code, doc, agent = world.heal(capsys, yes=True)

    assert code == 5
    validator().validate(doc)
    assert agent.calls == []  # no session at all
    assert doc["results"] == []
    [alert] = [i for i in doc_issues(world) if "agentloop-alert" in labels(i)]
    assert "101 events in the last hour" in alert["body"]
    assert doc["published"]["alert_issue"]["number"] == alert["number"]
    # The alert and the report went to the channel.
    assert [r.json["kind"] for r in world.sink.requests] == ["alert", "report"]
    assert world.remote_branches() == ["main"]
    assert checkout_state(world.root) == before


def test_at_100_events_it_proceeds_to_reproduce(
    world: World, events: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    world.sentry.add_event(events["checkout"], count=100)

    code, doc, agent = world.heal(capsys, nothing, no_publish=True)

    assert len(agent.calls) == 1  # the reproduce session
    assert code == 1  # it wrote no test: a selected root cause is not fixed
    [result] = doc["results"]
    assert (result["status"], result["kind"]) == ("not_reproduced", "no_test")
    assert world.writes() == []


def test_escalate_sends_the_next_tier_once_when_due_and_only_with_yes(
    world: World, events: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    (world.root / "agentloop.yaml").write_text(
        "sentry: {organization: acme, projects: [shop]}\n"
        "notify:\n"
        "  channels: [{name: team, type: webhook, url_env: AGENTLOOP_TEAM_WEBHOOK},\n"
        "             {name: pager, type: webhook, url_env: AGENTLOOP_PAGER_WEBHOOK}]\n"
        "  escalation: [[team], [pager]]\n"
        "  escalate_after: 30\n"
    )
    env = {**world.env, "AGENTLOOP_PAGER_WEBHOOK": world.sink.url("/hooks/pager")}
    world.sentry.add_event(events["checkout"], count=150)
    opened = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.timezone.utc)

    def at(minutes: int) -> Services:
        later = opened + datetime.timedelta(minutes=minutes)
        return dataclasses.replace(world.services(), now=lambda: later)

    assert heal(repo=world.root, dry_run=False, as_json=True, yes=True, environ=env,
                services=at(0)) == 5  # fmt: skip
    capsys.readouterr()
    told = [r.path for r in world.sink.requests]
    assert told == ["/hooks/team", "/hooks/team"]  # the alert and the report, tier 1

    for minutes, yes in ((40, False), (25, True), (31, True), (50, True)):
        code = heal(repo=world.root, dry_run=False, as_json=True, escalate=True, yes=yes,
                    environ=env, services=at(minutes))  # fmt: skip
        doc = json.loads(capsys.readouterr().out)
        assert code == 0, doc
        assert doc["approved"] is yes
        validator("heal-escalate").validate(doc)
    # Tier 2 once, at 31 minutes; not without --yes, not before it was due, not twice.
    assert [r.path for r in world.sink.requests][2:] == ["/hooks/pager"]
    assert world.sink.requests[2].json["kind"] == "escalation"


def test_nothing_to_fix_is_0_and_a_github_failure_is_4_with_the_rest_still_sent(
    world: World, events: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    world.sentry.add_event(events["report_warning"], count=4)  # P2: documented only

    code, doc, agent = world.heal(capsys, yes=True)
    assert (code, agent.calls, doc["results"]) == (0, [], [])
    assert doc["published"]["report_issue"]["action"] == "opened"

    world.github.fail("PATCH", r"/repos/o/r/issues/\d+", 500, times=None)
    code, doc, _ = world.heal(capsys, yes=True)
    assert code == 4
    [problem] = doc["published"]["problems"]
    assert problem.startswith("the incident report issue:")
    assert [r.json["kind"] for r in world.sink.requests] == ["report", "report"]


def test_a_crash_in_payments_code_costs_no_session_without_allow_sensitive(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.sentry.add_event(capture("pay", {"amount": 1000, "instalments": 0}), count=3)

    code, doc, agent = world.heal(capsys, nothing, no_publish=True)
    assert (code, agent.calls) == (1, [])
    [result] = doc["results"]
    assert (result["status"], result["kind"]) == ("not_fixed", "sensitive")
    assert result["reason"] == (
        "the crash is in shop/payments/gateway.py, sensitive code (**/payments/**): "
        "needs --allow-sensitive"
    )

    code, doc, agent = world.heal(capsys, nothing, no_publish=True, allow_sensitive=True)
    assert (code, len(agent.calls)) == (1, 1)  # reproduced for a fix that may touch it
    assert doc["allow_sensitive"] is True


def doc_issues(world: World) -> list[dict[str, Any]]:
    issues = GitHub("o/r", GH_TOKEN, api_url=world.github.api_url).issues()
    return [world.github.issue(i.number) for i in issues]


def labels(issue: dict[str, Any]) -> list[str]:
    return [label["name"] for label in issue["labels"]]


# ---------------------------------------------------------------- the cap


def test_seven_root_causes_five_are_worked_on_the_rest_reported_over_the_cap(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = [
        ("checkout", CART),
        ("checkout", {}),
        ("preview", {}),
        ("refund", {"amount": -3}),
        ("refund", {"amount": "x"}),
        ("refund", {}),
        ("report", {"sum": 1, "days": 0}),
    ]
    for count, (view, body) in enumerate(bodies, start=2):
        world.sentry.add_event(capture(view, body), count=count)

    code, doc, agent = world.heal(capsys, *[nothing] * 7, yes=True)

    assert code == 1
    assert len(agent.calls) == 5
    assert len(doc["results"]) == 5
    capped = [s for s in doc["triage"]["skipped"] if s["reason"].startswith("over the cap")]
    assert [s["reason"] for s in capped] == ["over the cap of sentry.max_fixes (5)"] * 2
    [incident] = [i for i in doc_issues(world) if "agentloop-incident" in labels(i)]
    assert "over the cap of sentry.max_fixes (5)" in incident["body"]
    report = json.loads(Path(doc["published"]["report"]).with_suffix(".json").read_text())
    statuses = [(r["status"], r["reason"]) for r in report["root_causes"]]
    assert [s for s, _ in statuses].count("not_reproduced") == 5
    assert statuses.count(("skipped", "over the cap of sentry.max_fixes (5)")) == 2
    assert world.remote_branches() == ["main"]


# ---------------------------------------------------------------- a whole run


def test_a_run_then_its_publish_from_a_fresh_clone_then_a_second_run_that_comments(
    world: World, events: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The CI shape: the run with --no-publish, then --publish of its directory in a fresh
    checkout (no Sentry token, no model); a later run publishing at once comments on the
    open PR. One root cause is fixed (two Sentry issues), one reproduced for the wrong
    reason and skipped."""
    checkout = world.sentry.add_event(events["checkout"], count=9)
    world.sentry.add_event(events["preview"], count=2)  # the same crash: one root cause
    world.sentry.add_event(events["refund_crash"], count=3)
    branch = f"fix/sentry-{checkout}"
    before = checkout_state(world.root)

    code, doc, agent = world.heal(
        capsys,
        write(TEST_FILE, CART_TEST),  # REPRODUCE SHOP-1: right
        write("tests/test_sentry_shop_3.py", WRONG_REASON),  # REPRODUCE SHOP-3: wrong reason
        FIX_CART,  # FIX SHOP-1
        no_publish=True,
    )
    # Every session's environment blanks the tokens and the webhook's address (the CLI
    # would inherit them from agentloop's own environment otherwise).
    assert len(agent.calls) == 3
    hidden = ("GITHUB_TOKEN", "SENTRY_AUTH_TOKEN", "AGENTLOOP_TEAM_WEBHOOK")
    for call in agent.calls:
        assert [call.env.get(name) for name in hidden] == ["", "", ""]

    assert code == 1, doc  # the refund was not fixed
    validator().validate(doc)
    fixed, skipped = doc["results"]
    assert (fixed["status"], fixed["fix"]["branch"]) == ("fixed", branch)
    assert [r["verdict"] for r in fixed["reproduction"]["runs"]] == ["reproduced"] * 3
    assert (skipped["status"], skipped["kind"]) == ("not_reproduced", "other_exception")
    assert skipped["reason"].startswith("the test fails with TypeError, not ValueError")
    assert doc["published"] is None
    run_dir = Path(doc["run_dir"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["heal.bundle", "heal.json"]
    assert world.writes() == []
    assert world.remote_branches() == ["main"]
    # The fix is a local branch; the user's HEAD, branch, index and files are as they were.
    assert checkout_state(world.root) == before
    assert len(git_out(world.root, "worktree", "list").splitlines()) == 1
    commit = fixed["fix"]["commit"]

    # The publishing job: a fresh clone, the run directory, a GitHub token; no Sentry.
    fresh = world.clone("publisher")
    publish = {"repo": fresh, "dry_run": False, "as_json": True, "publish": run_dir,
               "environ": world.env, "services": world.services(sentry=False)}  # fmt: skip

    # Without --yes: nothing is pushed or opened, and the command to publish is printed.
    assert heal(**publish) == 0  # type: ignore[arg-type]
    unapproved = json.loads(capsys.readouterr().out)
    assert unapproved["published"]["approved"] is False
    assert unapproved["published"]["command"] == f"agentloop heal --publish {run_dir} --yes"
    assert world.writes() == []
    assert world.remote_branches() == ["main"]

    # At the daily cap of auto-fix PRs: exit 5, nothing pushed; the report is still sent.
    config = (fresh / "agentloop.yaml").read_text()
    (fresh / "agentloop.yaml").write_text(config + "github: {daily_pr_cap: 0}\n")
    assert heal(**publish, yes=True) == 5  # type: ignore[arg-type]
    capped = json.loads(capsys.readouterr().out)["published"]
    assert [p["action"] for p in capped["prs"]] == ["capped"]
    assert world.remote_branches() == ["main"]
    (fresh / "agentloop.yaml").write_text(config)

    code = heal(**publish, yes=True)  # type: ignore[arg-type]
    published = json.loads(capsys.readouterr().out)
    assert code == 1, published  # still: the refund was not fixed
    validator().validate(published)
    [pr] = published["published"]["prs"]
    assert pr["action"] == "opened"
    pull = world.github.pull(pr["number"])
    assert (pull["head"]["ref"], pull["head"]["sha"]) == (branch, commit)
    assert git_out(world.origin, "rev-parse", branch) == commit
    assert pull["title"] == "fix: [Sentry-SHOP-1] KeyError: 'qty'"
    assert sorted(label["name"] for label in pull["labels"]) == ["auto-fix", "sentry"]
    assert "Fixes SHOP-1\nFixes SHOP-2" in pull["body"]
    assert published["published"]["report_issue"]["action"] == "updated"  # today's
    [incident] = [i for i in doc_issues(world) if "agentloop-incident" in labels(i)]
    assert pull["html_url"] in incident["body"]
    assert "the test fails with TypeError, not ValueError" in incident["body"]
    assert [r.json["kind"] for r in world.sink.requests] == ["report", "report"]
    assert git_out(fresh, "status", "--porcelain") == ""  # the fresh clone's too

    # Production errs again after more commits on main: a later run in another fresh
    # checkout, publishing at once, comments on the open PR instead of opening another.
    (world.root / "README.md").write_text("the shop\n")
    commit_all(world.root, "docs")
    run_git(world.root, "push", "-q", "origin", "main")
    again = world.clone("second")
    code, doc, _ = world.heal(
        capsys, write(TEST_FILE, CART_TEST), nothing, FIX_CART, root=again, yes=True
    )
    assert code == 1, doc
    [pr2] = doc["published"]["prs"]
    assert (pr2["action"], pr2["number"]) == ("commented", pr["number"])
    assert len(world.github.requests_to("POST", r"/repos/o/r/pulls$")) == 1
    assert len(world.github.issue_comments(pr["number"])) == 1
    assert doc["published"]["report_issue"]["action"] == "updated"  # today's report


def test_flags_that_contradict_each_other_are_usage_errors(world: World) -> None:
    before = checkout_state(world.root)
    for flags in (
        {"no_publish": True, "yes": True},
        {"dry_run": True, "yes": True},
        {"escalate": True, "allow_sensitive": True},
        {"publish": world.root, "max_fixes": 2},
    ):
        with pytest.raises(UsageError):
            heal(repo=world.root, as_json=True, environ=world.env, **{"dry_run": False, **flags})  # type: ignore[arg-type]
    no_token = {k: v for k, v in world.env.items() if k != "GITHUB_TOKEN"}
    with pytest.raises(UsageError, match="no GitHub token"):
        heal(repo=world.root, dry_run=False, as_json=True, yes=True, environ=no_token,
             services=world.services(ScriptedAgent()))  # fmt: skip
    assert checkout_state(world.root) == before
    assert world.sentry.requests == []  # refused before anything was read


def test_without_channels_the_plan_promises_no_notification(
    world: World,
    events: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a run without --yes says it would do is what it would do: with no channel
    configured nobody would be told, and it does not say otherwise."""
    (world.root / "agentloop.yaml").write_text("sentry: {organization: acme, projects: [shop]}\n")
    world.sentry.add_event(events["checkout"], count=101)
    monkeypatch.setattr(output.out, "width", 200)
    code = heal(repo=world.root, dry_run=False, as_json=False, environ=world.env,
                services=world.services(ScriptedAgent()))  # fmt: skip
    out = capsys.readouterr().out
    assert code == 5
    assert "open (or update) the alert issue" in out
    assert "notify" not in out
    assert "escalations" not in out
