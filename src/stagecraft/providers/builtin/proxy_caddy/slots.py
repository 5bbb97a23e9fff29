"""Where the edge proxy sends a routed service's requests: slot files, replaced by rename.

A route's upstream is a stable name, ``<service>.<env>.<project>.internal``. On
the host, under the proxy's state directory:

- ``upstreams/<name>``: the name's current addresses, one per line (the truth);
- ``ports/<name>``: the ports routes use with that name, one per line;
- ``slots/<name>_<port>_<i>`` for ``i < SLOTS``: what the proxy dials, ``ip:port``.

The Caddy config gives each route :data:`~stagecraft.providers.builtin.proxy_caddy.SLOTS`
static upstreams whose dial address is the placeholder ``{file.<slots>/<name>_<port>_<i>}``,
which Caddy reads at every request (ADR 0015). Slot ``i`` holds address ``i mod n``
of the ``n`` addresses, so every address gets at least one slot (evenly when ``n``
divides ``SLOTS``). A switch writes each slot to a temporary file and renames it
into place, which is atomic: the first request after the rename goes to the new
set. No resolver cache, no config reload, no client connection closed; requests
already sent to the old containers finish there (the drain waits for them).

The remote script runs under ``flock`` on ``<dir>/upstreams.lock``, so two
deploys on one host do not lose each other's switch.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from stagecraft.providers.builtin.proxy_caddy import SLOTS
from stagecraft.providers.proxy import valid_upstream_name

__all__ = [
    "SLOTS",
    "parse_upstreams",
    "read_script",
    "slot_contents",
    "update_script",
    "valid_address",
    "valid_name",
]

LOCK_WAIT = 30

_ADDRESS = re.compile(r"^[0-9a-fA-F.:]+$")


def valid_name(name: str) -> bool:
    """True when ``name`` is a lowercase DNS name usable as a file name (no ``_``, no ``/``)."""
    return valid_upstream_name(name)


def valid_address(address: str) -> bool:
    """True when ``address`` looks like an IPv4 or IPv6 literal."""
    return _ADDRESS.fullmatch(address) is not None and ("." in address or ":" in address)


def slot_contents(addresses: Sequence[str], port: int) -> list[str]:
    """What each slot file holds for ``addresses`` (the script's rule, for tests and docs).

    >>> slot_contents(["172.18.0.5", "172.18.0.6"], 8080)[:3]
    ['172.18.0.5:8080', '172.18.0.6:8080', '172.18.0.5:8080']
    """
    hostports = [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]
    return [hostports[i % len(hostports)] for i in range(SLOTS)]


def parse_upstreams(text: str) -> dict[str, list[str]]:
    """``name address`` lines (what :func:`read_script` prints) as name -> addresses."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2:
            found.setdefault(fields[0], []).append(fields[1])
    return found


def read_script(directory: str) -> str:
    """POSIX sh printing ``name address`` for every upstream name's current addresses."""
    d = shlex.quote(directory)
    return (
        f'for f in {d}/upstreams/*; do [ -f "$f" ] || continue; '
        'awk -v n="${f##*/}" \'NF {print n " " $1}\' "$f"; done'
    )


def update_script(
    directory: str,
    name: str | None,
    *,
    ports: Mapping[str, Sequence[int]] | None = None,
) -> str:
    """POSIX sh that sets ``name``'s addresses (stdin, one per line) and rewrites its slots.

    With ``ports`` (name -> route ports, the whole route table of the host) the
    ports files are replaced first and every name's slots re-rendered; with
    ``name`` None and no ``ports`` every name's slots are re-rendered (what a
    new or upgraded proxy needs). Needs ``flock``, ``awk`` and ``mv``.
    """
    names = [name] if name is not None else []
    names += list(ports or {})
    for each in names:
        if not valid_name(each):
            raise ValueError(f"invalid upstream name {each!r}")
    d = shlex.quote(directory)
    parts = [
        "set -eu; export LC_ALL=C; ",
        f'd={d}; u="$d/upstreams"; p="$d/ports"; s="$d/slots"; mkdir -p "$u" "$p" "$s"; ',
        'exec 9>>"$d/upstreams.lock"; ',
        f"flock -w {LOCK_WAIT} 9 || "
        '{ echo "stagecraft: $d/upstreams is locked" >&2; exit 75; }; ',
        _RENDER,
    ]
    if ports is not None:
        parts.append('rm -f "$p"/*; ')
        for each, numbers in sorted(ports.items()):
            lines = "\\n".join(str(int(n)) for n in sorted(set(numbers)))
            parts.append(f"printf '{lines}\\n' > \"$p\"/{shlex.quote(each)}; ")
    if name is not None:
        n = shlex.quote(name)
        parts.append(
            f't="$u/.{name}.tmp"; cat > "$t"; '
            f'if [ -s "$t" ]; then mv -f "$t" "$u"/{n}; else rm -f "$t" "$u"/{n}; fi; '
        )
    if name is not None and ports is None:
        parts.append(f"render {shlex.quote(name)}")
    else:
        parts.append('for n in $({ ls "$u"; ls "$p"; } | sort -u); do render "$n"; done')
    return "".join(parts)


# render NAME: the slot files of NAME for each of its ports, from upstreams/NAME.
# A name without addresses or ports loses its slots (the proxy answers 502 for it).
_RENDER = (
    "render() { "
    'n="$1"; f="$u/$n"; '
    'if [ ! -s "$f" ] || [ ! -s "$p/$n" ]; then rm -f "$s/${n}"_*; return 0; fi; '
    'for port in $(cat "$p/$n"); do '
    f'awk -v n="$n" -v port="$port" -v dir="$s" -v slots={SLOTS} '
    "'NF {a[c++]=$1} END {for (i = 0; i < slots; i++) {x = a[i % c]; "
    'if (x ~ /:/) x = "[" x "]"; t = dir "/." n "_" port "_" i; '
    'printf "%s:%s", x, port > t; close(t)}}\' "$f"; '
    "i=0; while [ $i -lt " + str(SLOTS) + " ]; do "
    'mv -f "$s/.${n}_${port}_$i" "$s/${n}_${port}_$i"; i=$((i + 1)); done; '
    "done; }; "
)
