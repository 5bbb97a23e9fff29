"""`stagecraft remove --env E [SERVICE...]` and `stagecraft prune --env E`."""

from __future__ import annotations

import sys

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

REMOVE_HELP = """Take the app (or only SERVICE...) off every host of --env.

Stops and removes its containers, its routes on the hosts' proxy (the proxy
keeps serving every other app), its release files and, with --images, the
images no other environment on the host retains. With driver: swarm, the
stack's services (or SERVICE...) are removed through a manager and Swarm stops
their tasks on every node; the whole app takes its Swarm secrets along.
Shows what it will remove and asks first (--yes for scripts; --dry-run only
shows it). Each host's ledger records the removal; `stagecraft deploy` brings
the app back.
"""

PRUNE_HELP = """Remove --env's old release images now, as a deploy does after it finishes.

Keeps the images of the last deploy.retain successful releases (--retain to
override) and of the newest release, and every image another environment on
the host retains. --dry-run lists them per host.
"""


@click.command(help=REMOVE_HELP)
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.option("--images", is_flag=True, help="Also remove the app's images from the hosts.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--lock-wait", type=float, default=0, metavar="SECONDS", help="Wait for the lock.")
@global_options
@pass_app
def remove(
    app: AppContext, services: tuple[str, ...], images: bool, yes: bool, lock_wait: float
) -> None:
    from stagecraft.cli.failing import fail, unreachable
    from stagecraft.deploy.edge import edge_for
    from stagecraft.deploy.release import Version, new_release
    from stagecraft.deploy.remove import plan_removal, remove, render_removal
    from stagecraft.deploy.state import lock
    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.errors import UsageError
    from stagecraft.runtime.fanout import GroupError

    env = app.require_env()
    loaded = app.load_config()
    for name in services:
        loaded.check_service(name)
    environment = loaded.environment(env)
    project = loaded.config.project.name
    hosts = environment_hosts(environment)
    release = new_release(loaded.config, env, Version("removed", source="flag"))
    info = lock.LockInfo.create(
        project, env, host=hosts[0].name, command="remove", release=release.id
    )
    try:
        with lock.held(hosts[0], info, wait=lock_wait):
            proxy = edge_for(loaded, env)
            swarm = environment.managers[0] if environment.driver == "swarm" else None
            plan = plan_removal(
                hosts, project, env, proxy, services=services, images=images,
                parallel=environment.deploy.parallel, swarm_leader=swarm,
            )  # fmt: skip
            if app.json and (app.dry_run or not yes):
                app.output.json({**plan.to_json(), "dry_run": True})
            else:
                app.output.result(render_removal(plan))
            if app.dry_run:
                return
            if all(h.empty for h in plan.hosts if h.error is None):
                if plan.unreachable:
                    unreachable(app, plan.unreachable, "nothing to remove on the other hosts")
                return
            if not yes:
                if not sys.stdin.isatty():
                    raise UsageError(
                        f"{env}: not removing without confirmation",
                        hint="pass --yes to remove what is listed above",
                    )
                click.confirm("Remove all of the above?", abort=True, err=True)
            result = remove(hosts, plan, release, proxy, parallel=environment.deploy.parallel)
    finally:
        for host in hosts:
            host.close()
    for outcome in result.outcomes:
        if outcome.value is not None:
            app.output.result(f"{outcome.name}: removed")
    if app.json and yes:
        app.output.json({**plan.to_json(), "removed": [o.name for o in result.succeeded]})
    try:
        result.raise_for_failures("hosts")
    except GroupError as exc:
        fail(app, exc)
    if plan.unreachable:
        unreachable(app, plan.unreachable, "removed from the other hosts")


@click.command(help=PRUNE_HELP)
@click.option("--retain", type=click.IntRange(min=1), metavar="N", help="Releases to keep.")
@global_options
@pass_app
def prune(app: AppContext, retain: int | None) -> None:
    from stagecraft.cli.failing import unreachable
    from stagecraft.deploy.rollout.record import prunable, remove_images
    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.runtime.fanout import describe

    env = app.require_env()
    loaded = app.load_config(compose=False)
    environment = loaded.environment(env)
    keep = retain or environment.deploy.retain
    hosts = environment_hosts(environment)
    try:
        found = prunable(
            hosts, loaded.config.project.name, env, retain=keep,
            parallel=environment.deploy.parallel,
        )  # fmt: skip
        failed = {n: describe(n, v) for n, v in found.items() if isinstance(v, BaseException)}
        old = {n: v for n, v in found.items() if not isinstance(v, BaseException)}
        if not app.dry_run:
            remove_images(hosts, found, parallel=environment.deploy.parallel)
    finally:
        for host in hosts:
            host.close()
    verb = "would remove" if app.dry_run else "removed"
    if app.json:
        app.output.json(
            {"env": env, "retain": keep, "dry_run": app.dry_run,
             "images": {n: list(v) for n, v in old.items()}, "unreachable": failed}
        )  # fmt: skip
    else:
        for name, images in sorted(old.items()):
            listed = ", ".join(images) if images else "nothing"
            app.output.result(f"{name}: {verb} {listed}")
    if failed:
        unreachable(app, failed, f"pruned the other hosts (keeping {keep} releases)")
