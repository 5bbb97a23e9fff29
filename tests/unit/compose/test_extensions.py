"""Reading `x-stagecraft` from Compose's YAML output (its JSON output drops `x-*` keys)."""

from __future__ import annotations

from stagecraft.compose.model import _service_extensions


def test_extensions_are_read_per_service() -> None:
    text = "services:\n  web:\n    x-stagecraft:\n      kind: web\n  db:\n    image: b\n"
    assert _service_extensions(text) == {"web": {"kind": "web"}}


def test_yaml_1_2_that_libyaml_rejects_still_reads() -> None:
    """libyaml (the fast C parser) is YAML 1.1: `[tag:server]` in flow style is an error there."""
    text = "services:\n  web:\n    x-stagecraft: {tags: [tag:server], drain: 1:30}\n"
    assert _service_extensions(text) == {"web": {"tags": ["tag:server"], "drain": "1:30"}}
