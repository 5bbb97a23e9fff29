"""The resolved config as plain data for ``stagecraft config show``, with secrets redacted.

Redacted (replaced by ``"***"``):

- any value interpolated from a variable that is a declared secret
  (``environments.*.secrets``, ``images.password_secret``) or whose name looks
  secret (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``*KEY*``, ...);
- any value under a key whose name looks secret, except where the value is a
  variable *name* under a key that holds names (``password_secret: GHCR_TOKEN``,
  ``auth_key_env: TS_AUTHKEY``, ``secrets: [STRIPE_KEY]``);
- every password that :func:`stagecraft.redact.redact` finds: the userinfo of
  URLs (``postgres://user:***@db/shop``, up to the last ``@``), ``?password=``
  query parameters, ``password=`` in ``key=value`` DSNs (libpq quoting), and
  any secret value this process resolved.

Example::

    from stagecraft.config.loader import load_project
    from stagecraft.config.show import resolved_view

    view = resolved_view(load_project(check_compose=False), "staging")
    assert set(view["environments"]) == {"staging"}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stagecraft.config.document import Path_
from stagecraft.config.loader import LoadedConfig
from stagecraft.redact import redact

REDACTED = "***"

SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|key|credential|private|auth|salt|dsn|cookie|session",
    re.IGNORECASE,
)
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_KEYS = re.compile(r"(_env|_secret|_secrets)$|^(secrets|url_env|provider)$", re.IGNORECASE)


def resolved_view(loaded: LoadedConfig, env: str | None) -> dict[str, Any]:
    """The interpolated config with defaults filled in; only ``env`` if given; secrets redacted."""
    config = loaded.config
    if env is not None:
        loaded.environment(env)  # UsageError listing the known ones
    view: dict[str, Any] = config.model_dump(mode="json")
    view["dev"]["domain"] = config.dev_domain
    if env is not None:
        view["environments"] = {env: view["environments"][env]}
    secret_vars = {
        name
        for environment in config.environments.values()
        for name in (*environment.secrets, environment.images.password_secret)
        if name
    }
    redacted = _redact(view, (), None, loaded.sources, secret_vars)
    assert isinstance(redacted, dict)
    return redacted


def looks_secret(name: str) -> bool:
    """Whether a key or variable name suggests its value is a secret."""
    return bool(SECRET_NAME.search(name))


def _redact(
    node: Any,
    path: Path_,
    key: str | None,
    sources: Mapping[Path_, tuple[str, ...]],
    secret_vars: set[str],
) -> Any:
    if isinstance(node, dict):
        return {k: _redact(v, (*path, k), str(k), sources, secret_vars) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact(v, (*path, i), key, sources, secret_vars) for i, v in enumerate(node)]
    if node is None or isinstance(node, bool):
        return node
    if _from_secret_variable(path, sources, secret_vars):
        return REDACTED
    if key is not None and looks_secret(key) and not _holds_a_name(key, node):
        return REDACTED
    if isinstance(node, str):
        return redact(node)
    return node


def _from_secret_variable(
    path: Path_, sources: Mapping[Path_, tuple[str, ...]], secret_vars: set[str]
) -> bool:
    """Whether the value at ``path`` (or the scalar it was normalised from) used a secret."""
    for end in range(len(path), 0, -1):
        names = sources.get(path[:end])
        if names and any(n in secret_vars or looks_secret(n) for n in names):
            return True
    return False


def _holds_a_name(key: str, value: object) -> bool:
    """``password_secret: GHCR_TOKEN`` names a secret; it is not one."""
    return (
        bool(_NAME_KEYS.search(key)) and isinstance(value, str) and bool(_VAR_NAME.fullmatch(value))
    )
