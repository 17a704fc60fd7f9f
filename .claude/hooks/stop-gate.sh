#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook stop-gate`.
# Stop hook: while an /autofix loop in this session is red and has attempts left, Claude
# is asked to go on. It fails open (exit 1): a broken gate must never trap a session.
for agentloop in agentloop "$CLAUDE_PROJECT_DIR/.venv/bin/agentloop"; do
    if command -v "$agentloop" >/dev/null 2>&1; then
        exec "$agentloop" hook stop-gate
    fi
done
echo "agentloop stop gate: the agentloop command is not installed here; the gate is off" >&2
exit 1
