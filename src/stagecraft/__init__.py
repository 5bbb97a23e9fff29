"""Stagecraft: run a Docker Compose app locally and deploy it to servers over SSH."""

__version__ = "0.1.0"
