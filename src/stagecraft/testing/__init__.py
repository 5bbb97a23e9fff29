"""Test helpers shipped with Stagecraft (like ``fabric.testing``).

- :mod:`stagecraft.testing.fakes`: a fake process runner and a fake SSH host
  for unit tests of logic that runs commands.
- :mod:`stagecraft.localhosts.sandbox`: throw-away "remote" hosts on this Linux
  machine (network namespaces, each with its own dockerd and sshd);
  :mod:`~stagecraft.localhosts.state` (prefix locks, leftovers, cleanup)
  and :mod:`~stagecraft.localhosts.hostos` (namespaces, mounts, links, rules) behind it.
- :mod:`stagecraft.testing.images`: small test images built without a registry.
- :mod:`stagecraft.testing.pytest_plugin`: the pytest fixtures (auto-loaded).
"""
