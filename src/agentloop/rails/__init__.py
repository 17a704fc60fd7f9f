"""The rails' pure checks: which paths an attempt may touch, and whether it kept the tests
honest. Inputs are paths and file contents; the loop feeds them from git.

Import what you need from its module (`agentloop.rails.paths`, `agentloop.rails.integrity`):
this package imports nothing itself, because config needs only `paths`, and loading the
integrity checks (their parsers for Python and JavaScript tests) cost every command and
every Claude Code hook call about 80 ms at start."""
