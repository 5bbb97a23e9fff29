"""A ``docker save`` archive read as a stream, and which image layer each entry is.

``docker save`` writes a tar. Docker 20.10 to 24 (the "legacy" layout) put each
layer in a directory named by a *v1 ID*, ``<v1 id>/json`` then
``<v1 id>/layer.tar``; Docker 25 and later (the OCI layout) write each layer as
``blobs/sha256/<digest>``. ``docker load`` reads ``manifest.json`` (last in the
legacy layout) to learn which file is which layer, and skips reading the file
of a layer whose chain it already has (moby ``image/tarexport/load.go``). So
an archive may leave out the layers a host has, if we know which entry is
which *before* its bytes go out:

- OCI layout: the name is the digest of the uncompressed layer, its diff ID;
- legacy layout: the v1 ID is ``sha256`` of the ``json`` entry's fields
  (without ``id``; ``os`` only for an image's top layer), plus ``layer_id``
  (the chain ID) and ``parent`` (moby ``image/v1.CreateID``), keys sorted:
  :func:`legacy_chain` tries the chain IDs of the images being saved and keeps
  the one that reproduces the directory name. No guess: a layer that matches
  none is "unknown", and an unknown layer goes to every host.

Example::

    reader = TarReader(stream)
    for entry in reader:
        data = b"".join(reader.data(entry))     # the entry's bytes, padding included
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
_META_TYPES = {b"x", b"g", b"L", b"K"}  # pax and GNU long-name headers: belong to the next entry


class ArchiveError(Exception):
    """The stream is not a tar archive we can read (truncated, corrupt)."""


@dataclass(frozen=True)
class Entry:
    """One member: its name, data size, and every header block that precedes its data."""

    name: str
    size: int
    header: bytes

    @property
    def regular(self) -> bool:
        """A regular file (not a directory, link or other special entry)."""
        kind = self.header[-BLOCK + 156 : -BLOCK + 157] if len(self.header) >= BLOCK else b"0"
        return kind in (b"0", b"\0", b"7")

    @property
    def padded(self) -> int:
        """Bytes of data on the wire (rounded up to whole blocks)."""
        return -(-self.size // BLOCK) * BLOCK


class TarReader:
    """Entries of a tar stream in order; read each one's data before asking for the next."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._left = 0  # data bytes of the current entry not read yet

    def __iter__(self) -> Iterator[Entry]:
        pending = b""
        overrides: dict[str, str] = {}
        while True:
            self._skip_rest()
            block = self._exact(BLOCK)
            if block == b"\0" * BLOCK:
                return
            name, size, kind = _parse(block)
            if kind in _META_TYPES:
                data = self._exact(-(-size // BLOCK) * BLOCK)
                pending += block + data
                overrides.update(_meta(kind, data[:size]))
                continue
            name = overrides.get("path", name)
            size = int(overrides.get("size", size))
            self._left = -(-size // BLOCK) * BLOCK
            yield Entry(name, size, pending + block)
            pending, overrides = b"", {}

    def data(self, entry: Entry, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The rest of ``entry``'s data blocks, in chunks (padding included)."""
        while self._left:
            part = self._stream.read(min(chunk, self._left))
            if not part:
                raise ArchiveError(f"the archive ends inside {entry.name}")
            self._left -= len(part)
            yield part

    def _skip_rest(self) -> None:
        for _ in self.data(Entry("(skipped)", 0, b"")):
            pass

    def _exact(self, size: int) -> bytes:
        parts = []
        while size:
            part = self._stream.read(size)
            if not part:
                raise ArchiveError("the archive ends before its end-of-archive blocks")
            parts.append(part)
            size -= len(part)
        return b"".join(parts)


def _parse(block: bytes) -> tuple[str, int, bytes]:
    """(name, size, type flag) of a ustar header block."""
    stored = sum(block[:148]) + 8 * 32 + sum(block[156:])
    checksum = block[148:156].rstrip(b"\0 ").strip()
    if not checksum or int(checksum, 8) != stored:
        raise ArchiveError("a tar header's checksum does not match")
    name = block[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    if block[257:262] == b"ustar":
        prefix = block[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
        if prefix:
            name = f"{prefix}/{name}"
    raw = block[124:136]
    if raw[0] & 0x80:  # base-256 (GNU) for sizes past 8 GiB
        size = int.from_bytes(raw[1:], "big")
    else:
        size = int(raw.rstrip(b"\0 ").strip() or b"0", 8)
    return name, size, block[156:157]


def _meta(kind: bytes, data: bytes) -> dict[str, str]:
    """What a pax (``path``, ``size``) or GNU long-name header says about the next entry."""
    if kind == b"L":
        return {"path": data.split(b"\0", 1)[0].decode("utf-8", "replace")}
    if kind != b"x":
        return {}
    found: dict[str, str] = {}
    while data:
        length, _, _ = data.partition(b" ")
        if not length.isdigit():
            break
        record, data = data[: int(length)], data[int(length) :]
        key, _, value = record[len(length) + 1 : -1].partition(b"=")  # "LEN key=value\n"
        if key in (b"path", b"size"):
            found[key.decode()] = value.decode("utf-8", "replace")
    return found


def header(name: str, size: int, mode: int = 0o644) -> bytes:
    """A ustar header block for a regular file (the per-host ``manifest.json``)."""
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def chain_ids(diff_ids: Iterable[str]) -> tuple[str, ...]:
    """The chain ID of every prefix of an image's layers (OCI image spec, "ChainID")."""
    chains: list[str] = []
    for diff in diff_ids:
        if not chains:
            chains.append(diff)
        else:
            chains.append("sha256:" + hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest())
    return tuple(chains)


def legacy_chain(directory: str, json_text: str, candidates: Iterable[str]) -> str | None:
    """The chain ID of legacy layer ``directory`` (its v1 ID), given its ``json`` entry.

    ``None`` when no candidate reproduces the v1 ID (another Docker's encoding).
    """
    try:
        fields = dict(_raw_fields(json_text))
        parent = json.loads(fields["parent"]) if "parent" in fields else None
    except (ValueError, KeyError, TypeError):
        return None
    base = {k: v for k, v in fields.items() if k not in ("id", "parent")}
    if parent:
        base["parent"] = json.dumps("sha256:" + parent)
    variants = [base]
    if "os" in base:  # docker save adds `os` after computing the v1 ID of lower layers
        variants.append({k: v for k, v in base.items() if k != "os"})
    for chain in candidates:
        for variant in variants:
            fields_with_chain = {**variant, "layer_id": json.dumps(chain)}
            text = (
                "{"
                + ",".join(
                    f"{json.dumps(k)}:{fields_with_chain[k]}" for k in sorted(fields_with_chain)
                )
                + "}"
            )
            if hashlib.sha256(text.encode()).hexdigest() == directory:
                return chain
    return None


def _raw_fields(text: str) -> Iterator[tuple[str, str]]:
    """The top-level keys of a JSON object with their values as written (not re-encoded)."""
    decoder = json.JSONDecoder()
    index = text.index("{") + 1
    while True:
        while text[index] in " \t\r\n,":
            index += 1
        if text[index] == "}":
            return
        key, index = decoder.raw_decode(text, index)
        while text[index] in " \t\r\n:":
            index += 1
        _, end = decoder.raw_decode(text, index)
        yield key, text[index:end]
        index = end
