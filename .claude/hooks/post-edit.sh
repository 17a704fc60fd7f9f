#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook post-edit`.
# PostToolUse after edits: runs the fast checks configured in agentloop.yaml
# (hooks.post_edit) on the edited file and tells Claude about new findings.
for agentloop in agentloop "$CLAUDE_PROJECT_DIR/.venv/bin/agentloop"; do
    if command -v "$agentloop" >/dev/null 2>&1; then
        exec "$agentloop" hook post-edit
    fi
done
echo "agentloop post-edit check: the agentloop command is not installed here; skipped" >&2
exit 1
