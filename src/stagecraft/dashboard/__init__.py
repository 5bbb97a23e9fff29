"""Dashboards in the browser: one environment at a glance, and the running dev session.

- :mod:`~stagecraft.dashboard.envboard`: what ``stagecraft dashboard --env E``
  shows (status, releases, lock, logs; one rollback), read through the engine
  of the ``status``, ``releases``, ``lock``, ``logs`` and ``rollback`` commands;
- :mod:`~stagecraft.dashboard.devboard`: what the dev dashboard shows of a
  :class:`~stagecraft.dev.session.DevSession` (processes, infra, migrations,
  logs; restart and migrate);
- :mod:`~stagecraft.dashboard.app`: both as Starlette apps (Jinja2 templates,
  vendored htmx, server-sent events), behind
  :mod:`~stagecraft.dashboard.security` (token, Host, Origin and CSRF checks);
- :mod:`~stagecraft.dashboard.serve`: uvicorn on a loopback socket.

Starlette, uvicorn and Jinja2 are imported only when a dashboard is served, so
the CLI starts without them. See docs/dashboard.md and ADR 0014.
"""
