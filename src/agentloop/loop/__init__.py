"""The autofix loop: tasks, attempts, checks after each attempt, verify, accept or revert."""
