"""One module per command: typed keyword arguments in, an exit code out."""
