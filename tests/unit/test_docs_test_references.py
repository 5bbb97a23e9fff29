"""Every test a document names (``tests/...py::test_name``) exists, so a claim never cites a ghost.

docs/security.md backs each claim with the test that shows it; this keeps those
references (and any other document's) true as tests are renamed or moved.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")
DOCS = sorted((ROOT / "docs").rglob("*.md"))


def references(doc: Path) -> list[tuple[str, str | None]]:
    return [(m[1], m[2]) for m in REFERENCE.finditer(doc.read_text())]


def test_the_security_page_cites_tests() -> None:
    assert len(references(ROOT / "docs" / "security.md")) >= 20


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_test_exists(doc: Path) -> None:
    missing = []
    for path, name in references(doc):
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name and not re.search(rf"^(async )?def {name}\(", source.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"{doc.name} cites tests that do not exist: {missing}"
