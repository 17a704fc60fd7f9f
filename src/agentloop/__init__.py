"""agentloop: let an AI coding agent fix failing tests safely and measurably."""

__version__ = "0.1.0"

# The distribution's name (pyproject.toml): `agentloop` on PyPI is another project, and
# this one is not published there, so it installs from its checkout or its git URL. The
# command and the import are `agentloop`.
DISTRIBUTION = "agentloop-rails"
INSTALL = "`pipx install <agentloop checkout or git URL>` (or `uv tool install` the same)"
UPGRADE = f"`pipx upgrade {DISTRIBUTION}` or `uv tool upgrade {DISTRIBUTION}`"
