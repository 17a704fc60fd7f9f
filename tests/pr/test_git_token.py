"""How git is given the token: scoped to the remote's origin, after the environment's own
GIT_CONFIG_* entries, and not at all for a remote that is not HTTP(S)."""

from __future__ import annotations

import base64

import pytest

from agentloop import git


def test_the_header_is_scoped_to_the_origin_and_appended_to_existing_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # e.g. a CI step that already passes safe.directory through the environment
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    env = git._token_env("https://x:old@ghe.example:8443/o/r.git", "t0k")

    key = "http.https://ghe.example:8443/.extraheader"
    basic = base64.b64encode(b"x-access-token:t0k").decode()
    assert env == {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "3",
        # An empty value first: a header actions/checkout persisted is not sent twice.
        "GIT_CONFIG_KEY_1": key,
        "GIT_CONFIG_VALUE_1": "",
        "GIT_CONFIG_KEY_2": key,
        "GIT_CONFIG_VALUE_2": f"AUTHORIZATION: basic {basic}",
    }


def test_no_token_goes_to_an_ssh_or_local_remote() -> None:
    assert git._token_env("git@github.com:o/r.git", "t0k") == {"GIT_TERMINAL_PROMPT": "0"}
    assert git._token_env("/srv/origin.git", "t0k") == {"GIT_TERMINAL_PROMPT": "0"}


def test_credentials_in_a_remote_url_are_never_shown() -> None:
    assert git.redact_url("https://u:secret@github.com/o/r.git") == "https://github.com/o/r.git"
    assert git.redact_url("/srv/origin.git") == "/srv/origin.git"
