"""The ``stagecraft`` entry point: root group, lazy subcommands, error mapping.

Only ``click`` is imported at start-up; every command module (and pydantic,
rich, ruamel) is imported when that command runs, so ``--help`` stays fast.
A shell asking for completions (``_STAGECRAFT_COMPLETE`` set, see
``cli/completion.py``) is answered before anything else runs.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import click

from stagecraft import __version__
from stagecraft.cli import completion
from stagecraft.cli.context import AppContext, global_options
from stagecraft.cli.groups import Group

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from stagecraft.cli.signals import InterruptSignals

# name -> (module, attribute, one-line help). Help is duplicated here so that
# `stagecraft --help` does not import every command module.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "build": ("stagecraft.cli.commands.build", "build", "Build the release images locally."),
    "completion": (
        "stagecraft.cli.commands.completion",
        "completion",
        "Print the shell completion script for bash, zsh or fish.",
    ),
    "ci": (
        "stagecraft.cli.commands.ci",
        "ci",
        "Write the CI workflow that tests, builds and deploys.",
    ),
    "config": (
        "stagecraft.cli.commands.config",
        "config",
        "Validate, show or export the config schema.",
    ),
    "dashboard": (
        "stagecraft.cli.commands.dashboard",
        "dashboard",
        "Serve a local web page showing an environment at a glance.",
    ),
    "deploy": ("stagecraft.cli.commands.deploy", "deploy", "Deploy a version with zero downtime."),
    "dev": ("stagecraft.cli.commands.dev", "dev", "Run infra, dev servers and the HTTPS proxy."),
    "exec": (
        "stagecraft.cli.commands.exec_",
        "exec_",
        "Run a command in a running container of a service.",
    ),
    "doctor": (
        "stagecraft.cli.commands.doctor",
        "doctor",
        "Check tools, config, providers and hosts.",
    ),
    "hosts": (
        "stagecraft.cli.commands.hosts",
        "hosts",
        "Prepare the hosts of an environment (docker check, proxy).",
    ),
    "infra": (
        "stagecraft.cli.commands.infra",
        "infra",
        "Create or destroy an environment's servers (cloud provider).",
    ),
    "init": (
        "stagecraft.cli.commands.init",
        "init",
        "Write a commented stagecraft.yml for this project.",
    ),
    "lock": ("stagecraft.cli.commands.lock", "lock", "Inspect or break the deploy lock."),
    "migrate": (
        "stagecraft.cli.commands.migrate",
        "migrate",
        "Apply pending database migrations, or show the plan or status.",
    ),
    "plan": ("stagecraft.cli.commands.plan", "plan", "Show what a deploy would change per host."),
    "prune": (
        "stagecraft.cli.commands.remove",
        "prune",
        "Remove an environment's old release images now.",
    ),
    "remove": (
        "stagecraft.cli.commands.remove",
        "remove",
        "Take the app (or some services) off an environment's hosts.",
    ),
    "logs": (
        "stagecraft.cli.commands.logs",
        "logs",
        "Show a service's logs across hosts, merged; -f to follow.",
    ),
    "secrets": (
        "stagecraft.cli.commands.secrets",
        "secrets",
        "Check that every declared secret of an environment resolves.",
    ),
    "ssh": ("stagecraft.cli.commands.ssh", "ssh", "Open a shell (or run a command) on a host."),
    "status": (
        "stagecraft.cli.commands.status",
        "status",
        "Show release, health, uptime and replicas per host and service.",
    ),
    "rollback": ("stagecraft.cli.commands.rollback", "rollback", "Redeploy a previous release."),
    "releases": (
        "stagecraft.cli.commands.releases",
        "releases",
        "List an environment's releases, or show one.",
    ),
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(Group):
    """A group whose subcommands are imported only when invoked."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr, _ = self.lazy[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][2]) for name in sorted(self.lazy)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names with their help from the table (nothing imported), then options."""
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=self.lazy[name][2])
            for name in sorted(self.lazy)
            if name.startswith(incomplete)
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings=CONTEXT_SETTINGS,
    help="Run a Docker Compose app locally and deploy it to servers over SSH with zero downtime.",
)
@global_options
@click.version_option(__version__, "-V", "--version", prog_name="stagecraft")
@click.pass_context
def cli(ctx: click.Context) -> None:
    ctx.ensure_object(AppContext)


@cli.result_callback()
def _after(*_args: Any, **_kwargs: Any) -> None:
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with the documented exit code."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests use this)."""
    instruction = completion.completion_request()
    if instruction is not None:
        return completion.answer(cli, instruction)
    from stagecraft.cli.signals import interrupts_like_ctrl_c

    # SIGTERM and SIGHUP (CI cancelling, `timeout`, a closed terminal) stop the
    # command exactly like Ctrl-C: same cleanup, same exit code (cli/signals.py).
    with interrupts_like_ctrl_c() as signals:
        return _run(argv, signals)


def _run(argv: list[str] | None, signals: InterruptSignals) -> int:
    from stagecraft.errors import ExitCode

    app = AppContext()
    try:
        with cli.make_context(
            "stagecraft", list(sys.argv[1:] if argv is None else argv), obj=app
        ) as ctx:
            app.finish_setup()
            cli.invoke(ctx)
        return ExitCode.OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except click.exceptions.Abort:
        return ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        by = signals.received
        _stderr(f"interrupted by {by.name}" if by is not None else "interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.FAILED
    except Exception as exc:
        from stagecraft.cli.render import render_error

        return render_error(exc, app)


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
