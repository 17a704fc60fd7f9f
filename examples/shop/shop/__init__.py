"""A deliberately buggy little web-shop backend (example project for agentloop)."""
