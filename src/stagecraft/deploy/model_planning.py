"""Compute a :class:`~stagecraft.deploy.plan.DeployPlan` for an environment end to end.

Renders every host, reads every host's state over SSH (in parallel), compares,
and asks the migration engine for pending migrations when the database is
deployed (``unknown`` otherwise, or when it cannot be reached). Changes nothing.

Example::

    from stagecraft.deploy.model_planning import compute_plan

    plan = compute_plan(loaded, "production", explicit_version=None)
    print(render_text(plan))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from stagecraft import log
from stagecraft.config.loader import LoadedConfig
from stagecraft.deploy.compose_env import EnvironmentCompose, environment_compose
from stagecraft.deploy.plan import DeployPlan, MigrationPlan, make_plan
from stagecraft.deploy.release import new_release, resolve_version
from stagecraft.deploy.render import render_hosts
from stagecraft.deploy.secret_digest import digests, read_key, throwaway_key
from stagecraft.deploy.state.containers import read_states
from stagecraft.deploy.state.layout import environment_hosts
from stagecraft.errors import StagecraftError
from stagecraft.providers.secrets import SecretValue
from stagecraft.runtime.ssh import SSHHost, SSHOptions

logger = logging.getLogger(__name__)


def compute_plan(
    loaded: LoadedConfig,
    env: str,
    *,
    explicit_version: str | None = None,
    ssh_options: SSHOptions | None = None,
    migrations: bool = True,
    now: datetime | None = None,
    model: EnvironmentCompose | None = None,
) -> DeployPlan:
    """The plan of deploying the current version (or ``explicit_version``) to ``env``.

    ``model`` is the environment's compose model when already loaded
    (:func:`~stagecraft.deploy.compose_env.load_for_environment`).
    """
    from stagecraft.deploy.pipeline import resolve_secrets

    environment = loaded.environment(env)
    version = resolve_version(loaded.root, explicit_version)
    release = new_release(loaded.config, env, version, now)
    model = model if model is not None else environment_compose(loaded, env)
    render_hosts(loaded, env, release, compose=model)  # bad config fails before SSH
    values = _secret_values(loaded, env, resolve_secrets)
    hosts = environment_hosts(environment, ssh_options)
    try:
        key = _digest_key(hosts[0], release.project, env) if values else throwaway_key()
        actual = read_states(
            hosts, project=release.project, env=env, parallel=environment.deploy.parallel
        )
    finally:
        for host in hosts:
            host.close()
    found = digests(key, values) if values is not None else None
    desired = render_hosts(loaded, env, release, compose=model, secret_digests=found)
    plan = make_plan(release, desired, actual)
    if not migrations:
        return plan
    pending = migration_plans(loaded, env, plan, ssh_options)
    return make_plan(release, desired, actual, pending)


def _secret_values(
    loaded: LoadedConfig, env: str, resolve: Callable[..., Mapping[str, SecretValue]]
) -> dict[str, str] | None:
    """The secrets' values, or None (with a warning) when the provider cannot give them.

    Planning must not need production's secrets: without them the plan does not
    say whether a secret changed, and says so.
    """
    try:
        return {k: v.reveal() for k, v in resolve(loaded, env, None).items()}
    except StagecraftError as exc:
        log.event(
            logger,
            logging.WARNING,
            f"secrets of {env} not resolved ({exc.message}): the plan does not show "
            "whether they changed",
            phase="plan",
        )
        return None


def _digest_key(primary: SSHHost, project: str, env: str) -> bytes:
    """The environment's secret-digest key, or a throw-away one when it has none yet.

    An unreachable primary also gets a throw-away key: its own plan says
    unreachable (the state read fails), the others show secrets as changed.
    """
    try:
        key = read_key(primary, project, env)
    except StagecraftError as exc:
        log.event(
            logger,
            logging.DEBUG,
            f"secret digests unknown: {exc.message}",
            host=primary.name,
            phase="plan",
        )
        key = None
    return key if key is not None else throwaway_key()


def migration_plans(
    loaded: LoadedConfig,
    env: str,
    plan: DeployPlan,
    ssh_options: SSHOptions | None,
) -> list[MigrationPlan]:
    """Pending migrations per database; ``unknown`` (with why) when they cannot be read."""
    from stagecraft.migrate.runner import engine_for, open_target, setups

    found: list[MigrationPlan] = []
    for setup in setups(loaded):
        service = loaded.config.databases[setup.database].service
        if service is not None and not _deployed(plan, service):
            reason = f"database service {service} is not running in {env} yet"
            found.append(MigrationPlan(setup.database, None, reason))
            continue
        try:
            engine = engine_for(setup)
            with open_target(loaded, setup, env=env, ssh_options=ssh_options) as target:
                report = engine.plan(target)
        except StagecraftError as exc:
            # The message may name the connection; keep it out of the plan and logs.
            log.event(logger, logging.INFO, f"migrations of {setup.database}: {type(exc).__name__}")
            found.append(MigrationPlan(setup.database, None, "database not reachable"))
            continue
        found.append(MigrationPlan(setup.database, tuple(m.name for m in report.pending)))
    return found


def _deployed(plan: DeployPlan, service: str) -> bool:
    """Whether ``service`` runs on some reachable host (its action is keep or replace)."""
    return any(
        s.service == service and s.action in ("keep", "replace")
        for host in plan.hosts
        for s in host.services
    )
