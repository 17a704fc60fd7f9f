"""Claude Code hooks: what `agentloop hook <name>` answers to a hook event.

`protocol` reads the event from stdin and shapes the documented answers; `guard`,
`stop_gate` and `post_edit` decide. The thin scripts in `.claude/hooks/` (package data
under `agentloop/assets/claude/hooks/`) only find the `agentloop` command and call it.
"""
