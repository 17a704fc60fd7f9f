#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook stop-gate`.
# Stop hook: while an /autofix loop in this session is red and has attempts left, Claude
# is asked to go on; when it may stop, the user's files are given back to the agent's
# commands. It runs the agentloop recorded in .agentloop/command, and fails open (exit 1):
# a broken gate must never trap a session.
agentloop=$(cat "$CLAUDE_PROJECT_DIR/.agentloop/command" 2>/dev/null)
if [ -z "$agentloop" ] || [ ! -x "$agentloop" ]; then
    echo "agentloop stop gate: cannot run ${agentloop:-agentloop (no .agentloop/command)}; the gate is off (run \`agentloop init\`)" >&2
    exit 1
fi
exec "$agentloop" hook stop-gate
