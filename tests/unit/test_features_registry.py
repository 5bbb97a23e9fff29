"""spec/features.yaml is honest: a `done` feature names tests, and they exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "spec" / "features.yaml"
STATUSES = {"done", "partial", "todo"}


def load() -> list[dict[str, Any]]:
    data = YAML(typ="safe").load(FEATURES.read_text())
    assert isinstance(data, dict) and isinstance(data.get("features"), list)
    return data["features"]


FEATURE_LIST = load()


def test_ids_are_unique_and_well_formed() -> None:
    ids = [f["id"] for f in FEATURE_LIST]
    assert len(ids) == len(set(ids)), "duplicate feature ids"
    for fid in ids:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", fid), fid


@pytest.mark.parametrize("feature", FEATURE_LIST, ids=lambda f: f["id"])
def test_feature_entry(feature: dict[str, Any]) -> None:
    assert set(feature) <= {"id", "status", "spec", "summary", "tests", "notes"}, feature
    assert feature["status"] in STATUSES, feature
    assert feature.get("spec"), f"{feature['id']}: no spec reference"
    tests = feature.get("tests") or []
    if feature["status"] == "done":
        assert tests, f"{feature['id']} is done but names no test"
    for ref in tests:
        path, _, name = ref.partition("::")
        test_file = ROOT / path
        assert test_file.is_file(), f"{feature['id']}: {path} does not exist"
        if name:
            func = name.split("[")[0].split("::")[-1]
            assert re.search(rf"def {re.escape(func)}\b", test_file.read_text()), (
                f"{feature['id']}: {ref} not found"
            )
