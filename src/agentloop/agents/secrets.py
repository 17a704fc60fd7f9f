"""Keep secrets out of the agent's environment.

The SDK starts the CLI with this process's whole environment plus what we pass, so a
variable can only be hidden by passing it empty (the CLI treats empty as unset). What the
CLI itself needs to reach the model stays: ANTHROPIC_* and CLAUDE_* variables, and the
cloud credentials of a provider it is told to use. (CLAUDE_CODE_SUBPROCESS_ENV_SCRUB would
keep even those from the agent's Bash commands, but the CLI then refuses to start without
bubblewrap, so it is left to the user.) The test runs agentloop itself makes (baseline,
selectors, VERIFY) keep the full environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECRET = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH|SESSION"
    # WEBHOOK: a Slack incoming webhook's address is its only credential (notify.py);
    # SENTRY_AUTH_TOKEN and the webhook secrets of `agentloop serve` fall under TOKEN/SECRET.
    r"|_PAT$|_DSN$|COOKIE|WEBHOOK)",
    re.I,
)
_PROVIDERS = {
    "CLAUDE_CODE_USE_BEDROCK": ("AWS_",),
    "CLAUDE_CODE_USE_VERTEX": ("GOOGLE_", "CLOUD_ML_", "GCLOUD_"),
    "CLAUDE_CODE_USE_FOUNDRY": ("AZURE_",),
}


def is_secret_name(name: str) -> bool:
    """Whether a variable of this name is blanked for the agent (unless the CLI needs it)."""
    return bool(_SECRET.search(name))


def hidden(environ: Mapping[str, str]) -> dict[str, str]:
    """Overrides that blank every secret-looking variable the CLI does not need."""
    keep = ["ANTHROPIC_", "CLAUDE_"]
    for switch, prefixes in _PROVIDERS.items():
        if environ.get(switch):
            keep.extend(prefixes)
    return {
        name: ""
        for name, value in environ.items()
        if value and _SECRET.search(name) and not name.startswith(tuple(keep))
    }


def agent_env(environ: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """`base` (e.g. the workspace's environment) for an agent session, with the secrets of
    `environ` (what the CLI would inherit) blanked."""
    env = dict(base)
    env.update(hidden(environ))
    env.update(hidden(base))
    return env
