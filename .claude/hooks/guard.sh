#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook guard`.
# PreToolUse guard for Edit, Write, MultiEdit, NotebookEdit, Read, Grep, Glob and Bash. It
# fails closed: when agentloop cannot be run or errors, the tool call is blocked (exit 2).
# It runs the agentloop `agentloop init` recorded in .agentloop/command (an absolute path;
# the sandbox keeps both read-only), never one found on PATH or in the project.
agentloop=$(cat "$CLAUDE_PROJECT_DIR/.agentloop/command" 2>/dev/null)
if [ -z "$agentloop" ] || [ ! -x "$agentloop" ]; then
    echo "agentloop guard: cannot run ${agentloop:-agentloop (no .agentloop/command)}; agentloop was moved, uninstalled or never set up in this checkout: run \`agentloop init\` in $CLAUDE_PROJECT_DIR (or \`agentloop init --uninstall\`)" >&2
    exit 2
fi
"$agentloop" hook guard
status=$?
# Exit 1 or 127 would let the tool call through; only 0 (decided) and 2 mean what they say.
[ "$status" -eq 0 ] || exit 2
exit 0
