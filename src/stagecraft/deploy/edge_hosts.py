"""The edge proxy's hosts file: how upstream names resolve, rewritten in place.

The proxy container gets ``/var/lib/stagecraft/proxy/hosts`` bind-mounted at
``/etc/hosts``. A file bind mount pins the inode, so the file is never replaced
(``mv`` would leave the container on the old inode); it is rewritten in place
by one ``write(2)`` of a fixed-size block at offset 0 (``dd conv=notrunc``): the
content is padded with ``#`` comment lines to the file's size, which never
shrinks, so there is no instant where the file is empty, short or truncated.

Go's resolver (Caddy's) re-reads ``/etc/hosts`` when its mtime or size changed,
checked at most every 5 s. Linux updates the mtime *before* copying the data of
a write, so a reader racing the write could cache the old content under the new
mtime; the script therefore writes the same block a second time 0.1 s later
(a new mtime), which makes any such stale read short-lived.

Each upstream name's addresses live in ``upstreams/<name>`` (one per line); the
remote script (under ``flock``, so two deploys on one host do not lose each
other's switch) updates one name and renders the whole file from that directory.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

HOSTS_HEADER = (
    "# Managed by Stagecraft: upstream names of the edge proxy (do not edit).",
    "127.0.0.1 localhost",
    "::1 localhost ip6-localhost ip6-loopback",
)
MIN_SIZE = 16384
PADDING = "#\n"
SECOND_WRITE_DELAY = 0.1
LOCK_WAIT = 30

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_ADDRESS = re.compile(r"^[0-9a-fA-F.:]+$")


def valid_name(name: str) -> bool:
    """True when ``name`` is a lowercase DNS name usable in a hosts file and a path."""
    return len(name) <= 253 and _NAME.fullmatch(name) is not None


def valid_address(address: str) -> bool:
    """True when ``address`` looks like an IPv4 or IPv6 literal."""
    return _ADDRESS.fullmatch(address) is not None and ("." in address or ":" in address)


def render_hosts(entries: Mapping[str, Sequence[str]], size: int = 0) -> bytes:
    """The hosts file for ``entries`` (name -> addresses), padded to a block size.

    The block is ``max(size, MIN_SIZE)`` doubled until the content fits; the
    padding is ``#`` comment lines (the last one may lack its newline).

    >>> text = render_hosts({"web.prod.shop.internal": ["172.18.0.5"]})
    >>> len(text), text.splitlines()[3]
    (16384, b'172.18.0.5 web.prod.shop.internal')
    """
    lines = list(HOSTS_HEADER)
    for name in sorted(entries):
        lines += [f"{address} {name}" for address in entries[name]]
    body = ("\n".join(lines) + "\n").encode()
    block = block_size(len(body), size)
    padding = (PADDING * (block // len(PADDING) + 1)).encode()
    return (body + padding)[:block]


def block_size(needed: int, current: int) -> int:
    """The fixed size to write: the current size (at least MIN_SIZE), doubled until it fits."""
    block = max(current, MIN_SIZE)
    while needed + len(PADDING) > block:
        block *= 2
    return block


def parse_hosts(data: bytes) -> dict[str, list[str]]:
    """Upstream entries (name -> addresses, in file order) of a rendered hosts file."""
    entries: dict[str, list[str]] = {}
    for raw in data.decode(errors="replace").splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2 or fields[1] == "localhost":
            continue
        for name in fields[1:]:
            entries.setdefault(name, []).append(fields[0])
    return entries


def update_script(directory: str, name: str | None) -> str:
    """POSIX sh that sets ``name``'s addresses (stdin, one per line) and rewrites ``hosts``.

    With ``name`` None it only (re)renders the file, creating it when missing.
    Runs under ``flock`` on ``<directory>/hosts.lock``; needs ``flock``, ``dd``,
    ``awk``, ``head`` and ``yes`` (coreutils/util-linux or busybox).
    """
    if name is not None and not valid_name(name):
        raise ValueError(f"invalid upstream name {name!r}")
    d = shlex.quote(directory)
    header = " ".join(shlex.quote(line) for line in HOSTS_HEADER)
    set_name = ""
    if name is not None:
        n = shlex.quote(name)
        set_name = (
            f't="$u/.{name}.tmp"; cat > "$t"; '
            f'if [ -s "$t" ]; then mv -f "$t" "$u"/{n}; else rm -f "$t" "$u"/{n}; fi; '
        )
    return (
        "set -eu; export LC_ALL=C; "
        f'd={d}; h="$d/hosts"; u="$d/upstreams"; mkdir -p "$u"; '
        'exec 9>>"$d/hosts.lock"; '
        f'flock -w {LOCK_WAIT} 9 || {{ echo "stagecraft: $d/hosts is locked" >&2; exit 75; }}; '
        f"{set_name}"
        'b=$(mktemp "$d/.hosts.XXXXXXXX"); trap \'rm -f "$b" "$b.block"\' EXIT; '
        f"{{ printf '%s\\n' {header}; "
        'for f in "$u"/*; do [ -f "$f" ] || continue; '
        'awk -v n="${f##*/}" \'NF {print $1 " " n}\' "$f"; done; } > "$b"; '
        'need=$(wc -c < "$b"); size=0; '
        '[ -f "$h" ] && size=$(wc -c < "$h"); '
        f'[ "$size" -lt {MIN_SIZE} ] && size={MIN_SIZE}; '
        f'while [ $((need + {len(PADDING)})) -gt "$size" ]; do size=$((size * 2)); done; '
        '{ cat "$b"; yes \'#\' | head -c "$size"; } | head -c "$size" > "$b.block"; '
        'dd if="$b.block" of="$h" bs="$size" count=1 conv=notrunc status=none; '
        f"sleep {SECOND_WRITE_DELAY}; "
        'dd if="$b.block" of="$h" bs="$size" count=1 conv=notrunc status=none'
    )
