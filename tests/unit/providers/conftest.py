"""Fixtures for the provider tests: snapshot flavours and fresh registries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from provider_helpers import YamlSnapshot
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from stagecraft.providers.base import reset_registries


@pytest.fixture
def json_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """``snapshot`` stored as one JSON file per assertion."""
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture
def yaml_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """``snapshot`` stored as one YAML file per assertion."""
    return snapshot.use_extension(YamlSnapshot)


@pytest.fixture
def fresh_registries() -> Iterator[None]:
    """Registries reloaded from entry points before and after the test."""
    reset_registries()
    yield
    reset_registries()
