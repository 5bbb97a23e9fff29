"""The reference example against the real built-in providers (not the fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagecraft.config.loader import load_config
from stagecraft.errors import ConfigError
from stagecraft.providers import registry


def test_reference_example_validates_with_builtin_providers(reference: Path) -> None:
    loaded = load_config(reference / "stagecraft.yml", environ={})
    cfg = loaded.config
    assert cfg.backend is not None and cfg.frontend is not None
    # The selected blocks are accepted by the providers' own models.
    registry("backend").create(cfg.backend.provider, cfg.backend.block())
    registry("frontend").create(cfg.frontend.provider, cfg.frontend.block())
    provider, options = cfg.secrets_provider_for("staging")
    registry("secrets").create(provider, options)


def test_builtin_provider_errors_are_located(reference: Path) -> None:
    path = reference / "stagecraft.yml"
    text = path.read_text().replace(
        "vite: {service: web, workdir: web, port: 5173}",
        "vite: {service: web, workdir: web, port: 5173, colour: blue}",
    )
    path.write_text(text)
    line = (
        text.splitlines().index("    vite: {service: web, workdir: web, port: 5173, colour: blue}")
        + 1
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [issue] = caught.value.issues
    assert (issue.line, issue.path) == (line, "frontend.providers.vite.colour")
    assert issue.message.startswith("unknown key 'colour'")
