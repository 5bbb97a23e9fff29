"""Global options shared by every command, and the per-invocation app context.

Every command (and group) carries the global flags, so they work before or
after the command name: each flag's callback stores it on the one
:class:`AppContext` of the invocation, the last value wins, and a flag that
changes logging re-installs the log handler at once, so
``stagecraft config validate -v`` logs at debug level like
``stagecraft -v config validate``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stagecraft.cli.completion import complete_environments

if TYPE_CHECKING:
    from stagecraft.cli.output import Output
    from stagecraft.config.loader import LoadedConfig

F = TypeVar("F", bound=Callable[..., Any])

TRUE_WORDS = {"1", "true", "yes", "on"}
LOGGING_FLAGS = frozenset({"log_format", "verbose", "quiet"})
OUTPUT_FLAGS = frozenset({"json", "quiet", "verbose", "no_color"})


@dataclass
class AppContext:
    """What every command needs: resolved global flags and the output."""

    env: str | None = None
    config_path: Path | None = None
    verbose: bool = False
    quiet: bool = False
    json: bool = False
    dry_run: bool = False
    no_color: bool = False
    log_format: str = "human"
    _output: Output | None = None
    _given: set[str] = field(default_factory=set, repr=False)
    """Flags given on the command line: their environment variables do not apply."""
    _logging: tuple[str, bool, bool] | None = field(default=None, repr=False)
    """What the log handler was installed with; None until :meth:`finish_setup`."""

    @property
    def output(self) -> Output:
        if self._output is None:
            from stagecraft.cli.output import Output

            self._output = Output(
                json_mode=self.json, quiet=self.quiet, verbose=self.verbose, no_color=self.no_color
            )
        return self._output

    def set_flag(self, name: str, value: Any) -> None:
        """Store a global flag given on the command line; logging and output follow it."""
        setattr(self, name, value)
        self._given.add(name)
        if name in OUTPUT_FLAGS:
            self._output = None
        if name in LOGGING_FLAGS and self._logging is not None:
            self.configure_logging()

    def finish_setup(self) -> None:
        """Fill flags from STAGECRAFT_* variables and install the log handler.

        Called once the root command's flags are parsed; flags given after the
        command name arrive later through :meth:`set_flag`.
        """
        apply_env_fallbacks(self)
        self.configure_logging()

    def configure_logging(self) -> None:
        """(Re)install the log handler for the current --log-format, -v and --quiet."""
        wanted = (self.log_format, self.verbose, self.quiet)
        if wanted == self._logging:
            return
        from stagecraft import log

        log.configure(
            stream=sys.stderr, fmt=self.log_format, verbose=self.verbose, quiet=self.quiet
        )
        self._logging = wanted

    def require_env(self) -> str:
        """The environment name; commands that touch hosts need one."""
        from stagecraft.errors import UsageError

        if not self.env:
            raise UsageError(
                "this command needs an environment",
                hint="pass --env NAME (or set STAGECRAFT_ENV)",
            )
        return self.env

    def load_config(
        self,
        *,
        compose: bool = True,
        provisioned: bool = True,
        on_config: Callable[[LoadedConfig], None] | None = None,
    ) -> LoadedConfig:
        """Find, load and validate ``stagecraft.yml`` (and check the compose file).

        ``provisioned=False`` accepts hosts of ``--env`` that have no address yet;
        ``on_config`` runs before the compose model is loaded.
        """
        from stagecraft.config.loader import load_project

        return load_project(
            self.config_path,
            env=self.env,
            check_compose=compose,
            provisioned=provisioned,
            on_config=on_config,
        )


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """Callback storing a global option on the invocation's AppContext; later values win."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        app = ctx.ensure_object(AppContext)
        if value is None or value is False:
            return value
        app.set_flag(name, value)
        return value

    return callback


def global_options(func: F) -> F:
    """Attach the global flags; accepted before or after the subcommand name."""
    options = [
        click.option(
            "-e",
            "--env",
            "env",
            metavar="NAME",
            expose_value=False,
            callback=_set("env"),
            shell_complete=complete_environments,
            help="Target environment [env: STAGECRAFT_ENV].",
        ),
        click.option(
            "-c",
            "--config",
            "config_path",
            metavar="PATH",
            expose_value=False,
            type=click.Path(path_type=Path),
            callback=_set("config_path"),
            help="Path to stagecraft.yml [env: STAGECRAFT_CONFIG].",
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            expose_value=False,
            callback=_set("verbose"),
            help="Show debug output.",
        ),
        click.option(
            "--quiet",
            is_flag=True,
            expose_value=False,
            callback=_set("quiet"),
            help="Only errors and results.",
        ),
        click.option(
            "--json",
            "json",
            is_flag=True,
            expose_value=False,
            callback=_set("json"),
            help="Machine output on stdout (logs stay on stderr).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            expose_value=False,
            callback=_set("dry_run"),
            help="Print the plan, change nothing.",
        ),
        click.option(
            "--no-color",
            is_flag=True,
            expose_value=False,
            callback=_set("no_color"),
            help="Plain output without colour [env: NO_COLOR].",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["human", "json"]),
            expose_value=False,
            callback=_set("log_format"),
            help="Log lines for people, or one JSON object per event.",
        ),
    ]
    # No --version here: `build`, `deploy` and `plan` take `--version VERSION` of their own.
    for option in reversed(options):
        func = option(func)
    return func


def apply_env_fallbacks(app: AppContext) -> None:
    """Fill global flags not given on the command line from STAGECRAFT_* variables."""
    given = app._given
    if "env" not in given and os.environ.get("STAGECRAFT_ENV"):
        app.env = os.environ["STAGECRAFT_ENV"]
    if "config_path" not in given and os.environ.get("STAGECRAFT_CONFIG"):
        app.config_path = Path(os.environ["STAGECRAFT_CONFIG"])
    if not app.no_color and os.environ.get("NO_COLOR"):
        app.no_color = True
    for name in ("verbose", "quiet", "dry_run"):
        var = "STAGECRAFT_" + name.upper()
        if not getattr(app, name) and os.environ.get(var, "").lower() in TRUE_WORDS:
            setattr(app, name, True)
    if "log_format" not in given and os.environ.get("STAGECRAFT_LOG_FORMAT") == "json":
        app.log_format = "json"


pass_app = click.make_pass_decorator(AppContext, ensure=True)
