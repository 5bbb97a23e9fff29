"""The ``x-stagecraft`` block of a compose service: per-service deploy settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from stagecraft.config.durations import Duration

Kind = Literal["web", "worker", "accessory"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XHealthcheck(_Model):
    """HTTP health check the deploy waits on before switching traffic."""

    path: str = Field(default="/", description="HTTP path that answers 2xx when healthy.")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="Container port to probe (default: the routed port)."
    )
    interval: Duration = Field(default=1.0, description="Time between probes.")
    timeout: Duration = Field(default=5.0, description="Timeout of one probe.")


class XStagecraft(_Model):
    """``x-stagecraft:`` in a compose service.

    Example (in ``docker-compose.yml``)::

        services:
          api:
            x-stagecraft:
              kind: web
              healthcheck: {path: /healthz, port: 4000, interval: 1s, timeout: 5s}
              drain: 10s
    """

    kind: Kind | None = Field(
        default=None,
        description="web | worker | accessory (default: routed -> web, stateful -> accessory, "
        "else worker).",
    )
    healthcheck: XHealthcheck | None = Field(default=None, description="HTTP health check.")
    drain: Duration | None = Field(
        default=None,
        description="Longest drain for this service (overrides deploy.drain): after the "
        "switch the old containers are stopped as soon as the proxy has no request in flight "
        "to them, at the latest after this long.",
    )
    ready_after: Duration | None = Field(
        default=None,
        description="For a service with neither a Docker healthcheck nor an x-stagecraft "
        "healthcheck: ready once it kept running this long (default 3s).",
    )
