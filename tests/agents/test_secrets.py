"""What an agent's session never gets: the tokens and webhook addresses `agentloop heal`
and `agentloop serve` hold (an event anyone can send to Sentry reaches its prompt)."""

from __future__ import annotations

from agentloop.agents.secrets import agent_env


def test_heal_and_serve_secrets_are_blanked_and_the_model_key_kept() -> None:
    environ = {
        "SENTRY_AUTH_TOKEN": "sntrys_x",
        "AGENTLOOP_SENTRY_TOKEN": "sntrys_y",
        "GITHUB_TOKEN": "ghs_x",
        "GH_TOKEN": "ghs_y",
        "AGENTLOOP_GITHUB_TOKEN": "ghs_z",
        "AGENTLOOP_SENTRY_WEBHOOK_SECRET": "s1",
        "AGENTLOOP_GITHUB_WEBHOOK_SECRET": "s2",
        "AGENTLOOP_SLACK_WEBHOOK": "https://hooks.slack.com/services/T/B/x",
        "PAGER_WEBHOOK_URL": "https://pager.example/hook",
        "ANTHROPIC_API_KEY": "sk-ant-x",
        "PATH": "/usr/bin",
    }
    env = agent_env(environ, {"PATH": "/usr/bin", "HOME": "/h"})
    secret = [name for name in environ if not name.startswith("ANTHROPIC_") and name != "PATH"]
    assert {name: env[name] for name in secret} == dict.fromkeys(secret, "")
    assert "ANTHROPIC_API_KEY" not in env  # inherited by the CLI as it is, not blanked
    assert (env["PATH"], env["HOME"]) == ("/usr/bin", "/h")
