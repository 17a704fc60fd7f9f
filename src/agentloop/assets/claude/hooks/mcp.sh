#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop mcp`.
# Not a hook: the MCP server Claude Code starts from .mcp.json (its `commit` tool commits
# from outside the sandbox, where the agent's commands cannot write .git). It lives here
# because this directory is protected like the hooks. It runs the agentloop recorded in
# .agentloop/command.
agentloop=$(cat "${CLAUDE_PROJECT_DIR:-.}/.agentloop/command" 2>/dev/null)
if [ -z "$agentloop" ] || [ ! -x "$agentloop" ]; then
    echo "agentloop MCP server: cannot run ${agentloop:-agentloop (no .agentloop/command)}; run \`agentloop init\`" >&2
    exit 1
fi
exec "$agentloop" mcp
