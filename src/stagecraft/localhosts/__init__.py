"""Throw-away SSH + Docker hosts on this Linux machine (network namespaces, own dockerd/sshd).

One implementation for two users: the test sandbox (``stagecraft.testing``'s
fixtures and the benches) and the ``local`` cloud provider (``stagecraft infra up``
with ``cloud: {provider: local}``), which keeps its hosts running after the
command ends. Needs root.
"""
