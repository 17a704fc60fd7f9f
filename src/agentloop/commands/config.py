"""`agentloop config`: the configuration in effect here, or the reference of every key.

The reference ships inside the package (resources/config.md): a user who installed
agentloop with pipx has no docs/ folder, so every hint names this command instead.
docs/config.md is a copy that a test keeps identical.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from agentloop import errors, output
from agentloop.config import load_config
from agentloop.errors import UsageError


def reference() -> str:
    return resources.files("agentloop.resources").joinpath("config.md").read_text("utf-8")


def config(*, repo: Path, show_reference: bool, as_json: bool) -> int:
    if show_reference:
        text = reference()
        if as_json:
            output.print_json({"reference": text})
        else:
            output.print_text(text)
        return errors.OK
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    root = repo.resolve()
    loaded, source = load_config(root)
    values = loaded.model_dump(mode="json")
    if as_json:
        output.print_json({"root": str(root), "source": source, "config": values})
    else:
        output.print_config(root, source, values)
    return errors.OK
