"""`stagecraft config validate | show | schema`."""

from __future__ import annotations

import json

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group


@click.group(cls=Group, help="Validate, show or export the schema of stagecraft.yml.")
@global_options
def config() -> None:
    pass


@config.command(help="Validate stagecraft.yml and the compose services it names.")
@click.option("--no-compose", is_flag=True, help="Skip loading the compose file.")
@global_options
@pass_app
def validate(app: AppContext, no_compose: bool) -> None:
    loaded = app.load_config(compose=not no_compose)
    cfg = loaded.config
    envs = sorted(cfg.environments or {})
    services = sorted(loaded.compose.services) if loaded.compose else []
    if app.json:
        app.output.json(
            {
                "valid": True,
                "config": str(loaded.path),
                "project": cfg.project.name,
                "environments": envs,
                "compose_services": services,
            }
        )
        return
    summary = f"{loaded.path}: valid (project {cfg.project.name}"
    if envs:
        summary += f", environments: {', '.join(envs)}"
    if loaded.compose is not None:
        summary += f", {len(services)} compose services"
    app.output.result(summary + ")")


@config.command(help="Print the resolved config (for --env E: that environment), secrets redacted.")
@global_options
@pass_app
def show(app: AppContext) -> None:
    from stagecraft.config.show import resolved_view

    loaded = app.load_config(compose=False)
    view = resolved_view(loaded, app.env)
    if app.json:
        app.output.json(view)
        return
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(view, app.output.stdout)


@config.command(help="Print the JSON Schema of stagecraft.yml (for editor completion).")
@global_options
@pass_app
def schema(app: AppContext) -> None:
    from stagecraft.config.schema import json_schema

    app.output.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
