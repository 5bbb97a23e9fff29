"""Rendering: golden ``stagecraft.yml`` files per layout, and the YAML they contain."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from stagecraft.init import detect, render
from stagecraft.init.compose import ComposeView, ServiceInfo
from stagecraft.init.model import BackendGuess, Detection, FrontendGuess
from stagecraft.init.render import flow, scalar

LAYOUTS = Path(__file__).resolve().parents[2] / "fixtures" / "layouts"
LAYOUT_NAMES = ("node-vite-postgres", "encore-app", "plain-compose")


class YamlSnapshot(SingleFileSnapshotExtension):
    """One readable ``.yml`` golden file per snapshot."""

    file_extension = "yml"
    _write_mode = WriteMode.TEXT


def load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def uncomment(text: str, section: str) -> str:
    """The rendered file with the commented-out ``section:`` switched on."""
    lines = text.splitlines()
    start = lines.index(f"# {section}:")
    end = start
    while end < len(lines) and lines[end].startswith("#"):
        end += 1
    block = [re.sub(r"^# ?", "", line) for line in lines[start:end]]
    return "\n".join(lines[:start] + block + lines[end:]) + "\n"


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_golden_file(layout: str, snapshot: SnapshotAssertion) -> None:
    text = render(detect(LAYOUTS / layout).defaults())
    assert text == snapshot(extension_class=YamlSnapshot)


def test_rendering_is_deterministic() -> None:
    first = render(detect(LAYOUTS / "node-vite-postgres").defaults())
    second = render(detect(LAYOUTS / "node-vite-postgres").defaults())
    assert first == second


def test_rendered_yaml_has_the_spec_shape() -> None:
    data = load(render(detect(LAYOUTS / "node-vite-postgres").defaults()))
    assert data == {
        "project": "node-vite-postgres",
        "compose": "compose.yaml",
        "backend": {
            "provider": "generic",
            "providers": {
                "generic": {
                    "service": "api",
                    "dev": {"command": ["npm", "run", "dev"], "workdir": "api", "port": 4000},
                }
            },
        },
        "frontend": {
            "provider": "vite",
            "providers": {"vite": {"service": "web", "workdir": "web", "port": 5173}},
        },
        "databases": {
            "main": {
                "service": "postgres",
                "url_env": "DATABASE_URL",
                "migrations": {"engine": "raw", "path": "migrations", "strategy": "pre_deploy"},
            }
        },
        "dev": {
            "domain": "node-vite-postgres.localhost",
            "https": True,
            "infra": ["mailpit", "postgres"],
            "routes": {"app": "frontend", "api": "backend", "mail": "mailpit:8025"},
        },
    }


def test_plain_compose_leaves_the_backend_commented_out() -> None:
    text = render(detect(LAYOUTS / "plain-compose").defaults())
    data = load(text)
    assert set(data) == {"project", "compose", "dev"}
    assert "# No dev command was detected for the compose service app" in text
    assert "#       service: app" in text


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_environments_example_is_valid_once_uncommented(layout: str) -> None:
    detection = detect(LAYOUTS / layout)
    data = load(uncomment(render(detection.defaults()), "environments"))
    staging = data["environments"]["staging"]
    services = {s.name for s in detection.compose.services}
    assert staging["hosts"]["web-1"] == {
        "address": "203.0.113.10",
        "user": "deploy",
        "roles": ["web"],
    }
    assert set(staging["roles"]["web"]) == services
    assert all(route["service"] in services for route in staging["routes"].values())
    assert staging["images"] == {"transfer": "ssh"}
    assert staging["secrets_provider"] == {"provider": "dotenv", "path": ".env.staging"}


def test_declined_choices_become_commented_examples() -> None:
    detection = detect(LAYOUTS / "node-vite-postgres")
    choices = detection.choose(
        project="shop", frontend=False, backend=False, database=False, infra=()
    )
    text = render(choices)
    data = load(text)
    assert data == {
        "project": "shop",
        "compose": "compose.yaml",
        "dev": {"domain": "shop.localhost", "https": True, "infra": []},
    }
    assert "# frontend:\n#   provider: vite" in text
    assert "# backend:\n#   provider: generic" in text
    assert "# databases:\n#   main:" in text
    assert "#   api: backend" in text


def test_underscores_become_dashes_in_the_dev_domain() -> None:
    choices = detect(LAYOUTS / "plain-compose").choose(project="my_app")
    assert load(render(choices))["dev"]["domain"] == "my-app.localhost"


def test_generic_backend_without_a_port_has_no_route() -> None:
    backend = BackendGuess("generic", "api", "api", ("npm", "run", "dev"), None, "test")
    compose = ComposeView("compose.yaml", (ServiceInfo("api", None, "api"),), "test")
    detection = Detection(root=Path("/x"), project="x", compose=compose, backend=backend)
    text = render(detection.defaults())
    data = load(text)
    assert data["backend"]["providers"]["generic"]["dev"] == {
        "command": ["npm", "run", "dev"],
        "workdir": "api",
    }
    assert "        # port: 4000" in text
    assert "routes" not in data["dev"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("api", "api"),
        (".", "."),
        ("./web", "./web"),
        ("mailpit:8025", "mailpit:8025"),
        ("apps/web-2", "apps/web-2"),
        ("yes", '"yes"'),
        ("No", '"No"'),
        ("null", '"null"'),
        ("1234", '"1234"'),
        ("1.5", '"1.5"'),
        ("1e3", '"1e3"'),
        ("12:30", '"12:30"'),
        ("-x", '"-x"'),
        ("a b", '"a b"'),
        ("key:", '"key:"'),
        ("#x", '"#x"'),
        ("$HOME", '"$$HOME"'),
        ("", '""'),
        (4000, "4000"),
    ],
)
def test_scalars_round_trip(value: str | int, expected: str) -> None:
    assert scalar(value) == expected
    loaded = load(f"k: {expected}\n")["k"]
    assert loaded == (value if isinstance(value, int) else value.replace("$", "$$"))


def test_flow_sequences() -> None:
    assert flow(("npm", "run", "dev")) == "[npm, run, dev]"
    assert flow(()) == "[]"
    assert load(f"k: {flow(('sh', '-c', 'echo hi'))}\n")["k"] == ["sh", "-c", "echo hi"]


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@pytest.mark.parametrize("with_environment", [False, True])
def test_rendered_file_passes_the_config_loader(
    layout: str, with_environment: bool, tmp_path: Path
) -> None:
    from stagecraft.config.loader import load_config

    text = render(detect(LAYOUTS / layout).defaults())
    if with_environment:
        text = uncomment(text, "environments")
    path = tmp_path / "stagecraft.yml"
    path.write_text(text, encoding="utf-8")
    loaded = load_config(path, environ={})
    assert loaded.config.project.name == layout
    assert sorted(loaded.config.environments) == (["staging"] if with_environment else [])


def test_commented_out_sections_for_a_frontend_without_service(tmp_path: Path) -> None:
    from stagecraft.config.loader import load_config

    compose = ComposeView("compose.yaml", (ServiceInfo("db", "postgres:16"),), "test")
    detection = Detection(
        root=tmp_path,
        project="x",
        compose=compose,
        frontend=FrontendGuess(workdir="ui", port=5173, package_manager="pnpm"),
        backend=BackendGuess("encore-ts", "backend", None, None, 4000, "encore.app"),
        infra=("db",),
    )
    text = render(detection.defaults())
    assert "# No compose service builds ui: set `service`" in text
    assert "#       package_manager: pnpm" in text
    assert "# No compose service was found to deploy it as" in text
    assert "#       app_dir: backend" in text
    path = tmp_path / "stagecraft.yml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, environ={}).config
    assert config.backend is None and config.frontend is None
    assert config.dev.routes == {}
    data = load(uncomment(uncomment(text, "frontend"), "backend"))
    assert data["frontend"]["providers"]["vite"] == {
        "service": "web",
        "workdir": "ui",
        "port": 5173,
        "package_manager": "pnpm",
    }
    assert data["backend"]["providers"]["encore-ts"] == {
        "service": "api",
        "app_dir": "backend",
        "dev": {"port": 4000},
    }


def test_plain_compose_backend_loads_once_uncommented(tmp_path: Path) -> None:
    from stagecraft.config.loader import load_config

    text = uncomment(render(detect(LAYOUTS / "plain-compose").defaults()), "backend")
    path = tmp_path / "stagecraft.yml"
    path.write_text(text, encoding="utf-8")
    backend = load_config(path, environ={}).config.backend
    assert backend is not None
    assert backend.providers["generic"]["service"] == "app"
    assert backend.providers["generic"]["dev"]["port"] == 8000


def test_provider_examples_load_once_uncommented(tmp_path: Path) -> None:
    from stagecraft.config.loader import load_config

    text = render(detect(LAYOUTS / "node-vite-postgres").defaults())
    examples = ("# proxy: ", "# network: ", "# ci: ")
    lines = [line[2:] if line.startswith(examples) else line for line in text.splitlines()]
    path = tmp_path / "stagecraft.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(path, environ={}).config
    assert config.proxy is not None and config.proxy.provider == "caddy"
    assert config.network is not None and config.network.provider == "tailscale"
    assert config.ci is not None and config.ci.provider == "github"
