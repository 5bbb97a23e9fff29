"""Stagecraft: run a Docker Compose app locally and deploy it to servers over SSH."""

__version__ = "0.1.0"

DISTRIBUTION = "stagecraft-cli"
"""The name on PyPI (``pipx install stagecraft-cli``); the command and this package are
``stagecraft`` (``stagecraft`` on PyPI is an unrelated project)."""
