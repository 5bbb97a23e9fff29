"""Provider discovery through real entry points: built-ins, third parties, conflicts."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from stagecraft.errors import ProviderError
from stagecraft.providers import registry
from stagecraft.providers.backend import BackendProvider
from stagecraft.providers.base import KINDS, Provider
from stagecraft.providers.ci import CIProvider
from stagecraft.providers.cloud import CloudProvider
from stagecraft.providers.frontend import FrontendProvider
from stagecraft.providers.network import NetworkProvider
from stagecraft.providers.proxy import ProxyProvider
from stagecraft.providers.secrets import SecretsProvider

BUILTINS: dict[str, tuple[type[Provider], set[str]]] = {
    "backend": (BackendProvider, {"generic", "encore-ts"}),
    "frontend": (FrontendProvider, {"generic", "vite"}),
    "proxy": (ProxyProvider, {"caddy"}),
    "network": (NetworkProvider, {"tailscale"}),
    "cloud": (CloudProvider, {"digitalocean"}),
    "ci": (CIProvider, {"github"}),
    "secrets": (SecretsProvider, {"env", "dotenv", "command"}),
}

pytestmark = pytest.mark.usefixtures("fresh_registries")


@pytest.mark.parametrize("kind", sorted(BUILTINS))
def test_builtins_are_found_through_entry_points(kind: str) -> None:
    base, ids = BUILTINS[kind]
    reg = registry(kind)
    assert ids <= set(reg.ids())
    for provider_id in ids:
        cls = reg.get(provider_id)
        assert issubclass(cls, base)
        assert (cls.id, cls.kind) == (provider_id, kind)
        doc = cls.__doc__ or ""
        assert cls.summary() and "Example" in doc and ">>>" in doc, f"{kind}/{provider_id}"
    origins = {info.id: info.origin for info in reg.infos()}
    assert all(origins[i] == "stagecraft-cli" for i in ids)


def test_every_kind_has_a_registry() -> None:
    assert set(BUILTINS) | {"migration"} == set(KINDS)


def test_unknown_id_lists_the_known_ones() -> None:
    with pytest.raises(ProviderError) as info:
        registry("backend").get("rails")
    assert info.value.message == "unknown backend provider 'rails'; known: encore-ts, generic"


def _distribution(
    root: Path, dist: str, entry_points: dict[str, dict[str, str]], module: str, source: str
) -> None:
    """A minimal installed distribution: a module plus its ``.dist-info``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    groups = [
        f"[stagecraft.providers.{kind}]\n"
        + "".join(f"{name} = {target}\n" for name, target in sorted(entries.items()))
        for kind, entries in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(groups))


RAILS = '''
from typing import ClassVar
from pathlib import Path
from stagecraft.providers.backend import (
    BackendProvider, BuildRequest, ComposeBuild, DevContext, DevProcess, Readiness)
from stagecraft.providers.base import ProviderConfig


class RailsConfig(ProviderConfig):
    service: str
    port: int = 3000


class RailsBackend(BackendProvider):
    """Rails with bin/rails server."""

    id: ClassVar[str] = "{id}"
    Config: ClassVar[type[ProviderConfig]] = RailsConfig

    @property
    def service(self) -> str:
        return self.config.service

    def dev_process(self, ctx: DevContext) -> DevProcess:
        port = self.config.port
        return DevProcess("backend", ("bin/rails", "server", "-p", str(port)), ctx.root,
                          dict(ctx.env), port, Readiness(http_path="/up"))

    def build(self, req: BuildRequest) -> ComposeBuild:
        return ComposeBuild(self.service)
'''


def _unique_module() -> str:
    return f"stagecraft_plugin_{uuid.uuid4().hex[:10]}"


def test_third_party_provider_is_discovered_and_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _unique_module()
    _distribution(
        tmp_path,
        "stagecraft-rails",
        {"backend": {"rails": f"{module}:RailsBackend"}},
        module,
        RAILS.replace("{id}", "rails"),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = registry("backend")
    assert reg.ids() == ["encore-ts", "generic", "rails"]
    info = next(i for i in reg.infos() if i.id == "rails")
    assert (info.origin, info.summary) == ("stagecraft-rails", "Rails with bin/rails server.")
    rails = reg.create("rails", {"service": "api", "port": 3100})
    ctx_root = tmp_path / "app"
    from stagecraft.providers.backend import DevContext

    proc = rails.dev_process(DevContext(project="shop", root=ctx_root, domain="shop.localhost"))
    assert proc.argv == ("bin/rails", "server", "-p", "3100")
    with pytest.raises(ValidationError) as bad:
        reg.create("rails", {"service": "api", "prot": 3100})
    assert "prot" in str(bad.value)


def test_same_id_from_two_distributions_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dist in ("acme-rails", "other-rails"):
        root = tmp_path / dist
        root.mkdir()
        module = _unique_module()
        _distribution(
            root,
            dist,
            {"backend": {"rails": f"{module}:RailsBackend"}},
            module,
            RAILS.replace("{id}", "rails"),
        )
        monkeypatch.syspath_prepend(str(root))
    with pytest.raises(ProviderError) as info:
        registry("backend").ids()
    assert "backend provider 'rails' is registered twice" in info.value.message
    assert "acme-rails" in info.value.message and "other-rails" in info.value.message
    assert info.value.hint == "uninstall one of the packages"


def test_third_party_cannot_shadow_a_builtin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _unique_module()
    _distribution(
        tmp_path,
        "evil-generic",
        {"backend": {"generic": f"{module}:RailsBackend"}},
        module,
        RAILS.replace("{id}", "generic"),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ProviderError, match="'generic' is registered twice"):
        registry("backend").get("generic")


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("raise ImportError('no rails here')\n", "RailsBackend", "failed to load: no rails here"),
        ("class NotAProvider:\n    pass\n", "NotAProvider", "is not a Provider subclass"),
        (RAILS.replace("{id}", "sinatra"), "RailsBackend", "whose id/kind is 'sinatra'/'backend'"),
    ],
    ids=["import-error", "not-a-provider", "id-mismatch"],
)
def test_broken_third_party_providers_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, target: str, expected: str
) -> None:
    module = _unique_module()
    _distribution(
        tmp_path, "broken-rails", {"backend": {"rails": f"{module}:{target}"}}, module, source
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ProviderError) as info:
        registry("backend").ids()
    assert expected in info.value.message
