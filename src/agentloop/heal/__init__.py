"""The Sentry loop (`agentloop heal`): production errors in, reviewed pull requests out.
Built so far: triage.py (which issues, grouped by root cause, in what order, or an alert)."""
