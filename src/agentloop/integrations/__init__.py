"""Leaves that talk to remote services (GitHub). They know their API and nothing of the loop."""
