"""Keyed digests of secret values: a rotated secret replaces the services that use it.

A service's containers carry, per declared secret it uses, an HMAC-SHA256 of
the secret's name and value under a per-environment key (label
``stagecraft.secrets``: ``NAME=<32 hex>,...``). When a value changes, its digest
changes, ``plan`` says ``secret NAME changed`` and ``deploy`` replaces the
service like any other change (zero-downtime for web services). The digest
reveals nothing about the value without the key, and a plain hash of a
low-entropy secret (a short password) would be guessable from the labels.

The key is 32 random bytes kept on the environment's primary host, next to its
deploy lock, in a 0600 file (:func:`~stagecraft.deploy.state.layout.digest_key_path`),
created atomically on the first deploy (``link(2)``, so two first deploys agree
on one key). ``plan`` only reads it; without one (nothing deployed yet, or the
primary unreachable) it uses a throw-away key, so every service with secrets
shows ``secret NAME changed`` — which is what the next deploy does.

Example::

    key = ensure_key(primary, "shop", "production")        # deploy, under the lock
    key = read_key(primary, "shop", "production") or throwaway_key()   # plan
    digests(key, {"STRIPE_KEY": "sk_live_..."})              # {"STRIPE_KEY": "3f2a..."}
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random
import shlex
from collections.abc import Mapping

from stagecraft.deploy.state.layout import digest_key_path
from stagecraft.errors import CommandFailed
from stagecraft.runtime.ssh import SSHHost

LABEL = "stagecraft.secrets"
_KEY_HEX = 64


def throwaway_key() -> bytes:
    """A fresh random key (for a plan when the environment has none yet)."""
    return _random.token_bytes(32)


def digests(key: bytes, values: Mapping[str, str]) -> dict[str, str]:
    """Per secret name, the first 32 hex digits of HMAC-SHA256(key, name NUL value)."""
    return {
        name: hmac.new(key, f"{name}\0{value}".encode(), hashlib.sha256).hexdigest()[:32]
        for name, value in sorted(values.items())
    }


def label_value(found: Mapping[str, str]) -> str:
    """``NAME=digest,...`` (sorted): the value of the ``stagecraft.secrets`` label."""
    return ",".join(f"{name}={found[name]}" for name in sorted(found))


def parse_label(text: str | None) -> dict[str, str]:
    """The digests of a ``stagecraft.secrets`` label (empty for none or a damaged one)."""
    found: dict[str, str] = {}
    for item in (text or "").split(","):
        name, sep, value = item.partition("=")
        if sep and name and value:
            found[name] = value
    return found


def changed(desired: Mapping[str, str], current: Mapping[str, str]) -> tuple[str, ...]:
    """Names of secrets whose digest differs (or that are new or gone), sorted."""
    names = set(desired) | set(current)
    return tuple(sorted(n for n in names if desired.get(n) != current.get(n)))


def read_key(host: SSHHost, project: str, env: str) -> bytes | None:
    """The environment's key from its primary host, or None when it has none (or it is bad)."""
    data = host.read_file(digest_key_path(project, env))
    return _parse_key(data)


def ensure_key(host: SSHHost, project: str, env: str) -> bytes:
    """The environment's key, created on the primary host when absent (one round trip)."""
    path = shlex.quote(digest_key_path(project, env))
    fresh = _random.token_hex(32)
    # Written to a temp file and hard-linked into place: link(2) fails when the key
    # exists, so two first deploys end up with the same key, never half a key.
    script = (
        f'umask 077; f={path}; d="$(dirname "$f")"; mkdir -p "$d" || exit 1; '
        '[ -s "$f" ] || { t="$(mktemp "$d/.key.XXXXXX")" || exit 1; '
        'cat > "$t" && ln "$t" "$f" 2>/dev/null; rm -f "$t"; }; cat "$f"'
    )
    result = host.run(["sh", "-c", script], input=fresh + "\n", check=False)
    key = _parse_key(result.stdout.encode()) if result.ok else None
    if key is None:
        raise CommandFailed(
            [f"read or create {digest_key_path(project, env)}"],
            result.returncode,
            result.output if not result.ok else "the key file is damaged",
            host=host.name,
            hint="remove the damaged key file: the next deploy replaces every service "
            "with secrets once",
        )
    return key


def _parse_key(data: bytes | None) -> bytes | None:
    text = (data or b"").decode(errors="replace").strip()
    if len(text) != _KEY_HEX:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None
