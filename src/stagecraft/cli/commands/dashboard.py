"""`stagecraft dashboard --env E`: an environment at a glance, on a local web page."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Serve a web page showing --env at a glance, on 127.0.0.1 only, until Ctrl-C.

The page shows every host and service (release, version, image, health, uptime,
replicas), the releases from the hosts' ledgers with each host's outcome, who
holds the deploy lock, and the live logs of a chosen service across hosts; it
reads the hosts as `status`, `releases`, `lock status` and `logs` do, at most
every --refresh seconds (one read at a time, cached in between). It changes
nothing, except a rollback to a listed release after a confirmation naming it
(the same rollout as `stagecraft rollback --to`).

The URL carries a random token and is printed once; requests without it are
refused. Secret values never reach the page.
"""


@click.command(help=HELP)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default="a free port",
    help="Port on 127.0.0.1.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option(
    "--refresh",
    type=click.FloatRange(min=1.0),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Read the hosts at most this often.",
)
@global_options
@pass_app
def dashboard(app: AppContext, port: int, open_browser: bool, refresh: float) -> None:
    from stagecraft.dashboard.app import env_app
    from stagecraft.dashboard.envboard import EnvBoard, EnvSources
    from stagecraft.dashboard.security import Guard, new_token
    from stagecraft.dashboard.serve import Server, bind_loopback

    env = app.require_env()
    loaded = app.load_config()
    loaded.environment(env)  # an unknown environment fails before anything listens
    board = EnvBoard(EnvSources.for_environment(loaded, env), interval=refresh)
    sock = bind_loopback(port)
    bound = int(sock.getsockname()[1])
    token = new_token()
    server = Server(env_app(board, Guard.for_loopback(bound, token)), sock)
    server.start()
    url = f"http://127.0.0.1:{bound}/?token={token}"
    try:
        if app.json:
            app.output.json({"env": env, "url": url})
        else:
            app.output.result(url)
            if not app.quiet:
                app.output.stderr.write(
                    f"stagecraft dashboard: serving {env} on 127.0.0.1:{bound}; Ctrl-C to stop\n"
                )
        app.output.stdout.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        while not server.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    if not app.quiet:
        app.output.stderr.write("stagecraft dashboard: stopped\n")
