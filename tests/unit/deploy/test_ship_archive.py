"""Reading a ``docker save`` stream and telling which layer each entry is (no Docker here).

The legacy fixture holds the ``<v1 id>/json`` entries of a real ``docker save``
(dockerd 20.10) of two images: a Debian image with one layer added by a
Dockerfile (its top layer carries the image's config, an HTML-escaped label
included), and a busybox image; lower layers have ``created`` 1970 and ``os``
added after the v1 ID was computed (moby ``image/tarexport/save.go``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagecraft.deploy.ship.archive import (
    END_OF_ARCHIVE,
    ArchiveError,
    TarReader,
    chain_ids,
    header,
    legacy_chain,
)

FIXTURE = json.loads(
    (Path(__file__).parent / "data" / "docker_20_10_save_v1_json.json").read_text()
)


def _all_chains() -> list[str]:
    return [c for layers in FIXTURE["chains"].values() for c in chain_ids(layers)]


def test_every_legacy_layer_directory_is_identified_by_its_chain() -> None:
    candidates = _all_chains()
    found = {e["dir"]: legacy_chain(e["dir"], e["json"], candidates) for e in FIXTURE["entries"]}
    assert None not in found.values()
    assert sorted(found.values()) == sorted(candidates)  # four layers, four chains, one each


def test_a_directory_is_not_identified_with_a_chain_it_is_not() -> None:
    entry = FIXTURE["entries"][0]
    others = [c for c in _all_chains() if legacy_chain(entry["dir"], entry["json"], [c]) is None]
    assert len(others) == 3  # exactly one chain reproduces the directory name
    assert legacy_chain(entry["dir"], entry["json"].replace("2026", "2025"), _all_chains()) is None
    assert legacy_chain(entry["dir"], "not json", _all_chains()) is None


def test_chain_ids_follow_the_oci_image_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == (a, expected)
    assert chain_ids([]) == ()


def _tar(members: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(codec="utf-8", exclude_characters="\0/"), min_size=1, max_size=150),
        st.binary(max_size=3000),
        max_size=5,
    )
)
def test_reading_entries_returns_every_name_and_byte(members: dict[str, bytes]) -> None:
    raw = _tar(members)
    reader = TarReader(io.BytesIO(raw))
    seen: dict[str, bytes] = {}
    rebuilt = b""
    for entry in reader:
        data = b"".join(reader.data(entry, chunk=700))
        seen[entry.name] = data[: entry.size]
        rebuilt += entry.header + data
    assert seen == members
    assert raw.startswith(rebuilt)  # the raw bytes pass through unchanged


def test_entries_can_be_skipped_without_reading_their_data() -> None:
    reader = TarReader(io.BytesIO(_tar({"a": b"x" * 5000, "b": b"y"})))
    names = [entry.name for entry in reader]
    assert names == ["a", "b"]


def test_a_truncated_archive_is_an_archive_error() -> None:
    raw = _tar({"layer.tar": b"z" * 10_000})
    reader = TarReader(io.BytesIO(raw[:3000]))
    with pytest.raises(ArchiveError, match=r"ends inside layer\.tar"):
        for entry in reader:
            b"".join(reader.data(entry))


def test_a_written_header_reads_back() -> None:
    data = b'[{"Config": "x.json"}]'
    raw = header("manifest.json", len(data)) + data + b"\0" * (512 - len(data)) + END_OF_ARCHIVE
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        extracted = archive.extractfile("manifest.json")
        assert extracted is not None and extracted.read() == data
