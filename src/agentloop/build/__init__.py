"""parallel-build: a feature split into streams with owned files and contracts, built in
parallel worktrees, integrated in dependency order, committed once."""
