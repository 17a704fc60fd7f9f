"""A tiny shop that raises real exceptions, for tests of `agentloop heal`: sentry_events.py
runs its views under sentry-sdk and captures what the SDK would send to Sentry."""
