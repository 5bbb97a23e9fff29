"""Migration hooks for ``stagecraft deploy`` and ``stagecraft dev``.

Each database's ``migrations.strategy`` says when deploy runs it:
``pre_deploy`` (before the rollout), ``post_deploy`` (after it) or
``manual`` (never automatically; only ``stagecraft migrate``).

Deploy calls :func:`run_phase` at each phase; ``dev`` calls :func:`apply_dev`
once the dev infrastructure is up::

    from stagecraft.migrate.hooks import apply_dev, run_phase

    results = run_phase(loaded, "staging", "pre_deploy")      # through SSH tunnels
    for r in results:
        print(r.database, r.name, f"{r.duration * 1000:.0f} ms")
    apply_dev(loaded, wait=30)                                # local dev databases

Both stop at the first failure (raising the engine's error, e.g.
:class:`~stagecraft.providers.migration.MigrationFailedError`); migrations
applied before it stay applied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from stagecraft import log
from stagecraft.migrate.runner import MigrationSetup, engine_for, open_target, setups
from stagecraft.providers.migration import (
    DatabaseUnreachableError,
    MigrationResult,
    OnApplied,
)

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.runtime.ssh import SSHOptions

logger = logging.getLogger(__name__)

Phase = Literal["pre_deploy", "post_deploy"]
PHASES: tuple[str, ...] = ("pre_deploy", "post_deploy")


def databases_for_phase(loaded: LoadedConfig, phase: Phase) -> list[MigrationSetup]:
    """The databases whose strategy is ``phase``."""
    if phase not in PHASES:
        raise ValueError(f"unknown migration phase {phase!r}; expected one of {PHASES}")
    return [s for s in setups(loaded) if s.strategy == phase]


def run_phase(
    loaded: LoadedConfig,
    env: str,
    phase: Phase,
    *,
    environ: Mapping[str, str] | None = None,
    ssh_options: SSHOptions | None = None,
    allow_out_of_order: bool = False,
    on_applied: OnApplied | None = None,
) -> list[MigrationResult]:
    """Apply the pending migrations of every ``phase`` database of ``env``, in config order."""
    results: list[MigrationResult] = []
    for setup in databases_for_phase(loaded, phase):
        with open_target(
            loaded, setup, env=env, environ=environ, ssh_options=ssh_options
        ) as target:
            log.event(
                logger,
                logging.INFO,
                f"migrating database {setup.database} ({target.shown})",
                phase=phase,
            )
            applied = engine_for(setup).apply(
                target,
                allow_out_of_order=allow_out_of_order,
                on_applied=_logged(phase, on_applied),
            )
        results.extend(applied)
    return results


def apply_dev(
    loaded: LoadedConfig,
    *,
    environ: Mapping[str, str] | None = None,
    wait: float = 0.0,
    on_applied: OnApplied | None = None,
) -> list[MigrationResult]:
    """Apply pending migrations of the local dev databases (all but ``manual`` ones).

    ``wait`` is how long to keep retrying a database that does not accept
    connections yet (it may still be starting).
    """
    results: list[MigrationResult] = []
    for setup in setups(loaded):
        if setup.strategy == "manual":
            log.event(
                logger,
                logging.INFO,
                f"database {setup.database}: migrations are manual; run `stagecraft migrate`",
                phase="dev",
            )
            continue
        results.extend(_apply_when_ready(loaded, setup, environ, wait, _logged("dev", on_applied)))
    return results


def _apply_when_ready(
    loaded: LoadedConfig,
    setup: MigrationSetup,
    environ: Mapping[str, str] | None,
    wait: float,
    on_applied: OnApplied,
) -> list[MigrationResult]:
    deadline = time.monotonic() + wait
    engine = engine_for(setup)
    while True:
        try:
            with open_target(loaded, setup, environ=environ) as target:
                return engine.apply(target, on_applied=on_applied)
        except DatabaseUnreachableError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _logged(phase: str, on_applied: OnApplied | None) -> OnApplied:
    def report(result: MigrationResult) -> None:
        log.event(
            logger,
            logging.INFO,
            f"database {result.database}: applied {result.name} ({result.duration * 1000:.0f} ms)",
            phase=phase,
        )
        if on_applied is not None:
            on_applied(result)

    return report
