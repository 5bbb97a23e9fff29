"""`stagecraft build`: build every image of the release locally, tagged with its version."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Build every image of the release: compose services with build: and the backend and
frontend providers' images, tagged <registry-or-project>/<service>:<version>.

The version is the git short sha (with -dirty for uncommitted changes) unless --version
is given. Images whose tag already exists locally are skipped (never for a dirty
version); --no-cache rebuilds them from scratch. --dry-run prints the build plan.
"""


@click.command(help=HELP)
@click.option(
    "--version",
    "version",
    metavar="VERSION",
    help="Tag the images with this version instead of the git tree's.",
)
@click.option("--no-cache", is_flag=True, help="Rebuild every image without Docker's cache.")
@click.option(
    "--platform",
    metavar="OS/ARCH",
    help="Build every image for this platform (e.g. linux/amd64) instead of each compose "
    "service's `platform:` or the local machine's.",
)
@global_options
@pass_app
def build(app: AppContext, version: str | None, no_cache: bool, platform: str | None) -> None:
    from stagecraft.deploy.build import execute_build, plan_build
    from stagecraft.deploy.release import new_release, resolve_version

    loaded = app.load_config()
    release = new_release(loaded.config, app.env, resolve_version(loaded.root, version))
    plan = plan_build(loaded, release, platform=platform)
    if app.dry_run:
        if app.json:
            app.output.json({**plan.to_json(), "dry_run": True})
            return
        app.output.result(f"build plan for version {release.version.value}:")
        for item in plan.images:
            app.output.result(f"  {item.service}: {item.image} ({_source(item)})")
        return

    def show(service: str, line: str) -> None:
        if app.verbose and not app.quiet:
            app.output.console.print(f"{service} | {line}", markup=False)

    results = execute_build(plan, no_cache=no_cache, on_line=show)
    if app.json:
        app.output.json({**plan.to_json(), "results": [r.to_json() for r in results]})
        return
    for result in results:
        took = f" in {result.duration:.1f}s" if result.status == "built" else ""
        app.output.result(f"{result.service}: {result.status} {result.image}{took}")


def _source(item: object) -> str:
    from stagecraft.deploy.build import ImageBuild

    assert isinstance(item, ImageBuild)
    if item.kind == "command":
        return f"{item.source}: {' '.join(item.argv)}"
    return f"{item.source}: docker build {item.context}"
