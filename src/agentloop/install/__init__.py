"""`agentloop init`: install agentloop's Claude Code files into a repository, and take them
out again, without ever losing a byte of the user's.

`installer` plans every change first (refusing before anything is written), then applies
it; `files` holds the package's assets, the install record and the file operations;
`settings` merges our hooks into `.claude/settings.json`; `texts` does CLAUDE.md,
.gitignore and the agentloop.yaml prefill.
"""
