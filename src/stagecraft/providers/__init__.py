"""Providers: the pluggable parts of Stagecraft.

Each kind has an interface module (``backend``, ``frontend``, ``migration``,
``proxy``, ``network``, ``cloud``, ``ci``, ``secrets``) and a registry fed by
the entry-point group ``stagecraft.providers.<kind>``. Built-ins live in
``stagecraft.providers.builtin`` and register the same way as third parties.
"""

from stagecraft.providers.base import KINDS, Provider, ProviderConfig, Registry, registry

__all__ = ["KINDS", "Provider", "ProviderConfig", "Registry", "registry"]
