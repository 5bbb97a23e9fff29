"""Render the commented ``stagecraft.yml`` from :class:`~stagecraft.init.model.InitChoices`.

The text comes from a template written here (not a YAML dump) so the comments
sit where they help and the output is byte-for-byte deterministic.
"""

from __future__ import annotations

import json
import re

from stagecraft import DISTRIBUTION
from stagecraft.init.compose import ServiceInfo
from stagecraft.init.model import (
    BackendGuess,
    DatabaseGuess,
    FrontendGuess,
    InitChoices,
    backend_is_written,
    frontend_is_written,
)

COMMENT_COLUMN = 36
EXAMPLE_ADDRESS = "203.0.113.10"
"""An address from TEST-NET-3 (RFC 5737): obviously an example, never a real host."""

DEPLOYS_AS = "compose service it deploys as"
VITE_PACKAGE_MANAGERS = ("pnpm", "yarn")
"""Package managers the vite provider knows besides its default, npm."""

_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:-]*$")
_NUMBER_LIKE = re.compile(r"^[0-9._:eE+-]+$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", ".inf", ".nan"}


def render(choices: InitChoices) -> str:
    """The full ``stagecraft.yml`` text for ``choices``.

    Example::

        from stagecraft.init import detect, render

        text = render(detect(Path(".")).defaults())
        Path("stagecraft.yml").write_text(text)
    """
    sections = [
        _header(choices),
        _project(choices),
        _compose(choices),
        _backend(choices.backend),
        _frontend(choices.frontend),
        _databases(choices.database),
        _dev(choices),
        _environments(choices),
        _providers(),
    ]
    return "\n".join("\n".join(lines) + "\n" for lines in sections)


def scalar(value: str | int) -> str:
    """A YAML scalar: plain when unambiguous, else double-quoted; ``$`` escaped as ``$$``."""
    if isinstance(value, int):
        return str(value)
    text = value.replace("$", "$$")
    if text == "." or _is_plain(text):
        return text
    return json.dumps(text)


def _is_plain(text: str) -> bool:
    return bool(
        _PLAIN.match(text)
        and not text.endswith(":")
        and not _NUMBER_LIKE.match(text)
        and text.lower() not in _RESERVED
    )


def flow(items: tuple[str, ...] | list[str]) -> str:
    """A YAML flow sequence: ``[a, b]``."""
    return "[" + ", ".join(scalar(i) for i in items) + "]"


def _c(text: str, comment: str) -> str:
    """``text`` with ``# comment`` aligned at the comment column."""
    return f"{text.ljust(max(COMMENT_COLUMN - 2, len(text) + 1))} # {comment}"


def _header(choices: InitChoices) -> list[str]:
    return [
        f"# Stagecraft configuration for {choices.project}, written by `stagecraft init`.",
        "# `stagecraft dev` runs the project on this machine; `stagecraft deploy --env NAME`",
        "# ships it to servers. Check your edits with `stagecraft config validate`.",
        "# Values may use ${VAR} and ${VAR:-default}; unknown keys are errors.",
        f"# Install Stagecraft: `pipx install {DISTRIBUTION}` "
        f"(or `uv tool install {DISTRIBUTION}`).",
    ]


def _project(choices: InitChoices) -> list[str]:
    return [
        "# The project name: the Docker Compose project name, and the dev domain",
        f"# ({choices.domain}). To deploy through an image registry, write",
        f"#   project: {{name: {choices.project}, registry: ghcr.io/acme}}",
        f"project: {scalar(choices.project)}",
    ]


def _compose(choices: InitChoices) -> list[str]:
    return [
        "# The canonical compose file. Stagecraft reads it with `docker compose config`",
        "# and never edits it; dev and deploy add generated override files.",
        f"compose: {scalar(choices.compose_file)}",
    ]


