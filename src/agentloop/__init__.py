"""agentloop: let an AI coding agent fix failing tests safely and measurably."""

__version__ = "0.1.0"
