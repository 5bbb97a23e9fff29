"""Validate every service's ``x-stagecraft`` block; errors point into the compose files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stagecraft.compose.extension import XStagecraft
from stagecraft.config.document import Document, display_path, parse_document
from stagecraft.config.issues import report_validation_error
from stagecraft.errors import ConfigError


def validate_extensions(
    extensions: Mapping[str, Any], files: Sequence[Path]
) -> dict[str, XStagecraft]:
    """The validated block per service; all problems raised together as one ConfigError."""
    validated: dict[str, XStagecraft] = {}
    issues = []
    sources: list[Document] | None = None
    for name, block in extensions.items():
        try:
            validated[name] = XStagecraft.model_validate({} if block is None else block)
        except ValidationError as exc:
            if sources is None:
                sources = [_read(f) for f in files]
            doc = _document_defining(name, sources)
            report_validation_error(
                doc, exc, root=XStagecraft, data=block, base=("services", name, "x-stagecraft")
            )
            issues.extend(doc.issues)
            doc.issues.clear()
    if issues:
        raise ConfigError(issues, hint="fix the x-stagecraft block(s) of the compose file")
    return validated


def _read(path: Path) -> Document:
    """The compose file as located YAML, only to point errors at lines (best effort)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return Document(display_path(path))
    return parse_document(text, display_path(path))


def _document_defining(service: str, sources: list[Document]) -> Document:
    for doc in sources:
        if ("services", service) in doc.lines:
            return doc
    return Document(sources[0].file if sources else "compose file")
