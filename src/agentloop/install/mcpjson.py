"""`.mcp.json`: agentloop's MCP server registered for the project, merged into the user's
file and taken out again.

Claude Code starts the servers of a project's .mcp.json for every session there: in `-p`
mode without asking, interactively once the server is approved, which the
`enabledMcpjsonServers: ["agentloop"]` init writes into .claude/settings.json does for a
workspace the user trusts (read from the 2.1.332 binary; see the README). The server is
`sh .claude/hooks/mcp.sh`, relative to the project (Claude Code starts it there), so the
committed file names no path of this machine's.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from agentloop.errors import ConfigError

PATH = ".mcp.json"
NAME = "agentloop"
SCRIPT = ".claude/hooks/mcp.sh"
# The server's tools that start a parallel build and a heal run: they run the project's
# code outside the sandbox, so init makes Claude Code ask the human every time (never
# pre-approved).
BUILD_TOOL = "parallel_build"
HEAL_TOOL = "heal_start"
ASK = (f"mcp__{NAME}__{BUILD_TOOL}", f"mcp__{NAME}__{HEAL_TOOL}")


def server() -> dict[str, Any]:
    return {"type": "stdio", "command": "sh", "args": [SCRIPT]}


def ours(entry: object) -> bool:
    """Whether a server entry is agentloop's (by its script, across versions)."""
    if not isinstance(entry, dict):
        return False
    args = entry.get("args")
    return isinstance(args, list) and any(isinstance(a, str) and SCRIPT in a for a in args)


def parse(raw: bytes, *, retry: str = "agentloop init") -> dict[str, Any]:
    hint = f"fix {PATH} (or move it away) and run `{retry}` again; nothing was changed"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{PATH} is not valid JSON ({exc})", hint=hint) from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{PATH} is not a JSON object", hint=hint)
    servers = doc.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{PATH}: mcpServers is not an object", hint=hint)
    return doc


def conflict(doc: dict[str, Any]) -> bool:
    """A server of the user's is registered under our name."""
    entry = doc.get("mcpServers", {}).get(NAME)
    return entry is not None and not ours(entry)


def merge(doc: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(doc)
    servers = result.setdefault("mcpServers", {})
    servers[NAME] = server()
    return result


def unmerge(doc: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(doc)
    servers = result.get("mcpServers")
    if isinstance(servers, dict) and ours(servers.get(NAME)):
        del servers[NAME]
        if not servers:
            del result["mcpServers"]
    return result


def dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
