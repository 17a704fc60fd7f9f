"""The Sentry loop (`agentloop heal`): production errors in, reviewed pull requests out.
Built so far: triage.py (which issues, grouped by root cause, in what order, or an alert),
scrub.py (personal data and secrets out of events), reproduce.py (a failing test per
selected root cause, verified 3/3 on the base commit, or the reason there is none)."""
