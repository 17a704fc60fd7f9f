#!/bin/sh
# agentloop:managed - installed by `agentloop init`; the logic is `agentloop hook guard`.
# PreToolUse guard for Edit, Write, MultiEdit, NotebookEdit and Bash. It fails closed: when
# agentloop cannot be found or errors, the tool call is blocked (exit 2), never allowed.
for agentloop in agentloop "$CLAUDE_PROJECT_DIR/.venv/bin/agentloop"; do
    if command -v "$agentloop" >/dev/null 2>&1; then
        "$agentloop" hook guard
        status=$?
        # Exit 1 or 127 would let the tool call through; only 0 (decided) and 2 mean what
        # they say.
        [ "$status" -eq 0 ] || exit 2
        exit 0
    fi
done
echo "agentloop guard: the agentloop command is not installed here (not on PATH, no .venv/bin/agentloop); install it (pip install agentloop) or run agentloop init --uninstall" >&2
exit 2
