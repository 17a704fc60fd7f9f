#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook autofix`.
# UserPromptExpansion of /autofix: starts the session outside the sandbox and makes the
# user's uncommitted files read-only to the agent's commands before the model runs one.
# It fails closed: without agentloop, /autofix does not start (exit 2).
agentloop=$(cat "$CLAUDE_PROJECT_DIR/.agentloop/command" 2>/dev/null)
if [ -z "$agentloop" ] || [ ! -x "$agentloop" ]; then
    echo "agentloop: cannot run ${agentloop:-agentloop (no .agentloop/command)}, so /autofix cannot start; run \`agentloop init\` in $CLAUDE_PROJECT_DIR" >&2
    exit 2
fi
"$agentloop" hook autofix
status=$?
[ "$status" -eq 0 ] || exit 2
exit 0