def _backend(backend: BackendGuess | None) -> list[str]:
    intro = [
        "# Backend: its dev server runs on this machine under `stagecraft dev` (with hot",
        "# reload); deploys run the compose service named by `service`.",
    ]
    if backend is None:
        return [
            *intro,
            "# None was detected. A Node API built by the compose service `api` would be:",
            "# backend:",
            "#   provider: generic",
            "#   providers:",
            "#     generic:",
            "#       service: api",
            "#       dev: {command: [npm, run, dev], workdir: api, port: 4000}",
        ]
    head = ["backend:", f"  provider: {scalar(backend.provider)}", "  providers:"]
    head.append(f"    {scalar(backend.provider)}:")
    encore = backend.provider == "encore-ts"
    body = _encore_block(backend) if encore else _generic_block(backend)
    if backend_is_written(backend):
        return intro + head + body
    if backend.service is None:
        why = [
            "# No compose service was found to deploy it as: set `service` to the one that",
            "# runs the backend image, then uncomment this section.",
        ]
    else:  # the generic provider needs a dev command
        why = [
            f"# No dev command was detected for the compose service {backend.service}: fill in",
            "# dev.command and uncomment this section so `stagecraft dev` can run it.",
        ]
    return [*intro, *why, *_commented(head + body)]


def _generic_block(backend: BackendGuess) -> list[str]:
    command = flow(backend.command) if backend.command else '[sh, -c, "your dev server command"]'
    if backend.port is not None:
        port = _c(f"        port: {backend.port}", "where the dev server listens")
    else:
        port = _c("        # port: 4000", "where the dev server listens")
    return [
        _c(f"      service: {scalar(backend.service or 'api')}", DEPLOYS_AS),
        "      dev:",
        f"        command: {command}",
        f"        workdir: {scalar(backend.workdir or '.')}",
        port,
        "        # env: {LOG_LEVEL: debug}",
        _c("        # ready: {http: /healthz}", 'or {log: "listening on"}'),
    ]


def _encore_block(backend: BackendGuess) -> list[str]:
    return [
        _c(f"      service: {scalar(backend.service or 'api')}", DEPLOYS_AS),
        _c(f"      app_dir: {scalar(backend.workdir or '.')}", "where encore.app is"),
        "      dev:",
        _c(f"        port: {backend.port}", f"encore run --listen 127.0.0.1:{backend.port}"),
    ]


def _frontend(frontend: FrontendGuess | None) -> list[str]:
    intro = ["# Frontend: the Vite dev server; hot module reload works through the dev proxy."]
    if frontend is None:
        return [
            *intro,
            "# None was detected. A Vite app in web/ built by the compose service `web` would be:",
            "# frontend:",
            "#   provider: vite",
            "#   providers:",
            "#     vite: {service: web, workdir: web, port: 5173}",
        ]
    lines = [
        "frontend:",
        f"  provider: {scalar(frontend.provider)}",
        "  providers:",
        f"    {scalar(frontend.provider)}:",
        _c(f"      service: {scalar(frontend.service or 'web')}", DEPLOYS_AS),
        f"      workdir: {scalar(frontend.workdir)}",
        f"      port: {frontend.port}",
    ]
    if frontend.package_manager in VITE_PACKAGE_MANAGERS:
        lines.append(f"      package_manager: {scalar(frontend.package_manager)}")
    if not frontend_is_written(frontend):
        return [
            *intro,
            f"# No compose service builds {frontend.workdir}: set `service` to the one that",
            "# serves the built app, then uncomment this section.",
            *_commented(lines),
        ]
    return intro + lines


def _commented(lines: list[str]) -> list[str]:
    return [f"# {line}" for line in lines]


