"""The prompt of one attempt at one stream, from the template kept beside this file.

The feature request and the reasons earlier attempts were rejected came from outside (a
user, a test's output): they are fenced as data. The stream's own prompt is the
coordinator's instruction to this stream, and is given as one."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from string import Template

from agentloop.build.model import Contract, Manifest, Stream
from agentloop.build.templates import TEMPLATES
from agentloop.loop.prompt import fence


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _contracts(contracts: Sequence[Contract]) -> str:
    if not contracts:
        return ""
    lines = [f"{c.name} ({c.kind}) in {c.path}" + (f": {c.description}" if c.description else "")
             for c in contracts]  # fmt: skip
    return (
        "\n## Contracts\nBuild against these, as they are on your branch; do not change "
        "them (a contracts stream owns them):\n" + _bullets(lines) + "\n"
    )


def build_prompt(
    manifest: Manifest,
    stream: Stream,
    *,
    rails: Sequence[str],
    earlier: Sequence[tuple[int, str]] = (),
) -> str:
    """The prompt for `stream`'s next attempt; `earlier`: (attempt number, why it was
    rejected) of the attempts before it."""
    text = resources.files("agentloop.build").joinpath("prompts/stream.md").read_text("utf-8")
    depends = (
        "\n## Built before you\nThese streams are merged into the code you start from: "
        + ", ".join(stream.depends_on)
        + ".\n"
        if stream.depends_on
        else ""
    )
    tests = (
        "\n## Your tests\nAfter your session agentloop runs, in your worktree:\n"
        + _bullets([f"`{t}`" for t in stream.tests])
        + "\nThey must pass.\n"
        if stream.tests
        else ""
    )
    tried = "\n\n".join(
        fence(reason, f"Attempt {number} was rejected and undone") for number, reason in earlier
    )
    return Template(text).substitute(
        request=fence(manifest.request, "The feature request"),
        stream_id=stream.id,
        template=stream.template,
        title=stream.title,
        prompt=stream.prompt,
        guidance=TEMPLATES[stream.template].guidance,
        owns=_bullets([f"`{g}`" for g in stream.owns]),
        contracts=_contracts(manifest.contracts),
        depends=depends,
        tests=tests,
        earlier=f"\n## Earlier attempts\n{tried}\n" if tried else "",
        rails=_bullets(rails),
    )
