"""Backend and frontend providers: dev process specs and build plans (goldens + behaviour)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from provider_helpers import plain
from syrupy.assertion import SnapshotAssertion

from stagecraft.providers import registry
from stagecraft.providers.backend import (
    BuildCommand,
    BuildRequest,
    ComposeBuild,
    DevContext,
    DevProcess,
    DockerBuild,
    Readiness,
    signal_number,
)
from stagecraft.providers.builtin.backend_encore import EncoreTsBackend
from stagecraft.providers.secrets import SecretsError, SecretValue

FIXTURES = Path(__file__).parent / "fixtures"
APP = FIXTURES / "app"
CA = Path("/home/dev/.local/share/stagecraft/ca/root.pem")
CORE_ENV = {"DATABASE_URL": "postgresql://app@127.0.0.1:5433/shop", "LOG_LEVEL": "info"}


@dataclass(frozen=True)
class Case:
    """One golden: a provider config and the dev context it is asked about."""

    name: str
    kind: str
    pid: str
    raw: dict[str, Any]
    public_url: str | None = None
    api_url: str | None = None
    ca_cert: Path | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(CORE_ENV))

    def context(self) -> DevContext:
        return DevContext(
            project="shop",
            root=APP,
            domain="shop.localhost",
            public_url=self.public_url,
            api_url=self.api_url,
            env=self.env,
            ca_cert=self.ca_cert,
        )


CASES = [
    Case(
        "generic-backend-spec-example",
        "backend",
        "generic",
        {
            "service": "api",
            "dev": {
                "command": ["node", "server.js"],
                "workdir": "api",
                "port": 4000,
                "env": {"LOG_LEVEL": "debug"},
                "ready": {"http": "/healthz"},
            },
        },
        public_url="https://api.shop.localhost",
    ),
    Case(
        "generic-backend-log-ready-dockerfile",
        "backend",
        "generic",
        {
            "service": "worker",
            "dev": {
                "command": "uvicorn app:main --reload --port 8000",
                "ready": {"log": "Application startup complete", "timeout": 30},
                "stop_signal": "INT",
                "stop_timeout": 5,
            },
            "build": {
                "context": "api",
                "dockerfile": "docker/Dockerfile.prod",
                "args": {"NODE_VERSION": 22},
                "target": "runtime",
            },
        },
    ),
    Case(
        "generic-frontend",
        "frontend",
        "generic",
        {
            "service": "web",
            "dev": {"command": "npx --no -- next dev -p 3000", "workdir": "web", "port": 3000},
        },
        public_url="https://app.shop.localhost",
        api_url="https://api.shop.localhost",
    ),
    Case(
        "encore-defaults",
        "backend",
        "encore-ts",
        {"service": "api"},
    ),
    Case(
        "encore-full",
        "backend",
        "encore-ts",
        {
            "service": "api",
            "app_dir": "api",
            "dev": {
                "host": "0.0.0.0",
                "port": 4100,
                "watch": False,
                "browser": None,
                "env": {"LOG_LEVEL": "debug"},
                "env_file": "encore.env",
                "ready": {"http": "/healthz"},
            },
            "build": {
                "base": "node:22-slim",
                "config": "infra.json",
                "services": ["hello", "orders"],
                "gateways": ["api-gateway"],
            },
        },
        public_url="https://api.shop.localhost",
        ca_cert=CA,
    ),
    Case(
        "vite-spec-example", "frontend", "vite", {"service": "web", "workdir": "web", "port": 5173}
    ),
    Case(
        "vite-behind-proxy",
        "frontend",
        "vite",
        {"service": "web", "workdir": "web"},
        public_url="https://app.shop.localhost",
        api_url="https://api.shop.localhost",
    ),
    Case(
        "vite-pnpm-custom-domain",
        "frontend",
        "vite",
        {"service": "web", "package_manager": "pnpm", "api_url_env": "PUBLIC_API", "port": 5200},
        public_url="https://app.shop.test:8443",
        api_url="https://api.shop.test:8443",
    ),
    Case(
        "vite-npm-script",
        "frontend",
        "vite",
        {"service": "web", "script": "dev", "env": {"VITE_API_URL": "/api"}},
        public_url="http://app.shop.localhost",
        api_url="http://api.shop.localhost",
    ),
    Case(
        "vite-yarn-script",
        "frontend",
        "vite",
        {
            "service": "web",
            "package_manager": "yarn",
            "script": "start",
            "build": {"context": "web"},
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_dev_process_and_build_goldens(case: Case, json_snapshot: SnapshotAssertion) -> None:
    provider = registry(case.kind).create(case.pid, case.raw)
    proc = provider.dev_process(case.context())
    build = provider.build(BuildRequest(root=APP, image="ghcr.io/acme/shop-api:1f2e3d4"))
    golden = {
        "service": provider.service,
        "dev_process": plain(proc, APP),
        "build": {"type": type(build).__name__, **plain(build, APP)},
    }
    assert golden == json_snapshot


def _generic(**dev: Any) -> Any:
    return registry("backend").create("generic", {"service": "api", "dev": {"command": "x", **dev}})


def _ctx(**kw: Any) -> DevContext:
    return DevContext(project="shop", root=APP, domain="shop.localhost", **kw)


def test_user_env_wins_over_computed_and_core_env() -> None:
    backend = _generic(port=4000, env={"PORT": "9999", "DATABASE_URL": "sqlite://"})
    proc = backend.dev_process(_ctx(env=CORE_ENV))
    assert proc.env["PORT"] == "9999"
    assert proc.env["DATABASE_URL"] == "sqlite://"
    assert proc.env["LOG_LEVEL"] == "info"


def test_no_ready_block_means_ready_once_started() -> None:
    proc = _generic().dev_process(_ctx())
    assert proc.readiness == Readiness()
    assert proc.readiness.kind == "none"
    assert proc.port is None and "PORT" not in proc.env


def test_docker_build_paths_follow_compose_rules() -> None:
    backend = registry("backend").create(
        "generic",
        {
            "service": "api",
            "dev": {"command": "x"},
            "build": {"context": "api", "dockerfile": "../Dockerfile"},
        },
    )
    build = backend.build(BuildRequest(root=APP, image="shop-api:1"))
    assert isinstance(build, DockerBuild)
    assert build.context == APP / "api"
    assert build.dockerfile == APP / "api" / "../Dockerfile"


def test_without_build_block_the_compose_build_is_used() -> None:
    for kind, pid, raw in [
        ("backend", "generic", {"service": "api", "dev": {"command": "x"}}),
        ("frontend", "generic", {"service": "web", "dev": {"command": "x"}}),
        ("frontend", "vite", {"service": "web"}),
    ]:
        provider = registry(kind).create(pid, raw)
        assert provider.build(BuildRequest(root=APP, image="i:1")) == ComposeBuild(provider.service)


def test_dev_process_repr_never_shows_env_values() -> None:
    encore = registry("backend").create(
        "encore-ts", {"service": "api", "dev": {"env_file": "encore.env"}}
    )
    proc = encore.dev_process(_ctx())
    assert proc.env["STRIPE_KEY"] == "sk_test_from_env_file"
    assert "sk_test_from_env_file" not in repr(proc)
    assert "DevProcess(name='backend'" in repr(proc)


def test_encore_env_file_missing_is_an_error_naming_the_file() -> None:
    encore = registry("backend").create(
        "encore-ts", {"service": "api", "dev": {"env_file": ".env.missing"}}
    )
    with pytest.raises(SecretsError) as info:
        encore.dev_process(_ctx())
    assert str(APP / ".env.missing") in info.value.message
    assert "does not exist" in info.value.message


def test_encore_trusts_the_dev_ca_only_when_there_is_one() -> None:
    encore = registry("backend").create("encore-ts", {"service": "api"})
    assert "NODE_EXTRA_CA_CERTS" not in encore.dev_process(_ctx()).env
    proc = encore.dev_process(_ctx(ca_cert=CA))
    assert proc.env["NODE_EXTRA_CA_CERTS"] == str(CA)
    assert proc.env["DISABLE_ENCORE_TELEMETRY"] == "1"
    assert proc.signal is signal.SIGINT


def test_encore_secret_sync_puts_values_on_stdin_only() -> None:
    encore = registry("backend").create(
        "encore-ts",
        {
            "service": "api",
            "app_dir": "api",
            "secrets": {"names": ["STRIPE_KEY", "JWT_SECRET"], "types": ["local", "dev", "local"]},
        },
    )
    assert isinstance(encore, EncoreTsBackend)
    values = {
        "STRIPE_KEY": SecretValue("sk_live_1", name="STRIPE_KEY"),
        "JWT_SECRET": SecretValue("jwt-2", name="JWT_SECRET"),
        "UNUSED": SecretValue("x"),
    }
    commands = encore.secret_commands(values, APP)
    assert [c.argv for c in commands] == [
        ("encore", "secret", "set", "--type", "local,dev", "STRIPE_KEY"),
        ("encore", "secret", "set", "--type", "local,dev", "JWT_SECRET"),
    ]
    assert [c.stdin.reveal() for c in commands] == ["sk_live_1", "jwt-2"]
    assert all(c.cwd == APP / "api" for c in commands)
    assert "sk_live_1" not in repr(commands)


def test_encore_secret_sync_names_every_missing_value() -> None:
    encore = registry("backend").create(
        "encore-ts", {"service": "api", "secrets": {"names": ["A_KEY", "B_KEY", "C_KEY"]}}
    )
    with pytest.raises(SecretsError) as info:
        encore.secret_commands({"B_KEY": SecretValue("b")}, APP)
    assert info.value.missing == ("A_KEY", "C_KEY")
    assert "A_KEY, C_KEY" in info.value.message


def test_encore_build_is_a_command_that_tags_the_requested_image() -> None:
    encore = registry("backend").create("encore-ts", {"service": "api", "app_dir": "api"})
    build = encore.build(BuildRequest(root=APP, image="registry.local/shop/api:abc-dirty"))
    assert build == BuildCommand(
        argv=("encore", "build", "docker", "registry.local/shop/api:abc-dirty"),
        cwd=APP / "api",
        image="registry.local/shop/api:abc-dirty",
        env={"DISABLE_ENCORE_TELEMETRY": "1"},
    )


def test_vite_without_public_url_sets_no_proxy_env() -> None:
    vite = registry("frontend").create("vite", {"service": "web"})
    proc = vite.dev_process(_ctx(env={}))
    assert dict(proc.env) == {}
    assert proc.readiness.log_pattern == "ready in"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"argv": ()}, "empty command"),
        ({"port": 0}, "out of range"),
        ({"stop_signal": "SIGNOPE"}, "unknown signal"),
    ],
)
def test_dev_process_rejects_nonsense(kw: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "backend", "argv": ("x",), "cwd": APP, **kw}
    with pytest.raises(ValueError, match=message):
        DevProcess(**args)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"http_path": "/a", "log_pattern": "b"}, "not both"),
        ({"http_path": "a"}, "must start with"),
        ({"timeout": 0}, "positive"),
    ],
)
def test_readiness_rejects_nonsense(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Readiness(**kw)


def test_signal_names() -> None:
    assert signal_number("term") is signal.SIGTERM
    assert signal_number("SIGHUP") is signal.SIGHUP
    assert signal_number("9") is signal.SIGKILL
    with pytest.raises(ValueError, match="unknown signal"):
        signal_number("SIGWHAT")