def _databases(database: DatabaseGuess | None) -> list[str]:
    intro = [
        "# Databases: the env var holding the connection URL (set for the dev servers) and",
        "# the migrations: engine raw applies the .sql files in order; strategy is",
        "# pre_deploy (before the new release starts), post_deploy or manual.",
    ]
    if database is None:
        return [
            *intro,
            "# No migrations directory was detected. With one, and a postgres service:",
            "# databases:",
            "#   main:",
            "#     service: postgres",
            "#     url_env: DATABASE_URL",
            "#     migrations: {engine: raw, path: migrations, strategy: pre_deploy}",
        ]
    lines = [*intro, "databases:", f"  {scalar(database.name)}:"]
    if database.service:
        lines.append(_c(f"    service: {scalar(database.service)}", "compose service that runs it"))
    else:
        lines.append(_c("    # service: postgres", "compose service that runs it"))
    lines.append(f"    url_env: {scalar(database.url_env)}")
    lines.append(
        f"    migrations: {{engine: raw, path: {scalar(database.migrations)}, "
        "strategy: pre_deploy}"
    )
    return lines


def _dev(choices: InitChoices) -> list[str]:
    lines = [
        "# Local development: `stagecraft dev` starts the infra services from the compose",
        "# file, the dev servers above, and an HTTPS proxy at https://<route>.<domain>.",
        "dev:",
        f"  domain: {scalar(choices.domain)}",
        "  https: true",
        _c(f"  infra: {flow(choices.infra)}", "compose services started for dev"),
    ]
    if not choices.routes:
        return [
            *lines,
            _c("  # routes:", "<name>.<domain> -> backend | frontend | service:port"),
            "  #   api: backend",
        ]
    lines.append(_c("  routes:", "<name>.<domain> -> target"))
    lines += [f"    {scalar(r.name)}: {scalar(r.target)}" for r in choices.routes]
    return lines


def _environments(choices: InitChoices) -> list[str]:
    services = [s.name for s in choices.services]
    lines = [
        "# Environments: where `stagecraft deploy --env NAME` ships the project. Hosts are",
        "# plain Linux servers with Docker, reached over SSH. Uncomment, fill in your host,",
        "# and run `stagecraft config validate --env staging`.",
        "#",
        "# environments:",
        "#   staging:",
        "#     hosts:",
        f"#       web-1: {{address: {EXAMPLE_ADDRESS}, user: deploy, roles: [web]}}",
        _c("#     roles:", "role -> compose services on its hosts"),
        f"#       web: {flow(services)}",
        _c("#     images: {transfer: ssh}", "or {transfer: registry, registry: ghcr.io/acme,"),
        _c("#", "    username: acme, password_secret: REGISTRY_TOKEN}"),
    ]
    routes = _public_routes(choices)
    if routes:
        lines.append(_c("#     routes:", "public routes through each host's proxy"))
        lines += [f"#       {line}" for line in routes]
    secret = "POSTGRES_PASSWORD" if choices.database else "SECRET_KEY"
    lines += [
        _c("#     tls: acme", "acme | internal | off"),
        "#     env: {LOG_LEVEL: info}",
        _c(f"#     secrets: [{secret}]", "names only; values come from secrets_provider"),
        "#     secrets_provider: {provider: dotenv, path: .env.staging}",
    ]
    return lines


def _public_routes(choices: InitChoices) -> list[str]:
    """Example public routes for the deployed backend and frontend services."""
    routes = []
    backend = choices.backend
    if backend and backend.service:
        port = _service_port(choices, backend.service) or backend.port
        if port:
            routes.append(
                f"api: {{host: api.staging.example.com, service: {scalar(backend.service)}, "
                f"port: {port}}}"
            )
    frontend = choices.frontend
    if frontend and frontend.service:
        port = _service_port(choices, frontend.service) or 80
        routes.append(
            f"app: {{host: staging.example.com, service: {scalar(frontend.service)}, port: {port}}}"
        )
    return routes


def _service_port(choices: InitChoices, name: str) -> int | None:
    service: ServiceInfo | None = next((s for s in choices.services if s.name == name), None)
    return service.port if service else None


def _providers() -> list[str]:
    return [
        "# Providers for the rest (each has its own settings under providers.<id>):",
        "# proxy: {provider: caddy}",
        "# network: {provider: tailscale, providers: {tailscale: {auth_key_env: TS_AUTHKEY}}}",
        "# ci: {provider: github}",
    ]
