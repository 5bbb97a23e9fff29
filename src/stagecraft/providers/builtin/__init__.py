"""The built-in providers.

They register through the same entry-point groups as third-party packages
(``[project.entry-points."stagecraft.providers.<kind>"]`` in ``pyproject.toml``),
so ``registry(kind)`` finds them the same way; nothing here imports them eagerly.
"""
