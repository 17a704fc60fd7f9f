#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook session-end`.
# SessionEnd: gives the user's files back to the agent's commands if an /autofix of this
# session still holds them. It runs the agentloop recorded in .agentloop/command, and
# fails open (exit 1).
agentloop=$(cat "$CLAUDE_PROJECT_DIR/.agentloop/command" 2>/dev/null)
if [ -z "$agentloop" ] || [ ! -x "$agentloop" ]; then
    echo "agentloop: cannot run ${agentloop:-agentloop (no .agentloop/command)}; run \`agentloop init\`" >&2
    exit 1
fi
exec "$agentloop" hook session-end
