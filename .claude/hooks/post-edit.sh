#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook post-edit`.
# PostToolUse after edits: runs the fast checks configured in agentloop.yaml
# (hooks.post_edit) on the edited file and tells Claude about new findings. It runs the
# agentloop recorded in .agentloop/command, and fails open (exit 1).
agentloop=$(cat "$CLAUDE_PROJECT_DIR/.agentloop/command" 2>/dev/null)
if [ -z "$agentloop" ] || [ ! -x "$agentloop" ]; then
    echo "agentloop post-edit check: cannot run ${agentloop:-agentloop (no .agentloop/command)}; skipped (run \`agentloop init\`)" >&2
    exit 1
fi
exec "$agentloop" hook post-edit
